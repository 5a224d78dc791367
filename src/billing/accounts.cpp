#include "billing/accounts.h"

#include <cmath>
#include <ctime>

namespace llmd::billing {
namespace {

using store::Connection;
using store::Value;

std::int64_t now_seconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

Error insufficient(std::int64_t needed, std::int64_t available) {
  return Error(ErrorCode::kPaymentRequired,
               "not enough tokens: this call needs up to " + std::to_string(needed) + ", you have " +
                   std::to_string(available < 0 ? 0 : available),
               "insufficient_tokens")
      .with_detail("needed", needed)
      .with_detail("available", available < 0 ? 0 : available);
}

Result<Balance> read_balance(Connection& c, std::int64_t user_id) {
  auto rows = c.query("SELECT balance, reserved FROM users WHERE id = ?", std::vector<Value>{user_id});
  if (!rows) return std::unexpected(rows.error());
  if (rows->empty()) return fail(ErrorCode::kNotFound, "no such user", "user_not_found");
  return Balance{rows->front().integer(0), rows->front().integer(1)};
}

// Appends a ledger row and moves the cached balance with it. The user row is
// updated first: on MySQL the ledger insert's foreign-key check takes a
// shared lock on it, and two transactions holding that shared lock would
// deadlock upgrading it.
Result<void> write_ledger(Connection& c, std::int64_t user_id, std::int64_t delta, const Charge& charge) {
  LLMD_TRY(c.exec("UPDATE users SET balance = balance + ? WHERE id = ?", std::vector<Value>{delta, user_id}));
  LLMD_TRY(c.exec(
      "INSERT INTO ledger (user_id, delta, reason, request_id, task, model, created_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?)",
      std::vector<Value>{user_id, delta, charge.reason, charge.request_id, charge.task, charge.model, now_seconds()}));
  return {};
}

// Marks a pending reservation settled and gives its amount back to the
// user: the balance returned includes it, and the user row stays locked by
// the update until the transaction ends, so no other writer overtakes the
// caller's charge. kConflict "reservation_closed" when it was not pending.
// Gives the user back what reservation `r` holds: the amount its row says
// (a resized reservation's holder may not have persisted the new amount).
Result<void> unreserve(Connection& c, const Reservation& r) {
  LLMD_TRY(c.exec("UPDATE users SET reserved = reserved - (SELECT amount FROM reservations WHERE id = ?) WHERE id = ?",
                  std::vector<Value>{r.id, r.user_id}));
  return {};
}

Result<Balance> close_reservation(Connection& c, const Reservation& r) {
  auto done =
      c.exec("UPDATE reservations SET state = 'settled' WHERE id = ? AND state = 'pending'", std::vector<Value>{r.id});
  if (!done) return std::unexpected(done.error());
  if (done->affected_rows != 1) return fail(ErrorCode::kConflict, "reservation already closed", "reservation_closed");
  LLMD_TRY(unreserve(c, r));
  return read_balance(c, r.user_id);
}

}  // namespace

Accounts::Accounts(store::Database& db, std::string instance_id) : db_(db), instance_id_(std::move(instance_id)) {}

Result<Reservation> Accounts::reserve(std::int64_t user_id, std::int64_t amount, const std::string& request_id) {
  if (amount < 0) return fail(ErrorCode::kInvalidArgument, "negative reservation");
  return db_.transaction<Reservation>([&](Connection& c) -> Result<Reservation> {
    // The conditional update is the whole guarantee: it only succeeds while
    // the tokens are there, atomically with respect to every other writer.
    auto updated = c.exec("UPDATE users SET reserved = reserved + ? WHERE id = ? AND balance - reserved >= ?",
                          std::vector<Value>{amount, user_id, amount});
    if (!updated) return std::unexpected(updated.error());
    if (updated->affected_rows != 1) {
      auto b = read_balance(c, user_id);
      if (!b) return std::unexpected(b.error());
      return std::unexpected(insufficient(amount, b->available()));
    }
    auto ins = c.exec(
        "INSERT INTO reservations (user_id, amount, request_id, instance, state, created_at) "
        "VALUES (?, ?, ?, ?, 'pending', ?)",
        std::vector<Value>{user_id, amount, request_id, instance_id_, now_seconds()});
    if (!ins) return std::unexpected(ins.error());
    return Reservation{ins->last_insert_id, user_id, amount, request_id};
  });
}

Result<Settled> Accounts::settle(const Reservation& r, const Charge& charge) {
  return db_.transaction<Settled>([&](Connection& c) -> Result<Settled> {
    auto before = close_reservation(c, r);
    if (!before) return std::unexpected(before.error());
    const std::int64_t amount =
        std::clamp<std::int64_t>(charge.amount, 0, std::max<std::int64_t>(before->available(), 0));
    if (amount > 0) LLMD_TRY(write_ledger(c, r.user_id, -amount, charge));
    auto b = read_balance(c, r.user_id);
    if (!b) return std::unexpected(b.error());
    return Settled{amount, b->available()};
  });
}

Result<Settled> Accounts::settle_in_full(const Reservation& r, const Charge& charge) {
  if (charge.amount < 0) return fail(ErrorCode::kInvalidArgument, "negative charge");
  // Either outcome commits: a refusal must still release the reservation.
  auto outcome = db_.transaction<std::pair<bool, Settled>>([&](Connection& c) -> Result<std::pair<bool, Settled>> {
    auto before = close_reservation(c, r);
    if (!before) return std::unexpected(before.error());
    if (before->available() < charge.amount) {
      LLMD_TRY(c.exec("UPDATE reservations SET state = 'released' WHERE id = ?", std::vector<Value>{r.id}));
      return std::pair{false, Settled{0, before->available()}};
    }
    if (charge.amount > 0) LLMD_TRY(write_ledger(c, r.user_id, -charge.amount, charge));
    auto b = read_balance(c, r.user_id);
    if (!b) return std::unexpected(b.error());
    return std::pair{true, Settled{charge.amount, b->available()}};
  });
  if (!outcome) return std::unexpected(outcome.error());
  if (!outcome->first) return std::unexpected(insufficient(charge.amount, outcome->second.available));
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
    const bool mysql = c.dialect() == store::Dialect::kMysql;
    auto rows = c.query(std::string("SELECT amount FROM reservations WHERE id = ? AND state = 'pending'") +
                            (mysql ? " FOR UPDATE" : ""),
                        std::vector<Value>{r.id});
    if (!rows) return std::unexpected(rows.error());
    if (rows->empty()) return fail(ErrorCode::kConflict, "reservation already closed", "reservation_closed");
    const std::int64_t delta = amount - rows->front().integer(0);
    // Growing is the same conditional update as reserve(); shrinking always fits.
    auto updated = c.exec("UPDATE users SET reserved = reserved + ? WHERE id = ? AND balance - reserved >= ?",
                          std::vector<Value>{delta, r.user_id, std::max<std::int64_t>(delta, 0)});
    if (!updated) return std::unexpected(updated.error());
    if (updated->affected_rows != 1) {
      auto b = read_balance(c, r.user_id);
      if (!b) return std::unexpected(b.error());
      return std::unexpected(insufficient(amount, b->available() + (amount - delta)));
    }
    LLMD_TRY(c.exec("UPDATE reservations SET amount = ? WHERE id = ?", std::vector<Value>{amount, r.id}));
    return Reservation{r.id, r.user_id, amount, r.request_id};
  });
}

