// Homework grading through a fake model client: the exact check winning,
// samples, clamping, fallbacks and what is charged, in milliseconds.
#include "app/homework_grading.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "unit/app/fake_model_client.h"
#include "unit/app/billing_fixture.h"

namespace llmd::app {
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
    prompts_ = std::make_shared<const homework::PromptSet>(homework::PromptSet::load().value());
  }

  Result<GradeOutcome> grade(const std::string& question, const std::string& answer, GradeOptions options = {}) {
    homework::PromptInput input;
    input.subject = "math";
    input.family = homework::subject_family("math");
    input.language = homework::Language::kEn;
    input.question = question;
    input.answer = answer;
    const homework::Check check = homework::check_arithmetic(question, answer);
    const HomeworkGraderDeps deps{model_, *accounts_, pricing_, pool_, "tiny", prompts_};
    const Caller caller{user_, "req-1", "/api/v1/tasks/homework", std::chrono::steady_clock::now()};
    return testing::run_to_end(grade_with_model(deps, caller, input, options, check));
  }

  FakeModelClient model_;
  std::shared_ptr<const homework::PromptSet> prompts_;
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
  EXPECT_EQ(g->tokens_consumed, 330 * 2 + 20);  // SPEC §5: base x 2.0 + 20
  EXPECT_EQ(available(), 100000 - 680);
  EXPECT_EQ(reserved(), 0);
  ASSERT_EQ(usage().size(), 1u);
  EXPECT_EQ(usage()[0].record.prompt_tokens, 300);
  EXPECT_EQ(usage()[0].record.instance, "fake-1");
}

TEST_F(HomeworkGradingTest, UnusableRepliesLeaveTheVerdictToTheExactCheck) {
  model_.replies = {FakeModelClient::reply("not a grade", 50, 5)};
  auto g = grade("2+3*4=?", "14");
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_EQ(g->graded_by, "exact_check");
  EXPECT_TRUE(g->grade.correct);
  EXPECT_EQ(g->tokens_consumed, 55 * 2 + 20);
}

TEST_F(HomeworkGradingTest, UnusableRepliesWithoutADecisiveCheckAre422AndStillCharged) {
  model_.replies = {FakeModelClient::reply("not a grade", 50, 5)};
  auto g = grade("Why is the sky blue?", "Rayleigh scattering");
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code, ErrorCode::kUnprocessable);
  EXPECT_EQ(available(), 100000 - (55 * 2 + 20));
  EXPECT_EQ(usage()[0].record.status, 422);
}

TEST_F(HomeworkGradingTest, GatewayRefusalIsReturnedAndNothingIsCharged) {
  model_.replies = {std::unexpected(inference::CallFailure{
      Error(ErrorCode::kUnavailable, "model tiny is still starting", "model_starting").with_retry_after(5),
      inference::Refusal::kModelStarting, "", {}})};
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

}  // namespace
}  // namespace llmd::app
