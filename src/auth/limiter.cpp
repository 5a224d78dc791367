#include "auth/limiter.h"

#include <algorithm>
#include <cmath>

#include "core/text.h"

namespace llmd::auth {

std::optional<int> MemoryRateLimiter::take(const std::string& key, int per_minute) {
  if (per_minute <= 0) return std::nullopt;
  const auto now = std::chrono::steady_clock::now();
  const double rate = per_minute / 60.0;  // tokens per second
  std::lock_guard lock(mutex_);
  // Drop full buckets now and then so memory follows active clients only.
  if (++takes_since_sweep_ >= 10000) {
    takes_since_sweep_ = 0;
    std::erase_if(buckets_, [&](const auto& kv) {
      return std::chrono::duration<double>(now - kv.second.refilled).count() * rate >= per_minute;
    });
  }
  auto [it, inserted] = buckets_.try_emplace(key, Bucket{static_cast<double>(per_minute), now});
  Bucket& b = it->second;
  if (!inserted) {
    const double elapsed = std::chrono::duration<double>(now - b.refilled).count();
    b.tokens = std::min<double>(per_minute, b.tokens + elapsed * rate);
    b.refilled = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return std::nullopt;
  }
  return std::max(1, static_cast<int>(std::ceil((1.0 - b.tokens) / rate)));
}

std::optional<int> LoginThrottle::check(Count& c, std::chrono::steady_clock::time_point now) const {
  if (now - c.window_start >= window_) {
    c = Count{0, now};
    return std::nullopt;
  }
  if (c.failures < max_failures_) return std::nullopt;
  const auto left = std::chrono::duration_cast<std::chrono::seconds>(c.window_start + window_ - now).count();
  return std::max<int>(1, static_cast<int>(left));
}

std::optional<int> LoginThrottle::blocked(const std::string& username, const std::string& ip) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  auto by_name = by_name_.find(text::to_lower(username));
  if (by_name != by_name_.end()) {
    if (auto wait = check(by_name->second, now)) return wait;
  }
  auto by_ip = by_ip_.find(ip);
  if (by_ip != by_ip_.end()) {
    // An IP gets more room than one name: a school shares one address.
    if (by_ip->second.failures >= max_failures_ * 5) return check(by_ip->second, now);
  }
  return std::nullopt;
}

void LoginThrottle::failed(const std::string& username, const std::string& ip) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  for (auto* c : {&by_name_[text::to_lower(username)], &by_ip_[ip]}) {
    if (c->failures == 0 || now - c->window_start >= window_) *c = Count{0, now};
    ++c->failures;
  }
}

void LoginThrottle::succeeded(const std::string& username) {
  std::lock_guard lock(mutex_);
  by_name_.erase(text::to_lower(username));
}

}  // namespace llmd::auth
