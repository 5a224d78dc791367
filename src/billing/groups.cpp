#include "billing/groups.h"

#include <algorithm>
#include <cctype>

#include "billing/calendar.h"
#include "billing/ledger_rows.h"
#include "core/random_id.h"
#include "core/text.h"

namespace llmd::billing {
namespace {

using store::Connection;
using store::Row;
using store::Value;

constexpr const char* kGroupColumns =
    "g.id, g.name, g.models, g.price_ratio, g.rpm, g.tpm, g.allowance_amount, g.allowance_period, g.time_zone, "
    "g.owner_id, u.username, g.pool, g.created_at, "
    "(SELECT COUNT(*) FROM group_members m WHERE m.group_id = g.id)";

constexpr std::int64_t kMaxAmount = std::int64_t{1} << 40;

Group group_from(const Row& r) {
  Group g;
  g.id = r.integer(0);
  g.settings.name = r.text(1);
  const std::string models = r.text(2);
  if (!models.empty()) g.settings.models = text::split_lines(models);
  g.settings.price_ratio = r.real(3);
  g.settings.rpm = r.integer(4);
  g.settings.tpm = r.integer(5);
  g.settings.allowance_amount = r.integer(6);
  g.settings.allowance_period = r.text(7);
  g.settings.time_zone = r.text(8);
  g.owner_id = r.integer(9);
  g.owner_name = r.text(10);
  g.pool = r.integer(11);
  g.created_at = r.integer(12);
  g.members = r.integer(13);
  return g;
}

Error not_found() { return Error(ErrorCode::kNotFound, "no such group", "group_not_found"); }

// The group `id` as `actor` may see it: a teacher only their own.
Result<Group> visible_group(Connection& c, const Actor& actor, std::int64_t id) {
  auto rows = c.query(
      std::string("SELECT ") + kGroupColumns + " FROM user_groups g JOIN users u ON u.id = g.owner_id WHERE g.id = ?",
      std::vector<Value>{id});
  if (!rows) return std::unexpected(rows.error());
  if (rows->empty()) return std::unexpected(not_found());
  Group g = group_from(rows->front());
  if (!actor.admin && g.owner_id != actor.user_id) return std::unexpected(not_found());
  return g;
}

Result<std::pair<std::int64_t, std::string>> user_named(Connection& c, const std::string& username) {
  auto rows = c.query("SELECT id, username FROM users WHERE username = ?", std::vector<Value>{username});
  if (!rows) return std::unexpected(rows.error());
  if (rows->empty()) return fail(ErrorCode::kNotFound, "no user named '" + username + "'", "user_not_found");
  return std::pair{rows->front().integer(0), rows->front().text(1)};
}

// The member of group `group_id` named `username`: {id, name}.
// kNotFound (user_not_found, member_not_found) otherwise.
Result<std::pair<std::int64_t, std::string>> member_named(Connection& c, std::int64_t group_id,
                                                          const std::string& username) {
  auto user = user_named(c, username);
  if (!user) return user;
  auto member = c.query("SELECT 1 FROM group_members WHERE group_id = ? AND user_id = ?",
                        std::vector<Value>{group_id, user->first});
  if (!member) return std::unexpected(member.error());
  if (member->empty()) return fail(ErrorCode::kNotFound, user->second + " is not a member", "member_not_found");
  return user;
}

Result<void> write_pool(Connection& c, std::int64_t group_id, std::int64_t delta, const std::string& reason,
                        std::optional<std::int64_t> user_id, const std::string& request_id, std::int64_t now) {
  auto updated = c.exec("UPDATE user_groups SET pool = pool + ? WHERE id = ? AND pool + ? >= 0",
                        std::vector<Value>{delta, group_id, delta});
  if (!updated) return std::unexpected(updated.error());
  if (updated->affected_rows != 1) {
    return std::unexpected(
        Error(ErrorCode::kPaymentRequired, "the group's pool does not hold that many tokens", "insufficient_pool")
            .with_detail("needed", -delta));
  }
  LLMD_TRY(c.exec(
      "INSERT INTO group_ledger (group_id, delta, reason, user_id, request_id, created_at) VALUES (?, ?, ?, ?, ?, ?)",
      std::vector<Value>{group_id, delta, reason, user_id ? Value(*user_id) : Value(nullptr), request_id, now}));
  return {};
}

std::vector<Value> settings_values(const GroupSettings& s) {
  return {s.name,
          s.models ? text::join_lines(*s.models) : std::string(),
          s.price_ratio,
          s.rpm,
          s.tpm,
          s.allowance_amount,
          s.allowance_amount > 0 ? s.allowance_period : std::string(),
          s.time_zone};
}

// "LLMD-XXXXX-XXXXX-XXXXX-XXXXX": 80 random bits, upper-case hex.
std::string new_code() {
  std::string hex = core::random_hex(10);
  std::transform(hex.begin(), hex.end(), hex.begin(), [](unsigned char ch) { return std::toupper(ch); });
  return "LLMD-" + hex.substr(0, 5) + "-" + hex.substr(5, 5) + "-" + hex.substr(10, 5) + "-" + hex.substr(15, 5);
}

// What a user typed: surrounding space and letter case do not matter.
std::string normalized_code(const std::string& code) {
  std::string out(text::trim(code));
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char ch) { return std::toupper(ch); });
  return out;
}

