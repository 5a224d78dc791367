#include "app/convert_routes.h"

#include <chrono>

#include <nlohmann/json.hpp>

#include "http/errors.h"
#include "http/json_body.h"
#include "tasks/convert/convert.h"

namespace llmd::app {
namespace {

using boost::asio::awaitable;
using http::RequestContext;
using http::Response;

Response error(const RequestContext& ctx, const Error& e) { return http::error_response(e, ctx.request_id); }

struct ConvertRequest {
  convert::Format from = convert::Format::kJson;
  convert::Format to = convert::Format::kJson;
  std::string content;
  convert::ConvertOptions options;
  bool repair = false;
};

Result<ConvertRequest> parse_request(const nlohmann::json& body) {
  ConvertRequest r;
  auto from = http::string_field(body, "source_format", true);
  auto to = http::string_field(body, "target_format", true);
  auto content = http::string_field(body, "content", true);
  if (!from) return std::unexpected(from.error());
  if (!to) return std::unexpected(to.error());
  if (!content) return std::unexpected(content.error());
  auto f = convert::parse_format(*from);
  auto t = convert::parse_format(*to);
  if (!f) return std::unexpected(f.error());
  if (!t) return std::unexpected(t.error());
  r.from = *f;
  r.to = *t;
  r.content = std::move(*content);
  if (auto it = body.find("options"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) return fail(ErrorCode::kInvalidArgument, "options must be an object", "invalid_field");
    for (const auto& [k, v] : it->items()) {
      if (k == "infer_types" || k == "pretty" || k == "repair") {
        if (!v.is_boolean()) return fail(ErrorCode::kInvalidArgument, "options." + k + " must be a boolean", "invalid_field");
        (k == "infer_types" ? r.options.infer_types : k == "pretty" ? r.options.pretty : r.repair) = v.get<bool>();
      } else if (k == "indent") {
        if (!v.is_number_integer() || v.get<std::int64_t>() < 1 || v.get<std::int64_t>() > 8) {
          return fail(ErrorCode::kInvalidArgument, "options.indent must be an integer 1..8", "invalid_field");
        }
        r.options.indent = v.get<int>();
      } else if (k == "root_name" || k == "item_name") {
        if (!v.is_string() || v.get<std::string>().empty() || v.get<std::string>().size() > 64) {
          return fail(ErrorCode::kInvalidArgument, "options." + k + " must be a name of 1-64 characters", "invalid_field");
        }
        (k == "root_name" ? r.options.root_name : r.options.item_name) = v.get<std::string>();
      } else {
        return fail(ErrorCode::kInvalidArgument, "unknown option \"" + k + "\"", "invalid_field");
      }
    }
  }
  return r;
}

}  // namespace

void add_convert_routes(http::Router& router, ConvertDeps d) {
  router.get("/api/v1/tasks/formats", [](RequestContext&) -> awaitable<Response> {
    co_return Response::json(200, convert::formats_description());
  });

  router.post("/api/v1/tasks/convert", [d](RequestContext& ctx) -> awaitable<Response> {
    auto who = require_user(ctx);
    if (!who) co_return error(ctx, who.error());
    auto body = http::parse_json_object(ctx.request.body);
    if (!body) co_return error(ctx, body.error());
    auto req = parse_request(*body);
    if (!req) co_return error(ctx, req.error());

    // Convert first (CPU work, on the pool), then charge atomically; a call
    // that cannot be paid returns 402 and no content.
    auto converted = co_await d.pool.run([&] { return convert::convert(req->content, req->from, req->to, req->options); });
    if (!converted) {
      if (req->repair && converted.error().reason == "parse_error") {
        co_return error(ctx, Error(ErrorCode::kUnavailable,
                                   "repair needs the conversion model, which is not available on this server; the "
                                   "input does not parse: " + converted.error().message,
                                   "model_unavailable"));
      }
      co_return error(ctx, converted.error());
    }
    const std::int64_t base = billing::parser_base(req->content.size(), converted->size());
    const std::int64_t charge = d.pricing.charge("convert", base);
    const auto elapsed_ms = [&] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - ctx.started)
          .count();
    };
    auto remaining = co_await d.pool.run([&]() -> Result<std::int64_t> {
      auto left = d.accounts.spend(who->user_id, {charge, "convert", ctx.request_id, "convert", ""});
      billing::UsageRecord usage{ctx.request_id, who->user_id, ctx.route, "convert", "", "", 0, 0,
                                 left ? charge : 0, left ? 200 : http::status_for(left.error().code),
                                 elapsed_ms()};
      (void)d.accounts.record_usage(usage);  // best effort: the charge is already in the ledger
      return left;
    });
    if (!remaining) co_return error(ctx, remaining.error());
    co_return Response::json(200, {{"success", true},
                                   {"converted_content", *converted},
                                   {"method", "parser"},
                                   {"tokens_consumed", charge},
                                   {"remaining_tokens", *remaining}});
  });
}

}  // namespace llmd::app
