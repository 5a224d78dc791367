// The repair path of a conversion through a fake model client: the request
// it sends, the target written from the model's JSON, refusals and charges.
#include "app/convert_repair.h"

#include <gtest/gtest.h>

#include "unit/app/billing_fixture.h"
#include "unit/app/fake_model_client.h"

namespace llmd::app {
namespace {

using testing::FakeModelClient;

class ConvertRepairTest : public testing::BillingFixture {
 protected:
  Result<Repaired> repair(const std::string& content, convert::Format to) {
    const RepairDeps deps{model_, *accounts_, pricing_, pool_, "tiny"};
    const Caller caller{user_, "req-1", "/api/v1/tasks/convert", std::chrono::steady_clock::now()};
    const RepairInput input{convert::Format::kJson, to, content, options_};
    return testing::run_to_end(repair_with_model(deps, caller, input));
  }

  FakeModelClient model_;
  convert::ConvertOptions options_;
};

TEST_F(ConvertRepairTest, ModelJsonIsWrittenInTheTargetFormatAndCharged) {
  model_.replies = {FakeModelClient::reply(R"({"name":"x","n":1})", 40, 10)};
  auto r = repair("{name: 'x', n: 1,", convert::Format::kYaml);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_NE(r->content.find("name: x"), std::string::npos) << r->content;
  EXPECT_EQ(r->tokens_consumed, 65);  // SPEC §5: ceil(50 x 1.2) + 5
  EXPECT_EQ(r->remaining_tokens, 100000 - 65);
  EXPECT_EQ(reserved(), 0);
  ASSERT_EQ(usage().size(), 1u);
  EXPECT_EQ(usage()[0].record.task, "convert");
  EXPECT_EQ(usage()[0].record.status, 200);
}

TEST_F(ConvertRepairTest, RequestQuotesTheInputAndForcesAJsonObject) {
  model_.replies = {FakeModelClient::reply("{}", 1, 1)};
  ASSERT_TRUE(repair("{broken", convert::Format::kJson));
  ASSERT_EQ(model_.requests.size(), 1u);
  const auto& req = model_.requests[0];
  EXPECT_EQ(req.model, "tiny");
  EXPECT_EQ(req.temperature, 0.0);
  EXPECT_EQ(req.max_tokens, kRepairMaxTokens);
  EXPECT_EQ(req.response_format, nlohmann::json({{"type", "json_object"}}));
  ASSERT_EQ(req.messages.size(), 2u);
  EXPECT_NE(req.messages[1].content.find("<data>\n{broken\n</data>"), std::string::npos);
  EXPECT_EQ(model_.request_ids, std::vector<std::string>{"req-1"});
}

TEST_F(ConvertRepairTest, AnswerThatIsNotAnObjectIsRepairFailedAndStillCharged) {
  model_.replies = {FakeModelClient::reply("[1, 2", 40, 10)};
  auto r = repair("{broken", convert::Format::kJson);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, "repair_failed");
  EXPECT_EQ(available(), 100000 - 65);
  EXPECT_EQ(usage()[0].record.status, 422);
}

TEST_F(ConvertRepairTest, GatewayRefusalIsReturnedAndNothingIsCharged) {
  model_.replies = {std::unexpected(inference::CallFailure{
      Error(ErrorCode::kDeadlineExceeded, "upstream timed out", "upstream_timeout"), inference::Refusal::kTimeout,
      "fake-1", {}})};
  auto r = repair("{broken", convert::Format::kJson);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(available(), 100000);
  EXPECT_EQ(reserved(), 0);
  EXPECT_EQ(usage()[0].record.status, 504);
  EXPECT_EQ(usage()[0].record.instance, "fake-1");
}

}  // namespace
}  // namespace llmd::app
