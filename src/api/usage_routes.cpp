#include "api/usage_routes.h"

#include <cstdint>

#include <nlohmann/json.hpp>

#include "http/errors.h"
#include "http/json_body.h"

namespace llmd::api {
namespace {

using boost::asio::awaitable;
using http::RequestContext;
using http::Response;

// The admin view adds whose call it was and which instance served it.
nlohmann::json record_json(const billing::UsageRow& r, bool admin_view) {
  const auto& u = r.record;
  nlohmann::json j = {{"id", r.id},
                      {"request_id", u.request_id},
                      {"route", u.route},
                      {"task", u.task},
                      {"model", u.model},
                      {"prompt_tokens", u.prompt_tokens},
                      {"completion_tokens", u.completion_tokens},
                      {"charged", u.charged},
                      {"status", u.status},
                      {"latency_ms", u.latency_ms},
                      {"created_at", r.created_at}};
  if (admin_view) {
    j["user_id"] = u.user_id;
    j["instance"] = u.instance;
  }
  return j;
}

// The filter from the query string; `only_user` pins it to one user (the
// caller's own view), otherwise `user_id` may be given.
Result<billing::UsageFilter> usage_filter(const http::Request& q, std::optional<std::int64_t> only_user,
                                          std::int64_t default_limit) {
  auto user = http::query_int(q, "user_id", 0, 0, INT64_MAX);
  auto since = http::query_int(q, "since", 0, 0, INT64_MAX);
  auto until = http::query_int(q, "until", 0, 0, INT64_MAX);
  auto limit = http::query_int(q, "limit", default_limit, 1, 1000);
  auto offset = http::query_int(q, "offset", 0, 0, 1'000'000'000);
  for (const auto* r : {&user, &since, &until, &limit, &offset}) {
    if (!*r) return std::unexpected(r->error());
  }
  billing::UsageFilter f;
  if (only_user) {
    f.user_id = *only_user;  // never anyone else's
  } else if (*user > 0) {
    f.user_id = *user;
  }
  f.model = q.query_param("model").value_or("");
  f.task = q.query_param("task").value_or("");
  f.since = *since;
  f.until = *until;
  f.limit = static_cast<int>(*limit);
  f.offset = static_cast<int>(*offset);
  return f;
}

awaitable<Result<Response>> answer(const AccountDeps& d, const billing::UsageFilter& f, bool admin_view) {
  auto rows = co_await d.pool.run([&] { return d.accounts.usage(f); });
  if (!rows) co_return std::unexpected(rows.error());
  nlohmann::json list = nlohmann::json::array();
  for (const auto& r : rows->first) list.push_back(record_json(r, admin_view));
  nlohmann::json out = {{"records", list}, {"total", rows->second}};
  co_return Response::json(200, out);
}

}  // namespace

void add_usage_routes(http::Router& router, AccountDeps d) {
  router.get("/api/v1/auth/usage", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    auto filter = usage_filter(ctx.request, who->user_id, 200);
    if (!filter) co_return std::unexpected(filter.error());
    co_return co_await answer(d, *filter, false);
  });

  router.get("/api/v1/admin/usage", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto who = require_admin(ctx);
    if (!who) co_return std::unexpected(who.error());
    auto filter = usage_filter(ctx.request, std::nullopt, 50);
    if (!filter) co_return std::unexpected(filter.error());
    co_return co_await answer(d, *filter, true);
  });
}

}  // namespace llmd::api
