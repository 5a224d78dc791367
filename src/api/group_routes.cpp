#include "api/group_routes.h"

#include <nlohmann/json.hpp>

#include "api/account_routes.h"
#include "api/scope_json.h"
#include "core/text.h"
#include "http/errors.h"
#include "http/json_body.h"

namespace llmd::api {
namespace {

using boost::asio::awaitable;
using http::RequestContext;
using http::Response;
using nlohmann::json;

// A teacher or an administrator, as the groups service knows them.
Result<billing::Actor> require_teacher(const RequestContext& ctx) {
  auto who = require_user(ctx);
  if (!who) return std::unexpected(who.error());
  if (!who->is_admin() && !who->is_teacher()) {
    return fail(ErrorCode::kPermissionDenied, "teachers and administrators only", "forbidden");
  }
  return billing::Actor{who->user_id, who->is_admin()};
}

Result<std::int64_t> group_id_param(const RequestContext& ctx) {
  auto id = text::parse_int(ctx.param("id"));
  if (!id || *id <= 0) return fail(ErrorCode::kNotFound, "no such group", "group_not_found");
  return *id;
}

// What a group route starts with: who acts, on which group, with what body.
struct GroupCall {
  billing::Actor actor;
  std::int64_t id = 0;
  json body;
};

Result<GroupCall> group_call(const RequestContext& ctx, bool with_body) {
  auto actor = require_teacher(ctx);
  if (!actor) return std::unexpected(actor.error());
  auto id = group_id_param(ctx);
  if (!id) return std::unexpected(id.error());
  json body = json::object();
  if (with_body) {
    auto parsed = http::parse_json_object(ctx.request.body);
    if (!parsed) return std::unexpected(parsed.error());
    body = std::move(*parsed);
  }
  return GroupCall{*actor, *id, std::move(body)};
}

// The reason a grant or top-up gives, for the ledgers (which also name the
// group or member beside it).
Result<std::string> reason_of(const json& body) {
  auto reason = http::string_field(body, "reason", false, "");
  if (!reason) return reason;
  if (reason->size() > 80) {
    return fail(ErrorCode::kInvalidArgument, "reason must be at most 80 bytes", "invalid_field");
  }
  return reason;
}

}  // namespace

void add_group_routes(http::Router& router, GroupDeps d) {
  router.post("/api/v1/groups", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto actor = require_teacher(ctx);
    if (!actor) co_return std::unexpected(actor.error());
    auto body = http::parse_json_object(ctx.request.body);
    if (!body) co_return std::unexpected(body.error());
    billing::GroupSettings defaults;
    defaults.time_zone = d.time_zone;
    auto settings = group_settings_from_json(*body, defaults);
    if (!settings) co_return std::unexpected(settings.error());
    if (!body->contains("name"))
      co_return std::unexpected(Error(ErrorCode::kInvalidArgument, "name is required", "missing_field"));
    std::optional<std::string> owner;
    if (body->contains("owner")) {
      auto name = http::string_field(*body, "owner", true);
      if (!name) co_return std::unexpected(name.error());
      owner = *name;
    }
    auto group = co_await d.pool.run([&] { return d.groups.create(*actor, *settings, owner); });
    if (!group) co_return std::unexpected(group.error());
    d.log.info("group created", {{"request_id", ctx.request_id}, {"group_id", group->id}});
    co_return Response::json(201, {{"group", group_json(*group)}});
  });

