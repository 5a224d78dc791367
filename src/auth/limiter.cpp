#include "auth/limiter.h"

#include <algorithm>
#include <cmath>

#include "core/text.h"

namespace llmd::auth {

std::optional<int> MemoryRateLimiter::take(const std::string& key, int limit, std::chrono::seconds period) {
  if (limit <= 0) return std::nullopt;
  const auto now = std::chrono::steady_clock::now();
  const double rate = limit / static_cast<double>(std::max<std::int64_t>(1, period.count()));  // tokens per second
  std::lock_guard lock(mutex_);
  // Drop full buckets now and then so memory follows active clients only.
  if (++takes_since_sweep_ >= 10000) {
    takes_since_sweep_ = 0;
    std::erase_if(buckets_, [&](const auto& kv) {
      return std::chrono::duration<double>(now - kv.second.refilled).count() * rate >= limit;
    });
  }
  auto [it, inserted] = buckets_.try_emplace(key, Bucket{static_cast<double>(limit), now});
  Bucket& b = it->second;
  if (!inserted) {
    const double elapsed = std::chrono::duration<double>(now - b.refilled).count();
    b.tokens = std::min<double>(limit, b.tokens + elapsed * rate);
    b.refilled = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return std::nullopt;
  }
  return std::max(1, static_cast<int>(std::ceil((1.0 - b.tokens) / rate)));
}

namespace {
std::string pair_key(const std::string& username, const std::string& ip) {
  return text::to_lower(username) + "\n" + ip;
}
}  // namespace

const LoginThrottle::Count* LoginThrottle::live(const std::unordered_map<std::string, Count>& map,
                                                const std::string& key, Clock::time_point now) const {
  auto it = map.find(key);
  if (it == map.end() || now - it->second.window_start >= options_.window) return nullptr;
  return &it->second;
}

int LoginThrottle::seconds_until(Clock::time_point t, Clock::time_point now) const {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(t - now).count();
  return std::max(1, static_cast<int>((left + 999) / 1000));
}

std::optional<int> LoginThrottle::blocked(const std::string& username, const std::string& ip) {
  const auto now = Clock::now();
  std::lock_guard lock(mutex_);
  const Count* pair = live(by_pair_, pair_key(username, ip), now);
  if (pair && pair->failures >= options_.pair_failures) return seconds_until(pair->window_start + options_.window, now);
  const Count* address = live(by_address_, ip, now);
  if (address && address->failures >= options_.address_failures) {
    return seconds_until(address->window_start + options_.window, now);
  }
  const Count* account = live(by_account_, text::to_lower(username), now);
  if (account && account->failures >= options_.account_failures && pair && pair->failures > 0) {
    // Slowed, not locked: an address that failed on this account waits its turn.
    const auto slow_interval = options_.window / std::max(1, options_.pair_failures);
    if (now < pair->last_failure + slow_interval) return seconds_until(pair->last_failure + slow_interval, now);
  }
  return std::nullopt;
}

void LoginThrottle::failed(const std::string& username, const std::string& ip) {
  const auto now = Clock::now();
  std::lock_guard lock(mutex_);
  if (++failures_since_sweep_ >= 4096) sweep(now);
  for (auto* c : {&by_pair_[pair_key(username, ip)], &by_address_[ip], &by_account_[text::to_lower(username)]}) {
    if (c->failures == 0 || now - c->window_start >= options_.window) *c = Count{0, now, now};
    ++c->failures;
    c->last_failure = now;
  }
}

void LoginThrottle::succeeded(const std::string& username, const std::string& ip) {
  std::lock_guard lock(mutex_);
  by_pair_.erase(pair_key(username, ip));
}

void LoginThrottle::sweep(Clock::time_point now) {
  failures_since_sweep_ = 0;
  for (auto* map : {&by_pair_, &by_address_, &by_account_}) {
    std::erase_if(*map, [&](const auto& kv) { return now - kv.second.window_start >= options_.window; });
  }
}

}  // namespace llmd::auth
