#include "auth/redis_limiter.h"

#include <algorithm>

namespace llmd::auth {
namespace {

// KEYS[1] = bucket; ARGV[1] = limit; ARGV[2] = period (ms). Returns 0 when a token was taken,
// else the whole seconds until one will be there. Fields: tokens (float),
// ts (Redis time of the last refill, ms).
constexpr const char* kTokenBucket = R"lua(
if redis.replicate_commands then redis.replicate_commands() end
local cap = tonumber(ARGV[1])
local rate = cap / tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = cap
else
  local elapsed = now - ts
  if elapsed < 0 then elapsed = 0 end
  tokens = math.min(cap, tokens + elapsed * rate)
end
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) / rate / 1000)
  if wait < 1 then wait = 1 end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((cap - tokens) / rate) + 1000)
return wait
)lua";

constexpr auto kWarnEvery = std::chrono::seconds(30);

}  // namespace

RedisRateLimiter::RedisRateLimiter(std::unique_ptr<store::redis::RedisClient> client, Warn warn, std::string key_prefix)
    : client_(std::move(client)), warn_(std::move(warn)), prefix_(std::move(key_prefix)) {}

Result<std::unique_ptr<RedisRateLimiter>> RedisRateLimiter::open(const std::string& url, Warn warn) {
  auto parsed = store::redis::parse_redis_url(url);
  if (!parsed) return std::unexpected(parsed.error());
  auto client = std::make_unique<store::redis::RedisClient>(std::move(*parsed), store::redis::RedisClient::Options{});
  return std::make_unique<RedisRateLimiter>(std::move(client), std::move(warn));
}

std::optional<int> RedisRateLimiter::take(const std::string& key, int limit, std::chrono::seconds period) {
  if (limit <= 0) return std::nullopt;
  const auto period_ms = std::max<std::int64_t>(1, period.count()) * 1000;
  auto reply = client_->eval(kTokenBucket, {prefix_ + key}, {std::to_string(limit), std::to_string(period_ms)});
  if (!reply || reply->kind != store::redis::Reply::Kind::kInteger) {
    warn_throttled(reply ? "redis rate limiter: unexpected reply; using per-instance limits"
                         : "redis rate limiter: " + reply.error().message + "; using per-instance limits");
    return fallback_.take(key, limit, period);
  }
  if (reply->integer <= 0) return std::nullopt;
  return static_cast<int>(reply->integer);
}

void RedisRateLimiter::warn_throttled(const std::string& message) {
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(warn_mutex_);
    if (last_warning_ != std::chrono::steady_clock::time_point{} && now - last_warning_ < kWarnEvery) return;
    last_warning_ = now;
  }
  if (warn_) warn_(message);
}

}  // namespace llmd::auth