std::optional<std::int64_t> optional_of(const Row& r, std::size_t i) {
  return r.is_null(i) ? std::nullopt : std::optional<std::int64_t>(r.integer(i));
}

}  // namespace

Groups::Groups(Accounts& accounts, GroupsOptions options) : accounts_(accounts), options_(options) {}

Result<void> Groups::validate(const Actor& actor, const GroupSettings& s, const GroupSettings* before) const {
  const auto bad = [](const std::string& field, const std::string& message) {
    return fail(ErrorCode::kInvalidArgument, message, "invalid_" + field);
  };
  if (s.name.empty() || s.name.size() > 100 || !text::is_valid_utf8(s.name) || s.name.find('\n') != std::string::npos) {
    return bad("name", "name must be 1-100 characters");
  }
  if (s.models) {
    if (s.models->size() > 100) return bad("models", "at most 100 models");
    for (const auto& m : *s.models) {
      if (m.empty() || m.size() > 128 || m.find('\n') != std::string::npos || !text::is_valid_utf8(m)) {
        return bad("models", "models must be model names (1-128 characters)");
      }
    }
  }
  if (!(s.price_ratio >= 0.0 && s.price_ratio <= 100.0)) return bad("price_ratio", "price_ratio must be 0-100");
  if (s.rpm < 0 || s.rpm > 1000000) return bad("rpm", "rpm must be 0-1000000");
  if (s.tpm < 0 || s.tpm > kMaxAmount) return bad("tpm", "tpm must not be negative");
  if (s.allowance_amount < 0 || s.allowance_amount > kMaxAmount) {
    return bad("allowance", "allowance amount must not be negative");
  }
  if (s.allowance_amount > 0 && !parse_period(s.allowance_period)) {
    return bad("allowance", "allowance period must be day, week or month");
  }
  if (!valid_time_zone(s.time_zone)) return bad("time_zone", "unknown time zone '" + s.time_zone + "'");
  if (!actor.admin) {
    const double ratio_before = before ? before->price_ratio : 1.0;
    if (s.price_ratio != ratio_before) {
      return fail(ErrorCode::kPermissionDenied, "only an administrator sets a group's price ratio", "forbidden");
    }
    if (s.allowance_amount > options_.max_teacher_allowance &&
        (before == nullptr || s.allowance_amount != before->allowance_amount)) {
      return std::unexpected(Error(ErrorCode::kPermissionDenied,
                                   "the allowance is above the limit of " +
                                       std::to_string(options_.max_teacher_allowance) +
                                       " tokens per member and period that the administrator set",
                                   "allowance_above_limit")
                                 .with_detail("limit", options_.max_teacher_allowance));
    }
  }
  return {};
}

