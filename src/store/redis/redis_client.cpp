#include "store/redis/redis_client.h"
#include "store/service_url.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include "core/text.h"

namespace llmd::store::redis {
namespace {

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyHandle = std::unique_ptr<redisReply, ReplyFree>;

timeval to_timeval(std::chrono::milliseconds ms) {
  return timeval{static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

Error unavailable() { return Error(ErrorCode::kUnavailable, "redis is unreachable", "redis_unavailable"); }

// The one place Redis error replies become llmd errors. Only the error's
// first word (its code, e.g. NOSCRIPT, WRONGTYPE) is kept.
Error translate_error_reply(std::string_view text) {
  const std::string code(text.substr(0, text.find(' ')));
  if (code == "NOSCRIPT") return Error(ErrorCode::kInternal, "redis: script not loaded", "redis_noscript");
  if (code == "LOADING" || code == "BUSY" || code == "MASTERDOWN" || code == "TRYAGAIN") {
    return Error(ErrorCode::kUnavailable, "redis is busy (" + code + ")", "redis_unavailable");
  }
  return Error(ErrorCode::kInternal, "redis error (" + code + ")", "redis_error");
}

Result<Reply> convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_ERROR: return std::unexpected(translate_error_reply(std::string_view(r->str, r->len)));
    case REDIS_REPLY_INTEGER:
      out.kind = Reply::Kind::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      out.kind = Reply::Kind::kString;
      out.string.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ARRAY:
      out.kind = Reply::Kind::kArray;
      for (std::size_t i = 0; i < r->elements; ++i) {
        auto e = convert(r->element[i]);
        if (!e) return e;
        out.elements.push_back(std::move(*e));
      }
      break;
    default: break;  // nil
  }
  return out;
}

// Sends one command on `c`. A transport failure leaves `c` unusable
// (c->err set): the caller drops it.
Result<Reply> run(redisContext* c, const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<std::size_t> lengths;
  for (const auto& a : argv) {
    args.push_back(a.data());
    lengths.push_back(a.size());
  }
  ReplyHandle reply(
      static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(args.size()), args.data(), lengths.data())));
  if (!reply) return std::unexpected(unavailable());
  return convert(reply.get());
}

}  // namespace

void RedisClient::ContextFree::operator()(redisContext* c) const { redisFree(c); }

Result<RedisUrl> parse_redis_url(std::string_view url) {
  auto bad = [](const std::string& what) {
    return fail(ErrorCode::kInvalidArgument, "redis: " + what + " (expected redis://[:password@]host:port/db)",
                "bad_config");
  };
  auto parts = parse_service_url(url, "redis");
  if (!parts) return bad(parts.error().message);
  RedisUrl out;
  // redis://:password@host and the older redis://password@host
  out.password = parts->has_password ? parts->password : parts->user;
  if (!parts->host.empty()) out.host = parts->host;
  if (parts->port) out.port = *parts->port;
  if (!parts->path.empty()) {
    auto db = text::parse_int(parts->path);
    if (!db || *db < 0 || *db > 65535) return bad("bad database number");
    out.db = static_cast<int>(*db);
  }
  for (auto& [key, value] : parts->params) {
    if (key != "socket") return bad("unknown parameter");
    out.socket = std::move(value);
  }
  return out;
}

RedisClient::RedisClient(RedisUrl url, Options options) : url_(std::move(url)), options_(options) {}

RedisClient::~RedisClient() = default;

Result<RedisClient::ContextHandle> RedisClient::connect() {
  const timeval tv = to_timeval(options_.timeout);
  ContextHandle c(url_.socket.empty() ? redisConnectWithTimeout(url_.host.c_str(), url_.port, tv)
                                      : redisConnectUnixWithTimeout(url_.socket.c_str(), tv));
  if (!c || c->err) return std::unexpected(unavailable());
  if (redisSetTimeout(c.get(), tv) != 0) return std::unexpected(unavailable());
  if (!url_.password.empty()) {
    auto auth = run(c.get(), {"AUTH", url_.password});
    if (!auth) {
      return fail(ErrorCode::kUnavailable, "redis refused the password", "redis_unavailable");
    }
  }
  if (url_.db != 0) {
    auto select = run(c.get(), {"SELECT", std::to_string(url_.db)});
    if (!select) return std::unexpected(select.error());
  }
  return c;
}

Result<RedisClient::ContextHandle> RedisClient::checkout() {
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
    if (std::chrono::steady_clock::now() < down_until_) return std::unexpected(unavailable());
  }
  auto c = connect();
  if (!c) {
    std::lock_guard lock(mutex_);
    down_until_ = std::chrono::steady_clock::now() + options_.down_for;
  }
  return c;
}

void RedisClient::checkin(ContextHandle c) {
  std::lock_guard lock(mutex_);
  if (static_cast<int>(idle_.size()) < options_.pool_size) idle_.push_back(std::move(c));
}

Result<Reply> RedisClient::command(const std::vector<std::string>& argv) {
  auto c = checkout();
  if (!c) return std::unexpected(c.error());
  auto reply = run(c->get(), argv);
  // A context with a transport error is dead: drop it and reconnect next time.
  if ((*c)->err == 0) checkin(std::move(*c));
  return reply;
}

Result<Reply> RedisClient::eval(const std::string& script, const std::vector<std::string>& keys,
                                const std::vector<std::string>& args) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::string sha;
    {
      std::lock_guard lock(mutex_);
      if (auto it = script_shas_.find(script); it != script_shas_.end()) sha = it->second;
    }
    if (sha.empty()) {
      auto loaded = command({"SCRIPT", "LOAD", script});
      if (!loaded) return loaded;
      sha = loaded->string;
      std::lock_guard lock(mutex_);
      script_shas_[script] = sha;
    }
    std::vector<std::string> argv{"EVALSHA", sha, std::to_string(keys.size())};
    argv.insert(argv.end(), keys.begin(), keys.end());
    argv.insert(argv.end(), args.begin(), args.end());
    auto reply = command(argv);
    if (reply || reply.error().reason != "redis_noscript") return reply;
    // Redis restarted (or flushed its scripts): load it again.
    std::lock_guard lock(mutex_);
    script_shas_.erase(script);
  }
  return fail(ErrorCode::kInternal, "redis: script could not be loaded", "redis_error");
}

}  // namespace llmd::store::redis
