// Users and API keys in the database (SQL with bound parameters only).
// Blocking: call from the worker pool. Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "store/database.h"

namespace llmd::auth {

struct User {
  std::int64_t id = 0;
  std::string username;
  std::string email;
  std::string role;  // "user" | "teacher" | "admin"
  bool disabled = false;
  std::int64_t balance = 0;
  std::int64_t reserved = 0;
  std::int64_t created_at = 0;
  std::string password_hash;          // never leaves the auth module in a response
  std::int64_t token_epoch = 0;       // JWTs issued under an older epoch are refused
  bool must_change_password = false;  // the password was set by someone else (first start, an admin reset)
  std::int64_t group_rpm = 0;         // the lowest requests-per-minute limit of the user's groups; 0 = none

  std::int64_t available_tokens() const { return balance - reserved; }
};

// What a key may do (SPEC §4.5b). Empty lists mean "no limit".
struct KeyScopes {
  std::optional<std::int64_t> expires_at;  // unix seconds; refused from then on
  std::optional<std::int64_t> budget;      // tokens per budget period (or in all) the key may spend
  std::string budget_period;               // "" (never resets) | day | week | month
  std::vector<std::string> models;         // models the key may use
  std::vector<std::string> subnets;        // client networks (CIDR) the key may be used from
  std::int64_t rpm = 0;                    // requests per minute; 0 = only the user's limits
  std::optional<std::int64_t> group_id;    // made by a teacher for a member of this group
};

struct ApiKeyInfo {
  std::int64_t id = 0;
  std::int64_t user_id = 0;
  std::string name;
  std::string prefix;  // first characters of the key, for recognising it in lists
  std::int64_t created_at = 0;
  std::optional<std::int64_t> last_used_at;
  KeyScopes scopes{};
  std::int64_t budget_used = 0;      // settled in the period named by budget_period_key
  std::string budget_period_key{};   // the budget period budget_used counts (billing/calendar)
  std::int64_t budget_reserved = 0;  // held by calls in flight
};

struct UsageTotals {
  std::int64_t calls = 0;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t tokens_charged = 0;
};

class UserStore {
 public:
  explicit UserStore(store::Database& db) : db_(db) {}

  // Creates the user and, when initial_tokens > 0, its first ledger row, in
  // one transaction. kConflict (reason username_taken) on a duplicate name
  // (case-insensitive).
  Result<User> create(const std::string& username, const std::string& email, const std::string& password_hash,
                      const std::string& role, std::int64_t initial_tokens);
  // kNotFound when absent.
  Result<User> by_id(std::int64_t id);
  Result<User> by_username(const std::string& username);
  // Users whose name or email contains `search` (wildcards in it are literal).
  Result<std::vector<User>> list(const std::string& search, int limit, int offset);
  Result<std::int64_t> count(const std::string& search);
  // Changes the role. Demoting the last active (enabled) administrator fails
  // with kConflict, reason last_admin: the check and the change are one
  // transaction that locks the administrators' rows, so two demotions racing
  // (on one instance or several sharing MySQL) cannot both pass.
  Result<void> set_role(std::int64_t id, const std::string& role);
  // Disables or enables the user. Disabling bumps the user's token epoch, so
  // its JWTs stay invalid after a later re-enable. Disabling the last active
  // administrator fails as set_role does.
  Result<void> set_disabled(std::int64_t id, bool disabled);
  // Replaces the password hash, sets must_change_password and moves the
  // token epoch on (every JWT issued before stops working), in one
  // statement. Returns the user as changed. kNotFound when absent.
  Result<User> set_password_hash(std::int64_t id, const std::string& hash, bool must_change);
  Result<bool> any_admin();

  Result<ApiKeyInfo> add_key(std::int64_t user_id, const std::string& name, const std::string& key_hash,
                             const std::string& prefix, const KeyScopes& scopes = {});
  Result<std::vector<ApiKeyInfo>> keys(std::int64_t user_id);
  // kNotFound unless the key exists AND belongs to user_id.
  Result<void> delete_key(std::int64_t user_id, std::int64_t key_id);
  // The key's owner, updating last_used_at. kNotFound when no key matches.
  Result<std::pair<User, ApiKeyInfo>> by_key_hash(const std::string& key_hash);

  Result<UsageTotals> usage_totals(std::int64_t user_id);

 private:
  store::Database& db_;
};

// Escapes %, _ and \ for a LIKE pattern used with ESCAPE '\'.
std::string escape_like(const std::string& s);

}  // namespace llmd::auth
