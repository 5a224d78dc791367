// Groups (classes) and their money (SPEC §4.5b): settings, members, the
// group's pool and grants from it, redemption codes. A teacher acts on the
// groups they own and no other (another's group is kNotFound, as if absent);
// an administrator on all. Knows nothing of HTTP. Blocking (database): call
// on the worker pool. Thread-safe.
//
//   Groups groups(accounts, {.max_teacher_allowance = 10000});
//   auto g = groups.create(teacher, {.name = "Class 1A", .allowance_amount = 5000, .allowance_period = "week"});
//   groups.add_member(teacher, g->id, "alice");
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "billing/accounts.h"
#include "billing/allowances.h"
#include "core/error.h"

namespace llmd::billing {

// Who acts on a group.
struct Actor {
  std::int64_t user_id = 0;
  bool admin = false;  // else a teacher (the routes let no one else in)
};

// What a group is set to. Validated by Groups: name 1-100 characters;
// models 1-128 characters each, at most 100 (nullopt = every model);
// price_ratio 0-100; rpm, tpm >= 0 (0 = none); allowance_amount >= 0 with a
// period (day | week | month) when > 0; time_zone an IANA name.
struct GroupSettings {
  std::string name;
  std::optional<std::vector<std::string>> models;
  double price_ratio = 1.0;
  std::int64_t rpm = 0;
  std::int64_t tpm = 0;
  std::int64_t allowance_amount = 0;
  std::string allowance_period;  // "" when allowance_amount is 0
  std::string time_zone = "UTC";
};

struct Group {
  std::int64_t id = 0;
  GroupSettings settings;
  std::int64_t owner_id = 0;
  std::string owner_name;
  std::int64_t pool = 0;  // tokens the owner may grant to members
  std::int64_t members = 0;
  std::int64_t created_at = 0;
};

struct Member {
  std::int64_t user_id = 0;
  std::string username;
  std::int64_t tokens = 0;            // available balance
  std::int64_t allowance_left = 0;    // of this group's current allowance
  std::int64_t used_this_period = 0;  // tokens charged since the period started
};

struct MemberList {
  std::vector<Member> members;
  std::optional<std::int64_t> period_start, resets_at;  // the allowance's period (or the week's)
};

struct Grant {
  std::int64_t pool = 0;              // the group's pool after
  std::int64_t member_available = 0;  // the member's available balance after
};

struct GroupsOptions {
  // The most a teacher may set as a member's allowance per period
  // (administrators are not limited).
  std::int64_t max_teacher_allowance = 10000;
};

// A redemption code as listed (never its text: only a hash is stored).
struct CodeInfo {
  std::int64_t id = 0;
  std::string prefix;
  std::int64_t amount = 0;
  std::optional<std::int64_t> group_id;
  std::int64_t created_at = 0;
  std::optional<std::int64_t> expires_at;
  std::optional<std::int64_t> redeemed_by;
  std::optional<std::int64_t> redeemed_at;
};

struct Redeemed {
  std::int64_t tokens_added = 0;
  std::int64_t available = 0;
  std::optional<std::int64_t> group_id;  // the code's group, which the user is now a member of
  std::string group_name;
};

class Groups {
 public:
  Groups(Accounts& accounts, GroupsOptions options);

  // Errors of every call: kNotFound (group_not_found) for a group the actor
  // may not see; kInvalidArgument naming a bad field; kPermissionDenied for
  // what only an administrator may do (a price ratio other than 1, an
  // allowance above max_teacher_allowance: allowance_above_limit).
  // `owner`: the owning user's name (administrators only; default the actor).
  Result<Group> create(const Actor& actor, GroupSettings settings, const std::optional<std::string>& owner);
  Result<std::vector<Group>> list(const Actor& actor);
  Result<Group> get(const Actor& actor, std::int64_t id);
  // Replaces the settings. A new allowance takes effect from its next period
  // (a change of period kind: at once, the old one lapsing).
  Result<Group> update(const Actor& actor, std::int64_t id, GroupSettings settings);
  // kConflict (pool_not_empty) while the pool holds tokens. Members'
  // allowances lapse; codes bound to the group stop being redeemable.
  Result<void> remove(const Actor& actor, std::int64_t id);

  // kNotFound (user_not_found) for an unknown name; kConflict
  // (already_member). The member's allowance is credited at once.
  Result<Member> add_member(const Actor& actor, std::int64_t id, const std::string& username);
  // What is left of the member's allowance of this group lapses now.
  // kNotFound (member_not_found) when not a member.
  Result<void> remove_member(const Actor& actor, std::int64_t id, const std::string& username);
  Result<MemberList> members(const Actor& actor, std::int64_t id);
  // The member named `username` (its id and name only). kNotFound
  // (user_not_found, member_not_found) when there is none.
  Result<Member> member(const Actor& actor, std::int64_t id, const std::string& username);

  // Adds `amount` (or takes, < 0, as much as the pool holds) to the pool.
  // Administrators only (the caller checks). Returns the pool after.
  Result<std::int64_t> top_up_pool(std::int64_t id, std::int64_t amount, const std::string& reason,
                                   const std::string& request_id);
  // Moves `amount` > 0 from the pool to a member (a group_ledger row and a
  // ledger row). kPaymentRequired (insufficient_pool) when the pool is short.
  Result<Grant> grant(const Actor& actor, std::int64_t id, const std::string& username, std::int64_t amount,
                      const std::string& reason, const std::string& request_id);

  // The groups `user_id` belongs to (the member's own view: no pool), with
  // the allowances credited up to now.
  Result<std::vector<Group>> of_member(std::int64_t user_id);

  // `count` (1-1000) single-use codes worth `amount` >= 0 each, optionally
  // bound to a group (redeeming joins it; amount 0 only then) and expiring.
  // A teacher must bind them to an owned group, whose pool pays count x
  // amount at once (kPaymentRequired insufficient_pool). Returns the codes'
  // text, which nothing keeps.
  Result<std::vector<std::string>> create_codes(const Actor& actor, int count, std::int64_t amount,
                                                std::optional<std::int64_t> group_id,
                                                std::optional<std::int64_t> expires_at, const std::string& request_id);
  // Codes the actor made (administrators: all), of one group when given.
  Result<std::vector<CodeInfo>> codes(const Actor& actor, std::optional<std::int64_t> group_id);
  // Redeems `code` for `user_id`, at most once however many race it.
  // Errors: kNotFound (code_invalid) unknown, expired or its group deleted;
  // kConflict (code_used).
  Result<Redeemed> redeem(std::int64_t user_id, const std::string& code, const std::string& request_id);

 private:
  Result<void> validate(const Actor& actor, const GroupSettings& settings, const GroupSettings* before) const;

  Accounts& accounts_;
  GroupsOptions options_;
};

}  // namespace llmd::billing
