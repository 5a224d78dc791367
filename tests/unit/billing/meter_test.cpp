#include "billing/meter.h"

#include <gtest/gtest.h>

#include "auth/users.h"
#include "support/backends.h"
#include "support/test_support.h"

namespace llmd::billing {
namespace {

// The meter against the real SQLite store: what it reserves, charges,
// releases and records.
class MeteredCallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = store::Database::open(testing::fresh_database_url(testing::Backend::kSqlite, dir_), 4);
    ASSERT_TRUE(db) << db.error().message;
    db_ = std::move(*db);
    ASSERT_TRUE(db_->migrate());
    users_ = std::make_unique<auth::UserStore>(*db_);
    accounts_ = std::make_unique<Accounts>(*db_, "test-instance");
    user_ = users_->create("alice", "a@b.cn", "$2b$10$x", "user", 1000).value().id;
  }

  MeterOpen homework(std::int64_t worst_base) const { return {user_, "req-1", "homework", "tiny", worst_base, ""}; }
  std::int64_t available() { return accounts_->balance(user_).value().available(); }
  std::int64_t reserved() { return accounts_->balance(user_).value().reserved; }
  std::vector<UsageRow> usage() { return accounts_->usage({}).value().first; }

  testing::TempDir dir_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<auth::UserStore> users_;
  std::unique_ptr<Accounts> accounts_;
  Pricing pricing_;
  std::int64_t user_ = 0;
};

TEST_F(MeteredCallTest, OpenReservesTheTaskPriceOfTheWorstCase) {
  auto call = MeteredCall::open(*accounts_, pricing_, homework(100));  // 100 x 2.0 + 20
  ASSERT_TRUE(call) << call.error().message;
  EXPECT_EQ(call->reservation().amount, 220);
  EXPECT_EQ(reserved(), 220);
  EXPECT_EQ(available(), 780);
}

TEST_F(MeteredCallTest, OpenThatDoesNotFitReservesNothing) {
  auto call = MeteredCall::open(*accounts_, pricing_, homework(1000));
  ASSERT_FALSE(call);
  EXPECT_EQ(call.error().code, ErrorCode::kPaymentRequired);
  EXPECT_EQ(reserved(), 0);
  EXPECT_EQ(available(), 1000);
}

TEST_F(MeteredCallTest, SettleChargesThePriceOfTheUsageAndWritesOneUsageRecord) {
  auto call = MeteredCall::open(*accounts_, pricing_, homework(100));
  ASSERT_TRUE(call);
  auto settled = call->settle({30, 10, 200, "tiny-1", "/api/v1/tasks/homework", 12});
  ASSERT_TRUE(settled) << settled.error().message;
  EXPECT_EQ(settled->charged, 100);  // (30 + 10) x 2.0 + 20
  EXPECT_EQ(settled->available, 900);
  EXPECT_EQ(reserved(), 0);
  const auto rows = usage();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].record.request_id, "req-1");
  EXPECT_EQ(rows[0].record.task, "homework");
  EXPECT_EQ(rows[0].record.model, "tiny");
  EXPECT_EQ(rows[0].record.instance, "tiny-1");
  EXPECT_EQ(rows[0].record.route, "/api/v1/tasks/homework");
  EXPECT_EQ(rows[0].record.prompt_tokens, 30);
  EXPECT_EQ(rows[0].record.completion_tokens, 10);
  EXPECT_EQ(rows[0].record.charged, 100);
  EXPECT_EQ(rows[0].record.status, 200);
}

TEST_F(MeteredCallTest, SettleWithoutUsageChargesNothingButRecordsTheFailure) {
  auto call = MeteredCall::open(*accounts_, pricing_, homework(100));
  ASSERT_TRUE(call);
  auto settled = call->settle({0, 0, 503, "", "/api/v1/tasks/homework", 0});
  ASSERT_TRUE(settled);
  EXPECT_EQ(settled->charged, 0);
  EXPECT_EQ(available(), 1000);
  const auto rows = usage();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].record.status, 503);
  EXPECT_EQ(rows[0].record.charged, 0);
}

TEST_F(MeteredCallTest, DoubleSettleIsRefusedAndChangesNothing) {
  auto call = MeteredCall::open(*accounts_, pricing_, homework(100));
  ASSERT_TRUE(call);
  ASSERT_TRUE(call->settle({30, 10, 200, "", "", 0}));
  auto again = call->settle({30, 10, 200, "", "", 0});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);
  EXPECT_EQ(available(), 900);
  EXPECT_EQ(usage().size(), 1u);
}

TEST_F(MeteredCallTest, ReleasedOnDestructionWhenNeverSettled) {
  {
    auto call = MeteredCall::open(*accounts_, pricing_, homework(100));
    ASSERT_TRUE(call);
    EXPECT_EQ(reserved(), 220);
  }
  EXPECT_EQ(reserved(), 0);
  EXPECT_EQ(available(), 1000);
  EXPECT_TRUE(usage().empty());
}

