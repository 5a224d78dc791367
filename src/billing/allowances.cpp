#include "billing/allowances.h"

#include <set>
#include <utility>

#include "billing/calendar.h"
#include "billing/ledger_rows.h"

namespace llmd::billing {
namespace {

using store::Connection;
using store::Value;

// A group whose members have an allowance.
struct Due {
  std::int64_t group_id = 0;
  std::string name;
  std::int64_t amount = 0;
  Period period = Period::kWeek;
  std::string time_zone;
};

Charge allowance_row(std::string reason) { return Charge{0, std::move(reason), "", "allowance", "", std::nullopt}; }

// Lapses credit `id` of `user_id`: its remaining tokens leave the balance,
// as many as are not held by calls in flight.
Result<void> lapse(Connection& c, std::int64_t id, std::int64_t user_id, std::int64_t now) {
  auto rows = c.query("SELECT remaining, period_key FROM allowance_credits WHERE id = ? AND state = 'open'",
                      std::vector<Value>{id});
  if (!rows) return std::unexpected(rows.error());
  if (rows->empty()) return {};
  auto balance = ledger::read_balance(c, user_id);
  if (!balance) return std::unexpected(balance.error());
  const std::int64_t gone = std::min(rows->front().integer(0), std::max<std::int64_t>(balance->available(), 0));
  LLMD_TRY(c.exec("UPDATE allowance_credits SET state = 'lapsed', remaining = 0 WHERE id = ?", std::vector<Value>{id}));
  if (gone > 0) {
    LLMD_TRY(ledger::append(c, user_id, -gone,
                            allowance_row("allowance lapsed (period from " + rows->front().text(1) + ")"), now));
  }
  return {};
}

// Credits `due` to `user_id` for `span` unless a credit of that period
// exists; lapses the member's earlier credits of the group first. False
// when it was there already (another instance, an earlier call).
Result<bool> credit(store::Database& db, const Due& due, std::int64_t user_id, const PeriodSpan& span,
                    std::int64_t now) {
  return db.transaction<bool>([&](Connection& c) -> Result<bool> {
    // The user first, as every writer of balances locks it (accounts.h).
    auto user = c.query("SELECT id FROM users WHERE id = ?" + ledger::for_update(c), std::vector<Value>{user_id});
    if (!user) return std::unexpected(user.error());
    if (user->empty()) return false;
    auto inserted = c.exec(
        "INSERT INTO allowance_credits (group_id, user_id, period_key, period_start, period_end, amount, remaining, "
        "state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?)",
        std::vector<Value>{due.group_id, user_id, span.key, span.start, span.end, due.amount, due.amount, now});
    if (!inserted) {
      if (inserted.error().code == ErrorCode::kConflict) return false;  // credited already: the row is unique
      return std::unexpected(inserted.error());
    }
    auto earlier =
        c.query("SELECT id FROM allowance_credits WHERE group_id = ? AND user_id = ? AND state = 'open' AND id <> ?",
                std::vector<Value>{due.group_id, user_id, inserted->last_insert_id});
    if (!earlier) return std::unexpected(earlier.error());
    for (const auto& row : *earlier) LLMD_TRY(lapse(c, row.integer(0), user_id, now));
    LLMD_TRY(ledger::append(
        c, user_id, due.amount,
        allowance_row("allowance: " + due.name + " (" + std::string(to_string(due.period)) + " from " + span.key + ")"),
        now));
    return true;
  });
}

}  // namespace

Result<int> credit_allowances(store::Database& db, std::int64_t user_id, std::int64_t now) {
  using Found = std::pair<std::vector<Due>, std::set<std::pair<std::int64_t, std::string>>>;
  auto found = db.with_connection<Found>([&](Connection& c) -> Result<Found> {
    auto groups = c.query(
        "SELECT g.id, g.name, g.allowance_amount, g.allowance_period, g.time_zone FROM user_groups g "
        "JOIN group_members m ON m.group_id = g.id WHERE m.user_id = ? AND g.allowance_amount > 0",
        std::vector<Value>{user_id});
    if (!groups) return std::unexpected(groups.error());
    Found out;
    for (const auto& r : *groups) {
      if (auto period = parse_period(r.text(3))) {
        out.first.push_back({r.integer(0), r.text(1), r.integer(2), *period, r.text(4)});
      }
    }
    if (out.first.empty()) return out;
    auto open = c.query("SELECT group_id, period_key FROM allowance_credits WHERE user_id = ? AND state = 'open'",
                        std::vector<Value>{user_id});
    if (!open) return std::unexpected(open.error());
    for (const auto& r : *open) out.second.emplace(r.integer(0), r.text(1));
    return out;
  });
  if (!found) return std::unexpected(found.error());
  int credited = 0;
  for (const Due& due : found->first) {
    auto span = period_at(due.period, due.time_zone, now);
    if (!span) continue;  // a zone ICU no longer knows: nothing to credit until it is fixed
    if (found->second.contains({due.group_id, span->key})) continue;
    auto done = credit(db, due, user_id, *span, now);
    if (!done) return std::unexpected(done.error());
    credited += *done ? 1 : 0;
  }
  return credited;
}

Result<int> credit_all_allowances(store::Database& db, std::int64_t now, std::optional<std::int64_t> group_id) {
  auto members = db.with_connection<std::vector<store::Row>>([&](Connection& c) {
    std::string sql =
        "SELECT DISTINCT m.user_id FROM group_members m JOIN user_groups g ON g.id = m.group_id "
        "WHERE g.allowance_amount > 0";
    std::vector<Value> params;
    if (group_id) {
      sql += " AND g.id = ?";
      params.emplace_back(*group_id);
    }
    return c.query(sql, params);
  });
  if (!members) return std::unexpected(members.error());
  int credited = 0;
  for (const auto& r : *members) {
    auto n = credit_allowances(db, r.integer(0), now);
    if (!n) return std::unexpected(n.error());
    credited += *n;
  }
  return credited;
}

Result<std::vector<AllowanceState>> open_allowances(store::Database& db, std::int64_t user_id) {
  return db.with_connection<std::vector<AllowanceState>>([&](Connection& c) -> Result<std::vector<AllowanceState>> {
    auto rows = c.query(
        "SELECT group_id, amount, remaining, period_start, period_end FROM allowance_credits "
        "WHERE user_id = ? AND state = 'open' ORDER BY period_start, id",
        std::vector<Value>{user_id});
    if (!rows) return std::unexpected(rows.error());
    std::vector<AllowanceState> out;
    for (const auto& r : *rows) out.push_back({r.integer(0), r.integer(1), r.integer(2), r.integer(3), r.integer(4)});
    return out;
  });
}

Result<void> draw_allowance(Connection& c, std::int64_t user_id, std::int64_t amount) {
  if (amount <= 0) return {};
  auto rows = c.query(
      "SELECT id, remaining FROM allowance_credits WHERE user_id = ? AND state = 'open' AND remaining > 0 "
      "ORDER BY period_start, id",
      std::vector<Value>{user_id});
  if (!rows) return std::unexpected(rows.error());
  for (const auto& r : *rows) {
    if (amount == 0) break;
    const std::int64_t take = std::min(amount, r.integer(1));
    LLMD_TRY(c.exec("UPDATE allowance_credits SET remaining = remaining - ? WHERE id = ?",
                    std::vector<Value>{take, r.integer(0)}));
    amount -= take;
  }
  return {};
}

Result<void> end_allowance(Connection& c, std::int64_t group_id, std::int64_t user_id, std::int64_t now) {
  auto rows = c.query("SELECT id FROM allowance_credits WHERE group_id = ? AND user_id = ? AND state = 'open'",
                      std::vector<Value>{group_id, user_id});
  if (!rows) return std::unexpected(rows.error());
  for (const auto& r : *rows) LLMD_TRY(lapse(c, r.integer(0), user_id, now));
  return {};
}

AllowanceSweeper::AllowanceSweeper(store::Database& db, std::function<std::int64_t()> clock,
                                   std::chrono::seconds interval, std::function<void(const Error&)> report)
    : db_(db), clock_(std::move(clock)), interval_(interval), report_(std::move(report)), thread_([this] { run(); }) {}

AllowanceSweeper::~AllowanceSweeper() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void AllowanceSweeper::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    if (auto swept = credit_all_allowances(db_, clock_()); !swept && report_) report_(swept.error());
    lock.lock();
    wake_.wait_for(lock, interval_, [this] { return stopping_; });
  }
}

}  // namespace llmd::billing
