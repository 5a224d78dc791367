// Turns generated token pieces into text safe to stream: only whole UTF-8
// sequences are released, and text that might be the start of a stop string
// is held back until it is known not to be one.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace llmd::runner {

// Length of the longest prefix of `s` that does not end inside an unfinished
// UTF-8 sequence (invalid bytes count as complete, so they never stall output).
std::size_t utf8_complete_prefix(std::string_view s);

// Not thread-safe; owned by one slot on the engine thread.
class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stop = {}) : stop_(std::move(stop)) {}

  // Adds a token's bytes. Returns the text that may now be sent to the client
  // (possibly empty). After a stop string is seen, stopped() is true and the
  // returned text ends just before it.
  std::string push(std::string_view piece);
  // Releases everything still held (call when generation ends for another
  // reason). Incomplete trailing UTF-8 bytes are dropped.
  std::string flush();

  bool stopped() const { return stopped_; }
  // Everything released so far, i.e. the final completion text.
  const std::string& text() const { return released_; }

 private:
  std::vector<std::string> stop_;
  std::string pending_;   // received, not yet released
  std::string released_;  // released so far
  bool stopped_ = false;
};

}  // namespace llmd::runner
