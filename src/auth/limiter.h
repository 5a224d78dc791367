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
  // Takes one request for `key` under a limit of `limit` per `period` (burst
  // = limit, refilled continuously). Returns nullopt when allowed, else the
  // seconds until a retry can succeed. limit <= 0 means unlimited.
  // Thread-safe.
  virtual std::optional<int> take(const std::string& key, int limit, std::chrono::seconds period) = 0;
  // take() with a period of one minute.
  std::optional<int> take(const std::string& key, int per_minute) {
    return take(key, per_minute, std::chrono::seconds(60));
  }
  // True when take() may wait on the network (Redis): callers on an I/O
  // thread must then run it on the worker pool.
  virtual bool blocks() const { return false; }
};

class MemoryRateLimiter final : public RateLimiter {
 public:
  using RateLimiter::take;
  std::optional<int> take(const std::string& key, int limit, std::chrono::seconds period) override;

 private:
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point refilled;
  };
  std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;  // guarded by mutex_
  std::size_t takes_since_sweep_ = 0;                // guarded by mutex_
};

struct LoginThrottleOptions {
  int pair_failures = 10;     // failures of one (account, address) pair per window before that pair waits
  int address_failures = 50;  // failures from one address, all accounts together, before that address waits
  int account_failures = 50;  // failures on one account, all addresses together, before the account slows down
  std::chrono::seconds window{300};
};

// Counts failed logins per (account, address) pair, per address and per
// account, each within a window. It never locks an account out: over the
// per-account cap, an address that has already failed on the account may
// try once per window / pair_failures, and an address that has not failed
// on it (the owner elsewhere) is not held back at all. Names are compared
// case-insensitively. Memory follows the addresses and names seen within a
// window. Thread-safe.
class LoginThrottle {
 public:
  explicit LoginThrottle(LoginThrottleOptions options) : options_(options) {}
  LoginThrottle(int max_failures, std::chrono::seconds window)
      : LoginThrottle(LoginThrottleOptions{max_failures, max_failures * 5, max_failures * 5, window}) {}
  // Seconds `ip` must wait before trying `username` again, or nullopt.
  std::optional<int> blocked(const std::string& username, const std::string& ip);
  void failed(const std::string& username, const std::string& ip);
  // Clears the pair's failures (not the account's: an attack elsewhere goes on).
  void succeeded(const std::string& username, const std::string& ip);

 private:
  using Clock = std::chrono::steady_clock;
  struct Count {
    int failures = 0;
    Clock::time_point window_start;
    Clock::time_point last_failure;
  };
  // The entry when its window is still open, else nullptr.
  const Count* live(const std::unordered_map<std::string, Count>& map, const std::string& key,
                    Clock::time_point now) const;
  int seconds_until(Clock::time_point t, Clock::time_point now) const;
  void sweep(Clock::time_point now);

  LoginThrottleOptions options_;
  std::mutex mutex_;
  std::unordered_map<std::string, Count> by_pair_;     // guarded by mutex_; key: lower(name) + '\n' + ip
  std::unordered_map<std::string, Count> by_address_;  // guarded by mutex_
  std::unordered_map<std::string, Count> by_account_;  // guarded by mutex_; key: lower(name)
  std::size_t failures_since_sweep_ = 0;               // guarded by mutex_
};

}  // namespace llmd::auth