TEST_F(MeteredCallTest, MovedFromCallReleasesNothingTwice) {
  std::optional<MeteredCall> kept;
  {
    auto call = MeteredCall::open(*accounts_, pricing_, homework(100));
    ASSERT_TRUE(call);
    kept.emplace(std::move(*call));
  }
  EXPECT_EQ(reserved(), 220);  // the moved-from one released nothing
  ASSERT_TRUE(kept->settle({30, 10, 200, "", "", 0}));
  kept.reset();
  EXPECT_EQ(available(), 900);
}

TEST_F(MeteredCallTest, SettleAfterReleaseIsRefused) {
  auto call = MeteredCall::open(*accounts_, pricing_, homework(100));
  ASSERT_TRUE(call);
  ASSERT_TRUE(call->release());
  EXPECT_EQ(reserved(), 0);
  auto settled = call->settle({30, 10, 200, "", "", 0});
  ASSERT_FALSE(settled);
  EXPECT_EQ(settled.error().code, ErrorCode::kConflict);
  EXPECT_EQ(available(), 1000);
}

TEST_F(MeteredCallTest, KeptReservationOutlivesTheCallAndIsSettledLaterThroughAdopt) {
  Reservation kept;
  {
    auto call = MeteredCall::open(*accounts_, pricing_, {user_, "job-1", "subtitle", "tiny", 100, ""});
    ASSERT_TRUE(call);
    kept = std::move(*call).keep();
  }
  EXPECT_EQ(reserved(), 350);  // 100 x 3.0 + 50, still held
  auto later = MeteredCall::adopt(*accounts_, pricing_, {user_, "job-1", "subtitle", "tiny", 0, ""}, kept);
  auto settled = later.settle({10, 10, 200, "", "", 0});
  ASSERT_TRUE(settled);
  EXPECT_EQ(settled->charged, 110);
  EXPECT_EQ(reserved(), 0);
}

TEST_F(MeteredCallTest, AdoptedReservationThatIsGoneIsChargedFromTheBalanceCappedAtItsAmount) {
  auto held = accounts_->reserve(user_, 150, "job-1");
  ASSERT_TRUE(held);
  ASSERT_TRUE(accounts_->release(*held));  // a restart released it
  auto call = MeteredCall::adopt(*accounts_, pricing_, {user_, "job-1", "subtitle", "tiny", 0, ""}, *held);
  auto settled = call.settle({100, 100, 200, "", "/api/v1/tasks/subtitle", 0});  // 200 x 3.0 + 50 = 650
  ASSERT_TRUE(settled) << settled.error().message;
  EXPECT_EQ(settled->charged, 150);
  EXPECT_EQ(available(), 850);
  EXPECT_EQ(reserved(), 0);
}

TEST_F(MeteredCallTest, AdoptedReservationStillHeldIsSettled) {
  auto held = accounts_->reserve(user_, 700, "job-1");
  ASSERT_TRUE(held);
  auto call = MeteredCall::adopt(*accounts_, pricing_, {user_, "job-1", "subtitle", "tiny", 0, ""}, *held);
  auto settled = call.settle({100, 100, 200, "", "", 0});
  ASSERT_TRUE(settled);
  EXPECT_EQ(settled->charged, 650);
  EXPECT_EQ(reserved(), 0);
  EXPECT_EQ(available(), 350);
}

TEST_F(MeteredCallTest, GrowFromAFloorLowersTheCompletionToWhatTheBalancePays) {
  // A floor first (64 tokens of reply: 148), then the counted prompt: 30
  // prompt + 1 024 completion cost 2 128; 1 000 pay a base of 490: 460.
  auto call = MeteredCall::open(*accounts_, pricing_, homework(64));
  ASSERT_TRUE(call) << call.error().message;
  EXPECT_EQ(reserved(), 148);
  auto grown = call->grow({30, 1024, 64});
  ASSERT_TRUE(grown) << grown.error().message;
  EXPECT_TRUE(grown->clamped);
  EXPECT_EQ(grown->max_completion, 460);
  EXPECT_EQ(call->reservation().amount, 1000);  // 490 x 2.0 + 20
  EXPECT_EQ(reserved(), 1000);
}

TEST_F(MeteredCallTest, GrowForSeveralChoicesReservesEachOnesReplyAndSplitsWhatTheBalancePays) {
  auto call = MeteredCall::open(*accounts_, pricing_, homework(64));
  ASSERT_TRUE(call);
  // 3 choices of 100 tokens after a 30-token prompt: a base of 330 (680).
  auto whole = call->grow({30, 100, 64, 3});
  ASSERT_TRUE(whole) << whole.error().message;
  EXPECT_FALSE(whole->clamped);
  EXPECT_EQ(call->reservation().amount, 680);
  // 3 choices of 1 024: the balance pays a base of 490, 153 tokens each
  // ((490 - 30) / 3), and the reservation holds exactly those: 30 + 459 = 489.
  auto clamped = call->grow({30, 1024, 64, 3});
  ASSERT_TRUE(clamped) << clamped.error().message;
  EXPECT_TRUE(clamped->clamped);
  EXPECT_EQ(clamped->max_completion, 153);
  EXPECT_EQ(call->reservation().amount, 998);
  // Each choice below the useful minimum: refused, the reservation kept.
  auto refused = call->grow({30, 1024, 154, 3});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kPaymentRequired);
  EXPECT_EQ(reserved(), 998);
}

