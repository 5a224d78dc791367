// /api/v1/admin/* (SPEC §4.5): users, token grants, roles (usage records: usage_routes.cpp).
#include <nlohmann/json.hpp>

#include "api/account_routes.h"
#include "core/text.h"
#include "http/errors.h"
#include "http/json_body.h"

namespace llmd::api {
namespace {

using boost::asio::awaitable;
using http::RequestContext;
using http::Response;

// Applies `change` to user `id`, then returns the user as the API shows it.
// Blocking: call on the worker pool.
template <typename F>
Result<nlohmann::json> change_user(auth::UserStore& users, std::int64_t id, F change) {
  LLMD_TRY(change());
  auto user = users.by_id(id);
  if (!user) return std::unexpected(user.error());
  return user_json(*user);
}

Result<std::int64_t> user_id_param(const RequestContext& ctx) {
  auto id = text::parse_int(ctx.param("id"));
  if (!id || *id <= 0) return fail(ErrorCode::kNotFound, "no such user", "user_not_found");
  return *id;
}

// An admin's change to user {id}: who asks, about whom, with what body.
struct UserChange {
  auth::Principal admin;
  std::int64_t id = 0;
  nlohmann::json body;
};

Result<UserChange> user_change(const RequestContext& ctx) {
  auto who = require_admin(ctx);
  if (!who) return std::unexpected(who.error());
  auto id = user_id_param(ctx);
  if (!id) return std::unexpected(id.error());
  auto body = http::parse_json_object(ctx.request.body);
  if (!body) return std::unexpected(body.error());
  return UserChange{std::move(*who), *id, std::move(*body)};
}

}  // namespace

void add_admin_routes(http::Router& router, AccountDeps d) {
  router.get("/api/v1/admin/users", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto who = require_admin(ctx);
    if (!who) co_return std::unexpected(who.error());
    const std::string search = ctx.request.query_param("search").value_or("");
    auto limit = http::query_int(ctx.request, "limit", 50, 1, 500);
    auto offset = http::query_int(ctx.request, "offset", 0, 0, 1'000'000'000);
    if (!limit) co_return std::unexpected(limit.error());
    if (!offset) co_return std::unexpected(offset.error());
    if (search.size() > 200 || !text::is_valid_utf8(search)) {
      co_return std::unexpected(Error(ErrorCode::kInvalidArgument, "search must be valid UTF-8, at most 200 bytes"));
    }
    auto result = co_await d.pool.run([&]() -> Result<nlohmann::json> {
      auto users = d.auth.users().list(search, static_cast<int>(*limit), static_cast<int>(*offset));
      if (!users) return std::unexpected(users.error());
      auto total = d.auth.users().count(search);
      if (!total) return std::unexpected(total.error());
      nlohmann::json list = nlohmann::json::array();
      for (const auto& u : *users) list.push_back(user_json(u));
      return nlohmann::json{{"users", list}, {"total", *total}};
    });
    if (!result) co_return std::unexpected(result.error());
    co_return Response::json(200, *result);
  });

  // {amount: +N grants, -N deducts, reason: text} -> the user with the new balance.
  router.post("/api/v1/admin/users/{id}/tokens", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto change = user_change(ctx);
    if (!change) co_return std::unexpected(change.error());
    const auth::Principal& admin = change->admin;
    const std::int64_t id = change->id;
    const nlohmann::json& body = change->body;
    auto amount = http::int_field(body, "amount", true, 0, -1'000'000'000'000, 1'000'000'000'000);
    auto reason = http::string_field(body, "reason", true);
    if (!amount) co_return std::unexpected(amount.error());
    if (!reason) co_return std::unexpected(reason.error());
    if (reason->empty() || reason->size() > 200) {
      co_return std::unexpected(Error(ErrorCode::kInvalidArgument, "reason must be 1-200 characters", "invalid_field"));
    }
    const std::string ledger_reason = "admin " + admin.username + ": " + *reason;
    auto result = co_await d.pool.run([&] {
      return change_user(d.auth.users(), id,
                         [&] { return d.accounts.adjust(id, *amount, ledger_reason, ctx.request_id); });
    });
    if (!result) co_return std::unexpected(result.error());
    d.log.info("tokens adjusted",
               {{"request_id", ctx.request_id}, {"admin", admin.user_id}, {"user_id", id}, {"amount", *amount}});
    co_return Response::json(200, {{"user", *result}});
  });

