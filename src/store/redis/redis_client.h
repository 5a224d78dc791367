// A small, thread-safe Redis client over hiredis: a pool of blocking
// connections with short timeouts, reconnection, and Lua scripts run by
// EVALSHA (loaded on demand, reloaded after a Redis restart).
//
// Made for calls on a hot path that must never hang: every command has a
// timeout (default 250 ms), and after a failed connect the client stays
// "down" for a second, answering kUnavailable at once instead of waiting
// on a dead host for every request.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/error.h"

struct redisContext;

namespace llmd::store::redis {

// "redis://[:password@]host[:port][/db][?socket=/path]"; port 6379, db 0 by
// default; with `socket` the unix socket is used instead of host:port.
struct RedisUrl {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;
  int db = 0;
  std::string socket;
};

// Errors: kInvalidArgument (reason bad_config), never echoing the password.
Result<RedisUrl> parse_redis_url(std::string_view url);

// A Redis reply. Error replies are not Replies: they come back as errors.
struct Reply {
  enum class Kind { kNil, kInteger, kString, kArray };
  Kind kind = Kind::kNil;
  std::int64_t integer = 0;
  std::string string;  // bulk and status strings
  std::vector<Reply> elements;
};

class RedisClient {
 public:
  struct Options {
    int pool_size = 4;
    std::chrono::milliseconds timeout{250};    // connect and each command
    std::chrono::milliseconds down_for{1000};  // after a failed connect
  };

  // Connects lazily: creating a client never fails for an unreachable Redis.
  RedisClient(RedisUrl url, Options options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Runs one command (binary-safe arguments). Errors: kUnavailable (reason
  // redis_unavailable) when Redis cannot be reached or times out;
  // kInternal (reason redis_error) for an error reply. Thread-safe.
  Result<Reply> command(const std::vector<std::string>& argv);

  // EVALSHA of `script` with keys and args, loading the script first when
  // Redis does not have it. Errors as command().
  Result<Reply> eval(const std::string& script, const std::vector<std::string>& keys,
                     const std::vector<std::string>& args);

 private:
  struct ContextFree {
    void operator()(redisContext* c) const;
  };
  using ContextHandle = std::unique_ptr<redisContext, ContextFree>;

  Result<ContextHandle> checkout();
  void checkin(ContextHandle c);
  Result<ContextHandle> connect();

  RedisUrl url_;
  Options options_;
  std::mutex mutex_;
  std::vector<ContextHandle> idle_;                           // guarded by mutex_
  std::chrono::steady_clock::time_point down_until_{};        // guarded by mutex_
  std::unordered_map<std::string, std::string> script_shas_;  // script -> sha1; guarded by mutex_
};

}  // namespace llmd::store::redis
