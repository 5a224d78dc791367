// Groups, allowances, scoped key budgets and redemption codes (issue 19),
// on SQLite and on a private MariaDB server; "two instances" are two
// Database pools (and Accounts) on one MariaDB database.
#include "billing/groups.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "auth/users.h"
#include "billing/calendar.h"
#include "billing/call_scope.h"
#include "billing/meter.h"
#include "support/backends.h"
#include "support/test_support.h"

namespace llmd::billing {
namespace {

// Unix times used below (checked against Python's zoneinfo).
constexpr std::int64_t kSunday2026Dec06Noon = 1796558400;    // 2026-12-06T12:00Z, a Sunday
constexpr std::int64_t kMonday2026Dec07 = 1796601600;        // 2026-12-07T00:00Z
constexpr std::int64_t kBerlinMonday2026Mar23 = 1774220400;  // 00:00 CET
constexpr std::int64_t kBerlinMonday2026Mar30 = 1774821600;  // 00:00 CEST: the clocks went forward on the 29th
constexpr std::int64_t kBerlinSunday2026Mar29 = 1774738800;  // 00:00 CET
constexpr std::int64_t kBerlinMonday2026Oct19 = 1792360800;  // 00:00 CEST
constexpr std::int64_t kBerlinMonday2026Oct26 = 1792969200;  // 00:00 CET: the clocks went back on the 25th

TEST(Calendar, WeeksStartOnMondayAtLocalMidnight) {
  auto week = period_at(Period::kWeek, "UTC", kSunday2026Dec06Noon);
  ASSERT_TRUE(week);
  EXPECT_EQ(week->key, "2026-11-30");
  EXPECT_EQ(week->end, kMonday2026Dec07);
  EXPECT_EQ(week->end - week->start, 7 * 86400);
  auto next = period_at(Period::kWeek, "UTC", kMonday2026Dec07);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->key, "2026-12-07");
  EXPECT_EQ(next->start, kMonday2026Dec07);
}

TEST(Calendar, DstChangesMoveTheBoundaryWithTheClock) {
  auto spring = period_at(Period::kWeek, "Europe/Berlin", kBerlinMonday2026Mar30 - 1);
  ASSERT_TRUE(spring);
  EXPECT_EQ(spring->key, "2026-03-23");
  EXPECT_EQ(spring->start, kBerlinMonday2026Mar23);
  EXPECT_EQ(spring->end, kBerlinMonday2026Mar30);
  EXPECT_EQ(spring->end - spring->start, 7 * 86400 - 3600);
  auto autumn = period_at(Period::kWeek, "Europe/Berlin", kBerlinMonday2026Oct26 - 1);
  ASSERT_TRUE(autumn);
  EXPECT_EQ(autumn->start, kBerlinMonday2026Oct19);
  EXPECT_EQ(autumn->end - autumn->start, 7 * 86400 + 3600);
  auto short_day = period_at(Period::kDay, "Europe/Berlin", kBerlinSunday2026Mar29 + 3600);
  ASSERT_TRUE(short_day);
  EXPECT_EQ(short_day->key, "2026-03-29");
  EXPECT_EQ(short_day->end - short_day->start, 23 * 3600);
}

TEST(Calendar, MonthsAndUnknownZones) {
  auto month = period_at(Period::kMonth, "Asia/Shanghai", kSunday2026Dec06Noon);
  ASSERT_TRUE(month);
  EXPECT_EQ(month->key, "2026-12-01");
  EXPECT_EQ(month->end - month->start, 31 * 86400);
  EXPECT_FALSE(valid_time_zone("Mars/Olympus"));
  auto bad = period_at(Period::kDay, "Mars/Olympus", 0);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().reason, "invalid_time_zone");
}

class GroupsTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    url_ = testing::fresh_database_url(GetParam(), dir_);
    db_ = open_db();
    ASSERT_TRUE(db_);
    ASSERT_TRUE(db_->migrate());
    users_ = std::make_unique<auth::UserStore>(*db_);
    accounts_ = std::make_unique<Accounts>(*db_, "instance-a", options("UTC"));
    groups_ = std::make_unique<Groups>(*accounts_, GroupsOptions{500});
    admin_ = users_->create("admin", "a@b.cn", "$2b$10$x", "admin", 0).value().id;
    teacher_ = users_->create("teacher", "t@b.cn", "$2b$10$x", "teacher", 0).value().id;
    other_teacher_ = users_->create("teacher2", "t2@b.cn", "$2b$10$x", "teacher", 0).value().id;
    alice_ = users_->create("alice", "al@b.cn", "$2b$10$x", "user", 1000).value().id;
  }

  std::unique_ptr<store::Database> open_db() {
    auto db = store::Database::open(url_, 8);
    EXPECT_TRUE(db) << db.error().message;
    return db ? std::move(*db) : nullptr;
  }
  AccountsOptions options(const std::string& zone) {
    return AccountsOptions{zone, [this] { return now_.load(); }};
  }
  Actor teacher() const { return {teacher_, false}; }
  std::int64_t available(std::int64_t user) { return accounts_->balance(user).value().available(); }
  std::int64_t count(const std::string& sql) {
    auto rows = db_->with_connection<std::vector<store::Row>>([&](store::Connection& c) { return c.query(sql); });
    EXPECT_TRUE(rows);
    return rows ? rows->front().integer(0) : -1;
  }
  // balance == SUM(ledger), reserved == SUM(pending), for every user.
  void expect_books_balance() {
    EXPECT_EQ(count("SELECT COUNT(*) FROM users u WHERE balance <> (SELECT COALESCE(SUM(delta), 0) FROM ledger l "
                    "WHERE l.user_id = u.id)"),
              0);
    EXPECT_EQ(count("SELECT COUNT(*) FROM users u WHERE reserved <> (SELECT COALESCE(SUM(amount), 0) FROM "
                    "reservations r WHERE r.user_id = u.id AND r.state = 'pending')"),
              0);
  }
  Group weekly_group(std::int64_t amount, const std::string& zone = "UTC") {
    GroupSettings s;
    s.name = "Class 1A";
    s.allowance_amount = amount;
    s.allowance_period = "week";
    s.time_zone = zone;
    return groups_->create(teacher(), s, std::nullopt).value();
  }
  std::int64_t key_with(auth::KeyScopes scopes) {
    return users_->add_key(alice_, "exam", "hash-" + std::to_string(++keys_), "sk-test", scopes).value().id;
  }

  testing::TempDir dir_;
  std::string url_;
  std::atomic<std::int64_t> now_{kSunday2026Dec06Noon};
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<auth::UserStore> users_;
  std::unique_ptr<Accounts> accounts_;
  std::unique_ptr<Groups> groups_;
  Pricing pricing_;
  std::int64_t admin_ = 0, teacher_ = 0, other_teacher_ = 0, alice_ = 0;
  int keys_ = 0;
};

TEST_P(GroupsTest, KeyBudgetHoldsReservationsAndCharges) {
  auth::KeyScopes scopes;
  scopes.budget = 100;
  const std::int64_t key = key_with(scopes);
  auto first = accounts_->reserve(alice_, 60, "r1", key);
  ASSERT_TRUE(first) << first.error().message;
  auto second = accounts_->reserve(alice_, 60, "r2", key);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().reason, "key_budget_exhausted");
  EXPECT_EQ(available(alice_), 940) << "the refused reservation holds nothing";
  ASSERT_TRUE(accounts_->settle(*first, {50, "chat", "r1", "chat", "m", std::nullopt}));
  auto third = accounts_->reserve(alice_, 50, "r3", key);
  ASSERT_TRUE(third) << third.error().message;
  // Settling more than the key has left charges only what it has left.
  auto settled = accounts_->settle(*third, {80, "chat", "r3", "chat", "m", std::nullopt});
  ASSERT_TRUE(settled);
  EXPECT_EQ(settled->charged, 50);
  EXPECT_EQ(count("SELECT budget_used FROM api_keys WHERE id = " + std::to_string(key)), 100);
  EXPECT_EQ(count("SELECT -SUM(delta) FROM ledger WHERE api_key_id = " + std::to_string(key)), 100);
  EXPECT_EQ(count("SELECT budget_reserved FROM api_keys WHERE id = " + std::to_string(key)), 0);
  // Spending without a reservation is held to the key too.
  auto spent = accounts_->spend(alice_, {1, "convert", "r4", "convert", "", key});
  ASSERT_FALSE(spent);
  EXPECT_EQ(spent.error().reason, "key_budget_exhausted");
  expect_books_balance();
}

