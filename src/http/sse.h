// Server-sent events over a streamed response: `data:` lines (multi-line
// payloads split per the spec), optional `event:` names, comments for
// keep-alive. Every send waits for the socket (backpressure) and reports
// whether the client is still there.
#pragma once

#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "http/context.h"

namespace llmd::http {

class SseWriter {
 public:
  explicit SseWriter(RequestContext& ctx) : ctx_(ctx) {}

  // Sends the headers (text/event-stream, no caching, no proxy buffering).
  boost::asio::awaitable<bool> open(int status = 200);
  // One event; `data` may contain newlines. False once the client is gone.
  boost::asio::awaitable<bool> send(std::string_view data, std::string_view event = {});
  // A comment line (": text"), e.g. a heartbeat while waiting.
  boost::asio::awaitable<bool> comment(std::string_view text);
  // Ends the chunked body. The handler then returns Response::already_streamed(status).
  boost::asio::awaitable<void> close();

  bool alive() const { return alive_; }

 private:
  RequestContext& ctx_;
  bool alive_ = true;
};

// Formats one SSE event (exposed for tests).
std::string format_sse_event(std::string_view data, std::string_view event = {});

}  // namespace llmd::http
