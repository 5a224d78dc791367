#include "api/account_routes.h"

#include <nlohmann/json.hpp>

#include "api/scope_json.h"
#include "billing/allowances.h"
#include "core/text.h"
#include "http/client_address.h"
#include "http/errors.h"
#include "http/json_body.h"

namespace llmd::api {
namespace {

using boost::asio::awaitable;
using http::RequestContext;
using http::Response;

bool is_api_path(const std::string& path) { return path.starts_with("/api/") || path.starts_with("/v1/"); }

// Refuses a key used from outside the networks it is limited to.
Result<void> check_key_network(const auth::Principal& who, const std::string& client_ip) {
  if (who.key_subnets.empty()) return {};
  auto networks = http::NetworkList::parse(who.key_subnets);
  const auto address = http::parse_ip(client_ip);
  if (networks && address && networks->contains(*address)) return {};
  return fail(ErrorCode::kPermissionDenied, "this API key may not be used from " + client_ip, "network_not_allowed");
}

// The profile's groups: each with the member's allowance in its period.
Result<nlohmann::json> groups_of(billing::Groups& groups, billing::Accounts& accounts, std::int64_t user_id) {
  auto mine = groups.of_member(user_id);
  if (!mine) return std::unexpected(mine.error());
  auto open = billing::open_allowances(accounts.database(), user_id);
  if (!open) return std::unexpected(open.error());
  nlohmann::json list = nlohmann::json::array();
  for (const auto& g : *mine) {
    nlohmann::json allowance = nullptr;
    if (g.settings.allowance_amount > 0) {
      allowance = {{"amount", g.settings.allowance_amount},
                   {"period", g.settings.allowance_period},
                   {"left", 0},
                   {"resets_at", nullptr}};
      for (const auto& a : *open) {
        if (a.group_id != g.id) continue;
        allowance["left"] = a.remaining;
        allowance["credited"] = a.amount;
        allowance["resets_at"] = a.period_end;
      }
    }
    list.push_back({{"id", g.id},
                    {"name", g.settings.name},
                    {"price_ratio", g.settings.price_ratio},
                    {"models", g.settings.models ? nlohmann::json(*g.settings.models) : nlohmann::json(nullptr)},
                    {"allowance", allowance}});
  }
  return list;
}

}  // namespace

nlohmann::json user_json(const auth::User& u) {
  return {{"id", u.id},
          {"username", u.username},
          {"email", u.email},
          {"role", u.role},
          {"tokens", u.available_tokens()},
          {"disabled", u.disabled},
          {"created_at", u.created_at},
          {"must_change_password", u.must_change_password}};
}

Result<auth::Principal> require_user(const RequestContext& ctx) {
  const auth::Principal* who = ctx.get<auth::Principal>();
  if (who == nullptr) {
    return fail(ErrorCode::kUnauthenticated, "authentication required (Authorization: Bearer <token or API key>)",
                "unauthenticated");
  }
  return *who;
}

Result<auth::Principal> require_admin(const RequestContext& ctx) {
  auto who = require_user(ctx);
  if (!who) return who;
  if (!who->is_admin()) return fail(ErrorCode::kPermissionDenied, "administrators only", "forbidden");
  return who;
}

Result<auth::Principal> authenticate_counting_failures(auth::AuthService& auth, auth::RateLimiter& limiter,
                                                       const config::LimitsConfig& limits,
                                                       const std::string& credentials, const std::string& ip) {
  auto who = auth.authenticate(credentials);
  if (who || who.error().code != ErrorCode::kUnauthenticated) return who;
  // A failure never reaches the rate-limit middleware: charge the address
  // here, so guessing keys or tokens meets a 429.
  auto wait = limiter.take("authfail:" + ip, limits.auth_failures_per_minute);
  if (auto general = limiter.take("ip:" + ip, limits.ip_rpm); general && (!wait || *general > *wait)) {
    wait = general;
  }
  if (wait) {
    return fail(Error(ErrorCode::kRateLimited, "too many failed authentications; slow down", "rate_limited")
                    .with_retry_after(*wait));
  }
  return who;
}

http::Middleware auth_middleware(auth::AuthService& auth, http::WorkerPool& pool, auth::RateLimiter& limiter,
                                 config::LimitsConfig limits) {
  return http::render_errors([&auth, &pool, &limiter, limits](RequestContext& ctx,
                                                              const http::Next& next) -> awaitable<Result<Response>> {
    // Anthropic's clients send their key as x-api-key.
    std::optional<std::string> header;
    if (auto bearer = ctx.request.headers.get("Authorization")) {
      header = std::string(*bearer);
    } else if (auto key = ctx.request.headers.get("x-api-key")) {
      header = "Bearer " + std::string(*key);
    }
    if (header && is_api_path(ctx.request.path)) {
      const std::string& value = *header;
      const std::string& ip = ctx.request.remote_ip;
      auto who = co_await pool.run([&] { return authenticate_counting_failures(auth, limiter, limits, value, ip); });
      if (!who) co_return std::unexpected(who.error());
      if (auto allowed = check_key_network(*who, ip); !allowed) co_return std::unexpected(allowed.error());
      ctx.set(*who);
    }
    co_return co_await next(ctx);
  });
}

http::Middleware rate_limit_middleware(auth::RateLimiter& limiter, config::LimitsConfig limits,
                                       http::WorkerPool& pool) {
  return http::render_errors([&limiter, limits, &pool](RequestContext& ctx,
                                                       const http::Next& next) -> awaitable<Result<Response>> {
    if (is_api_path(ctx.request.path)) {
      const std::string ip_key = "ip:" + ctx.request.remote_ip;
      std::string principal_key;
      const auth::Principal* p = ctx.get<auth::Principal>();
      if (p) {
        principal_key = p->api_key_id ? "key:" + std::to_string(*p->api_key_id) : "user:" + std::to_string(p->user_id);
      }
      // Which limit refused, and for how long: the refusal names it.
      struct Refusal {
        int wait = 0;
        std::string limit;
      };
      auto check = [&]() -> std::optional<Refusal> {
        if (auto wait = limiter.take(ip_key, limits.ip_rpm)) return Refusal{*wait, "requests from your address"};
        if (principal_key.empty()) return std::nullopt;
        if (auto wait = limiter.take(principal_key, limits.user_rpm)) return Refusal{*wait, "your requests"};
        // A key's own rpm and the user's groups' rpm: each its own bucket, so
        // that the general limit above and these never share a count.
        if (p->api_key_id && p->key_rpm > 0) {
          if (auto wait = limiter.take("keyrpm:" + std::to_string(*p->api_key_id), static_cast<int>(p->key_rpm))) {
            return Refusal{*wait, "this API key's " + std::to_string(p->key_rpm) + " requests per minute"};
          }
        }
        if (p->group_rpm > 0) {
          if (auto wait = limiter.take("grouprpm:" + std::to_string(p->user_id), static_cast<int>(p->group_rpm))) {
            return Refusal{*wait, "your group's " + std::to_string(p->group_rpm) + " requests per minute"};
          }
        }
        return std::nullopt;
      };
      // A shared (Redis) limiter is a network round trip: keep it off the I/O thread.
      std::optional<Refusal> refused;
      if (limiter.blocks()) {
        std::optional<Refusal> shared = co_await pool.run([&] { return check(); });
        refused = std::move(shared);
      } else {
        refused = check();
      }
      if (refused) {
        co_return std::unexpected(
            Error(ErrorCode::kRateLimited,
                  "too many requests (" + refused->limit + "); retry in " + std::to_string(refused->wait) + " s",
                  "rate_limited")
                .with_retry_after(refused->wait));
      }
    }
    co_return co_await next(ctx);
  });
}

void add_account_routes(http::Router& router, AccountDeps d) {
  router.post("/api/v1/auth/register", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto body = http::parse_json_object(ctx.request.body);
    if (!body) co_return std::unexpected(body.error());
    // Only these three fields are read: role, tokens and the like are ignored.
    auto username = http::string_field(*body, "username", true);
    auto password = http::string_field(*body, "password", true);
    auto email = http::string_field(*body, "email", true);
    for (const auto* f : {&username, &password, &email}) {
      if (!*f) co_return std::unexpected(f->error());
    }
    const std::string ip = ctx.request.remote_ip;
    http::WorkerPool& bcrypt_pool = d.password_pool ? *d.password_pool : d.pool;
    auto session = co_await bcrypt_pool.run([&] { return d.auth.register_user(*username, *password, *email, ip); });
    if (!session) co_return std::unexpected(session.error());
    d.log.info("user registered", {{"request_id", ctx.request_id}, {"user_id", session->user.id}});
    co_return Response::json(201, {{"token", session->token}, {"user", user_json(session->user)}});
  });

