// RateLimiter shared by every llmd instance through Redis.
//
// Algorithm: the same token bucket as MemoryRateLimiter (capacity and burst
// = limit, refilled continuously at limit/period), kept in
// a Redis hash per key and updated by one Lua script, so take() is atomic
// across instances. Time is Redis's own clock (TIME), so the instances'
// clocks need not agree. A bucket expires once it would be full again, so
// Redis memory follows the active clients. A token bucket rather than an
// INCR+EXPIRE fixed window: a window lets a client send 2x the limit across
// a window boundary; the bucket never exceeds per_minute in any 60 s.
//
// When Redis fails (down, timing out, erroring) the limiter fails open in the
// sense that the API stays up: it falls back to a per-instance in-memory
// bucket (limits then hold per instance instead of across instances) and
// reports the failure through `warn`, at most once every 30 s. It returns to
// Redis by itself once Redis answers again.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "auth/limiter.h"
#include "core/error.h"
#include "store/redis/redis_client.h"

namespace llmd::auth {

class RedisRateLimiter final : public RateLimiter {
 public:
  using Warn = std::function<void(const std::string& message)>;

  // `key_prefix` namespaces the buckets (tests give each limiter its own).
  RedisRateLimiter(std::unique_ptr<store::redis::RedisClient> client, Warn warn,
                   std::string key_prefix = "llmd:ratelimit:");

  // Parses the URL ("redis://host:port/db") and creates the limiter; does not
  // connect yet. Errors: kInvalidArgument (bad_config) for a bad URL.
  static Result<std::unique_ptr<RedisRateLimiter>> open(const std::string& url, Warn warn);

  using RateLimiter::take;
  std::optional<int> take(const std::string& key, int limit, std::chrono::seconds period) override;
  bool blocks() const override { return true; }

 private:
  void warn_throttled(const std::string& message);

  std::unique_ptr<store::redis::RedisClient> client_;
  Warn warn_;
  std::string prefix_;
  MemoryRateLimiter fallback_;
  std::mutex warn_mutex_;
  std::chrono::steady_clock::time_point last_warning_{};  // guarded by warn_mutex_
};

}  // namespace llmd::auth
