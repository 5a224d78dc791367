#include "billing/accounts.h"

#include <algorithm>
#include <cmath>
#include <ctime>

#include "billing/allowances.h"
#include "billing/calendar.h"
#include "billing/ledger_rows.h"

namespace llmd::billing {
namespace {

using store::Connection;
using store::Value;

constexpr std::int64_t kUnbounded = std::int64_t{1} << 60;

Error insufficient(std::int64_t needed, std::int64_t available) {
  return Error(ErrorCode::kPaymentRequired,
               "not enough tokens: this call needs up to " + std::to_string(needed) + ", you have " +
                   std::to_string(available < 0 ? 0 : available),
               "insufficient_tokens")
      .with_detail("needed", needed)
      .with_detail("available", available < 0 ? 0 : available);
}

Value optional_value(const std::optional<std::int64_t>& v) { return v ? Value(*v) : Value(nullptr); }

// A key's budget as it stands in the current budget period.
struct KeyRoom {
  std::int64_t key_id = 0;
  std::optional<std::int64_t> budget;  // nullopt: the key has no budget
  std::int64_t used = 0;
  std::int64_t reserved = 0;
  std::optional<std::int64_t> resets_at;
  std::int64_t left() const { return budget ? *budget - used - reserved : kUnbounded; }
};

Error key_exhausted(const KeyRoom& room, std::int64_t needed, std::int64_t available) {
  available = std::max<std::int64_t>(available, 0);
  std::string message = "this API key's budget is spent: the call needs up to " + std::to_string(needed) +
                        ", the key has " + std::to_string(available) + " left";
  Error e = Error(ErrorCode::kPaymentRequired, message, "key_budget_exhausted")
                .with_detail("needed", needed)
                .with_detail("available", available);
  if (room.resets_at) {
    e.message += "; it resets at " + std::to_string(*room.resets_at) + " (unix time)";
    e.details.emplace_back("resets_at", *room.resets_at);
  }
  return e;
}

// Locks the key's row and moves it into the current budget period: a key
// whose period has turned starts it with nothing used. kUnauthenticated
// (invalid_api_key) when the key is gone.
Result<KeyRoom> current_key(Connection& c, std::int64_t key_id, const AccountsOptions& options) {
  auto rows = c.query(
      "SELECT budget, budget_period, budget_period_key, budget_used, budget_reserved FROM api_keys WHERE id = ?" +
          ledger::for_update(c),
      std::vector<Value>{key_id});
  if (!rows) return std::unexpected(rows.error());
  if (rows->empty()) return fail(ErrorCode::kUnauthenticated, "this API key was deleted", "invalid_api_key");
  const store::Row& r = rows->front();
  KeyRoom room{key_id, r.is_null(0) ? std::nullopt : std::optional<std::int64_t>(r.integer(0)), r.integer(3),
               r.integer(4), std::nullopt};
  if (const auto period = parse_period(r.text(1))) {
    auto span = period_at(*period, options.time_zone, options.now());
    if (!span) return std::unexpected(span.error());
    room.resets_at = span->end;
    if (span->key != r.text(2)) {
      LLMD_TRY(c.exec("UPDATE api_keys SET budget_used = 0, budget_period_key = ? WHERE id = ?",
                      std::vector<Value>{span->key, key_id}));
      room.used = 0;
    }
  }
  return room;
}

Result<void> hold_on_key(Connection& c, std::int64_t key_id, std::int64_t delta) {
  LLMD_TRY(c.exec("UPDATE api_keys SET budget_reserved = budget_reserved + ? WHERE id = ?",
                  std::vector<Value>{delta, key_id}));
  return {};
}

Result<void> spend_from_key(Connection& c, std::int64_t key_id, std::int64_t amount) {
  LLMD_TRY(
      c.exec("UPDATE api_keys SET budget_used = budget_used + ? WHERE id = ?", std::vector<Value>{amount, key_id}));
  return {};
}

// A pending reservation, closed: the user's balance with its amount given
// back, and the key it was also held on.
struct Closed {
  Balance balance;
  std::optional<std::int64_t> api_key_id;
};

// Gives the user (and the key it was also held on) back what reservation
// `r` holds: the amount its row says (a resized reservation's holder may not
// have persisted the new amount).
Result<void> unreserve(Connection& c, const Reservation& r) {
  LLMD_TRY(c.exec("UPDATE users SET reserved = reserved - (SELECT amount FROM reservations WHERE id = ?) WHERE id = ?",
                  std::vector<Value>{r.id, r.user_id}));
  if (r.api_key_id) {
    LLMD_TRY(
        c.exec("UPDATE api_keys SET budget_reserved = budget_reserved - (SELECT amount FROM reservations WHERE id = ?) "
               "WHERE id = ?",
               std::vector<Value>{r.id, *r.api_key_id}));
  }
  return {};
}

// Marks a pending reservation settled and gives its amount back to the
// user: the balance returned includes it, and the user row stays locked by
// the update until the transaction ends, so no other writer overtakes the
// caller's charge. kConflict "reservation_closed" when it was not pending.
Result<Closed> close_reservation(Connection& c, const Reservation& r) {
  auto done =
      c.exec("UPDATE reservations SET state = 'settled' WHERE id = ? AND state = 'pending'", std::vector<Value>{r.id});
  if (!done) return std::unexpected(done.error());
  if (done->affected_rows != 1) return fail(ErrorCode::kConflict, "reservation already closed", "reservation_closed");
  LLMD_TRY(unreserve(c, r));
  auto b = ledger::read_balance(c, r.user_id, /*allowance=*/true);
  if (!b) return std::unexpected(b.error());
  return Closed{*b, r.api_key_id};
}

Result<Balance> locked_balance(Connection& c, std::int64_t user_id) {
  return ledger::read_balance(c, user_id, /*allowance=*/true, /*lock=*/true);
}

// The ledger row of a settled or spent charge, with the key it was made on.
Charge on_key(Charge charge, std::optional<std::int64_t> key) {
  charge.api_key_id = key;
  return charge;
}

}  // namespace

std::int64_t AccountsOptions::now() const { return clock ? clock() : static_cast<std::int64_t>(std::time(nullptr)); }

namespace ledger {

Result<Balance> read_balance(Connection& c, std::int64_t user_id, bool allowance, bool lock) {
  // The allowance flag rides on the same statement: one round trip inside
  // the write transaction, whose length bounds SQLite's throughput.
  auto rows = c.query(std::string("SELECT balance, reserved") +
                          (allowance ? ", EXISTS (SELECT 1 FROM allowance_credits a WHERE a.user_id = users.id AND "
                                       "a.state = 'open' AND a.remaining > 0)"
                                     : "") +
                          " FROM users WHERE id = ?" + (lock ? for_update(c) : ""),
                      std::vector<Value>{user_id});
  if (!rows) return std::unexpected(rows.error());
  if (rows->empty()) return fail(ErrorCode::kNotFound, "no such user", "user_not_found");
  const store::Row& r = rows->front();
  return Balance{r.integer(0), r.integer(1), allowance && r.integer(2) != 0};
}

Result<void> append(Connection& c, std::int64_t user_id, std::int64_t delta, const Charge& what, std::int64_t now) {
  LLMD_TRY(c.exec("UPDATE users SET balance = balance + ? WHERE id = ?", std::vector<Value>{delta, user_id}));
  LLMD_TRY(
      c.exec("INSERT INTO ledger (user_id, delta, reason, request_id, task, model, api_key_id, created_at) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
             std::vector<Value>{user_id, delta, what.reason, what.request_id, what.task, what.model,
                                optional_value(what.api_key_id), now}));
  return {};
}

Result<void> charge(Connection& c, std::int64_t user_id, std::int64_t amount, const Charge& what, std::int64_t now,
                    const Balance& before) {
  LLMD_TRY(append(c, user_id, -amount, what, now));
  return before.allowance_open ? draw_allowance(c, user_id, amount) : Result<void>{};
}

std::string for_update(const Connection& c) { return c.dialect() == store::Dialect::kMysql ? " FOR UPDATE" : ""; }

}  // namespace ledger

Accounts::Accounts(store::Database& db, std::string instance_id, AccountsOptions options)
    : db_(db), instance_id_(std::move(instance_id)), options_(std::move(options)) {}

Result<Reservation> Accounts::reserve(std::int64_t user_id, std::int64_t amount, const std::string& request_id,
                                      std::optional<std::int64_t> api_key_id) {
  if (amount < 0) return fail(ErrorCode::kInvalidArgument, "negative reservation");
  return db_.transaction<Reservation>([&](Connection& c) -> Result<Reservation> {
    // The conditional update is the whole guarantee: it only succeeds while
    // the tokens are there, atomically with respect to every other writer.
    auto updated = c.exec("UPDATE users SET reserved = reserved + ? WHERE id = ? AND balance - reserved >= ?",
                          std::vector<Value>{amount, user_id, amount});
    if (!updated) return std::unexpected(updated.error());
    if (updated->affected_rows != 1) {
      auto b = ledger::read_balance(c, user_id);
      if (!b) return std::unexpected(b.error());
      return std::unexpected(insufficient(amount, b->available()));
    }
    if (api_key_id) {
      // The key's row is locked by current_key() until the transaction ends.
      auto room = current_key(c, *api_key_id, options_);
      if (!room) return std::unexpected(room.error());
      if (room->left() < amount) return std::unexpected(key_exhausted(*room, amount, room->left()));
      LLMD_TRY(hold_on_key(c, *api_key_id, amount));
    }
    auto ins = c.exec(
        "INSERT INTO reservations (user_id, amount, request_id, instance, state, api_key_id, created_at) "
        "VALUES (?, ?, ?, ?, 'pending', ?, ?)",
        std::vector<Value>{user_id, amount, request_id, instance_id_, optional_value(api_key_id), options_.now()});
    if (!ins) return std::unexpected(ins.error());
    return Reservation{ins->last_insert_id, user_id, amount, request_id, api_key_id};
  });
}

Result<Settled> Accounts::settle(const Reservation& r, const Charge& charge) {
  return db_.transaction<Settled>([&](Connection& c) -> Result<Settled> {
    auto before = close_reservation(c, r);
    if (!before) return std::unexpected(before.error());
    std::int64_t amount =
        std::clamp<std::int64_t>(charge.amount, 0, std::max<std::int64_t>(before->balance.available(), 0));
    if (before->api_key_id) {
      auto room = current_key(c, *before->api_key_id, options_);
      if (room) amount = std::min(amount, std::max<std::int64_t>(room->left(), 0));
      if (!room && room.error().code != ErrorCode::kUnauthenticated) return std::unexpected(room.error());
      if (room && amount > 0) LLMD_TRY(spend_from_key(c, *before->api_key_id, amount));
    }
    if (amount > 0) {
      LLMD_TRY(
          ledger::charge(c, r.user_id, amount, on_key(charge, before->api_key_id), options_.now(), before->balance));
    }
    auto b = ledger::read_balance(c, r.user_id);
    if (!b) return std::unexpected(b.error());
    return Settled{amount, b->available()};
  });
}

Result<Settled> Accounts::settle_in_full(const Reservation& r, const Charge& charge) {
  if (charge.amount < 0) return fail(ErrorCode::kInvalidArgument, "negative charge");
  // Either outcome commits: a refusal must still release the reservation.
  using Outcome = std::pair<std::optional<Error>, Settled>;
  auto outcome = db_.transaction<Outcome>([&](Connection& c) -> Result<Outcome> {
    auto before = close_reservation(c, r);
    if (!before) return std::unexpected(before.error());
    std::optional<Error> refusal;
    if (before->balance.available() < charge.amount) {
      refusal = insufficient(charge.amount, before->balance.available());
    } else if (before->api_key_id) {
      auto room = current_key(c, *before->api_key_id, options_);
      if (!room) return std::unexpected(room.error());
      if (room->left() < charge.amount) {
        refusal = key_exhausted(*room, charge.amount, room->left());
      } else if (charge.amount > 0) {
        LLMD_TRY(spend_from_key(c, *before->api_key_id, charge.amount));
      }
    }
    if (refusal) {
      LLMD_TRY(c.exec("UPDATE reservations SET state = 'released' WHERE id = ?", std::vector<Value>{r.id}));
      return Outcome{refusal, Settled{0, before->balance.available()}};
    }
    if (charge.amount > 0) {
      LLMD_TRY(ledger::charge(c, r.user_id, charge.amount, on_key(charge, before->api_key_id), options_.now(),
                              before->balance));
    }
    auto b = ledger::read_balance(c, r.user_id);
    if (!b) return std::unexpected(b.error());
    return Outcome{std::nullopt, Settled{charge.amount, b->available()}};
  });
  if (!outcome) return std::unexpected(outcome.error());
  if (outcome->first) return std::unexpected(*outcome->first);
  return outcome->second;
}

Result<void> Accounts::release(const Reservation& r) {
  return db_.transaction<void>([&](Connection& c) -> Result<void> {
    auto done = c.exec("UPDATE reservations SET state = 'released' WHERE id = ? AND state = 'pending'",
                       std::vector<Value>{r.id});
    if (!done) return std::unexpected(done.error());
    if (done->affected_rows != 1) return fail(ErrorCode::kConflict, "reservation already closed", "reservation_closed");
    return unreserve(c, r);
  });
}

Result<Reservation> Accounts::resize(const Reservation& r, std::int64_t amount) {
  if (amount < 0) return fail(ErrorCode::kInvalidArgument, "negative reservation");
  return db_.transaction<Reservation>([&](Connection& c) -> Result<Reservation> {
    auto rows = c.query(
        "SELECT amount, api_key_id FROM reservations WHERE id = ? AND state = 'pending'" + ledger::for_update(c),
        std::vector<Value>{r.id});
    if (!rows) return std::unexpected(rows.error());
    if (rows->empty()) return fail(ErrorCode::kConflict, "reservation already closed", "reservation_closed");
    const std::int64_t delta = amount - rows->front().integer(0);
    const auto key = rows->front().is_null(1) ? std::nullopt : std::optional<std::int64_t>(rows->front().integer(1));
    // Growing is the same conditional update as reserve(); shrinking always fits.
    auto updated = c.exec("UPDATE users SET reserved = reserved + ? WHERE id = ? AND balance - reserved >= ?",
                          std::vector<Value>{delta, r.user_id, std::max<std::int64_t>(delta, 0)});
    if (!updated) return std::unexpected(updated.error());
    if (updated->affected_rows != 1) {
      auto b = ledger::read_balance(c, r.user_id);
      if (!b) return std::unexpected(b.error());
      return std::unexpected(insufficient(amount, b->available() + (amount - delta)));
    }
    if (key) {
      auto room = current_key(c, *key, options_);
      if (!room) return std::unexpected(room.error());
      if (delta > 0 && room->left() < delta) {
        return std::unexpected(key_exhausted(*room, amount, room->left() + (amount - delta)));
      }
      LLMD_TRY(hold_on_key(c, *key, delta));
    }
    LLMD_TRY(c.exec("UPDATE reservations SET amount = ? WHERE id = ?", std::vector<Value>{amount, r.id}));
    return Reservation{r.id, r.user_id, amount, r.request_id, key};
  });
}

Result<std::int64_t> Accounts::spend(std::int64_t user_id, const Charge& charge) {
  if (charge.amount < 0) return fail(ErrorCode::kInvalidArgument, "negative charge");
  return db_.transaction<std::int64_t>([&](Connection& c) -> Result<std::int64_t> {
    // A locking read: no other writer changes the user until this commits.
    auto before = locked_balance(c, user_id);
    if (!before) return std::unexpected(before.error());
    if (before->available() < charge.amount) return std::unexpected(insufficient(charge.amount, before->available()));
    if (charge.api_key_id) {
      auto room = current_key(c, *charge.api_key_id, options_);
      if (!room) return std::unexpected(room.error());
      if (room->left() < charge.amount) return std::unexpected(key_exhausted(*room, charge.amount, room->left()));
      LLMD_TRY(spend_from_key(c, *charge.api_key_id, charge.amount));
    }
    LLMD_TRY(ledger::charge(c, user_id, charge.amount, charge, options_.now(), *before));
    auto b = ledger::read_balance(c, user_id);
    if (!b) return std::unexpected(b.error());
    return b->available();
  });
}

Result<std::int64_t> Accounts::adjust(std::int64_t user_id, std::int64_t delta, const std::string& reason,
                                      const std::string& request_id) {
  if (delta == 0) return fail(ErrorCode::kInvalidArgument, "amount must not be zero");
  return db_.transaction<std::int64_t>([&](Connection& c) -> Result<std::int64_t> {
    // A locking read, not a plain one: two concurrent deductions (on MySQL,
    // which does not lock on a plain read) must not both pass.
    auto before = locked_balance(c, user_id);
    if (!before) return std::unexpected(before.error());
    if (before->available() + delta < 0) return std::unexpected(insufficient(-delta, before->available()));
    const Charge what{0, reason, request_id, "admin", "", std::nullopt};
    if (delta < 0) {
      LLMD_TRY(ledger::charge(c, user_id, -delta, what, options_.now(), *before));
    } else {
      LLMD_TRY(ledger::append(c, user_id, delta, what, options_.now()));
    }
    auto b = ledger::read_balance(c, user_id);
    if (!b) return std::unexpected(b.error());
    return b->available();
  });
}

Result<Balance> Accounts::balance(std::int64_t user_id) {
  return db_.with_connection<Balance>([&](Connection& c) { return ledger::read_balance(c, user_id); });
}

Result<std::pair<std::int64_t, int>> Accounts::tokens_last_minute(std::int64_t user_id) {
  const std::int64_t now = options_.now();
  return db_.with_connection<std::pair<std::int64_t, int>>([&](Connection& c) -> Result<std::pair<std::int64_t, int>> {
    auto rows = c.query(
        "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0), MIN(created_at) FROM usage_records "
        "WHERE user_id = ? AND created_at > ?",
        std::vector<Value>{user_id, now - 60});
    if (!rows) return std::unexpected(rows.error());
    const store::Row& r = rows->front();
    const int wait = r.is_null(1) ? 1 : static_cast<int>(std::clamp<std::int64_t>(r.integer(1) + 60 - now, 1, 60));
    return std::pair{r.integer(0), wait};
  });
}

Result<int> Accounts::release_abandoned(std::int64_t stale_seconds) {
  return db_.transaction<int>([&](Connection& c) -> Result<int> {
    auto rows = c.query(
        "SELECT id, user_id, amount, api_key_id FROM reservations WHERE state = 'pending' "
        "AND (instance = ? OR created_at < ?)",
        std::vector<Value>{instance_id_, options_.now() - stale_seconds});
    if (!rows) return std::unexpected(rows.error());
    for (const auto& row : *rows) {
      LLMD_TRY(c.exec("UPDATE reservations SET state = 'released' WHERE id = ?", std::vector<Value>{row.integer(0)}));
      const auto key = row.is_null(3) ? std::nullopt : std::optional<std::int64_t>(row.integer(3));
      LLMD_TRY(unreserve(c, Reservation{row.integer(0), row.integer(1), row.integer(2), "", key}));
    }
    return static_cast<int>(rows->size());
  });
}

Result<void> Accounts::record_usage(const UsageRecord& u) {
  return db_.with_connection<void>([&](Connection& c) -> Result<void> {
    LLMD_TRY(c.exec(
        "INSERT INTO usage_records (request_id, user_id, route, task, model, instance, prompt_tokens, "
        "completion_tokens, charged, status, latency_ms, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        std::vector<Value>{u.request_id, u.user_id, u.route, u.task, u.model, u.instance, u.prompt_tokens,
                           u.completion_tokens, u.charged, std::int64_t{u.status}, u.latency_ms, options_.now()}));
    return {};
  });
}

