// One metered model call (or a run of them billed as one): the only place
// that does reserve -> settle -> usage record (SPEC §5).
//
//   auto call = MeteredCall::open(accounts, pricing,
//                                 {user_id, request_id, "homework", model, worst_base_tokens});
//   if (!call) return call.error();              // kPaymentRequired: nothing reserved
//   ... call the model ...
//   auto settled = call->settle({usage, status, instance, route, latency});
//
// open() reserves the task's price of the worst case; settle() charges the
// task's price of the tokens used (nothing when nothing was used), releases
// the rest of the reservation and writes one usage record. A MeteredCall that
// is destroyed without having been settled releases its reservation (a call
// cut short by an exception or a shutdown pays nothing). Every member blocks
// on the database: call them on the worker pool. Not thread-safe; movable.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "billing/accounts.h"
#include "core/error.h"

namespace llmd::billing {

// What is metered: who pays, for which task and model, and its worst case.
struct MeterOpen {
  std::int64_t user_id = 0;
  std::string request_id;
  std::string task;  // the price rule: chat | v1 | convert | homework | subtitle
  std::string model;
  std::int64_t worst_base_tokens = 0;        // prompt + completion tokens at most, before pricing
  std::string reason;                        // the ledger row's reason; empty = the task
  std::optional<std::int64_t> api_key_id{};  // the call's key: its budget and model list apply too
  double price_ratio = 1.0;                  // set by open()/adopt() from the user's groups
};

// What the call used and how it ended (the usage record).
struct MeterOutcome {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  int status = 200;
  std::string instance;
  std::string route;
  std::int64_t latency_ms = 0;
};

// A model call whose prompt is known and whose completion allowance may
// shrink to what the balance pays for.
struct FitRequest {
  std::int64_t prompt_tokens = 0;    // billed prompt tokens
  std::int64_t max_completion = 0;   // the completion tokens asked for, per choice
  std::int64_t min_completion = 64;  // below this a reply is not worth it: 402 instead
  std::int64_t choices = 1;          // replies generated from the prompt (OpenAI's n, best_of)
};

struct Grown;

class MeteredCall {
 public:
  // Resolves the caller's scope (billing/call_scope.h: groups, key), then
  // reserves pricing.charge(task, worst_base_tokens, model) x the groups'
  // price ratio, on the user's balance and the key's budget. Errors:
  // kPermissionDenied (model_not_allowed) for a model outside the groups' or
  // the key's list; kRateLimited (rate_limited, with a retry-after) past the
  // groups' tokens per minute; those of Accounts::reserve (kPaymentRequired
  // insufficient_tokens or key_budget_exhausted, kNotFound).
  static Result<MeteredCall> open(Accounts& accounts, const Pricing& pricing, MeterOpen what);

  // Takes over a reservation made earlier and persisted (a job's), which a
  // restart or a stale sweep may have released meanwhile: settle() then
  // charges directly as much of the price as the balance allows, capped at
  // the reservation's amount.
  static MeteredCall adopt(Accounts& accounts, const Pricing& pricing, MeterOpen what, Reservation held);

  MeteredCall(MeteredCall&& other) noexcept;
  MeteredCall& operator=(MeteredCall&& other) noexcept;
  MeteredCall(const MeteredCall&) = delete;
  MeteredCall& operator=(const MeteredCall&) = delete;
  // Releases the reservation when the call was never settled nor released.
  ~MeteredCall();

  // The price of `base_tokens` for this call's task and model (0 for 0).
  std::int64_t price(std::int64_t base_tokens) const;

  // Charges price(prompt + completion tokens), releases the rest and writes
  // the usage record (also when the charge failed: it then shows 0). The
  // charge is capped as Accounts::settle caps it. Errors: kConflict when
  // already settled or released (nothing changes, no record), database errors.
  Result<Settled> settle(const MeterOutcome& outcome);

  // For work whose exact price is known only afterwards and must not be
  // given away (the parser path of convert, homework's exact check): charges
  // pricing.charge(task, base_tokens) x ratio in full (the fixed part even at
  // 0 tokens: the work was done), or, when the balance or the key's budget
  // cannot pay it, nothing: kPaymentRequired, the reservation released. The
  // usage record is written either way.
  Result<Settled> settle_in_full(std::int64_t base_tokens, const MeterOutcome& outcome);

  // Grows the reservation (opened with a floor, before the prompt could be
  // counted) to fit `fit`, as grow_fitted() does. On error the
  // reservation is unchanged and still open.
  Result<Grown> grow(FitRequest fit);

  // Grows the reservation for a reply that streams past what was reserved:
  // to price(wanted) base tokens, or, when the balance cannot pay that, to
  // the most it can pay if that is at least `needed` tokens. Returns the
  // base tokens the reservation now pays for (`wanted` when it held that
  // much already). Errors: kPaymentRequired when not even `needed` fits
  // (nothing changes), kConflict when the call is closed or the reservation
  // was released meanwhile.
  Result<std::int64_t> cover(std::int64_t wanted, std::int64_t needed);

  // Releases the reservation without charging or recording anything.
  // Idempotent.
  Result<void> release();

  // Hands the reservation over, unsettled, to an owner that persists it (a
  // subtitle job stores it with the job): the call is closed without
  // releasing anything. Settle or release it later through adopt().
  Reservation keep() &&;

  const Reservation& reservation() const { return held_; }
  bool open() const { return state_ == State::kOpen; }

 private:
  enum class State { kOpen, kClosed };
  MeteredCall(Accounts& accounts, const Pricing& pricing, MeterOpen what, Reservation held, bool adopted);
  Result<std::int64_t> charge_adopted(const Charge& charge);

  Accounts* accounts_;
  const Pricing* pricing_;
  MeterOpen what_;
  Reservation held_;
  bool adopted_ = false;
  State state_ = State::kOpen;
};

// A held reservation grown for one more step of a long job.
struct Grown {
  Reservation held;
  std::int64_t max_completion = 0;  // the step's allowance: as asked, or clamped
  bool clamped = false;
};

// Grows `held` (pending, persisted by a job) to price(used_base + prompt +
// max_completion) of what.task; when the balance cannot pay that, to the
// largest completion allowance of at least min_completion it can pay. Never
// shrinks. Errors: kPaymentRequired
// (needed/available of the unclamped step) when not even min_completion
// fits, nothing changed; kConflict (reservation_closed) when the
// reservation was settled or released meanwhile; database errors.
Result<Grown> grow_fitted(Accounts& accounts, const Pricing& pricing, const MeterOpen& what, const Reservation& held,
                          std::int64_t used_base, FitRequest fit);

// A held reservation grown for more of a streaming reply.
struct Covered {
  Reservation held;
  std::int64_t base = 0;  // the base tokens it pays for now
};

// Grows `held` (pending) to price(wanted) base tokens of what.task, or, when
// the balance cannot pay that, to the most it pays if that is at least
// `needed` (MeteredCall::cover, for a reservation a job keeps). Never
// shrinks. Errors: kPaymentRequired when not even `needed` fits (nothing
// changes), kConflict (reservation_closed), database errors.
Result<Covered> cover(Accounts& accounts, const Pricing& pricing, const MeterOpen& what, const Reservation& held,
                      std::int64_t wanted, std::int64_t needed);

}  // namespace llmd::billing