  router.post("/api/v1/admin/users/{id}/role", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto change = user_change(ctx);
    if (!change) co_return std::unexpected(change.error());
    const auth::Principal& admin = change->admin;
    const std::int64_t id = change->id;
    const nlohmann::json& body = change->body;
    auto role = http::string_field(body, "role", true);
    if (!role) co_return std::unexpected(role.error());
    if (!auth::valid_role(*role)) {
      co_return std::unexpected(
          Error(ErrorCode::kInvalidArgument, "role must be user, teacher or admin", "invalid_role"));
    }
    if (id == admin.user_id) {
      co_return std::unexpected(Error(ErrorCode::kPermissionDenied, "you cannot change your own role", "forbidden"));
    }
    auto result = co_await d.pool.run(
        [&] { return change_user(d.auth.users(), id, [&] { return d.auth.users().set_role(id, *role); }); });
    if (!result) co_return std::unexpected(result.error());
    co_return Response::json(200, {{"user", *result}});
  });

  router.post("/api/v1/admin/users/{id}/disable", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto change = user_change(ctx);
    if (!change) co_return std::unexpected(change.error());
    const auth::Principal& admin = change->admin;
    const std::int64_t id = change->id;
    const nlohmann::json& body = change->body;
    bool disabled = true;
    if (auto it = body.find("disabled"); it != body.end()) {
      if (!it->is_boolean())
        co_return std::unexpected(Error(ErrorCode::kInvalidArgument, "disabled must be a boolean"));
      disabled = it->get<bool>();
    }
    if (id == admin.user_id) {
      co_return std::unexpected(Error(ErrorCode::kPermissionDenied, "you cannot disable yourself", "forbidden"));
    }
    auto result = co_await d.pool.run(
        [&] { return change_user(d.auth.users(), id, [&] { return d.auth.users().set_disabled(id, disabled); }); });
    if (!result) co_return std::unexpected(result.error());
    co_return Response::json(200, {{"user", *result}});
  });

  // A forgotten password: {password?, must_change?: true} -> the user (and
  // the generated password, shown once, when none was given). Every session
  // of the user ends; with must_change the web UI asks for a new password at
  // the next login.
  router.post("/api/v1/admin/users/{id}/password", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto change = user_change(ctx);
    if (!change) co_return std::unexpected(change.error());
    const auth::Principal& admin = change->admin;
    const std::int64_t id = change->id;
    const nlohmann::json& body = change->body;
    auto given = http::string_field(body, "password", false);
    if (!given) co_return std::unexpected(given.error());
    bool must_change = true;
    if (auto it = body.find("must_change"); it != body.end() && !it->is_null()) {
      if (!it->is_boolean())
        co_return std::unexpected(Error(ErrorCode::kInvalidArgument, "must_change must be a boolean"));
      must_change = it->get<bool>();
    }
    const bool generate = given->empty();
    const std::string password = generate ? auth::generate_secret().substr(0, 20) : *given;
    http::WorkerPool& bcrypt_pool = d.password_pool ? *d.password_pool : d.pool;
    auto user = co_await bcrypt_pool.run([&] { return d.auth.reset_password(id, password, must_change); });
    if (!user) co_return std::unexpected(user.error());
    d.log.info("password reset by an administrator",
               {{"request_id", ctx.request_id}, {"user_id", id}, {"admin_id", admin.user_id}});
    nlohmann::json out = {{"user", user_json(*user)}};
    if (generate) out["password"] = password;
    co_return Response::json(200, out);
  });
}

}  // namespace llmd::api