TEST_P(GroupsTest, KeyBudgetStartsAgainEachPeriod) {
  auth::KeyScopes scopes;
  scopes.budget = 100;
  scopes.budget_period = "day";
  const std::int64_t key = key_with(scopes);
  ASSERT_TRUE(accounts_->spend(alice_, {100, "convert", "r1", "convert", "", key}));
  auto refused = accounts_->reserve(alice_, 1, "r2", key);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().reason, "key_budget_exhausted") << refused.error().message;
  bool says_when = false;
  for (const auto& [name, value] : refused.error().details)
    says_when |= name == "resets_at" && value == kMonday2026Dec07;
  EXPECT_TRUE(says_when) << refused.error().message;
  now_ = kMonday2026Dec07;  // the next day
  auto again = accounts_->reserve(alice_, 100, "r3", key);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(count("SELECT budget_used FROM api_keys WHERE id = " + std::to_string(key)), 0);
}

TEST_P(GroupsTest, FiftyParallelCallsOnTwoInstancesFitAKeyBudgetOfTen) {
  auth::KeyScopes scopes;
  scopes.budget = 90;
  const std::int64_t key = key_with(scopes);
  auto other_db = open_db();
  ASSERT_TRUE(other_db);
  Accounts other(*other_db, "instance-b", options("UTC"));
  std::atomic<int> ok{0}, refused{0}, failed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&, i] {
      Accounts& a = i % 2 ? *accounts_ : other;
      const MeterOpen what{alice_, "req-" + std::to_string(i), "convert", "", 3, "convert", key};
      auto call = MeteredCall::open(a, pricing_, what);  // 3 x 1.2 + 5 = 9
      if (!call) {
        (call.error().reason == "key_budget_exhausted" ? refused : failed)++;
        return;
      }
      auto settled = call->settle_in_full(3, {0, 0, 200, "", "/test", 0});
      (settled ? ok : failed)++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 10);
  EXPECT_EQ(refused.load(), 40);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(available(alice_), 1000 - 90);
  EXPECT_EQ(count("SELECT budget_used FROM api_keys WHERE id = " + std::to_string(key)), 90);
  EXPECT_EQ(count("SELECT -SUM(delta) FROM ledger WHERE api_key_id = " + std::to_string(key)), 90);
  expect_books_balance();
}

TEST_P(GroupsTest, AGroupsPriceRatioScalesEveryCharge) {
  GroupSettings s;
  s.name = "Half price";
  s.price_ratio = 0.5;
  auto group = groups_->create({admin_, true}, s, std::string("teacher"));
  ASSERT_TRUE(group) << group.error().message;
  ASSERT_TRUE(groups_->add_member({admin_, true}, group->id, "alice"));
  auto call = MeteredCall::open(*accounts_, pricing_, {alice_, "r", "homework", "m", 100, ""});
  ASSERT_TRUE(call);
  EXPECT_EQ(call->reservation().amount, 110);  // ceil((100 x 2.0 + 20) x 0.5)
  auto settled = call->settle({31, 0, 200, "", "/r", 0});
  ASSERT_TRUE(settled);
  EXPECT_EQ(settled->charged, 41);  // ceil(82 x 0.5)
}

TEST_P(GroupsTest, AModelOutsideTheGroupsListIsRefusedAndNothingHeld) {
  GroupSettings s;
  s.name = "Only small";
  s.models = std::vector<std::string>{"small"};
  auto group = groups_->create(teacher(), s, std::nullopt);
  ASSERT_TRUE(group);
  ASSERT_TRUE(groups_->add_member(teacher(), group->id, "alice"));
  auto refused = MeteredCall::open(*accounts_, pricing_, {alice_, "r", "chat", "large", 10, ""});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(refused.error().reason, "model_not_allowed");
  EXPECT_NE(refused.error().message.find("large"), std::string::npos);
  EXPECT_EQ(accounts_->balance(alice_)->reserved, 0);
  EXPECT_TRUE(MeteredCall::open(*accounts_, pricing_, {alice_, "r", "chat", "small", 10, ""}));
}

