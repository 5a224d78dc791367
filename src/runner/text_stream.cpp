#include "runner/text_stream.h"

#include <algorithm>

namespace llmd::runner {

std::size_t utf8_complete_prefix(std::string_view s) {
  // Look at most 3 bytes back for the lead byte of the last sequence.
  const std::size_t n = s.size();
  for (std::size_t back = 1; back <= std::min<std::size_t>(4, n); ++back) {
    const auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking
    std::size_t need = 1;
    if ((c & 0xE0) == 0xC0)
      need = 2;
    else if ((c & 0xF0) == 0xE0)
      need = 3;
    else if ((c & 0xF8) == 0xF0)
      need = 4;
    return back < need ? n - back : n;
  }
  return n;  // only continuation bytes (invalid): release as they are
}

std::string TextStream::push(std::string_view piece) {
  if (stopped_) return {};
  pending_.append(piece);
  const std::size_t complete = utf8_complete_prefix(pending_);

  // A full stop string anywhere in the pending text ends generation.
  std::size_t stop_at = std::string::npos;
  for (const auto& s : stop_) {
    if (s.empty()) continue;
    // Search from the earliest place a stop string could begin that was not
    // already ruled out (everything released was checked before).
    const std::size_t pos = pending_.find(s);
    if (pos != std::string::npos) stop_at = std::min(stop_at, pos);
  }
  if (stop_at != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, stop_at);
    pending_.clear();
    released_ += out;
    return out;
  }

  // Hold back the longest tail that is a prefix of some stop string.
  std::size_t keep_from = complete;
  for (const auto& s : stop_) {
    const std::size_t max_len = std::min(s.size() - (s.empty() ? 0 : 1), complete);
    for (std::size_t len = max_len; len > 0; --len) {
      if (std::string_view(pending_).substr(complete - len, len) == std::string_view(s).substr(0, len)) {
        keep_from = std::min(keep_from, complete - len);
        break;
      }
    }
  }
  std::string out = pending_.substr(0, keep_from);
  pending_.erase(0, keep_from);
  released_ += out;
  return out;
}

std::string TextStream::flush() {
  if (stopped_) return {};
  std::string out = pending_.substr(0, utf8_complete_prefix(pending_));
  pending_.clear();
  released_ += out;
  return out;
}

}  // namespace llmd::runner
