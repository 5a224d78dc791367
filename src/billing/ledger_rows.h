// The rows every change of tokens writes, inside a caller's transaction
// (billing's own helper; not for other modules). One place appends to the
// ledger, so users.balance == SUM(ledger.delta) holds by construction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "billing/accounts.h"
#include "store/database.h"

namespace llmd::billing::ledger {

// The user's cached balance and reservations (and, with `allowance`,
// whether an allowance with tokens left is open: what charge() needs).
// `lock`: a locking read on MySQL. kNotFound for no such user.
Result<Balance> read_balance(store::Connection& c, std::int64_t user_id, bool allowance = false, bool lock = false);

// Appends a ledger row of `delta` (reason, request id, task and model from
// `what`, the key from what.api_key_id) and moves users.balance with it. The
// user row is updated first: on MySQL the ledger insert's foreign-key check
// takes a shared lock on it, and two transactions holding that shared lock
// would deadlock upgrading it.
Result<void> append(store::Connection& c, std::int64_t user_id, std::int64_t delta, const Charge& what,
                    std::int64_t now);

// A charge of `amount` >= 0: the ledger row, and, when `before` (the user
// as read in this transaction) has an open allowance, the allowances drawn
// down by it (oldest period first), so what is left of an allowance is what
// lapses at its end.
Result<void> charge(store::Connection& c, std::int64_t user_id, std::int64_t amount, const Charge& what,
                    std::int64_t now, const Balance& before);

// " FOR UPDATE" on MySQL (a locking read), "" on SQLite, whose write
// transaction already excludes every other writer.
std::string for_update(const store::Connection& c);

}  // namespace llmd::billing::ledger