TEST_F(MeteredCallTest, GrowBelowTheUsefulMinimumIsRefusedAndKeepsTheFloor) {
  auto call = MeteredCall::open(*accounts_, pricing_, homework(64));
  ASSERT_TRUE(call);
  auto grown = call->grow({30, 1024, 461});
  ASSERT_FALSE(grown);
  EXPECT_EQ(grown.error().code, ErrorCode::kPaymentRequired);
  EXPECT_EQ(reserved(), 148);
  ASSERT_TRUE(call->release());
  EXPECT_EQ(reserved(), 0);
}

TEST_F(MeteredCallTest, CoverGrowsForAStreamingReplyThenToWhatTheBalancePays) {
  auto call = MeteredCall::open(*accounts_, pricing_, homework(100));  // 220
  ASSERT_TRUE(call);
  // Already covered: nothing changes.
  EXPECT_EQ(call->cover(90, 90).value(), 90);
  EXPECT_EQ(reserved(), 220);
  // A whole step.
  EXPECT_EQ(call->cover(300, 200).value(), 300);
  EXPECT_EQ(reserved(), 620);
  // More than the 1 000 pay (a base of 490): as much as they do.
  EXPECT_EQ(call->cover(600, 400).value(), 490);
  EXPECT_EQ(reserved(), 1000);
  // Not even what is needed: refused, nothing changes.
  auto short_of = call->cover(600, 500);
  ASSERT_FALSE(short_of);
  EXPECT_EQ(short_of.error().code, ErrorCode::kPaymentRequired);
  EXPECT_EQ(reserved(), 1000);
  // The charge never passes what was covered.
  auto settled = call->settle({30, 460, 200, "", "", 0});
  ASSERT_TRUE(settled) << settled.error().message;
  EXPECT_EQ(settled->charged, 1000);
  EXPECT_EQ(available(), 0);
  EXPECT_EQ(call->cover(10, 10).error().code, ErrorCode::kConflict);  // settled
}

TEST_F(MeteredCallTest, GrowFittedGrowsAJobsReservationAndLowersTheStepToTheBalance) {
  const MeterOpen job{user_, "job-1", "subtitle", "tiny", 0, ""};  // x 3.0 + 50
  auto held = accounts_->reserve(user_, 200, "job-1");
  ASSERT_TRUE(held);
  // Used 50, this step 20 + at most 100: 3 x 170 + 50.
  auto grown = grow_fitted(*accounts_, pricing_, job, *held, 50, {20, 100, 40});
  ASSERT_TRUE(grown) << grown.error().message;
  EXPECT_FALSE(grown->clamped);
  EXPECT_EQ(grown->max_completion, 100);
  EXPECT_EQ(grown->held.amount, 560);
  EXPECT_EQ(reserved(), 560);
  // A step of 400 would need 1 460: the 1 000 the user has (reservation
  // included) pay a base of 316, so 246 completion tokens.
  auto clamped = grow_fitted(*accounts_, pricing_, job, grown->held, 50, {20, 400, 40});
  ASSERT_TRUE(clamped) << clamped.error().message;
  EXPECT_TRUE(clamped->clamped);
  EXPECT_EQ(clamped->max_completion, 246);
  EXPECT_EQ(clamped->held.amount, 998);
  EXPECT_EQ(reserved(), 998);
  // Once the finished steps use most of it, not even the minimum fits:
  // refused, the reservation as it was.
  auto refused = grow_fitted(*accounts_, pricing_, job, clamped->held, 300, {20, 400, 40});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kPaymentRequired);
  EXPECT_EQ(reserved(), 998);
  // Settling charges from what the row holds, whatever the caller kept.
  auto settled = MeteredCall::adopt(*accounts_, pricing_, job, *held).settle({100, 100, 200, "", "", 0});
  ASSERT_TRUE(settled) << settled.error().message;
  EXPECT_EQ(settled->charged, 650);  // 200 x 3.0 + 50
  EXPECT_EQ(reserved(), 0);
  EXPECT_EQ(available(), 350);
}

TEST_F(MeteredCallTest, GrowFittedOnAClosedReservationIsAConflict) {
  const MeterOpen job{user_, "job-2", "subtitle", "tiny", 0, ""};
  auto held = accounts_->reserve(user_, 200, "job-2");
  ASSERT_TRUE(held);
  ASSERT_TRUE(accounts_->release(*held));
  auto grown = grow_fitted(*accounts_, pricing_, job, *held, 0, {20, 100, 40});
  ASSERT_FALSE(grown);
  EXPECT_EQ(grown.error().code, ErrorCode::kConflict);
  EXPECT_EQ(reserved(), 0);
}

}  // namespace
}  // namespace llmd::billing
