#include "api/model_billing.h"

#include <algorithm>
#include <any>

#include <nlohmann/json.hpp>

#include "api/account_routes.h"
#include "billing/call_scope.h"
#include "billing/caller.h"
#include "billing/meter.h"
#include "billing/reply_allowance.h"

namespace llmd::api {
namespace {

using boost::asio::awaitable;

// The open MeteredCall between admit() and settle(), kept in the request's
// context (shared: the context's values are copyable).
using OpenMeter = std::shared_ptr<billing::MeteredCall>;

// "/v1/..." calls are priced as "v1", everything else as "chat".
std::string task_of(const models::CallInfo& call) { return call.route.starts_with("/v1/") ? "v1" : "chat"; }

class BillingHooks final : public models::CallHooks {
 public:
  BillingHooks(billing::Accounts& accounts, const billing::Pricing& pricing, http::WorkerPool& pool,
               inference::ModelClient& models, observe::Logger log)
      : accounts_(accounts), pricing_(pricing), pool_(pool), models_(models), log_(std::move(log)) {}

  // SPEC §5: reserve the prompt (counted by the model's tokenizer) plus
  // max_tokens; a balance short of max_tokens but good for a useful reply
  // lowers max_tokens instead of refusing.
  awaitable<Result<models::Admission>> admit(http::RequestContext& ctx, const models::CallInfo& call) override {
    auto who = api::require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    ctx.set(models::QueueKey::of_user(who->user_id));  // a busy model serves its waiting users in turns
    const std::int64_t min_completion = std::min(call.max_tokens, billing::kMinUsefulCompletion);
    // Counting the prompt may start the model: a caller who cannot pay for
    // the smallest useful reply is refused first, with a floor reservation.
    const billing::MeterOpen what{
        who->user_id, ctx.request_id, task_of(call), call.model, std::max<std::int64_t>(min_completion, 1),
        "",           who->api_key_id};
    auto opened = co_await open_floor(pool_, accounts_, pricing_, what);
    if (!opened) co_return std::unexpected(opened.error());
    auto meter = std::make_shared<billing::MeteredCall>(std::move(*opened));
    const Result<std::int64_t> prompt = co_await prompt_tokens(ctx, call);
    if (!prompt) co_return co_await refused<models::Admission>(pool_, *meter, prompt.error());
    const billing::FitRequest fit{*prompt, call.max_tokens, min_completion, call.choices};
    auto grown = co_await pool_.run([&] { return meter->grow(fit); });
    if (!grown) co_return co_await refused<models::Admission>(pool_, *meter, grown.error());
    ctx.set<OpenMeter>(meter);
    co_return models::Admission{grown->max_completion, grown->clamped};
  }

  awaitable<models::Settlement> settle(http::RequestContext& ctx, const models::CallInfo& call,
                                       const models::CallOutcome& outcome) override {
    const std::optional<OpenMeter> taken = ctx.take<OpenMeter>();
    if (!taken) co_return models::Settlement{};
    const OpenMeter meter = *taken;
    // A call that produced nothing (worker unreachable, refused) costs nothing.
    const std::int64_t charge = meter->price(outcome.usage.prompt_tokens + outcome.usage.completion_tokens);
    const std::string request_id = ctx.request_id;
    const billing::MeterOutcome used{outcome.usage.prompt_tokens,
                                     outcome.usage.completion_tokens,
                                     outcome.status,
                                     outcome.instance,
                                     ctx.route.empty() ? call.route : ctx.route,
                                     outcome.latency.count()};
    auto result = co_await pool_.run([&] { return meter->settle(used); });
    if (!result) {
      log_.error("settling a model call failed", {{"request_id", request_id}, {"error", result.error().message}});
      co_return models::Settlement{0, std::nullopt};
    }
    if (result->charged < charge) {
      // Only when the worker produced more than was reserved and the balance
      // could not cover the rest: never silent.
      log_.warn("model call charged less than its usage", {{"request_id", request_id},
                                                           {"charge", charge},
                                                           {"charged", result->charged},
                                                           {"reserved", meter->reservation().amount}});
    }
    co_return models::Settlement{result->charged, result->available};
  }

  awaitable<Result<void>> require_admin(http::RequestContext& ctx) override {
    auto who = api::require_admin(ctx);
    if (!who) co_return std::unexpected(who.error());
    co_return Result<void>{};
  }

  awaitable<Result<void>> require_user(http::RequestContext& ctx) override {
    auto who = api::require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    co_return Result<void>{};
  }

  awaitable<Result<void>> require_funds(http::RequestContext& ctx, const models::CallInfo& call) override {
    auto who = api::require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    // A free call (counting tokens) may still start the model: only for a
    // caller whose groups and key allow it.
    auto scope = co_await pool_.run([&] { return billing::resolve_scope(accounts_, who->user_id, who->api_key_id); });
    if (!scope) co_return std::unexpected(scope.error());
    if (auto allowed = scope->allows(call.model); !allowed) co_return std::unexpected(allowed.error());
    const std::int64_t needed = pricing_.charge(
        task_of(call), std::max<std::int64_t>(std::min(call.max_tokens, billing::kMinUsefulCompletion), 1), call.model,
        scope->price_ratio);
    auto balance = co_await pool_.run([&] { return accounts_.balance(who->user_id); });
    if (!balance) co_return std::unexpected(balance.error());
    if (balance->available() < needed) {
      co_return fail(Error(ErrorCode::kPaymentRequired,
                           "not enough tokens: this call needs " + std::to_string(needed) + ", you have " +
                               std::to_string(balance->available()),
                           "insufficient_tokens")
                         .with_detail("needed", needed)
                         .with_detail("available", balance->available()));
    }
    co_return Result<void>{};
  }

 private:
  billing::Accounts& accounts_;
  const billing::Pricing& pricing_;
  http::WorkerPool& pool_;
  inference::ModelClient& models_;
  observe::Logger log_;

  // The call's prompt tokens as the worker will count them; the bytes'
  // worst case where it cannot say (an external upstream).
  awaitable<Result<std::int64_t>> prompt_tokens(const http::RequestContext& ctx, const models::CallInfo& call) {
    const std::int64_t worst_case = worst_case_prompt_tokens(call.prompt_bytes);
    if (call.request == nullptr) co_return worst_case;
    const inference::CallTag tag{ctx.request_id};
    auto counted = co_await models_.count_prompt(call.model, call.worker_path, *call.request, tag);
    if (!counted) co_return std::unexpected(counted.error().error);
    co_return counted->value_or(worst_case);
  }
};

}  // namespace

std::int64_t worst_case_prompt_tokens(std::uint64_t prompt_bytes) {
  return static_cast<std::int64_t>(prompt_bytes) + 64;
}

std::shared_ptr<models::CallHooks> make_billing_hooks(billing::Accounts& accounts, const billing::Pricing& pricing,
                                                      http::WorkerPool& pool, inference::ModelClient& models,
                                                      observe::Logger log) {
  return std::make_shared<BillingHooks>(accounts, pricing, pool, models, std::move(log));
}

}  // namespace llmd::api