Result<Group> Groups::create(const Actor& actor, GroupSettings settings, const std::optional<std::string>& owner) {
  LLMD_TRY(validate(actor, settings, nullptr));
  if (owner && !actor.admin) {
    return fail(ErrorCode::kPermissionDenied, "only an administrator gives a group to someone else", "forbidden");
  }
  auto id = accounts_.database().transaction<std::int64_t>([&](Connection& c) -> Result<std::int64_t> {
    std::int64_t owner_id = actor.user_id;
    if (owner) {
      auto found = user_named(c, *owner);
      if (!found) return std::unexpected(found.error());
      owner_id = found->first;
    }
    std::vector<Value> values = settings_values(settings);
    values.emplace_back(owner_id);
    values.emplace_back(accounts_.options().now());
    auto ins = c.exec(
        "INSERT INTO user_groups (name, models, price_ratio, rpm, tpm, allowance_amount, allowance_period, "
        "time_zone, owner_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        values);
    if (!ins) return std::unexpected(ins.error());
    return ins->last_insert_id;
  });
  if (!id) return std::unexpected(id.error());
  return get(Actor{actor.user_id, true}, *id);
}

Result<std::vector<Group>> Groups::list(const Actor& actor) {
  return accounts_.database().with_connection<std::vector<Group>>([&](Connection& c) -> Result<std::vector<Group>> {
    std::string sql = std::string("SELECT ") + kGroupColumns + " FROM user_groups g JOIN users u ON u.id = g.owner_id";
    std::vector<Value> params;
    if (!actor.admin) {
      sql += " WHERE g.owner_id = ?";
      params.emplace_back(actor.user_id);
    }
    auto rows = c.query(sql + " ORDER BY g.id", params);
    if (!rows) return std::unexpected(rows.error());
    std::vector<Group> out;
    for (const auto& r : *rows) out.push_back(group_from(r));
    return out;
  });
}

Result<Group> Groups::get(const Actor& actor, std::int64_t id) {
  return accounts_.database().with_connection<Group>([&](Connection& c) { return visible_group(c, actor, id); });
}

Result<Group> Groups::update(const Actor& actor, std::int64_t id, GroupSettings settings) {
  auto before = get(actor, id);
  if (!before) return std::unexpected(before.error());
  LLMD_TRY(validate(actor, settings, &before->settings));
  auto done = accounts_.database().with_connection<void>([&](Connection& c) -> Result<void> {
    std::vector<Value> values = settings_values(settings);
    values.emplace_back(id);
    LLMD_TRY(
        c.exec("UPDATE user_groups SET name = ?, models = ?, price_ratio = ?, rpm = ?, tpm = ?, allowance_amount = ?, "
               "allowance_period = ?, time_zone = ? WHERE id = ?",
               values));
    return {};
  });
  if (!done) return std::unexpected(done.error());
  return get(actor, id);
}

Result<void> Groups::remove(const Actor& actor, std::int64_t id) {
  const std::int64_t now = accounts_.options().now();
  return accounts_.database().transaction<void>([&](Connection& c) -> Result<void> {
    auto group = visible_group(c, actor, id);
    if (!group) return std::unexpected(group.error());
    if (group->pool > 0) {
      return fail(ErrorCode::kConflict,
                  "the group's pool still holds " + std::to_string(group->pool) + " tokens: grant them first",
                  "pool_not_empty");
    }
    auto members =
        c.query("SELECT user_id FROM group_members WHERE group_id = ? ORDER BY user_id", std::vector<Value>{id});
    if (!members) return std::unexpected(members.error());
    for (const auto& m : *members) {
      auto user =
          c.query("SELECT id FROM users WHERE id = ?" + ledger::for_update(c), std::vector<Value>{m.integer(0)});
      if (!user) return std::unexpected(user.error());
      LLMD_TRY(end_allowance(c, id, m.integer(0), now));
    }
    LLMD_TRY(c.exec("DELETE FROM group_members WHERE group_id = ?", std::vector<Value>{id}));
    LLMD_TRY(c.exec("DELETE FROM user_groups WHERE id = ?", std::vector<Value>{id}));
    return {};
  });
}

Result<Member> Groups::add_member(const Actor& actor, std::int64_t id, const std::string& username) {
  auto added = accounts_.database().transaction<Member>([&](Connection& c) -> Result<Member> {
    auto group = visible_group(c, actor, id);
    if (!group) return std::unexpected(group.error());
    auto user = user_named(c, username);
    if (!user) return std::unexpected(user.error());
    auto ins = c.exec("INSERT INTO group_members (group_id, user_id, created_at) VALUES (?, ?, ?)",
                      std::vector<Value>{id, user->first, accounts_.options().now()});
    if (!ins) {
      if (ins.error().code == ErrorCode::kConflict) {
        return fail(ErrorCode::kConflict, user->second + " is already a member", "already_member");
      }
      return std::unexpected(ins.error());
    }
    Member m;
    m.user_id = user->first;
    m.username = user->second;
    return m;
  });
  if (!added) return std::unexpected(added.error());
  LLMD_TRY(credit_allowances(accounts_.database(), added->user_id, accounts_.options().now()));
  return added;
}

Result<void> Groups::remove_member(const Actor& actor, std::int64_t id, const std::string& username) {
  const std::int64_t now = accounts_.options().now();
  return accounts_.database().transaction<void>([&](Connection& c) -> Result<void> {
    auto group = visible_group(c, actor, id);
    if (!group) return std::unexpected(group.error());
    auto user = user_named(c, username);
    if (!user) return std::unexpected(user.error());
    auto locked = c.query("SELECT id FROM users WHERE id = ?" + ledger::for_update(c), std::vector<Value>{user->first});
    if (!locked) return std::unexpected(locked.error());
    auto gone =
        c.exec("DELETE FROM group_members WHERE group_id = ? AND user_id = ?", std::vector<Value>{id, user->first});
    if (!gone) return std::unexpected(gone.error());
    if (gone->affected_rows != 1) {
      return fail(ErrorCode::kNotFound, user->second + " is not a member", "member_not_found");
    }
    return end_allowance(c, id, user->first, now);
  });
}

Result<MemberList> Groups::members(const Actor& actor, std::int64_t id) {
  auto group = get(actor, id);
  if (!group) return std::unexpected(group.error());
  const std::int64_t now = accounts_.options().now();
  LLMD_TRY(credit_all_allowances(accounts_.database(), now, id));
  const Period period = parse_period(group->settings.allowance_period).value_or(Period::kWeek);
  auto span = period_at(period, group->settings.time_zone, now);
  if (!span) return std::unexpected(span.error());
  return accounts_.database().with_connection<MemberList>([&](Connection& c) -> Result<MemberList> {
    auto rows = c.query(
        "SELECT u.id, u.username, u.balance - u.reserved, "
        "(SELECT COALESCE(SUM(a.remaining), 0) FROM allowance_credits a "
        " WHERE a.group_id = m.group_id AND a.user_id = u.id AND a.state = 'open'), "
        "(SELECT COALESCE(SUM(r.charged), 0) FROM usage_records r WHERE r.user_id = u.id AND r.created_at >= ?) "
        "FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = ? ORDER BY u.username",
        std::vector<Value>{span->start, id});
    if (!rows) return std::unexpected(rows.error());
    MemberList out;
    out.period_start = span->start;
    out.resets_at = span->end;
    for (const auto& r : *rows)
      out.members.push_back({r.integer(0), r.text(1), r.integer(2), r.integer(3), r.integer(4)});
    return out;
  });
}

Result<Member> Groups::member(const Actor& actor, std::int64_t id, const std::string& username) {
  return accounts_.database().with_connection<Member>([&](Connection& c) -> Result<Member> {
    auto group = visible_group(c, actor, id);
    if (!group) return std::unexpected(group.error());
    auto user = member_named(c, id, username);
    if (!user) return std::unexpected(user.error());
    Member m;
    m.user_id = user->first;
    m.username = user->second;
    return m;
  });
}

Result<std::int64_t> Groups::top_up_pool(std::int64_t id, std::int64_t amount, const std::string& reason,
                                         const std::string& request_id) {
  if (amount == 0 || amount > kMaxAmount || amount < -kMaxAmount) {
    return fail(ErrorCode::kInvalidArgument, "amount must be a non-zero number of tokens", "invalid_amount");
  }
  return accounts_.database().transaction<std::int64_t>([&](Connection& c) -> Result<std::int64_t> {
    auto group = visible_group(c, Actor{0, true}, id);
    if (!group) return std::unexpected(group.error());
    LLMD_TRY(write_pool(c, id, amount, "pool: " + reason, std::nullopt, request_id, accounts_.options().now()));
    return group->pool + amount;
  });
}

Result<Grant> Groups::grant(const Actor& actor, std::int64_t id, const std::string& username, std::int64_t amount,
                            const std::string& reason, const std::string& request_id) {
  if (amount <= 0 || amount > kMaxAmount) {
    return fail(ErrorCode::kInvalidArgument, "amount must be a positive number of tokens", "invalid_amount");
  }
  const std::int64_t now = accounts_.options().now();
  return accounts_.database().transaction<Grant>([&](Connection& c) -> Result<Grant> {
    auto group = visible_group(c, actor, id);
    if (!group) return std::unexpected(group.error());
    auto user = member_named(c, id, username);
    if (!user) return std::unexpected(user.error());
    // The user row first, as every balance writer locks it (accounts.h).
    LLMD_TRY(ledger::append(
        c, user->first, amount,
        Charge{0, "grant from " + group->settings.name + ": " + reason, request_id, "grant", "", std::nullopt}, now));
    LLMD_TRY(write_pool(c, id, -amount, "grant to " + user->second + ": " + reason, user->first, request_id, now));
    auto balance = ledger::read_balance(c, user->first);
    if (!balance) return std::unexpected(balance.error());
    return Grant{group->pool - amount, balance->available()};
  });
}

Result<std::vector<Group>> Groups::of_member(std::int64_t user_id) {
  LLMD_TRY(credit_allowances(accounts_.database(), user_id, accounts_.options().now()));
  return accounts_.database().with_connection<std::vector<Group>>([&](Connection& c) -> Result<std::vector<Group>> {
    auto rows = c.query(std::string("SELECT ") + kGroupColumns +
                            " FROM user_groups g JOIN users u ON u.id = g.owner_id "
                            "JOIN group_members gm ON gm.group_id = g.id WHERE gm.user_id = ? ORDER BY g.id",
                        std::vector<Value>{user_id});
    if (!rows) return std::unexpected(rows.error());
    std::vector<Group> out;
    for (const auto& r : *rows) {
      Group g = group_from(r);
      g.pool = 0;  // the owner's business
      out.push_back(std::move(g));
    }
    return out;
  });
}

Result<std::vector<std::string>> Groups::create_codes(const Actor& actor, int count, std::int64_t amount,
                                                      std::optional<std::int64_t> group_id,
                                                      std::optional<std::int64_t> expires_at,
                                                      const std::string& request_id) {
  if (count < 1 || count > 1000) return fail(ErrorCode::kInvalidArgument, "count must be 1-1000", "invalid_count");
  if (amount < 0 || amount > kMaxAmount || (amount == 0 && !group_id)) {
    return fail(ErrorCode::kInvalidArgument, "amount must be a positive number of tokens (0 only for a group's codes)",
                "invalid_amount");
  }
  const std::int64_t now = accounts_.options().now();
  if (expires_at && *expires_at <= now) {
    return fail(ErrorCode::kInvalidArgument, "expires_at must be in the future", "invalid_expires_at");
  }
  if (!actor.admin && !group_id) {
    return fail(ErrorCode::kPermissionDenied, "a teacher's codes belong to one of their groups (group_id)",
                "forbidden");
  }
  std::vector<std::string> codes;
  for (int i = 0; i < count; ++i) codes.push_back(new_code());
  auto done = accounts_.database().transaction<void>([&](Connection& c) -> Result<void> {
    if (group_id) {
      auto group = visible_group(c, actor, *group_id);
      if (!group) return std::unexpected(group.error());
      if (!actor.admin && amount > 0) {
        LLMD_TRY(write_pool(c, *group_id, -amount * count,
                            std::to_string(count) + " codes of " + std::to_string(amount), std::nullopt, request_id,
                            now));
      }
    }
    for (const auto& code : codes) {
      LLMD_TRY(c.exec(
          "INSERT INTO redemption_codes (code_hash, prefix, amount, group_id, created_by, created_at, expires_at) "
          "VALUES (?, ?, ?, ?, ?, ?, ?)",
          std::vector<Value>{core::sha256_hex(code), code.substr(0, 10), amount,
                             group_id ? Value(*group_id) : Value(nullptr), actor.user_id, now,
                             expires_at ? Value(*expires_at) : Value(nullptr)}));
    }
    return {};
  });
  if (!done) return std::unexpected(done.error());
  return codes;
}

Result<std::vector<CodeInfo>> Groups::codes(const Actor& actor, std::optional<std::int64_t> group_id) {
  if (group_id) {
    auto group = get(actor, *group_id);
    if (!group) return std::unexpected(group.error());
  }
  return accounts_.database().with_connection<std::vector<CodeInfo>>(
      [&](Connection& c) -> Result<std::vector<CodeInfo>> {
        std::string sql =
            "SELECT id, prefix, amount, group_id, created_at, expires_at, redeemed_by, redeemed_at "
            "FROM redemption_codes WHERE 1 = 1";
        std::vector<Value> params;
        if (group_id) {
          sql += " AND group_id = ?";
          params.emplace_back(*group_id);
        } else if (!actor.admin) {
          sql += " AND created_by = ?";
          params.emplace_back(actor.user_id);
        }
        auto rows = c.query(sql + " ORDER BY id DESC LIMIT 1000", params);
        if (!rows) return std::unexpected(rows.error());
        std::vector<CodeInfo> out;
        for (const auto& r : *rows) {
          out.push_back({r.integer(0), r.text(1), r.integer(2), optional_of(r, 3), r.integer(4), optional_of(r, 5),
                         optional_of(r, 6), optional_of(r, 7)});
        }
        return out;
      });
}

Result<Redeemed> Groups::redeem(std::int64_t user_id, const std::string& code, const std::string& request_id) {
  const std::string typed = normalized_code(code);
  const auto invalid = [] {
    return fail(ErrorCode::kNotFound, "no such redemption code, or it expired", "code_invalid");
  };
  if (typed.empty() || typed.size() > 64) return invalid();
  const std::string hash = core::sha256_hex(typed);
  const std::int64_t now = accounts_.options().now();
  auto redeemed = accounts_.database().transaction<Redeemed>([&](Connection& c) -> Result<Redeemed> {
    auto user = c.query("SELECT id FROM users WHERE id = ?" + ledger::for_update(c), std::vector<Value>{user_id});
    if (!user) return std::unexpected(user.error());
    if (user->empty()) return fail(ErrorCode::kNotFound, "no such user", "user_not_found");
    // The conditional update is what lets one of many racing redemptions win.
    auto claimed = c.exec(
        "UPDATE redemption_codes SET redeemed_by = ?, redeemed_at = ? WHERE code_hash = ? AND redeemed_by IS NULL "
        "AND (expires_at IS NULL OR expires_at > ?) "
        "AND (group_id IS NULL OR group_id IN (SELECT id FROM user_groups))",
        std::vector<Value>{user_id, now, hash, now});
    if (!claimed) return std::unexpected(claimed.error());
    auto rows = c.query(
        "SELECT r.amount, r.group_id, r.redeemed_by, r.redeemed_at, g.name FROM redemption_codes r "
        "LEFT JOIN user_groups g ON g.id = r.group_id WHERE r.code_hash = ?",
        std::vector<Value>{hash});
    if (!rows) return std::unexpected(rows.error());
    if (rows->empty()) return invalid();
    const Row& r = rows->front();
    if (claimed->affected_rows != 1) {
      if (!r.is_null(2)) return fail(ErrorCode::kConflict, "this code was already redeemed", "code_used");
      return invalid();
    }
    Redeemed out;
    out.tokens_added = r.integer(0);
    out.group_id = optional_of(r, 1);
    out.group_name = r.text(4);
    if (out.tokens_added > 0) {
      LLMD_TRY(ledger::append(c, user_id, out.tokens_added,
                              Charge{0, "redeemed code " + typed.substr(0, 10), request_id, "code", "", std::nullopt},
                              now));
    }
    if (out.group_id) {
      auto joined = c.exec("INSERT INTO group_members (group_id, user_id, created_at) VALUES (?, ?, ?)",
                           std::vector<Value>{*out.group_id, user_id, now});
      if (!joined && joined.error().code != ErrorCode::kConflict) return std::unexpected(joined.error());
    }
    return out;
  });
  if (!redeemed) return std::unexpected(redeemed.error());
  if (redeemed->group_id) LLMD_TRY(credit_allowances(accounts_.database(), user_id, now));
  auto balance = accounts_.balance(user_id);
  if (!balance) return std::unexpected(balance.error());
  redeemed->available = balance->available();
  return redeemed;
}

}  // namespace llmd::billing
