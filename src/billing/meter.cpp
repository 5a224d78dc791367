#include "billing/meter.h"

#include <algorithm>

#include <utility>
#include "billing/allowances.h"
#include "billing/call_scope.h"

namespace llmd::billing {

namespace {

// A balance too small says when the caller's next allowance comes, if any
// (next_allowance_at, unix seconds): the limit that "resets" for a member.
Error with_next_allowance(Accounts& accounts, std::int64_t user_id, Error e) {
  if (e.reason != "insufficient_tokens") return e;
  auto open = open_allowances(accounts.database(), user_id);
  if (!open || open->empty()) return e;
  std::int64_t next = open->front().period_end;
  for (const auto& a : *open) next = std::min(next, a.period_end);
  e.message += "; your next allowance comes at " + std::to_string(next) + " (unix time)";
  e.details.emplace_back("next_allowance_at", next);
  return e;
}

}  // namespace

Result<MeteredCall> MeteredCall::open(Accounts& accounts, const Pricing& pricing, MeterOpen what) {
  auto scope = resolve_scope(accounts, what.user_id, what.api_key_id);
  if (!scope) return std::unexpected(scope.error());
  if (!what.model.empty()) LLMD_TRY(scope->allows(what.model));
  if (scope->tpm > 0) {
    auto used = accounts.tokens_last_minute(what.user_id);
    if (!used) return std::unexpected(used.error());
    if (used->first >= scope->tpm) {
      return std::unexpected(Error(ErrorCode::kRateLimited,
                                   "your group's limit of " + std::to_string(scope->tpm) +
                                       " tokens per minute is reached; try again shortly",
                                   "rate_limited")
                                 .with_retry_after(used->second)
                                 .with_detail("tpm", scope->tpm));
    }
  }
  what.price_ratio = scope->price_ratio;
  MeteredCall call(accounts, pricing, std::move(what), Reservation{}, false);
  auto held = accounts.reserve(call.what_.user_id, call.price(call.what_.worst_base_tokens), call.what_.request_id,
                               call.what_.api_key_id);
  if (!held) {
    call.state_ = State::kClosed;  // nothing to release
    return std::unexpected(with_next_allowance(accounts, call.what_.user_id, held.error()));
  }
  call.held_ = *held;
  return call;
}

namespace {

// The most base tokens of what.task the user can pay for now: the available
// balance plus what `held` holds already (the user's money too). Negative
// when not even the smallest charge fits.
Result<std::int64_t> affordable_base(Accounts& accounts, const Pricing& pricing, const MeterOpen& what,
                                     const Reservation& held) {
  auto balance = accounts.balance(what.user_id);
  if (!balance) return std::unexpected(balance.error());
  return pricing.max_base(what.task, balance->available() + held.amount, what.model, what.price_ratio);
}

}  // namespace

Result<Grown> grow_fitted(Accounts& accounts, const Pricing& pricing, const MeterOpen& what, const Reservation& held,
                          std::int64_t used_base, FitRequest fit) {
  const std::int64_t choices = std::max<std::int64_t>(fit.choices, 1);
  const auto amount_for = [&](std::int64_t completion) {
    return std::max(held.amount, pricing.charge(what.task, used_base + fit.prompt_tokens + choices * completion,
                                                what.model, what.price_ratio));
  };
  auto whole = accounts.resize(held, amount_for(fit.max_completion));
  if (whole) return Grown{std::move(*whole), fit.max_completion, false};
  if (whole.error().code != ErrorCode::kPaymentRequired || fit.max_completion <= fit.min_completion) {
    return std::unexpected(whole.error());
  }
  auto affordable = affordable_base(accounts, pricing, what, held);
  if (!affordable) return std::unexpected(affordable.error());
  const std::int64_t completion = *affordable < 0 ? -1 : (*affordable - used_base - fit.prompt_tokens) / choices;
  if (completion < fit.min_completion) return std::unexpected(whole.error());
  auto clamped = accounts.resize(held, amount_for(completion));
  if (!clamped) return std::unexpected(clamped.error());  // spent meanwhile by a parallel call
  return Grown{std::move(*clamped), completion, true};
}

Result<Grown> MeteredCall::grow(FitRequest fit) {
  if (state_ != State::kOpen) return fail(ErrorCode::kConflict, "the metered call is closed", "reservation_closed");
  auto grown = grow_fitted(*accounts_, *pricing_, what_, held_, 0, fit);
  if (grown) held_ = grown->held;
  return grown;
}

Result<std::int64_t> MeteredCall::cover(std::int64_t wanted, std::int64_t needed) {
  if (state_ != State::kOpen) return fail(ErrorCode::kConflict, "the metered call is closed", "reservation_closed");
  auto covered = billing::cover(*accounts_, *pricing_, what_, held_, wanted, needed);
  if (!covered) return std::unexpected(covered.error());
  held_ = covered->held;
  return covered->base;
}

Result<Covered> cover(Accounts& accounts, const Pricing& pricing, const MeterOpen& what, const Reservation& held,
                      std::int64_t wanted, std::int64_t needed) {
  const auto price = [&](std::int64_t base) {
    return base > 0 ? pricing.charge(what.task, base, what.model, what.price_ratio) : 0;
  };
  if (price(wanted) <= held.amount) return Covered{held, wanted};
  auto whole = accounts.resize(held, price(wanted));
  if (whole) return Covered{*whole, wanted};
  if (whole.error().code != ErrorCode::kPaymentRequired) return std::unexpected(whole.error());
  auto affordable = affordable_base(accounts, pricing, what, held);
  if (!affordable) return std::unexpected(affordable.error());
  if (*affordable < needed) return std::unexpected(whole.error());
  auto part = accounts.resize(held, std::max(held.amount, price(*affordable)));
  if (!part) return std::unexpected(part.error());  // spent meanwhile by a parallel call
  return Covered{*part, *affordable};
}

MeteredCall MeteredCall::adopt(Accounts& accounts, const Pricing& pricing, MeterOpen what, Reservation held) {
  // The ratio of the user's groups now (a job's groups may have changed since
  // it was opened); when it cannot be read, the ratio the caller gave.
  if (auto scope = resolve_scope(accounts, what.user_id, std::nullopt)) what.price_ratio = scope->price_ratio;
  return MeteredCall(accounts, pricing, std::move(what), std::move(held), true);
}

MeteredCall::MeteredCall(Accounts& accounts, const Pricing& pricing, MeterOpen what, Reservation held, bool adopted)
    : accounts_(&accounts), pricing_(&pricing), what_(std::move(what)), held_(std::move(held)), adopted_(adopted) {
  if (what_.reason.empty()) what_.reason = what_.task;
}

MeteredCall::MeteredCall(MeteredCall&& other) noexcept
    : accounts_(other.accounts_),
      pricing_(other.pricing_),
      what_(std::move(other.what_)),
      held_(std::move(other.held_)),
      adopted_(other.adopted_),
      state_(std::exchange(other.state_, State::kClosed)) {}

MeteredCall& MeteredCall::operator=(MeteredCall&& other) noexcept {
  if (this != &other) {
    (void)release();
    accounts_ = other.accounts_;
    pricing_ = other.pricing_;
    what_ = std::move(other.what_);
    held_ = std::move(other.held_);
    adopted_ = other.adopted_;
    state_ = std::exchange(other.state_, State::kClosed);
  }
  return *this;
}

MeteredCall::~MeteredCall() { (void)release(); }

std::int64_t MeteredCall::price(std::int64_t base_tokens) const {
  return base_tokens > 0 ? pricing_->charge(what_.task, base_tokens, what_.model, what_.price_ratio) : 0;
}

Result<void> MeteredCall::release() {
  if (state_ != State::kOpen) return {};
  state_ = State::kClosed;
  if (held_.id == 0) return {};
  return accounts_->release(held_);
}

Reservation MeteredCall::keep() && {
  state_ = State::kClosed;
  return held_;
}

Result<Settled> MeteredCall::settle(const MeterOutcome& outcome) {
  if (state_ != State::kOpen) {
    return fail(ErrorCode::kConflict, "this call was already settled", "already_settled");
  }
  state_ = State::kClosed;
  const Charge charge{price(outcome.prompt_tokens + outcome.completion_tokens),
                      what_.reason,
                      what_.request_id,
                      what_.task,
                      what_.model,
                      what_.api_key_id};
  Result<Settled> settled = std::unexpected(Error(ErrorCode::kInternal, "not settled"));
  if (adopted_) {
    auto charged = charge_adopted(charge);
    if (charged) {
      auto left = accounts_->balance(held_.user_id);
      settled = Settled{*charged, left ? left->available() : 0};
    } else {
      settled = std::unexpected(charged.error());
    }
  } else {
    settled = accounts_->settle(held_, charge);
  }
  // Best effort: the charge (if any) is already in the ledger.
  (void)accounts_->record_usage({what_.request_id, what_.user_id, outcome.route, what_.task, what_.model,
                                 outcome.instance, outcome.prompt_tokens, outcome.completion_tokens,
                                 settled ? settled->charged : 0, outcome.status, outcome.latency_ms});
  return settled;
}

Result<Settled> MeteredCall::settle_in_full(std::int64_t base_tokens, const MeterOutcome& outcome) {
  if (state_ != State::kOpen) {
    return fail(ErrorCode::kConflict, "this call was already settled", "already_settled");
  }
  state_ = State::kClosed;
  const Charge charge{pricing_->charge(what_.task, base_tokens, what_.model, what_.price_ratio),
                      what_.reason,
                      what_.request_id,
                      what_.task,
                      what_.model,
                      what_.api_key_id};
  auto settled = accounts_->settle_in_full(held_, charge);
  (void)accounts_->record_usage({what_.request_id, what_.user_id, outcome.route, what_.task, what_.model,
                                 outcome.instance, outcome.prompt_tokens, outcome.completion_tokens,
                                 settled ? settled->charged : 0, settled ? outcome.status : 402, outcome.latency_ms});
  return settled;
}

// Settles the adopted reservation, or, when it is gone (released by a
// restart or a stale sweep), spends directly as much of the charge as the
// balance allows, capped at the reservation's amount.
Result<std::int64_t> MeteredCall::charge_adopted(const Charge& charge) {
  if (held_.id != 0) {
    auto settled = accounts_->settle(held_, charge);
    if (settled) return settled->charged;
    if (settled.error().code != ErrorCode::kConflict) return std::unexpected(settled.error());
  }
  if (charge.amount == 0) return 0;
  auto b = accounts_->balance(held_.user_id);
  if (!b) return std::unexpected(b.error());
  std::int64_t capped = std::min(charge.amount, b->available());
  if (held_.amount > 0) capped = std::min(capped, held_.amount);
  if (capped <= 0) return 0;
  Charge direct = charge;
  direct.amount = capped;
  auto spent = accounts_->spend(held_.user_id, direct);
  if (!spent) return std::unexpected(spent.error());
  return capped;
}

}  // namespace llmd::billing
