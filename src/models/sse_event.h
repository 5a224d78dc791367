// One server-sent event a dialect's stream translator emits: its name and
// its JSON data, written by the route with http::SseWriter.
#pragma once

#include <string>

namespace llmd::models {

struct SseEvent {
  std::string event;  // message_start, response.output_text.delta, ...
  std::string data;   // its JSON
};

}  // namespace llmd::models
