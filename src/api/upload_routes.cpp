#include "api/upload_routes.h"

#include <algorithm>
#include <limits>

#include <nlohmann/json.hpp>

#include "api/account_routes.h"
#include "core/text.h"
#include "http/errors.h"
#include "http/pipeline.h"

namespace llmd::api {
namespace {

using boost::asio::awaitable;
using http::RequestContext;
using http::Response;

constexpr const char* kUploadsPath = "/api/v1/uploads";
// Room left in a body for the multipart boundaries and part headers around
// the file (and a small `name` field) beyond the file itself.
constexpr std::uint64_t kMultipartFraming = 64 * 1024;

nlohmann::json upload_json(const uploads::UploadRecord& r) {
  nlohmann::json j;
  j["upload_id"] = r.id;
  j["name"] = r.original_name;
  j["content_type"] = r.content_type;
  j["size"] = r.size;
  j["sha256"] = r.sha256;
  j["created_at"] = r.created_at;
  return j;
}

}  // namespace

http::BodyPolicy upload_body_policy(UploadPolicyDeps deps) {
  auto d = std::make_shared<UploadPolicyDeps>(std::move(deps));
  return [d](const http::Request& head) -> awaitable<Result<std::optional<http::SpoolPlan>>> {
    if (head.method != "POST" || head.path != kUploadsPath) co_return std::nullopt;
    // Everything the auth and host middleware would refuse later is refused
    // here, from the head: no byte of a body nobody may store is written.
    if (auto host = http::check_host(d->allowed_hosts, head.headers); !host) co_return std::unexpected(host.error());
    const auto header = head.headers.get("Authorization");
    if (!header) {
      co_return fail(ErrorCode::kUnauthenticated, "authentication required (Authorization: Bearer <token or API key>)",
                     "unauthenticated");
    }
    const std::string credentials(*header);
    const std::string ip = head.remote_ip;
    auto room = co_await d->pool.run([&]() -> Result<std::uint64_t> {
      auto who = authenticate_counting_failures(d->auth, d->limiter, d->limits, credentials, ip);
      if (!who) return std::unexpected(who.error());
      return d->uploads.room_left(who->user_id);
    });
    if (!room) co_return std::unexpected(room.error());
    // The body carries multipart framing around the file; the stored size
    // is checked exactly (and atomically) when the upload is saved.
    const std::uint64_t allowance =
        *room > std::numeric_limits<std::uint64_t>::max() - kMultipartFraming ? *room : *room + kMultipartFraming;
    const auto declared = text::parse_int(head.headers.get("Content-Length").value_or(""));
    if (*room == 0 || (declared && *declared > 0 && static_cast<std::uint64_t>(*declared) > allowance)) {
      co_return std::unexpected(uploads::UploadStore::quota_error(d->uploads.quota_bytes()));
    }
    co_return http::SpoolPlan{d->uploads.spool_dir(), std::min(d->max_bytes, allowance)};
  };
}

void add_upload_routes(http::Router& router, UploadDeps deps) {
  auto d = std::make_shared<UploadDeps>(std::move(deps));

  router.post(kUploadsPath, [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    const auto& body = ctx.request.body_file;
    if (!body)
      co_return std::unexpected(
          Error(ErrorCode::kInvalidArgument, "expected a multipart/form-data body", "invalid_multipart"));
    const std::string content_type(ctx.request.headers.get("Content-Type").value_or(""));
    const std::int64_t user_id = who->user_id;
    auto saved = co_await d->pool.run([&] { return d->uploads.save_multipart(user_id, body->path(), content_type); });
    if (!saved) co_return std::unexpected(saved.error());
    body->release();  // it became the stored file
    d->log.info(
        "upload stored",
        {{"request_id", ctx.request_id}, {"user_id", user_id}, {"upload_id", saved->id}, {"size", saved->size}});
    nlohmann::json out = upload_json(*saved);
    co_return Response::json(201, out);
  });

  router.get(kUploadsPath, [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    const std::int64_t user_id = who->user_id;
    auto list = co_await d->pool.run([&] { return d->uploads.list(user_id); });
    if (!list) co_return std::unexpected(list.error());
    nlohmann::json items = nlohmann::json::array();
    for (const auto& r : *list) items.push_back(upload_json(r));
    nlohmann::json out;
    out["uploads"] = std::move(items);
    co_return Response::json(200, out);
  });

  router.get(std::string(kUploadsPath) + "/{id}", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    const std::int64_t user_id = who->user_id;
    const std::string id = ctx.param("id");
    auto rec = co_await d->pool.run([&] { return d->uploads.get(id, user_id); });
    if (!rec) co_return std::unexpected(rec.error());
    nlohmann::json out = upload_json(*rec);
    co_return Response::json(200, out);
  });

  router.del(std::string(kUploadsPath) + "/{id}", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    const std::int64_t user_id = who->user_id;
    const std::string id = ctx.param("id");
    auto removed = co_await d->pool.run([&] { return d->uploads.remove(id, user_id); });
    if (!removed) co_return std::unexpected(removed.error());
    nlohmann::json out;
    out["deleted"] = true;
    out["upload_id"] = id;
    co_return Response::json(200, out);
  });
}

}  // namespace llmd::api
