// Who a task's model call is made for: the reservation's user and the usage
// record's request id, route and start time.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace llmd::billing {

struct Caller {
  std::int64_t user_id = 0;
  std::string request_id;
  std::string route;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::optional<std::int64_t> api_key_id{};  // the key the call came with: its budget and models apply
};

// Completion tokens below which a task's model call is not worth making
// (402 instead of a reply cut short by a clamped max_tokens).
inline constexpr std::int64_t kMinUsefulCompletion = 64;

}  // namespace llmd::billing
