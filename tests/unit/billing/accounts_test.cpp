#include "billing/accounts.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "auth/users.h"
#include "support/backends.h"
#include "support/test_support.h"

namespace llmd::billing {
namespace {

// Every test runs on SQLite and on a private MariaDB server.
class AccountsTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    auto db = store::Database::open(testing::fresh_database_url(GetParam(), dir_), 8);
    ASSERT_TRUE(db) << db.error().message;
    db_ = std::move(*db);
    ASSERT_TRUE(db_->migrate());
    users_ = std::make_unique<auth::UserStore>(*db_);
    accounts_ = std::make_unique<Accounts>(*db_, "test-instance");
    user_ = users_->create("alice", "a@b.cn", "$2b$10$x", "user", 100).value().id;
  }

  // balance == SUM(ledger) and reserved == SUM(pending reservations), always.
  void expect_invariants() {
    auto rows = db_->with_connection<std::vector<store::Row>>([&](store::Connection& c) {
      return c.query(
          "SELECT u.balance, (SELECT COALESCE(SUM(delta),0) FROM ledger WHERE user_id = u.id), "
          "u.reserved, (SELECT COALESCE(SUM(amount),0) FROM reservations WHERE user_id = u.id AND "
          "state = 'pending') FROM users u");
    });
    ASSERT_TRUE(rows);
    for (const auto& r : *rows) {
      EXPECT_EQ(r.integer(0), r.integer(1)) << "balance != sum(ledger)";
      EXPECT_EQ(r.integer(2), r.integer(3)) << "reserved != sum(pending)";
      EXPECT_GE(r.integer(0) - r.integer(2), 0) << "available < 0";
    }
  }

  testing::TempDir dir_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<auth::UserStore> users_;
  std::unique_ptr<Accounts> accounts_;
  std::int64_t user_ = 0;
};

TEST_P(AccountsTest, NewUserStartsWithInitialTokensInTheLedger) {
  EXPECT_EQ(accounts_->balance(user_)->available(), 100);
  auto ledger = accounts_->ledger(user_, 10);
  ASSERT_TRUE(ledger);
  ASSERT_EQ(ledger->size(), 1u);
  EXPECT_EQ(ledger->front().delta, 100);
  expect_invariants();
}

TEST_P(AccountsTest, ReserveSettleChargesActualAndReleasesTheRest) {
  auto r = accounts_->reserve(user_, 60, "req-1");
  ASSERT_TRUE(r);
  EXPECT_EQ(accounts_->balance(user_)->available(), 40);
  auto settled = accounts_->settle(*r, {25, "chat", "req-1", "chat", "m"});
  ASSERT_TRUE(settled);
  EXPECT_EQ(settled->charged, 25);
  EXPECT_EQ(settled->available, 75);
  EXPECT_EQ(accounts_->balance(user_)->balance, 75);
  EXPECT_EQ(accounts_->balance(user_)->reserved, 0);
  expect_invariants();
}

TEST_P(AccountsTest, ResizeGrowsOnlyIntoTheFreeBalanceAndSettlesWhatTheRowHolds) {
  auto r = accounts_->reserve(user_, 30, "job-1");
  ASSERT_TRUE(r);
  auto other = accounts_->reserve(user_, 20, "chat-1");
  ASSERT_TRUE(other);
  auto grown = accounts_->resize(*r, 70);  // 30 held + 50 free: 80 at most
  ASSERT_TRUE(grown) << grown.error().message;
  EXPECT_EQ(grown->amount, 70);
  EXPECT_EQ(accounts_->balance(user_)->available(), 10);
  expect_invariants();
  auto too_far = accounts_->resize(*grown, 81);
  ASSERT_FALSE(too_far);
  EXPECT_EQ(too_far.error().code, ErrorCode::kPaymentRequired);
  EXPECT_EQ(accounts_->balance(user_)->available(), 10);  // nothing changed
  auto shrunk = accounts_->resize(*grown, 40);
  ASSERT_TRUE(shrunk);
  EXPECT_EQ(accounts_->balance(user_)->available(), 40);
  expect_invariants();
  // Settling through the stale handle (amount 30) still frees what the row holds (40).
  auto settled = accounts_->settle(*r, {35, "subtitle", "job-1", "subtitle", "m"});
  ASSERT_TRUE(settled);
  EXPECT_EQ(settled->charged, 35);
  ASSERT_TRUE(accounts_->release(*other));
  EXPECT_EQ(accounts_->balance(user_)->available(), 65);
  EXPECT_EQ(accounts_->balance(user_)->reserved, 0);
  // A closed reservation cannot be resized.
  auto closed = accounts_->resize(*shrunk, 10);
  ASSERT_FALSE(closed);
  EXPECT_EQ(closed.error().code, ErrorCode::kConflict);
  expect_invariants();
}