TEST_P(GroupsTest, AGroupsTokensPerMinuteHoldBackTheNextCallUntilTheMinutePasses) {
  GroupSettings s;
  s.name = "Steady";
  s.tpm = 50;
  auto group = groups_->create(teacher(), s, std::nullopt);
  ASSERT_TRUE(group);
  ASSERT_TRUE(groups_->add_member(teacher(), group->id, "alice"));
  EXPECT_TRUE(MeteredCall::open(*accounts_, pricing_, {alice_, "r1", "chat", "m", 10, ""}));
  ASSERT_TRUE(accounts_->record_usage({"r1", alice_, "/v1/chat/completions", "v1", "m", "", 40, 20, 60, 200, 5}));
  auto held_back = MeteredCall::open(*accounts_, pricing_, {alice_, "r2", "chat", "m", 10, ""});
  ASSERT_FALSE(held_back);
  EXPECT_EQ(held_back.error().code, ErrorCode::kRateLimited);
  ASSERT_TRUE(held_back.error().retry_after_s);
  EXPECT_EQ(*held_back.error().retry_after_s, 60);
  now_ += 61;
  EXPECT_TRUE(MeteredCall::open(*accounts_, pricing_, {alice_, "r3", "chat", "m", 10, ""}));
}

TEST_P(GroupsTest, AllowanceIsCreditedOncePerPeriodAndWhatIsLeftLapses) {
  const Group group = weekly_group(300);
  ASSERT_TRUE(groups_->add_member(teacher(), group.id, "alice"));
  EXPECT_EQ(available(alice_), 1300) << "a new member gets this period's allowance at once";
  ASSERT_TRUE(accounts_->spend(alice_, {100, "chat", "r1", "chat", "", std::nullopt}));
  auto open = open_allowances(*db_, alice_);
  ASSERT_TRUE(open);
  ASSERT_EQ(open->size(), 1u);
  EXPECT_EQ(open->front().remaining, 200) << "a charge spends the allowance first";
  EXPECT_EQ(credit_allowances(*db_, alice_, now_).value(), 0) << "the same period is not credited twice";

  now_ = kMonday2026Dec07;
  EXPECT_EQ(credit_allowances(*db_, alice_, now_).value(), 1);
  EXPECT_EQ(available(alice_), 1300 - 100 - 200 + 300) << "the 200 left lapsed, the new 300 came";
  EXPECT_EQ(credit_all_allowances(*db_, now_).value(), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM allowance_credits"), 2);
  // A call the balance cannot pay says when the next allowance comes.
  auto refused = MeteredCall::open(*accounts_, pricing_, {alice_, "r", "chat", "m", 5000, ""});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().reason, "insufficient_tokens");
  bool says_when = false;
  for (const auto& [name, value] : refused.error().details) {
    says_when |= name == "next_allowance_at" && value == kMonday2026Dec07 + 7 * 86400;
  }
  EXPECT_TRUE(says_when) << refused.error().message;
  EXPECT_EQ(count("SELECT COUNT(*) FROM ledger WHERE reason LIKE 'allowance lapsed%'"), 1);
  expect_books_balance();
}