Result<std::vector<LedgerEntry>> Accounts::ledger(std::int64_t user_id, int limit) {
  return db_.with_connection<std::vector<LedgerEntry>>([&](Connection& c) -> Result<std::vector<LedgerEntry>> {
    auto rows = c.query(
        "SELECT id, delta, reason, request_id, task, model, created_at FROM ledger "
        "WHERE user_id = ? ORDER BY id DESC LIMIT ?",
        std::vector<Value>{user_id, std::int64_t{limit}});
    if (!rows) return std::unexpected(rows.error());
    std::vector<LedgerEntry> out;
    for (const auto& r : *rows) {
      out.push_back({r.integer(0), r.integer(1), r.text(2), r.text(3), r.text(4), r.text(5), r.integer(6)});
    }
    return out;
  });
}

Result<std::pair<std::vector<UsageRow>, std::int64_t>> Accounts::usage(const UsageFilter& f) {
  using Out = std::pair<std::vector<UsageRow>, std::int64_t>;
  return db_.with_connection<Out>([&](Connection& c) -> Result<Out> {
    std::string where = " WHERE 1=1";
    std::vector<Value> params;
    if (f.user_id) {
      where += " AND user_id = ?";
      params.emplace_back(*f.user_id);
    }
    if (!f.model.empty()) {
      where += " AND model = ?";
      params.emplace_back(f.model);
    }
    if (!f.task.empty()) {
      where += " AND task = ?";
      params.emplace_back(f.task);
    }
    if (f.since > 0) {
      where += " AND created_at >= ?";
      params.emplace_back(f.since);
    }
    if (f.until > 0) {
      where += " AND created_at < ?";
      params.emplace_back(f.until);
    }
    auto total = c.query("SELECT COUNT(*) FROM usage_records" + where, params);
    if (!total) return std::unexpected(total.error());
    params.emplace_back(std::int64_t{f.limit});
    params.emplace_back(std::int64_t{f.offset});
    auto rows = c.query(
        "SELECT id, request_id, user_id, route, task, model, instance, prompt_tokens, "
        "completion_tokens, charged, status, latency_ms, created_at FROM usage_records" +
            where + " ORDER BY id DESC LIMIT ? OFFSET ?",
        params);
    if (!rows) return std::unexpected(rows.error());
    Out out{{}, total->front().integer(0)};
    for (const auto& r : *rows) {
      UsageRow u;
      u.id = r.integer(0);
      u.record = UsageRecord{r.text(1),    r.integer(2), r.text(3),    r.text(4),    r.text(5),
                             r.text(6),    r.integer(7), r.integer(8), r.integer(9), static_cast<int>(r.integer(10)),
                             r.integer(11)};
      u.created_at = r.integer(12);
      out.first.push_back(std::move(u));
    }
    return out;
  });
}

