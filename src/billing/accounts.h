// Token balances: the ledger, reservations and usage records (SPEC §5).
//
// Invariants, kept by doing every change in one database transaction:
//   users.balance  == SUM(ledger.delta) for that user, always;
//   users.reserved == SUM(amount) of that user's pending reservations;
//   0 <= reserved <= balance, so the available amount (balance - reserved)
//   can never go negative, however many requests of one user run at once,
//   on however many backend instances share the database.
//
// A call made with a scoped API key (SPEC §4.5b) is held against the key's
// budget in the same transaction: api_keys.budget_used (this budget period)
// + budget_reserved never exceeds api_keys.budget, on any number of
// instances, and the key's ledger rows (ledger.api_key_id) sum to what it
// spent. Lock order, everywhere: reservation, user, key, allowance rows.
//
// Flow of a model call: reserve(worst case) -> call -> settle(actual), which
// writes the ledger row for the actual charge and releases the reservation;
// or release() when the call failed. Calls that need no reservation (the
// parser path of convert) use spend(). All calls block: run them on the
// worker pool. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "store/database.h"

namespace llmd::billing {

struct Balance {
  std::int64_t balance = 0;     // sum of the ledger
  std::int64_t reserved = 0;    // held by calls in flight
  bool allowance_open = false;  // an allowance with tokens left, which a charge draws down (when asked for)
  std::int64_t available() const { return balance - reserved; }
};

struct Reservation {
  std::int64_t id = 0;
  std::int64_t user_id = 0;
  std::int64_t amount = 0;
  std::string request_id;
  // Also held against this key's budget. Set by reserve(); whoever keeps a
  // reservation (a job) keeps this with it, as settling and releasing trust it.
  std::optional<std::int64_t> api_key_id{};
};

// What a finished call costs and why (one ledger row + one usage record).
struct Charge {
  std::int64_t amount = 0;  // >= 0; capped at the reservation when settling
  std::string reason;       // e.g. "chat", "convert", "admin grant: prize"
  std::string request_id;
  std::string task;  // chat | v1 | convert | homework | subtitle | admin
  std::string model;
  std::optional<std::int64_t> api_key_id{};  // spend(): also paid out of this key's budget
};

// Where budget periods lie: the time zone of key budget periods and the
// clock (unix seconds) that decides which period is current.
struct AccountsOptions {
  std::string time_zone = "UTC";
  std::function<std::int64_t()> clock;  // empty = the system clock
  std::int64_t now() const;
};

// What a settlement took, and the user's available balance afterwards.
struct Settled {
  std::int64_t charged = 0;
  std::int64_t available = 0;
};

struct UsageRecord {
  std::string request_id;
  std::int64_t user_id = 0;
  std::string route;
  std::string task;
  std::string model;
  std::string instance;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t charged = 0;
  int status = 200;
  std::int64_t latency_ms = 0;
};

struct LedgerEntry {
  std::int64_t id = 0;
  std::int64_t delta = 0;
  std::string reason, request_id, task, model;
  std::int64_t created_at = 0;
};

struct UsageFilter {
  std::optional<std::int64_t> user_id;
  std::string model;       // exact; empty = any
  std::string task;        // exact; empty = any
  std::int64_t since = 0;  // unix seconds, inclusive; 0 = any
  std::int64_t until = 0;  // unix seconds, exclusive; 0 = any
  int limit = 50;
  int offset = 0;
};

struct UsageRow {
  UsageRecord record;
  std::int64_t id = 0;
  std::int64_t created_at = 0;
};

class Accounts {
 public:
  // `instance_id` names this backend process in reservations, so a restart
  // releases only what it left behind.
  Accounts(store::Database& db, std::string instance_id, AccountsOptions options = {});

  // Holds `amount` of the user's available tokens and, with `api_key_id`, of
  // that key's budget. Errors: kPaymentRequired (reason insufficient_tokens,
  // details needed/available) when the balance cannot hold it, or (reason
  // key_budget_exhausted, details needed/available/resets_at) when the key's
  // budget cannot; kNotFound for an unknown user; kUnauthenticated
  // (invalid_api_key) for a key deleted meanwhile.
  Result<Reservation> reserve(std::int64_t user_id, std::int64_t amount, const std::string& request_id,
                              std::optional<std::int64_t> api_key_id = std::nullopt);

  // Releases the reservation and charges charge.amount: out of the
  // reservation first, any excess out of the user's free balance (and the
  // key's free budget), as much of it as there is (neither goes negative;
  // `charged` then says how much less was taken). Settling twice is an error (kConflict) and changes
  // nothing.
  Result<Settled> settle(const Reservation& reservation, const Charge& charge);