TEST_P(AccountsTest, SettleChargesAnExcessOverTheReservationFromTheFreeBalance) {
  auto r = accounts_->reserve(user_, 30, "req");
  ASSERT_TRUE(r);
  auto settled = accounts_->settle(*r, {45, "chat", "req", "chat", ""});
  ASSERT_TRUE(settled);
  EXPECT_EQ(settled->charged, 45);
  EXPECT_EQ(settled->available, 55);
  expect_invariants();
}

TEST_P(AccountsTest, SettleNeverDrivesTheBalanceBelowZero) {
  auto other = accounts_->reserve(user_, 20, "other");  // held by another call in flight
  ASSERT_TRUE(other);
  auto r = accounts_->reserve(user_, 30, "req");
  ASSERT_TRUE(r);
  auto settled = accounts_->settle(*r, {500, "chat", "req", "chat", ""});
  ASSERT_TRUE(settled);
  EXPECT_EQ(settled->charged, 80);  // all but what the other call holds
  EXPECT_EQ(settled->available, 0);
  EXPECT_EQ(accounts_->balance(user_)->balance, 20);
  expect_invariants();
}

TEST_P(AccountsTest, SettlingTwiceIsRefusedAndChangesNothing) {
  auto r = accounts_->reserve(user_, 30, "req");
  ASSERT_TRUE(accounts_->settle(*r, {10, "chat", "req", "chat", ""}));
  auto again = accounts_->settle(*r, {10, "chat", "req", "chat", ""});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);
  EXPECT_FALSE(accounts_->release(*r));
  EXPECT_EQ(accounts_->balance(user_)->available(), 90);
  expect_invariants();
}

TEST_P(AccountsTest, InsufficientTokensSays402WithNeededAndAvailable) {
  auto r = accounts_->reserve(user_, 101, "req");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kPaymentRequired);
  EXPECT_EQ(r.error().reason, "insufficient_tokens");
  ASSERT_EQ(r.error().details.size(), 2u);
  EXPECT_EQ(r.error().details[0], (std::pair<std::string, std::int64_t>{"needed", 101}));
  EXPECT_EQ(r.error().details[1], (std::pair<std::string, std::int64_t>{"available", 100}));
  expect_invariants();
}

TEST_P(AccountsTest, FiftyParallelReservationsWithBalanceForTenGiveExactlyTen) {
  std::atomic<int> ok{0}, refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&, i] {
      auto r = accounts_->reserve(user_, 10, "req-" + std::to_string(i));
      if (r) {
        ++ok;
        EXPECT_TRUE(accounts_->settle(*r, {10, "chat", r->request_id, "chat", ""}));
      } else if (r.error().code == ErrorCode::kPaymentRequired) {
        ++refused;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 10);
  EXPECT_EQ(refused.load(), 40);
  EXPECT_EQ(accounts_->balance(user_)->balance, 0);
  expect_invariants();
}

