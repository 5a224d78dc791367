#include "api/convert_routes.h"
#include "billing/meter.h"

#include <chrono>

#include <nlohmann/json.hpp>

#include "core/user_slots.h"
#include "http/errors.h"
#include "http/json_body.h"
#include "tasks/convert/convert.h"
#include "tasks/convert/repair_service.h"

namespace llmd::api {
namespace {

using boost::asio::awaitable;
using http::RequestContext;
using http::Response;

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
        if (!v.is_boolean())
          return fail(ErrorCode::kInvalidArgument, "options." + k + " must be a boolean", "invalid_field");
        (k == "infer_types" ? r.options.infer_types : k == "pretty" ? r.options.pretty : r.repair) = v.get<bool>();
      } else if (k == "indent") {
        if (!v.is_number_integer() || v.get<std::int64_t>() < 1 || v.get<std::int64_t>() > 8) {
          return fail(ErrorCode::kInvalidArgument, "options.indent must be an integer 1..8", "invalid_field");
        }
        r.options.indent = v.get<int>();
      } else if (k == "root_name" || k == "item_name") {
        if (!v.is_string() || v.get<std::string>().empty() || v.get<std::string>().size() > 64) {
          return fail(ErrorCode::kInvalidArgument, "options." + k + " must be a name of 1-64 characters",
                      "invalid_field");
        }
        (k == "root_name" ? r.options.root_name : r.options.item_name) = v.get<std::string>();
      } else {
        return fail(ErrorCode::kInvalidArgument, "unknown option \"" + k + "\"", "invalid_field");
      }
    }
  }
  return r;
}

// Input from this size on counts as a large conversion, capped per user;
// smaller ones take milliseconds.
constexpr std::size_t kHeavyInputBytes = 64 * 1024;

// The repair path (SPEC §5: base x 1.2 + 5), when a model is configured.
awaitable<Result<Response>> repair(const ConvertDeps& d, RequestContext& ctx, const auth::Principal& who,
                                   const ConvertRequest& req, const Error& parse_error) {
  if (d.repair_model.empty()) {
    co_return std::unexpected(Error(ErrorCode::kUnavailable,
                                    "repair needs a model (tasks.convert.model or models.default_model); the input "
                                    "does not parse: " +
                                        parse_error.message,
                                    "model_unavailable"));
  }
  const convert::RepairDeps deps{d.models, d.accounts, d.pricing, d.pool, d.repair_model};
  const billing::Caller caller{who.user_id, ctx.request_id, ctx.route, ctx.started, who.api_key_id};
  const convert::RepairInput input{req.from, req.to, req.content, req.options};
  auto repaired = co_await convert::repair_with_model(deps, caller, input);
  if (!repaired) co_return std::unexpected(repaired.error());
  nlohmann::json out = {{"success", true},
                        {"converted_content", repaired->content},
                        {"method", "model"},
                        {"tokens_consumed", repaired->tokens_consumed},
                        {"remaining_tokens", repaired->remaining_tokens}};
  if (repaired->max_tokens_clamped) out["max_tokens_clamped"] = true;
  co_return Response::json(200, out);
}

}  // namespace

void add_convert_routes(http::Router& router, ConvertDeps d) {
  router.get("/api/v1/tasks/formats", [](RequestContext&) -> awaitable<Result<Response>> {
    co_return Response::json(200, convert::formats_description());
  });

  auto heavy_slots = UserSlots::create(d.heavy_per_user);
  router.post("/api/v1/tasks/convert", [d, heavy_slots](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    // One user's large conversions cannot fill the conversion pool. Checked
    // before the body is even parsed: the body's size bounds the content's.
    const bool heavy = ctx.request.body.size() >= kHeavyInputBytes;
    std::optional<UserSlots::Slot> slot =
        heavy ? heavy_slots->try_acquire(who->user_id) : std::optional<UserSlots::Slot>();
    if (heavy && !slot) {
      Error busy(ErrorCode::kRateLimited,
                 "you already have " + std::to_string(heavy_slots->per_user()) +
                     " large conversions running; retry when one has finished",
                 "rate_limited");
      busy.retry_after_s = 1;
      co_return std::unexpected(busy);
    }
    // Parsing megabytes of JSON is CPU work too: off the I/O threads, which
    // every other request (and the shutdown signal) needs.
    const auto parse = [&]() -> Result<ConvertRequest> {
      auto body = http::parse_json_object(ctx.request.body);
      if (!body) return std::unexpected(body.error());
      return parse_request(*body);
    };
    Result<ConvertRequest> req = std::unexpected(Error(ErrorCode::kInternal, "not parsed"));
    if (heavy) {
      auto parsed = co_await d.task_pool.run(parse);
      req = std::move(parsed);
    } else {
      req = parse();
    }
    if (!req) co_return std::unexpected(req.error());

    // Affordability before any work: the charge is at least the price of the
    // input alone (SPEC §5, output bytes >= 0), so that much is reserved
    // first and a caller who cannot pay it gets 402 without a conversion.
    const auto elapsed_ms = [&] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - ctx.started)
          .count();
    };
    const billing::MeterOpen what{
        who->user_id, ctx.request_id, "convert", "", billing::parser_base(req->content.size(), 0),
        "convert",    who->api_key_id};
    auto held = co_await d.pool.run([&]() -> Result<billing::MeteredCall> {
      auto r = billing::MeteredCall::open(d.accounts, d.pricing, what);
      if (!r && r.error().code == ErrorCode::kPaymentRequired) {
        (void)d.accounts.record_usage({ctx.request_id, who->user_id, ctx.route, "convert", "", "", 0, 0, 0,
                                       http::status_for(r.error().code), elapsed_ms()});
      }
      return r;
    });
    if (!held) co_return std::unexpected(held.error());

    // The CPU work, on its own pool; it gives up when the service stops.
    req->options.limits.cancel = d.task_pool.stop_token();
    auto converted =
        co_await d.task_pool.run([&] { return convert::convert(req->content, req->from, req->to, req->options); });
    if (!converted) {
      auto released = co_await d.pool.run([&] { return held->release(); });
      (void)released;
      slot.reset();
      if (req->repair && converted.error().code == ErrorCode::kInvalidArgument) {
        co_return co_await repair(d, ctx, *who, *req, converted.error());
      }
      co_return std::unexpected(converted.error());
    }

    // The exact charge, in full or not at all (402 and no content).
    const std::int64_t base = billing::parser_base(req->content.size(), converted->size());
    auto settled = co_await d.pool.run([&] {
      return held->settle_in_full(base, billing::MeterOutcome{0, 0, 200, "", ctx.route, elapsed_ms()});
    });
    if (!settled) co_return std::unexpected(settled.error());
    const std::int64_t charge = settled->charged;
    const std::int64_t remaining = settled->available;
    const auto reply = [&] {
      return Response::json(200, {{"success", true},
                                  {"converted_content", *converted},
                                  {"method", "parser"},
                                  {"tokens_consumed", charge},
                                  {"remaining_tokens", remaining}});
    };
    if (!heavy) co_return reply();
    auto response = co_await d.task_pool.run(reply);  // megabytes to escape: not on an I/O thread
    co_return response;
  });
}

}  // namespace llmd::api