TEST_P(GroupsTest, TwoInstancesAndARestartAtTheBoundaryCreditOnce) {
  const Group group = weekly_group(300);
  for (const char* name : {"bob", "carol", "dave"}) {
    users_->create(name, std::string(name) + "@b.cn", "$2b$10$x", "user", 0).value();
    ASSERT_TRUE(groups_->add_member(teacher(), group.id, name));
  }
  ASSERT_TRUE(groups_->add_member(teacher(), group.id, "alice"));
  now_ = kMonday2026Dec07;  // the boundary: every instance notices at once
  auto db_b = open_db();
  ASSERT_TRUE(db_b);
  std::atomic<int> credited{0}, errors{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      // Instance A's and B's sweeps and calls, and a restarted A (a new pool).
      std::unique_ptr<store::Database> restarted = i == 7 ? open_db() : nullptr;
      store::Database& db = i == 7 ? *restarted : (i % 2 ? *db_ : *db_b);
      auto n = i % 3 == 0 ? credit_allowances(db, alice_, now_) : credit_all_allowances(db, now_);
      if (n)
        credited += *n;
      else
        errors++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(credited.load(), 4) << "one credit per member for the new week";
  EXPECT_EQ(count("SELECT COUNT(*) FROM allowance_credits WHERE period_key = '2026-12-07'"), 4);
  EXPECT_EQ(count("SELECT COUNT(*) FROM ledger WHERE reason LIKE 'allowance:%'"), 8);  // 4 last week, 4 this
  expect_books_balance();
}

TEST_P(GroupsTest, AllowanceFollowsTheGroupsTimeZoneAcrossDst) {
  now_ = kBerlinMonday2026Mar30 - 3600;  // Sunday 23:00 CEST
  const Group group = weekly_group(300, "Europe/Berlin");
  ASSERT_TRUE(groups_->add_member(teacher(), group.id, "alice"));
  now_ = kBerlinMonday2026Mar30 - 1;
  EXPECT_EQ(credit_allowances(*db_, alice_, now_).value(), 0);
  now_ = kBerlinMonday2026Mar30;  // local midnight, 23:00 the day before in UTC after the spring change
  EXPECT_EQ(credit_allowances(*db_, alice_, now_).value(), 1);
  now_ = kBerlinMonday2026Oct26 - 1;  // months later, the autumn change
  EXPECT_EQ(credit_allowances(*db_, alice_, now_).value(), 1);
  now_ = kBerlinMonday2026Oct26;
  EXPECT_EQ(credit_allowances(*db_, alice_, now_).value(), 1);
  EXPECT_EQ(credit_allowances(*db_, alice_, now_ + 3600).value(), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM allowance_credits"), 4);
  expect_books_balance();
}

TEST_P(GroupsTest, ACodeRacedByFiftyRedemptionsOnTwoInstancesCreditsOnce) {
  auto codes = groups_->create_codes({admin_, true}, 1, 100, std::nullopt, std::nullopt, "r");
  ASSERT_TRUE(codes);
  ASSERT_EQ(codes->size(), 1u);
  auto db_b = open_db();
  ASSERT_TRUE(db_b);
  Accounts accounts_b(*db_b, "instance-b", options("UTC"));
  Groups groups_b(accounts_b, GroupsOptions{500});
  std::atomic<int> ok{0}, used{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&, i] {
      auto r = (i % 2 ? *groups_ : groups_b).redeem(alice_, codes->front(), "r" + std::to_string(i));
      if (r) {
        ok++;
        EXPECT_EQ(r->tokens_added, 100);
      } else {
        (r.error().reason == "code_used" ? used : other)++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(used.load(), 49);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(available(alice_), 1100);
  EXPECT_EQ(count("SELECT COUNT(*) FROM redemption_codes WHERE code_hash = '" + codes->front() + "'"), 0)
      << "only a hash is stored";
  auto unknown = groups_->redeem(alice_, "LLMD-00000-00000-00000-00000", "r");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().reason, "code_invalid");
  expect_books_balance();
}

TEST_P(GroupsTest, AGroupCodeJoinsTheGroupAndATeachersCodesComeOutOfThePool) {
  const Group group = weekly_group(300);
  auto short_pool = groups_->create_codes(teacher(), 2, 50, group.id, std::nullopt, "r");
  ASSERT_FALSE(short_pool);
  EXPECT_EQ(short_pool.error().reason, "insufficient_pool");
  ASSERT_EQ(groups_->top_up_pool(group.id, 1000, "term", "r").value(), 1000);
  auto codes = groups_->create_codes(teacher(), 2, 50, group.id, now_ + 3600, "r");
  ASSERT_TRUE(codes);
  EXPECT_EQ(groups_->get(teacher(), group.id)->pool, 900);
  auto redeemed = groups_->redeem(alice_, " " + codes->front() + " ", "r");  // as pasted
  ASSERT_TRUE(redeemed) << redeemed.error().message;
  EXPECT_EQ(redeemed->group_id, group.id);
  EXPECT_EQ(available(alice_), 1000 + 50 + 300) << "the code and this week's allowance";
  now_ += 7200;  // past the codes' expiry
  auto expired = groups_->redeem(alice_, codes->back(), "r");
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.error().reason, "code_invalid");
  expect_books_balance();
}

TEST_P(GroupsTest, ATeacherSeesAndChangesOnlyTheirOwnGroups) {
  const Group group = weekly_group(300);
  const Actor stranger{other_teacher_, false};
  const auto not_found = [](const auto& r) { return !r && r.error().reason == "group_not_found"; };
  EXPECT_TRUE(not_found(groups_->get(stranger, group.id)));
  EXPECT_TRUE(not_found(groups_->update(stranger, group.id, group.settings)));
  EXPECT_TRUE(not_found(groups_->remove(stranger, group.id)));
  EXPECT_TRUE(not_found(groups_->members(stranger, group.id)));
  EXPECT_TRUE(not_found(groups_->add_member(stranger, group.id, "alice")));
  EXPECT_TRUE(not_found(groups_->remove_member(stranger, group.id, "alice")));
  EXPECT_TRUE(not_found(groups_->grant(stranger, group.id, "alice", 1, "x", "r")));
  EXPECT_TRUE(not_found(groups_->codes(stranger, group.id)));
  EXPECT_TRUE(not_found(groups_->create_codes(stranger, 1, 1, group.id, std::nullopt, "r")));
  EXPECT_TRUE(groups_->list(stranger)->empty());
  EXPECT_EQ(groups_->list({admin_, true})->size(), 1u);
  GroupSettings cheaper = group.settings;
  cheaper.price_ratio = 0.1;
  auto ratio = groups_->update(teacher(), group.id, cheaper);
  ASSERT_FALSE(ratio);
  EXPECT_EQ(ratio.error().code, ErrorCode::kPermissionDenied);
  GroupSettings generous = group.settings;
  generous.allowance_amount = 501;
  auto above = groups_->update(teacher(), group.id, generous);
  ASSERT_FALSE(above);
  EXPECT_EQ(above.error().reason, "allowance_above_limit");
  EXPECT_TRUE(groups_->update({admin_, true}, group.id, generous)) << "an administrator is not limited";
}

TEST_P(GroupsTest, GrantsMoveTokensFromThePoolAndLeavingLapsesTheAllowance) {
  const Group group = weekly_group(300);
  ASSERT_TRUE(groups_->add_member(teacher(), group.id, "alice"));
  auto short_pool = groups_->grant(teacher(), group.id, "alice", 10, "prize", "r");
  ASSERT_FALSE(short_pool);
  EXPECT_EQ(short_pool.error().reason, "insufficient_pool");
  ASSERT_TRUE(groups_->top_up_pool(group.id, 100, "term", "r"));
  auto grant = groups_->grant(teacher(), group.id, "alice", 60, "prize", "r");
  ASSERT_TRUE(grant);
  EXPECT_EQ(grant->pool, 40);
  EXPECT_EQ(grant->member_available, 1000 + 300 + 60);
  EXPECT_EQ(count("SELECT SUM(delta) FROM group_ledger"), 40);
  auto members = groups_->members(teacher(), group.id);
  ASSERT_TRUE(members);
  ASSERT_EQ(members->members.size(), 1u);
  EXPECT_EQ(members->members.front().allowance_left, 300);
  EXPECT_EQ(members->resets_at, kMonday2026Dec07);
  ASSERT_TRUE(groups_->remove_member(teacher(), group.id, "alice"));
  EXPECT_EQ(available(alice_), 1060) << "what was left of the allowance lapsed";
  EXPECT_FALSE(groups_->remove(teacher(), group.id)) << "the pool still holds 40";
  expect_books_balance();
}

INSTANTIATE_TEST_SUITE_P(Backends, GroupsTest, ::testing::ValuesIn(testing::all_backends()), testing::backend_name);

}  // namespace
}  // namespace llmd::billing
