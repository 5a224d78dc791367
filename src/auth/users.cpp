#include "auth/users.h"

#include <ctime>

#include "core/text.h"

namespace llmd::auth {
namespace {

using store::Connection;
using store::Row;
using store::Value;

// The last column is the lowest requests-per-minute limit of the user's
// groups, read with the user (every authenticated request needs it).
constexpr const char* kUserColumns =
    "id, username, email, role, disabled, balance, reserved, created_at, password_hash, token_epoch, "
    "must_change_password, (SELECT COALESCE(MIN(g.rpm), 0) FROM user_groups g JOIN group_members m "
    "ON m.group_id = g.id WHERE m.user_id = users.id AND g.rpm > 0)";

std::int64_t now_seconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

User user_from(const Row& r) {
  return User{r.integer(0), r.text(1),    r.text(2), r.text(3),    r.integer(4) != 0,  r.integer(5),
              r.integer(6), r.integer(7), r.text(8), r.integer(9), r.integer(10) != 0, r.integer(11)};
}

constexpr const char* kKeyColumns =
    "id, user_id, name, prefix, created_at, last_used_at, expires_at, budget, budget_period, models, subnets, rpm, "
    "group_id, budget_used, budget_period_key, budget_reserved";

std::optional<std::int64_t> optional_integer(const Row& r, std::size_t i) {
  return r.is_null(i) ? std::nullopt : std::optional<std::int64_t>(r.integer(i));
}

ApiKeyInfo key_from(const Row& r) {
  ApiKeyInfo k{r.integer(0), r.integer(1), r.text(2), r.text(3), r.integer(4), optional_integer(r, 5)};
  k.scopes = KeyScopes{optional_integer(r, 6),       optional_integer(r, 7),        r.text(8),
                       text::split_lines(r.text(9)), text::split_lines(r.text(10)), r.integer(11),
                       optional_integer(r, 12)};
  k.budget_used = r.integer(13);
  k.budget_period_key = r.text(14);
  k.budget_reserved = r.integer(15);
  return k;
}

Value optional_value(const std::optional<std::int64_t>& v) { return v ? Value(*v) : Value(nullptr); }

Result<User> one_user(Connection& c, const std::string& where, const Value& v) {
  auto rows = c.query(std::string("SELECT ") + kUserColumns + " FROM users WHERE " + where, std::vector<Value>{v});
  if (!rows) return std::unexpected(rows.error());
  if (rows->empty()) return fail(ErrorCode::kNotFound, "no such user", "user_not_found");
  return user_from(rows->front());
}

// Fails with kConflict (last_admin) when user `id` is an active administrator
// and no other is. Call inside a write transaction, before the change: on
// MySQL the administrators' rows stay locked (FOR UPDATE) until it commits,
// so a concurrent check waits and then sees the change; SQLite's write
// transaction (BEGIN IMMEDIATE) already excludes every other writer.
Result<void> keep_an_active_admin(Connection& c, std::int64_t id) {
  const bool mysql = c.dialect() == store::Dialect::kMysql;
  auto rows = c.query(std::string("SELECT id FROM users WHERE role = 'admin' AND disabled = 0 ORDER BY id") +
                      (mysql ? " FOR UPDATE" : ""));
  if (!rows) return std::unexpected(rows.error());
  bool target_is_active_admin = false;
  std::size_t others = 0;
  for (const auto& r : *rows) {
    if (r.integer(0) == id) {
      target_is_active_admin = true;
    } else {
      ++others;
    }
  }
  if (target_is_active_admin && others == 0) {
    return fail(ErrorCode::kConflict, "the last active administrator cannot be demoted, disabled or deleted",
                "last_admin");
  }
  return {};
}

}  // namespace

std::string escape_like(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

Result<User> UserStore::create(const std::string& username, const std::string& email, const std::string& password_hash,
                               const std::string& role, std::int64_t initial_tokens) {
  return db_.transaction<User>([&](Connection& c) -> Result<User> {
    // Checked explicitly (case-insensitively) so both backends answer alike.
    auto taken = c.query("SELECT COUNT(*) FROM users WHERE LOWER(username) = LOWER(?)", std::vector<Value>{username});
    if (!taken) return std::unexpected(taken.error());
    if (taken->front().integer(0) > 0) {
      return fail(ErrorCode::kConflict, "username already taken", "username_taken");
    }
    const std::int64_t now = now_seconds();
    auto ins = c.exec(
        "INSERT INTO users (username, email, password_hash, role, disabled, balance, reserved, "
        "created_at) VALUES (?, ?, ?, ?, 0, 0, 0, ?)",
        std::vector<Value>{username, email, password_hash, role, now});
    if (!ins) {
      if (ins.error().code == ErrorCode::kConflict) {
        return fail(ErrorCode::kConflict, "username already taken", "username_taken");
      }
      return std::unexpected(ins.error());
    }
    const std::int64_t id = ins->last_insert_id;
    if (initial_tokens > 0) {
      LLMD_TRY(
          c.exec("INSERT INTO ledger (user_id, delta, reason, request_id, task, model, created_at) "
                 "VALUES (?, ?, 'initial tokens', '', 'admin', '', ?)",
                 std::vector<Value>{id, initial_tokens, now}));
      LLMD_TRY(c.exec("UPDATE users SET balance = balance + ? WHERE id = ?", std::vector<Value>{initial_tokens, id}));
    }
    return one_user(c, "id = ?", id);
  });
}

Result<User> UserStore::by_id(std::int64_t id) {
  return db_.with_connection<User>([&](Connection& c) { return one_user(c, "id = ?", id); });
}

Result<User> UserStore::by_username(const std::string& username) {
  return db_.with_connection<User>([&](Connection& c) { return one_user(c, "LOWER(username) = LOWER(?)", username); });
}

Result<std::vector<User>> UserStore::list(const std::string& search, int limit, int offset) {
  return db_.with_connection<std::vector<User>>([&](Connection& c) -> Result<std::vector<User>> {
    const std::string pattern = "%" + escape_like(search) + "%";
    auto rows = c.query(std::string("SELECT ") + kUserColumns +
                            " FROM users WHERE username LIKE ? ESCAPE '\\' OR email LIKE ? ESCAPE '\\' "
                            "ORDER BY id LIMIT ? OFFSET ?",
                        std::vector<Value>{pattern, pattern, std::int64_t{limit}, std::int64_t{offset}});
    if (!rows) return std::unexpected(rows.error());
    std::vector<User> out;
    for (const auto& r : *rows) out.push_back(user_from(r));
    return out;
  });
}

Result<std::int64_t> UserStore::count(const std::string& search) {
  return db_.with_connection<std::int64_t>([&](Connection& c) -> Result<std::int64_t> {
    const std::string pattern = "%" + escape_like(search) + "%";
    auto rows = c.query("SELECT COUNT(*) FROM users WHERE username LIKE ? ESCAPE '\\' OR email LIKE ? ESCAPE '\\'",
                        std::vector<Value>{pattern, pattern});
    if (!rows) return std::unexpected(rows.error());
    return rows->front().integer(0);
  });
}

Result<void> UserStore::set_role(std::int64_t id, const std::string& role) {
  return db_.transaction<void>([&](Connection& c) -> Result<void> {
    if (role != "admin") LLMD_TRY(keep_an_active_admin(c, id));
    auto exists = one_user(c, "id = ?", id);
    if (!exists) return std::unexpected(exists.error());
    LLMD_TRY(c.exec("UPDATE users SET role = ? WHERE id = ?", std::vector<Value>{role, id}));
    return {};
  });
}

Result<void> UserStore::set_disabled(std::int64_t id, bool disabled) {
  return db_.transaction<void>([&](Connection& c) -> Result<void> {
    if (disabled) LLMD_TRY(keep_an_active_admin(c, id));
    auto exists = one_user(c, "id = ?", id);
    if (!exists) return std::unexpected(exists.error());
    // Disabling moves the token epoch on: JWTs issued before stay dead after a re-enable.
    LLMD_TRY(c.exec(disabled ? "UPDATE users SET disabled = 1, token_epoch = token_epoch + 1 WHERE id = ?"
                             : "UPDATE users SET disabled = 0 WHERE id = ?",
                    std::vector<Value>{id}));
    return {};
  });
}

Result<User> UserStore::set_password_hash(std::int64_t id, const std::string& hash, bool must_change) {
  return db_.transaction<User>([&](Connection& c) -> Result<User> {
    LLMD_TRY(
        c.exec("UPDATE users SET password_hash = ?, must_change_password = ?, token_epoch = token_epoch + 1 "
               "WHERE id = ?",
               std::vector<Value>{hash, std::int64_t{must_change ? 1 : 0}, id}));
    return one_user(c, "id = ?", id);
  });
}

Result<bool> UserStore::any_admin() {
  return db_.with_connection<bool>([&](Connection& c) -> Result<bool> {
    auto rows = c.query("SELECT COUNT(*) FROM users WHERE role = 'admin'");
    if (!rows) return std::unexpected(rows.error());
    return rows->front().integer(0) > 0;
  });
}

Result<ApiKeyInfo> UserStore::add_key(std::int64_t user_id, const std::string& name, const std::string& key_hash,
                                      const std::string& prefix, const KeyScopes& scopes) {
  return db_.with_connection<ApiKeyInfo>([&](Connection& c) -> Result<ApiKeyInfo> {
    const std::int64_t now = now_seconds();
    auto ins = c.exec(
        "INSERT INTO api_keys (user_id, name, key_hash, prefix, created_at, expires_at, budget, budget_period, "
        "models, subnets, rpm, group_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        std::vector<Value>{user_id, name, key_hash, prefix, now, optional_value(scopes.expires_at),
                           optional_value(scopes.budget), scopes.budget_period, text::join_lines(scopes.models),
                           text::join_lines(scopes.subnets), scopes.rpm, optional_value(scopes.group_id)});
    if (!ins) return std::unexpected(ins.error());
    ApiKeyInfo info{ins->last_insert_id, user_id, name, prefix, now, std::nullopt};
    info.scopes = scopes;
    return info;
  });
}

Result<std::vector<ApiKeyInfo>> UserStore::keys(std::int64_t user_id) {
  return db_.with_connection<std::vector<ApiKeyInfo>>([&](Connection& c) -> Result<std::vector<ApiKeyInfo>> {
    auto rows = c.query(std::string("SELECT ") + kKeyColumns + " FROM api_keys WHERE user_id = ? ORDER BY id",
                        std::vector<Value>{user_id});
    if (!rows) return std::unexpected(rows.error());
    std::vector<ApiKeyInfo> out;
    for (const auto& r : *rows) out.push_back(key_from(r));
    return out;
  });
}

Result<void> UserStore::delete_key(std::int64_t user_id, std::int64_t key_id) {
  return db_.with_connection<void>([&](Connection& c) -> Result<void> {
    auto r = c.exec("DELETE FROM api_keys WHERE id = ? AND user_id = ?", std::vector<Value>{key_id, user_id});
    if (!r) return std::unexpected(r.error());
    if (r->affected_rows != 1) return fail(ErrorCode::kNotFound, "no such API key", "key_not_found");
    return {};
  });
}

Result<std::pair<User, ApiKeyInfo>> UserStore::by_key_hash(const std::string& key_hash) {
  return db_.with_connection<std::pair<User, ApiKeyInfo>>([&](Connection& c) -> Result<std::pair<User, ApiKeyInfo>> {
    auto rows = c.query(std::string("SELECT ") + kKeyColumns + " FROM api_keys WHERE key_hash = ?",
                        std::vector<Value>{key_hash});
    if (!rows) return std::unexpected(rows.error());
    if (rows->empty()) return fail(ErrorCode::kNotFound, "no such API key", "key_not_found");
    ApiKeyInfo key = key_from(rows->front());
    auto user = one_user(c, "id = ?", key.user_id);
    if (!user) return std::unexpected(user.error());
    const std::int64_t now = now_seconds();
    // Recording every use would make each API call a write; once a minute is enough.
    if (!key.last_used_at || *key.last_used_at < now - 60) {
      LLMD_TRY(c.exec("UPDATE api_keys SET last_used_at = ? WHERE id = ?", std::vector<Value>{now, key.id}));
      key.last_used_at = now;
    }
    return std::make_pair(std::move(*user), std::move(key));
  });
}

Result<UsageTotals> UserStore::usage_totals(std::int64_t user_id) {
  return db_.with_connection<UsageTotals>([&](Connection& c) -> Result<UsageTotals> {
    auto rows = c.query(
        "SELECT COUNT(*), COALESCE(SUM(prompt_tokens),0), COALESCE(SUM(completion_tokens),0), "
        "COALESCE(SUM(charged),0) FROM usage_records WHERE user_id = ?",
        std::vector<Value>{user_id});
    if (!rows) return std::unexpected(rows.error());
    const Row& r = rows->front();
    return UsageTotals{r.integer(0), r.integer(1), r.integer(2), r.integer(3)};
  });
}

}  // namespace llmd::auth
