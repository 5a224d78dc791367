// Homework grading through a fake model client: the exact check winning,
// samples, clamping, fallbacks and what is charged, in milliseconds.
#include "tasks/homework/grading_service.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "billing/reply_allowance.h"
#include "unit/tasks/billing_fixture.h"
#include "unit/tasks/fake_model_client.h"

namespace llmd::homework {
namespace {

using nlohmann::json;
using testing::FakeModelClient;

std::string grade_reply(int score, bool correct) {
  return json{{"score", score}, {"correct", correct}, {"feedback", "looked at it"}, {"suggestions", {"keep going"}}}
      .dump();
}

class HomeworkGradingTest : public testing::BillingFixture {
 protected:
  void SetUp() override {
    BillingFixture::SetUp();
    prompts_ = std::make_shared<const PromptSet>(PromptSet::load().value());
  }

  Result<GradeOutcome> grade(const std::string& question, const std::string& answer, GradeOptions options = {}) {
    PromptInput input;
    input.subject = "math";
    input.family = subject_family("math");
    input.language = Language::kEn;
    input.question = question;
    input.answer = answer;
    const Check check = check_arithmetic(question, answer);
    const HomeworkGraderDeps deps{model_, *accounts_, pricing_, pool_, "tiny", prompts_};
    const billing::Caller caller{user_, "req-1", "/api/v1/tasks/homework", std::chrono::steady_clock::now()};
    return testing::run_to_end(grade_with_model(deps, caller, input, options, check));
  }

  FakeModelClient model_;
  std::shared_ptr<const PromptSet> prompts_;
};

TEST_F(HomeworkGradingTest, ExactCheckWinsOverAModelThatSaysWrong) {
  model_.replies = {FakeModelClient::reply(grade_reply(10, false), 100, 20)};
  auto g = grade("2+3*4=?", "14");
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_TRUE(g->grade.correct);
  EXPECT_GE(g->grade.score, 60);
  EXPECT_EQ(g->graded_by, "model");
}

TEST_F(HomeworkGradingTest, ExactCheckCapsAModelThatSaysRight) {
  model_.replies = {FakeModelClient::reply(grade_reply(95, true), 100, 20)};
  auto g = grade("2+3*4=?", "20");
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_FALSE(g->grade.correct);
  EXPECT_LE(g->grade.score, 40);
}

TEST_F(HomeworkGradingTest, ScoreOutOfRangeIsClamped) {
  model_.replies = {FakeModelClient::reply(grade_reply(150, true), 10, 10)};
  auto g = grade("Why is the sky blue?", "Rayleigh scattering");
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_EQ(g->grade.score, 100);
}

TEST_F(HomeworkGradingTest, SamplesGiveTheMedianEachWithItsOwnSeedAndAllAreCharged) {
  model_.replies = {FakeModelClient::reply(grade_reply(60, true), 100, 10),
                    FakeModelClient::reply(grade_reply(90, true), 100, 10),
                    FakeModelClient::reply(grade_reply(70, true), 100, 10)};
  GradeOptions options;
  options.samples = 3;
  options.seed = 7;
  auto g = grade("Why is the sky blue?", "Rayleigh scattering", options);
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_EQ(g->grade.score, 70);
  EXPECT_EQ(g->grade.sample_scores, (std::vector<int>{60, 90, 70}));
  ASSERT_TRUE(g->grade.confidence);
  ASSERT_EQ(model_.requests.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(model_.requests[i].seed, 7 + i);
    EXPECT_EQ(model_.requests[i].temperature, 0.7);
    EXPECT_EQ(model_.requests[i].model, "tiny");
    EXPECT_EQ(model_.requests[i].response_format["type"], "json_schema");
  }
  // SPEC §5: base = the user's content per sample (the fake tokenizer counts
  // bytes: "Why is the sky blue?\nRayleigh scattering" is 40) + the
  // completions; the grading template the worker also read (100 per call) is
  // the fixed +20.
  EXPECT_EQ(model_.counted, (std::vector<std::string>{"Why is the sky blue?\nRayleigh scattering"}));
  EXPECT_EQ(g->tokens_consumed, (3 * 40 + 30) * 2 + 20);
  EXPECT_EQ(available(), 100000 - 320);
  EXPECT_EQ(reserved(), 0);
  ASSERT_EQ(usage().size(), 1u);
  EXPECT_EQ(usage()[0].record.prompt_tokens, 120);
  EXPECT_EQ(usage()[0].record.completion_tokens, 30);
  EXPECT_EQ(usage()[0].record.instance, "fake-1");
}

TEST_F(HomeworkGradingTest, UnusableRepliesLeaveTheVerdictToTheExactCheck) {
  model_.replies = {FakeModelClient::reply("not a grade", 50, 5)};
  auto g = grade("2+3*4=?", "14");
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_EQ(g->graded_by, "exact_check");
  EXPECT_TRUE(g->grade.correct);
  EXPECT_EQ(g->tokens_consumed, (10 + 5) * 2 + 20);  // "2+3*4=?\n14" + the completion
}

TEST_F(HomeworkGradingTest, UnusableRepliesWithoutADecisiveCheckAre422AndStillCharged) {
  model_.replies = {FakeModelClient::reply("not a grade", 50, 5)};
  auto g = grade("Why is the sky blue?", "Rayleigh scattering");
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code, ErrorCode::kUnprocessable);
  EXPECT_EQ(available(), 100000 - (45 * 2 + 20));
  EXPECT_EQ(usage()[0].record.status, 422);
}

TEST_F(HomeworkGradingTest, GatewayRefusalIsReturnedAndNothingIsCharged) {
  model_.replies = {std::unexpected(inference::CallFailure{
      Error(ErrorCode::kUnavailable, "model tiny is still starting", "model_starting").with_retry_after(5),
      inference::Refusal::kModelStarting,
      "",
      {}})};
  auto g = grade("Why is the sky blue?", "Rayleigh scattering");
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().reason, "model_starting");
  EXPECT_EQ(g.error().retry_after_s, 5);
  EXPECT_EQ(available(), 100000);
  EXPECT_EQ(reserved(), 0);
  EXPECT_EQ(usage()[0].record.status, 503);
}