  router.get("/api/v1/groups", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto actor = require_teacher(ctx);
    if (!actor) co_return std::unexpected(actor.error());
    auto groups = co_await d.pool.run([&] { return d.groups.list(*actor); });
    if (!groups) co_return std::unexpected(groups.error());
    json list = json::array();
    for (const auto& g : *groups) list.push_back(group_json(g));
    co_return Response::json(200, {{"groups", list}});
  });

  router.get("/api/v1/groups/{id}", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto call = group_call(ctx, false);
    if (!call) co_return std::unexpected(call.error());
    auto group = co_await d.pool.run([&] { return d.groups.get(call->actor, call->id); });
    if (!group) co_return std::unexpected(group.error());
    co_return Response::json(200, {{"group", group_json(*group)}});
  });

  router.add("PATCH", "/api/v1/groups/{id}",
             http::ResultHandler([d](RequestContext& ctx) -> awaitable<Result<Response>> {
               auto call = group_call(ctx, true);
               if (!call) co_return std::unexpected(call.error());
               auto group = co_await d.pool.run([&]() -> Result<billing::Group> {
                 auto before = d.groups.get(call->actor, call->id);
                 if (!before) return before;
                 auto settings = group_settings_from_json(call->body, before->settings);
                 if (!settings) return std::unexpected(settings.error());
                 return d.groups.update(call->actor, call->id, *settings);
               });
               if (!group) co_return std::unexpected(group.error());
               co_return Response::json(200, {{"group", group_json(*group)}});
             }));

  router.del("/api/v1/groups/{id}", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto call = group_call(ctx, false);
    if (!call) co_return std::unexpected(call.error());
    auto done = co_await d.pool.run([&] { return d.groups.remove(call->actor, call->id); });
    if (!done) co_return std::unexpected(done.error());
    co_return Response::json(200, {{"deleted", true}, {"id", call->id}});
  });

  router.get("/api/v1/groups/{id}/members", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto call = group_call(ctx, false);
    if (!call) co_return std::unexpected(call.error());
    auto list = co_await d.pool.run([&] { return d.groups.members(call->actor, call->id); });
    if (!list) co_return std::unexpected(list.error());
    json members = json::array();
    for (const auto& m : list->members) {
      members.push_back({{"user_id", m.user_id},
                         {"username", m.username},
                         {"tokens", m.tokens},
                         {"allowance_left", m.allowance_left},
                         {"used_this_period", m.used_this_period}});
    }
    json period =
        list->period_start ? json{{"start", *list->period_start}, {"resets_at", *list->resets_at}} : json(nullptr);
    co_return Response::json(200, {{"members", members}, {"period", period}});
  });

  router.post("/api/v1/groups/{id}/members", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto call = group_call(ctx, true);
    if (!call) co_return std::unexpected(call.error());
    auto username = http::string_field(call->body, "username", true);
    if (!username) co_return std::unexpected(username.error());
    auto member = co_await d.pool.run([&] { return d.groups.add_member(call->actor, call->id, *username); });
    if (!member) co_return std::unexpected(member.error());
    co_return Response::json(201, {{"member", {{"user_id", member->user_id}, {"username", member->username}}}});
  });

  router.del("/api/v1/groups/{id}/members/{username}", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto call = group_call(ctx, false);
    if (!call) co_return std::unexpected(call.error());
    const std::string username(ctx.param("username"));
    auto done = co_await d.pool.run([&] { return d.groups.remove_member(call->actor, call->id, username); });
    if (!done) co_return std::unexpected(done.error());
    co_return Response::json(200, {{"deleted", true}});
  });

  router.post("/api/v1/groups/{id}/grant", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto call = group_call(ctx, true);
    if (!call) co_return std::unexpected(call.error());
    auto username = http::string_field(call->body, "username", true);
    if (!username) co_return std::unexpected(username.error());
    auto amount = http::int_field(call->body, "amount", true, 0, 1, std::int64_t{1} << 40);
    if (!amount) co_return std::unexpected(amount.error());
    auto reason = reason_of(call->body);
    if (!reason) co_return std::unexpected(reason.error());
    auto grant = co_await d.pool.run(
        [&] { return d.groups.grant(call->actor, call->id, *username, *amount, *reason, ctx.request_id); });
    if (!grant) co_return std::unexpected(grant.error());
    d.log.info("group grant", {{"request_id", ctx.request_id}, {"group_id", call->id}, {"amount", *amount}});
    co_return Response::json(200, {{"pool", grant->pool}, {"remaining_tokens", grant->member_available}});
  });

  router.post("/api/v1/admin/groups/{id}/pool", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto admin = require_admin(ctx);
    if (!admin) co_return std::unexpected(admin.error());
    auto call = group_call(ctx, true);
    if (!call) co_return std::unexpected(call.error());
    auto amount = http::int_field(call->body, "amount", true, 0, -(std::int64_t{1} << 40), std::int64_t{1} << 40);
    if (!amount) co_return std::unexpected(amount.error());
    auto reason = reason_of(call->body);
    if (!reason) co_return std::unexpected(reason.error());
    auto pool = co_await d.pool.run([&] { return d.groups.top_up_pool(call->id, *amount, *reason, ctx.request_id); });
    if (!pool) co_return std::unexpected(pool.error());
    d.log.info("group pool changed", {{"request_id", ctx.request_id}, {"group_id", call->id}, {"amount", *amount}});
    co_return Response::json(200, {{"pool", *pool}});
  });

  // An exam key: a scoped key of a member, made by the group's teacher.
  router.post("/api/v1/groups/{id}/keys", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto call = group_call(ctx, true);
    if (!call) co_return std::unexpected(call.error());
    auto username = http::string_field(call->body, "username", true);
    if (!username) co_return std::unexpected(username.error());
    auto name = http::string_field(call->body, "name", false, "exam");
    if (!name) co_return std::unexpected(name.error());
    auto scopes = key_scopes_from_json(call->body);
    if (!scopes) co_return std::unexpected(scopes.error());
    scopes->group_id = call->id;
    auto key = co_await d.pool.run([&]() -> Result<auth::NewApiKey> {
      // The member alone: listing them all would credit every allowance and sum usage.
      auto member = d.groups.member(call->actor, call->id, *username);
      if (!member) return std::unexpected(member.error());
      return d.auth.create_key(member->user_id, *name, *scopes);
    });
    if (!key) co_return std::unexpected(key.error());
    json j = key_json(key->info, d.time_zone, d.clock());
    j["key"] = key->key;
    d.log.info("exam key created", {{"request_id", ctx.request_id}, {"group_id", call->id}, {"key_id", key->info.id}});
    co_return Response::json(201, j);
  });

  router.post("/api/v1/codes", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto actor = require_teacher(ctx);
    if (!actor) co_return std::unexpected(actor.error());
    auto body = http::parse_json_object(ctx.request.body);
    if (!body) co_return std::unexpected(body.error());
    auto count = http::int_field(*body, "count", true, 0, 1, 1000);
    if (!count) co_return std::unexpected(count.error());
    auto amount = http::int_field(*body, "amount", true, 0, 0, std::int64_t{1} << 40);
    if (!amount) co_return std::unexpected(amount.error());
    auto group = http::int_field(*body, "group_id", false, 0, 1, std::int64_t{1} << 62);
    if (!group) co_return std::unexpected(group.error());
    auto expires = http::int_field(*body, "expires_at", false, 0, 1, std::int64_t{1} << 40);
    if (!expires) co_return std::unexpected(expires.error());
    const std::optional<std::int64_t> group_id = *group > 0 ? std::optional(*group) : std::nullopt;
    const std::optional<std::int64_t> expires_at = *expires > 0 ? std::optional(*expires) : std::nullopt;
    auto codes = co_await d.pool.run([&] {
      return d.groups.create_codes(*actor, static_cast<int>(*count), *amount, group_id, expires_at, ctx.request_id);
    });
    if (!codes) co_return std::unexpected(codes.error());
    d.log.info("redemption codes created", {{"request_id", ctx.request_id}, {"count", *count}, {"amount", *amount}});
    co_return Response::json(201, {{"codes", *codes},
                                   {"amount", *amount},
                                   {"group_id", group_id ? json(*group_id) : json(nullptr)},
                                   {"expires_at", expires_at ? json(*expires_at) : json(nullptr)}});
  });

  router.get("/api/v1/codes", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto actor = require_teacher(ctx);
    if (!actor) co_return std::unexpected(actor.error());
    auto group = http::query_int(ctx.request, "group_id", 0, 0, std::int64_t{1} << 62);
    if (!group) co_return std::unexpected(group.error());
    const std::optional<std::int64_t> group_id = *group > 0 ? std::optional(*group) : std::nullopt;
    auto codes = co_await d.pool.run([&] { return d.groups.codes(*actor, group_id); });
    if (!codes) co_return std::unexpected(codes.error());
    const auto optional = [](const std::optional<std::int64_t>& v) { return v ? json(*v) : json(nullptr); };
    json list = json::array();
    for (const auto& c : *codes) {
      list.push_back({{"id", c.id},
                      {"prefix", c.prefix},
                      {"amount", c.amount},
                      {"group_id", optional(c.group_id)},
                      {"created_at", c.created_at},
                      {"expires_at", optional(c.expires_at)},
                      {"redeemed_by", optional(c.redeemed_by)},
                      {"redeemed_at", optional(c.redeemed_at)}});
    }
    co_return Response::json(200, {{"codes", list}});
  });

  router.post("/api/v1/auth/redeem", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    auto body = http::parse_json_object(ctx.request.body);
    if (!body) co_return std::unexpected(body.error());
    auto code = http::string_field(*body, "code", true);
    if (!code) co_return std::unexpected(code.error());
    auto redeemed = co_await d.pool.run([&] { return d.groups.redeem(who->user_id, *code, ctx.request_id); });
    if (!redeemed) co_return std::unexpected(redeemed.error());
    d.log.info("code redeemed",
               {{"request_id", ctx.request_id}, {"user_id", who->user_id}, {"tokens", redeemed->tokens_added}});
    json group = redeemed->group_id ? json{{"id", *redeemed->group_id}, {"name", redeemed->group_name}} : json(nullptr);
    co_return Response::json(
        200, {{"tokens_added", redeemed->tokens_added}, {"remaining_tokens", redeemed->available}, {"group", group}});
  });
}

}  // namespace llmd::api
