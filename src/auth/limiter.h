// Rate limiting: token buckets (requests per minute) and a failure counter
// for logins. In-memory implementations here; a Redis-backed RateLimiter
// shares limits between instances (store/redis, when configured).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace llmd::auth {

class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  // Takes one request for `key` under a limit of `per_minute` (burst = the
  // same). Returns nullopt when allowed, else the seconds until a retry can
  // succeed. per_minute <= 0 means unlimited. Thread-safe.
  virtual std::optional<int> take(const std::string& key, int per_minute) = 0;
  // True when take() may wait on the network (Redis): callers on an I/O
  // thread must then run it on the worker pool.
  virtual bool blocks() const { return false; }
};

class MemoryRateLimiter final : public RateLimiter {
 public:
  std::optional<int> take(const std::string& key, int per_minute) override;

 private:
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point refilled;
  };
  std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;  // guarded by mutex_
  std::size_t takes_since_sweep_ = 0;                // guarded by mutex_
};

// Counts failed logins per username and per client IP within a window.
class LoginThrottle {
 public:
  LoginThrottle(int max_failures, std::chrono::seconds window) : max_failures_(max_failures), window_(window) {}
  // Seconds to wait when either the name or the IP is over the limit.
  std::optional<int> blocked(const std::string& username, const std::string& ip);
  void failed(const std::string& username, const std::string& ip);
  void succeeded(const std::string& username);

 private:
  struct Count {
    int failures = 0;
    std::chrono::steady_clock::time_point window_start;
  };
  std::optional<int> check(Count& c, std::chrono::steady_clock::time_point now) const;
  int max_failures_;
  std::chrono::seconds window_;
  std::mutex mutex_;
  std::unordered_map<std::string, Count> by_name_;  // guarded by mutex_
  std::unordered_map<std::string, Count> by_ip_;    // guarded by mutex_
};

}  // namespace llmd::auth