  router.post("/api/v1/auth/login", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto body = http::parse_json_object(ctx.request.body);
    if (!body) co_return std::unexpected(body.error());
    auto username = http::string_field(*body, "username", true);
    auto password = http::string_field(*body, "password", true);
    if (!username) co_return std::unexpected(username.error());
    if (!password) co_return std::unexpected(password.error());
    const std::string ip = ctx.request.remote_ip;
    http::WorkerPool& bcrypt_pool = d.password_pool ? *d.password_pool : d.pool;
    auto session = co_await bcrypt_pool.run([&] { return d.auth.login(*username, *password, ip); });
    if (!session) {
      if (session.error().code == ErrorCode::kUnauthenticated) {
        d.log.warn("login failed", {{"request_id", ctx.request_id}, {"remote", ip}});
      }
      co_return std::unexpected(session.error());
    }
    co_return Response::json(200, {{"token", session->token}, {"user", user_json(session->user)}});
  });

  router.get("/api/v1/auth/profile", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    auto result = co_await d.pool.run([&]() -> Result<nlohmann::json> {
      auto user = d.auth.users().by_id(who->user_id);
      if (!user) return std::unexpected(user.error());
      auto totals = d.auth.users().usage_totals(who->user_id);
      if (!totals) return std::unexpected(totals.error());
      nlohmann::json u = user_json(*user);
      u["usage"] = {{"calls", totals->calls},
                    {"prompt_tokens", totals->prompt_tokens},
                    {"completion_tokens", totals->completion_tokens},
                    {"tokens_charged", totals->tokens_charged}};
      if (d.groups) {
        auto groups = groups_of(*d.groups, d.accounts, who->user_id);
        if (!groups) return std::unexpected(groups.error());
        u["groups"] = std::move(*groups);
        // The allowance may have been credited just now.
        auto balance = d.accounts.balance(who->user_id);
        if (balance) u["tokens"] = balance->available();
      }
      return u;
    });
    if (!result) co_return std::unexpected(result.error());
    co_return Response::json(200, {{"user", *result}});
  });

  // Changing one's own password: the session that asks gets a new token,
  // every other session (JWT) of the user ends; API keys stay.
  router.post("/api/v1/auth/password", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    if (who->api_key_id) {
      co_return std::unexpected(
          Error(ErrorCode::kPermissionDenied, "log in with the password to change it (not an API key)", "forbidden"));
    }
    auto body = http::parse_json_object(ctx.request.body);
    if (!body) co_return std::unexpected(body.error());
    auto current = http::string_field(*body, "current_password", true);
    auto next = http::string_field(*body, "new_password", true);
    if (!current) co_return std::unexpected(current.error());
    if (!next) co_return std::unexpected(next.error());
    const std::string ip = ctx.request.remote_ip;
    http::WorkerPool& bcrypt_pool = d.password_pool ? *d.password_pool : d.pool;
    auto session = co_await bcrypt_pool.run([&] { return d.auth.change_password(who->user_id, *current, *next, ip); });
    if (!session) co_return std::unexpected(session.error());
    d.log.info("password changed", {{"request_id", ctx.request_id}, {"user_id", who->user_id}});
    co_return Response::json(200, {{"token", session->token}, {"user", user_json(session->user)}});
  });

  router.post("/api/v1/auth/keys", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    auto body = http::parse_json_object(ctx.request.body);
    if (!body) co_return std::unexpected(body.error());
    auto name = http::string_field(*body, "name", false, "default");
    if (!name) co_return std::unexpected(name.error());
    auto scopes = key_scopes_from_json(*body);
    if (!scopes) co_return std::unexpected(scopes.error());
    auto key = co_await d.pool.run([&] { return d.auth.create_key(who->user_id, *name, *scopes); });
    if (!key) co_return std::unexpected(key.error());
    nlohmann::json j = key_json(key->info, d.accounts.options().time_zone, d.accounts.options().now());
    j["key"] = key->key;
    co_return Response::json(201, j);
  });

  router.get("/api/v1/auth/keys", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    auto keys = co_await d.pool.run([&] { return d.auth.users().keys(who->user_id); });
    if (!keys) co_return std::unexpected(keys.error());
    nlohmann::json list = nlohmann::json::array();
    for (const auto& k : *keys) {
      list.push_back(key_json(k, d.accounts.options().time_zone, d.accounts.options().now()));
    }
    co_return Response::json(200, {{"keys", list}});
  });

  router.del("/api/v1/auth/keys/{id}", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    const auto id = text::parse_int(ctx.param("id"));
    if (!id) co_return std::unexpected(Error(ErrorCode::kNotFound, "no such API key", "key_not_found"));
    auto r = co_await d.pool.run([&] { return d.auth.users().delete_key(who->user_id, *id); });
    if (!r) co_return std::unexpected(r.error());
    co_return Response::json(200, {{"deleted", true}, {"id", *id}});
  });
}

}  // namespace llmd::api