std::int64_t price(const PriceRule& rule, std::int64_t base) {
  if (base < 0) base = 0;
  // The epsilon keeps 10 x 1.2 at 12 rather than 13 from binary rounding.
  return static_cast<std::int64_t>(std::ceil(static_cast<double>(base) * rule.multiplier - 1e-9)) + rule.fixed;
}

Pricing::Pricing()
    : rules_{{"chat", {1.0, 0}},
             {"v1", {1.0, 0}},
             {"convert", {1.2, 5}},
             {"homework", {2.0, 20}},
             {"subtitle", {3.0, 50}}} {}

PriceRule Pricing::rule(const std::string& task) const {
  auto it = rules_.find(task);
  return it == rules_.end() ? PriceRule{} : it->second;
}

std::int64_t Pricing::charge(const std::string& task, std::int64_t base, const std::string& model, double ratio) const {
  PriceRule r = rule(task);
  if (auto it = model_factor_.find(model); it != model_factor_.end()) r.multiplier *= it->second;
  const std::int64_t full = price(r, base);
  if (ratio == 1.0) return full;
  // The epsilon, as in price(): 100 x 0.3 stays 30.
  return static_cast<std::int64_t>(std::ceil(static_cast<double>(full) * ratio - 1e-9));
}

std::int64_t Pricing::max_base(const std::string& task, std::int64_t amount, const std::string& model,
                               double ratio) const {
  constexpr std::int64_t kUnbounded = std::int64_t{1} << 50;
  if (charge(task, 0, model, ratio) > amount) return -1;
  if (charge(task, kUnbounded, model, ratio) <= amount) return kUnbounded;
  // The charge never falls as the base grows: the largest base it pays is
  // found by bisection (about 50 steps of arithmetic).
  std::int64_t low = 0, high = kUnbounded;  // charge(low) <= amount < charge(high)
  while (high - low > 1) {
    const std::int64_t mid = low + (high - low) / 2;
    (charge(task, mid, model, ratio) <= amount ? low : high) = mid;
  }
  return low;
}

std::int64_t parser_base(std::size_t input_bytes, std::size_t output_bytes) {
  return static_cast<std::int64_t>((input_bytes + output_bytes + 3) / 4);
}

}  // namespace llmd::billing