Result<std::int64_t> Accounts::spend(std::int64_t user_id, const Charge& charge) {
  if (charge.amount < 0) return fail(ErrorCode::kInvalidArgument, "negative charge");
  return db_.transaction<std::int64_t>([&](Connection& c) -> Result<std::int64_t> {
    auto updated = c.exec("UPDATE users SET balance = balance - ? WHERE id = ? AND balance - reserved >= ?",
                          std::vector<Value>{charge.amount, user_id, charge.amount});
    if (!updated) return std::unexpected(updated.error());
    if (updated->affected_rows != 1) {
      auto b = read_balance(c, user_id);
      if (!b) return std::unexpected(b.error());
      return std::unexpected(insufficient(charge.amount, b->available()));
    }
    LLMD_TRY(
        c.exec("INSERT INTO ledger (user_id, delta, reason, request_id, task, model, created_at) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)",
               std::vector<Value>{user_id, -charge.amount, charge.reason, charge.request_id, charge.task, charge.model,
                                  now_seconds()}));
    auto b = read_balance(c, user_id);
    if (!b) return std::unexpected(b.error());
    return b->available();
  });
}

Result<std::int64_t> Accounts::adjust(std::int64_t user_id, std::int64_t delta, const std::string& reason,
                                      const std::string& request_id) {
  if (delta == 0) return fail(ErrorCode::kInvalidArgument, "amount must not be zero");
  return db_.transaction<std::int64_t>([&](Connection& c) -> Result<std::int64_t> {
    // Conditional, like reserve(): a plain read then write would let two
    // concurrent deductions (on MySQL, which does not lock on read) both pass.
    auto updated = c.exec("UPDATE users SET balance = balance + ? WHERE id = ? AND balance - reserved + ? >= 0",
                          std::vector<Value>{delta, user_id, delta});
    if (!updated) return std::unexpected(updated.error());
    auto b = read_balance(c, user_id);
    if (!b) return std::unexpected(b.error());
    if (updated->affected_rows != 1) return std::unexpected(insufficient(-delta, b->available()));
    LLMD_TRY(c.exec(
        "INSERT INTO ledger (user_id, delta, reason, request_id, task, model, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        std::vector<Value>{user_id, delta, reason, request_id, std::string("admin"), std::string(), now_seconds()}));
    return b->available();
  });
}

Result<Balance> Accounts::balance(std::int64_t user_id) {
  return db_.with_connection<Balance>([&](Connection& c) { return read_balance(c, user_id); });
}

Result<int> Accounts::release_abandoned(std::int64_t stale_seconds) {
  return db_.transaction<int>([&](Connection& c) -> Result<int> {
    auto rows = c.query(
        "SELECT id, user_id, amount FROM reservations WHERE state = 'pending' "
        "AND (instance = ? OR created_at < ?)",
        std::vector<Value>{instance_id_, now_seconds() - stale_seconds});
    if (!rows) return std::unexpected(rows.error());
    for (const auto& row : *rows) {
      LLMD_TRY(c.exec("UPDATE reservations SET state = 'released' WHERE id = ?", std::vector<Value>{row.integer(0)}));
      LLMD_TRY(c.exec("UPDATE users SET reserved = reserved - ? WHERE id = ?",
                      std::vector<Value>{row.integer(2), row.integer(1)}));
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
                           u.completion_tokens, u.charged, std::int64_t{u.status}, u.latency_ms, now_seconds()}));
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

std::int64_t Pricing::charge(const std::string& task, std::int64_t base, const std::string& model) const {
  PriceRule r = rule(task);
  if (auto it = model_factor_.find(model); it != model_factor_.end()) r.multiplier *= it->second;
  return price(r, base);
}

std::int64_t Pricing::max_base(const std::string& task, std::int64_t amount, const std::string& model) const {
  PriceRule r = rule(task);
  if (auto it = model_factor_.find(model); it != model_factor_.end()) r.multiplier *= it->second;
  if (amount < r.fixed) return -1;
  constexpr std::int64_t kUnbounded = std::int64_t{1} << 50;
  if (r.multiplier <= 0) return kUnbounded;
  const double estimate = std::floor(static_cast<double>(amount - r.fixed) / r.multiplier + 1e-6);
  std::int64_t base = estimate >= static_cast<double>(kUnbounded) ? kUnbounded : static_cast<std::int64_t>(estimate);
  while (base > 0 && price(r, base) > amount) --base;  // floating-point rounding, at most a step or two
  while (price(r, base + 1) <= amount && base < kUnbounded) ++base;
  return base;
}

std::int64_t parser_base(std::size_t input_bytes, std::size_t output_bytes) {
  return static_cast<std::int64_t>((input_bytes + output_bytes + 3) / 4);
}

}  // namespace llmd::billing