TEST_P(AccountsTest, SpendIsAtomicAndNeverNegative) {
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i) {
    threads.emplace_back([&] {
      if (accounts_->spend(user_, {7, "convert", "r", "convert", ""})) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 14);  // 14 x 7 = 98 <= 100
  EXPECT_EQ(accounts_->balance(user_)->available(), 2);
  expect_invariants();
}

TEST_P(AccountsTest, AdminAdjustGrantsAndDeductsButNotBelowZero) {
  EXPECT_EQ(accounts_->adjust(user_, 50, "prize", "r").value(), 150);
  EXPECT_EQ(accounts_->adjust(user_, -30, "correction", "r").value(), 120);
  auto too_much = accounts_->adjust(user_, -121, "oops", "r");
  ASSERT_FALSE(too_much);
  EXPECT_EQ(too_much.error().code, ErrorCode::kPaymentRequired);
  EXPECT_EQ(accounts_->ledger(user_, 10)->front().reason, "correction");
  expect_invariants();
}

TEST_P(AccountsTest, AbandonedReservationsAreReleasedAtStart) {
  ASSERT_TRUE(accounts_->reserve(user_, 40, "crashed"));
  Accounts other_instance(*db_, "other");
  ASSERT_TRUE(other_instance.reserve(user_, 20, "in-flight-elsewhere"));
  EXPECT_EQ(accounts_->balance(user_)->available(), 40);
  // A restart of "test-instance" releases its own, not the other instance's.
  Accounts restarted(*db_, "test-instance");
  EXPECT_EQ(restarted.release_abandoned().value(), 1);
  EXPECT_EQ(accounts_->balance(user_)->available(), 80);
  expect_invariants();
}

TEST_P(AccountsTest, UsageRecordsAreFilteredAndPaged) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(accounts_->record_usage({"r" + std::to_string(i), user_, "/v1/chat/completions",
                                         i % 2 ? "chat" : "convert", "m1", "", 3, 4, 7, 200, 12}));
  }
  auto all = accounts_->usage({});
  ASSERT_TRUE(all);
  EXPECT_EQ(all->second, 5);
  UsageFilter f;
  f.task = "chat";
  f.limit = 1;
  auto chat = accounts_->usage(f);
  EXPECT_EQ(chat->second, 2);
  ASSERT_EQ(chat->first.size(), 1u);
  EXPECT_EQ(chat->first[0].record.request_id, "r3");  // newest first
}

INSTANTIATE_TEST_SUITE_P(Backends, AccountsTest, ::testing::ValuesIn(testing::all_backends()), testing::backend_name);

TEST(Pricing, SpecFormulasRoundUp) {
  Pricing p;
  EXPECT_EQ(p.charge("chat", 10), 10);
  EXPECT_EQ(p.charge("convert", 10), 17);   // 10 x 1.2 + 5
  EXPECT_EQ(p.charge("convert", 11), 19);   // ceil(13.2) + 5
  EXPECT_EQ(p.charge("homework", 10), 40);  // 10 x 2 + 20
  EXPECT_EQ(p.charge("subtitle", 7), 71);   // 21 + 50
  EXPECT_EQ(p.charge("unknown", 9), 9);
  p.set("chat", {0.5, 1});
  EXPECT_EQ(p.charge("chat", 3), 3);  // ceil(1.5) + 1
  EXPECT_EQ(parser_base(10, 3), 4);   // ceil(13 / 4)
  p.set_model_multiplier("big-model", 4.0);
  EXPECT_EQ(p.charge("v1", 10, "big-model"), 40);
  EXPECT_EQ(p.charge("v1", 10, "other"), 10);
  EXPECT_EQ(p.charge("homework", 10, "big-model"), 100);  // 10 x 2.0 x 4.0 + 20
}

TEST(Pricing, MaxBaseIsTheLargestBaseTheAmountPays) {
  Pricing p;
  p.set_model_multiplier("cheap", 0.25);
  p.set_model_multiplier("free", 0.0);
  for (const std::string task : {"chat", "convert", "homework", "subtitle"}) {
    for (const std::string model : {"", "cheap"}) {
      for (std::int64_t amount : {0, 19, 20, 21, 57, 100, 999, 1000, 123457}) {
        const std::int64_t base = p.max_base(task, amount, model);
        if (base < 0) {
          EXPECT_GT(p.charge(task, 0, model), amount) << task << " " << amount;
          continue;
        }
        EXPECT_LE(p.charge(task, base, model), amount) << task << " " << model << " " << amount;
        EXPECT_GT(p.charge(task, base + 1, model), amount) << task << " " << model << " " << amount;
      }
    }
  }
  EXPECT_EQ(p.max_base("homework", 1000, ""), 490);  // (1000 - 20) / 2
  EXPECT_EQ(p.max_base("homework", 19, ""), -1);     // not even the fixed part
  EXPECT_GT(p.max_base("chat", 5, "free"), std::int64_t{1} << 40);
}

}  // namespace
}  // namespace llmd::billing