  // Like settle(), but all or nothing: charges charge.amount in full when
  // the available balance (this reservation included) can pay it; otherwise
  // releases the reservation, charges nothing and fails with
  // kPaymentRequired (insufficient_tokens, details needed/available). For a
  // call whose exact price is known only afterwards and that must not be
  // given away (the parser path of convert reserves its lower bound first).
  Result<Settled> settle_in_full(const Reservation& reservation, const Charge& charge);

  // Releases the reservation without charging (the call failed).
  Result<void> release(const Reservation& reservation);

  // Changes what a pending reservation holds to `amount`, atomically:
  // growing needs the difference available (else kPaymentRequired with
  // needed = amount, available = what the reservation could grow into, and
  // nothing changes); shrinking always succeeds. kConflict
  // (reservation_closed) when it was settled or released meanwhile. Settling
  // and releasing always return what the reservation's row holds.
  Result<Reservation> resize(const Reservation& reservation, std::int64_t amount);

  // Charges immediately without a reservation (and out of
  // charge.api_key_id's budget); kPaymentRequired when the available balance
  // or the key's budget is too small. Returns the available balance after.
  Result<std::int64_t> spend(std::int64_t user_id, const Charge& charge);

  // Adds (delta > 0) or deducts (delta < 0) tokens by an operator, with a
  // reason recorded in the ledger. A deduction below the available balance
  // fails with kPaymentRequired... reason "insufficient_tokens".
  Result<std::int64_t> adjust(std::int64_t user_id, std::int64_t delta, const std::string& reason,
                              const std::string& request_id);

  Result<Balance> balance(std::int64_t user_id);

  // Tokens (prompt + completion) the user's calls recorded in the last 60
  // seconds, and the seconds until the oldest of them leaves that window.
  Result<std::pair<std::int64_t, int>> tokens_last_minute(std::int64_t user_id);

  const AccountsOptions& options() const { return options_; }
  store::Database& database() { return db_; }

  // Releases pending reservations left by this instance (a previous run that
  // crashed) and any pending reservation older than `stale_seconds` from
  // any instance. Returns how many were released.
  Result<int> release_abandoned(std::int64_t stale_seconds = 3600);

  Result<void> record_usage(const UsageRecord& usage);

  // Usage records matching the filter, newest first, and the total count.
  Result<std::pair<std::vector<UsageRow>, std::int64_t>> usage(const UsageFilter& filter);

  // Most recent ledger rows of a user, newest first.
  Result<std::vector<LedgerEntry>> ledger(std::int64_t user_id, int limit);

 private:
  store::Database& db_;
  std::string instance_id_;
  AccountsOptions options_;
};

// Pricing (SPEC §5): ceil(base x multiplier) + fixed.
struct PriceRule {
  double multiplier = 1.0;
  std::int64_t fixed = 0;
};
std::int64_t price(const PriceRule& rule, std::int64_t base);

// Price rules per task: chat and v1 = base; convert x1.2+5; homework x2.0+20;
// subtitle x3.0+50 (SPEC §5), each overridable.
class Pricing {
 public:
  Pricing();
  void set(const std::string& task, PriceRule rule) { rules_[task] = rule; }
  // The rule of `task`; unknown tasks are charged the base.
  PriceRule rule(const std::string& task) const;
  std::int64_t charge(const std::string& task, std::int64_t base) const { return price(rule(task), base); }
  // Per-model factor (e.g. 4.0 for a large model) applied on top of the
  // task's multiplier: ceil(base x task multiplier x model factor) + fixed.
  // A group's price ratio (SPEC §4.5b) then scales that charge, rounded up.
  void set_model_multiplier(const std::string& model, double factor) { model_factor_[model] = factor; }
  std::int64_t charge(const std::string& task, std::int64_t base, const std::string& model, double ratio = 1.0) const;
  // The largest base whose charge is at most `amount` (-1 when not even the
  // fixed part is).
  std::int64_t max_base(const std::string& task, std::int64_t amount, const std::string& model,
                        double ratio = 1.0) const;

 private:
  std::map<std::string, PriceRule> rules_;
  std::map<std::string, double> model_factor_;
};

// The charge of a conversion without the model: ceil((in + out bytes) / 4).
std::int64_t parser_base(std::size_t input_bytes, std::size_t output_bytes);

}  // namespace llmd::billing