TEST_F(HomeworkGradingTest, CallerWhoCannotPayTheWorstCaseIsRefusedBeforeAnyCall) {
  ASSERT_TRUE(accounts_->adjust(user_, -99990, "test", "t"));
  model_.replies = {FakeModelClient::reply(grade_reply(50, true), 10, 10)};
  auto g = grade("Why is the sky blue?", "Rayleigh scattering");
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code, ErrorCode::kPaymentRequired);
  EXPECT_TRUE(model_.requests.empty());
}

TEST_F(HomeworkGradingTest, ABalanceShortOfMaxTokensClampsThemInsteadOfRefusing) {
  ASSERT_TRUE(accounts_->adjust(user_, -99500, "test", "t"));  // 500 left
  model_.replies = {FakeModelClient::reply(grade_reply(80, true), 900, 900)};
  auto g = grade("Why is the sky blue?", "Rayleigh scattering");
  ASSERT_TRUE(g) << g.error().message;
  // 500 pays a base of (500 - 20) / 2 = 240: 40 of content, 200 of reply;
  // the reply (900 tokens long) is stopped there.
  EXPECT_TRUE(g->max_tokens_clamped);
  ASSERT_EQ(model_.requests.size(), 1u);
  EXPECT_EQ(model_.requests[0].max_tokens, 1024);  // the worker's limit stays
  EXPECT_EQ(model_.stopped_at, std::vector<std::int64_t>{200});
  EXPECT_EQ(g->tokens_consumed, (40 + 200) * 2 + 20);
  EXPECT_EQ(available(), 0);
  EXPECT_EQ(reserved(), 0);
}

// SPEC §5: the reply's reservation grows as it streams, so what is held is
// about what is charged, not the 1 024 tokens max_tokens allows.
TEST_F(HomeworkGradingTest, TheReservationGrowsWithTheReplyAStepAheadOfIt) {
  // 40 tokens of content ("Why is the sky blue?" + "\n" + the answer).
  model_.replies = {FakeModelClient::reply(grade_reply(80, true), 900, 20)};
  auto brief = grade("Why is the sky blue?", "Rayleigh scattering");
  ASSERT_TRUE(brief) << brief.error().message;
  EXPECT_EQ(brief->tokens_consumed, (40 + 20) * 2 + 20);
  EXPECT_EQ(last_reservation(), (40 + billing::kFirstReplyAllowance) * 2 + 20);  // the first allowance, not 1 024

  model_.replies = {FakeModelClient::reply(grade_reply(80, true), 900, 300)};
  auto longer = grade("Why is the sky blue?", "Rayleigh scattering");
  ASSERT_TRUE(longer) << longer.error().message;
  EXPECT_FALSE(longer->max_tokens_clamped);
  EXPECT_EQ(longer->tokens_consumed, (40 + 300) * 2 + 20);
  EXPECT_GT(last_reservation(), longer->tokens_consumed);
  EXPECT_LE(last_reservation(), (40 + 300 + billing::ReplyAllowance::kGrowStep) * 2 + 20);
  EXPECT_TRUE(model_.stopped_at.empty());
  EXPECT_EQ(reserved(), 0);
}

TEST_F(HomeworkGradingTest, EnoughBalanceLeavesMaxTokensAsAsked) {
  model_.replies = {FakeModelClient::reply(grade_reply(80, true), 900, 20)};
  auto g = grade("Why is the sky blue?", "Rayleigh scattering");
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_FALSE(g->max_tokens_clamped);
  EXPECT_EQ(model_.requests[0].max_tokens, 1024);
}

TEST_F(HomeworkGradingTest, ABalanceThatPaysLessThanAUsefulReplyIs402) {
  ASSERT_TRUE(accounts_->adjust(user_, -(100000 - (40 + 63) * 2 - 20), "test", "t"));  // 63 reply tokens' worth
  model_.replies = {FakeModelClient::reply(grade_reply(80, true), 10, 10)};
  auto g = grade("Why is the sky blue?", "Rayleigh scattering");
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code, ErrorCode::kPaymentRequired);
  EXPECT_TRUE(model_.requests.empty());
  EXPECT_EQ(reserved(), 0);
}

TEST_F(HomeworkGradingTest, AFailedTokenCountCallsNothingAndReservesNothing) {
  model_.count_failure = inference::CallFailure{
      Error(ErrorCode::kUnavailable, "model tiny is still starting", "model_starting").with_retry_after(5),
      inference::Refusal::kModelStarting,
      "",
      {}};
  auto g = grade("Why is the sky blue?", "Rayleigh scattering");
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().reason, "model_starting");
  EXPECT_TRUE(model_.requests.empty());
  EXPECT_EQ(available(), 100000);
  EXPECT_EQ(reserved(), 0);
}

}  // namespace
}  // namespace llmd::homework
