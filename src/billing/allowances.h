// Group allowances (SPEC §4.5b): each member of a group with an allowance
// is credited `amount` tokens at the start of each period (day, week or
// month in the group's time zone), as a ledger row; what is left of it when
// the period ends lapses (a ledger row too). A credit is a row of
// allowance_credits, unique per (group, member, period): inserting it is
// what makes the crediting happen exactly once, however many instances and
// restarts meet the boundary. A period that passed while no instance ran is
// not credited afterwards (it would lapse at once); the current one always
// is, at the first call, sweep or listing that looks.
//
// Blocking (database): call on the worker pool. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "store/database.h"

namespace llmd::billing {

// A member's allowance in its current period.
struct AllowanceState {
  std::int64_t group_id = 0;
  std::int64_t amount = 0;     // credited at the period's start
  std::int64_t remaining = 0;  // not yet spent; lapses at period_end
  std::int64_t period_start = 0;
  std::int64_t period_end = 0;
};

// Credits every allowance of `user_id`'s groups due for the period that
// contains `now` and lapses the ones whose period ended. Returns how many
// were credited by this call (0 when another instance was first).
Result<int> credit_allowances(store::Database& db, std::int64_t user_id, std::int64_t now);

// credit_allowances() for every member of every group with an allowance
// (the periodic sweep), or of group `group_id` only. Returns how many were
// credited.
Result<int> credit_all_allowances(store::Database& db, std::int64_t now,
                                  std::optional<std::int64_t> group_id = std::nullopt);

// The user's open (current) allowances, oldest period first.
Result<std::vector<AllowanceState>> open_allowances(store::Database& db, std::int64_t user_id);

// Inside a transaction that has locked the user: a charge of `amount`
// spends the user's open allowances first (oldest period first), so what
// remains of them is what lapses.
Result<void> draw_allowance(store::Connection& c, std::int64_t user_id, std::int64_t amount);

// Inside a transaction: ends the open allowance of `user_id` in `group_id`
// now (the member left, the group was deleted, its allowance changed): what
// is left of it lapses, as much as the user's available balance holds.
Result<void> end_allowance(store::Connection& c, std::int64_t group_id, std::int64_t user_id, std::int64_t now);

// Calls credit_all_allowances() at once and then every `interval` on its own
// thread, so that members who make no call still get their allowance (and
// see it) at the period's start; `report` hears each failure. Stops when
// destroyed.
class AllowanceSweeper {
 public:
  AllowanceSweeper(store::Database& db, std::function<std::int64_t()> clock, std::chrono::seconds interval,
                   std::function<void(const Error&)> report);
  ~AllowanceSweeper();
  AllowanceSweeper(const AllowanceSweeper&) = delete;
  AllowanceSweeper& operator=(const AllowanceSweeper&) = delete;

 private:
  void run();

  store::Database& db_;
  std::function<std::int64_t()> clock_;
  std::chrono::seconds interval_;
  std::function<void(const Error&)> report_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  std::thread thread_;     // last: started once the members above exist
};

}  // namespace llmd::billing
