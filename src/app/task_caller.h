// Who a task's model call is made for: the reservation's user and the usage
// record's request id, route and start time.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace llmd::app {

struct Caller {
  std::int64_t user_id = 0;
  std::string request_id;
  std::string route;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

}  // namespace llmd::app
