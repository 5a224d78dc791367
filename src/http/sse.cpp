#include "http/sse.h"

#include <string>

namespace llmd::http {

std::string format_sse_event(std::string_view data, std::string_view event) {
  std::string out;
  out.reserve(data.size() + 16);
  if (!event.empty()) {
    out += "event: ";
    out += event;
    out += '\n';
  }
  // Each line of the payload becomes its own data: field; CRLF and CR count
  // as line ends too, so a payload can never inject a field or end the event.
  std::size_t start = 0;
  while (true) {
    const auto pos = data.find_first_of("\r\n", start);
    out += "data: ";
    out += data.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start);
    out += '\n';
    if (pos == std::string_view::npos) break;
    start = pos + ((data[pos] == '\r' && pos + 1 < data.size() && data[pos + 1] == '\n') ? 2 : 1);
  }
  out += '\n';
  return out;
}

boost::asio::awaitable<bool> SseWriter::open(int status) {
  Headers h;
  h.set("Content-Type", "text/event-stream; charset=utf-8");
  h.set("Cache-Control", "no-cache");
  h.set("X-Accel-Buffering", "no");
  alive_ = co_await ctx_.stream.begin(status, h);
  co_return alive_;
}

boost::asio::awaitable<bool> SseWriter::send(std::string_view data, std::string_view event) {
  if (!alive_) co_return false;
  alive_ = co_await ctx_.stream.write(format_sse_event(data, event));
  co_return alive_;
}

boost::asio::awaitable<bool> SseWriter::comment(std::string_view text) {
  if (!alive_) co_return false;
  std::string line = ": ";
  for (char c : text) line += (c == '\n' || c == '\r') ? ' ' : c;
  line += "\n\n";
  alive_ = co_await ctx_.stream.write(line);
  co_return alive_;
}

boost::asio::awaitable<void> SseWriter::close() {
  if (alive_) co_await ctx_.stream.end();
}

}  // namespace llmd::http
