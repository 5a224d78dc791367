// The repair path of a conversion through a fake model client: the request
// it sends, the target written from the model's JSON, refusals and charges.
#include "tasks/convert/repair_service.h"

#include <gtest/gtest.h>

#include "unit/tasks/billing_fixture.h"
#include "unit/tasks/fake_model_client.h"

namespace llmd::convert {
namespace {

using testing::FakeModelClient;

class ConvertRepairTest : public testing::BillingFixture {
 protected:
  Result<Repaired> repair(const std::string& content, Format to) {
    const RepairDeps deps{model_, *accounts_, pricing_, pool_, "tiny"};
    const billing::Caller caller{user_, "req-1", "/api/v1/tasks/convert", std::chrono::steady_clock::now()};
    const RepairInput input{Format::kJson, to, content, options_};
    return testing::run_to_end(repair_with_model(deps, caller, input));
  }

  FakeModelClient model_;
  ConvertOptions options_;
};

TEST_F(ConvertRepairTest, ModelJsonIsWrittenInTheTargetFormatAndCharged) {
  model_.replies = {FakeModelClient::reply(R"({"name":"x","n":1})", 40, 10)};
  auto r = repair("{name: 'x', n: 1,", Format::kYaml);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_NE(r->content.find("name: x"), std::string::npos) << r->content;
  // SPEC §5: the document (the fake tokenizer counts its 17 bytes) + the
  // completion, ceil(27 x 1.2) + 5; the repair instructions are the + 5.
  EXPECT_EQ(model_.counted, std::vector<std::string>{"{name: 'x', n: 1,"});
  EXPECT_EQ(r->tokens_consumed, 38);
  EXPECT_EQ(r->remaining_tokens, 100000 - 38);
  EXPECT_FALSE(r->max_tokens_clamped);
  EXPECT_EQ(reserved(), 0);
  ASSERT_EQ(usage().size(), 1u);
  EXPECT_EQ(usage()[0].record.task, "convert");
  EXPECT_EQ(usage()[0].record.status, 200);
  EXPECT_EQ(usage()[0].record.prompt_tokens, 17);
}

TEST_F(ConvertRepairTest, ABalanceShortOfTheLongestReplyClampsItButNotBelowTheDocument) {
  const std::string doc = "{" + std::string(200, ' ') + "name: 'x'";  // 210 "tokens"
  // 1 000 pays a base of (1000 - 5) / 1.2 = 829: 210 of document, 619 of reply.
  ASSERT_TRUE(accounts_->adjust(user_, -99000, "test", "t"));
  // A reply that would run to 700 tokens is stopped where the balance ends.
  model_.replies = {FakeModelClient::reply(R"({"name":"x"})", 400, 700)};
  auto r = repair(doc, Format::kYaml);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->max_tokens_clamped);
  EXPECT_EQ(model_.requests[0].max_tokens, kRepairMaxTokens);  // the worker's limit stays
  EXPECT_EQ(model_.stopped_at, std::vector<std::int64_t>{619});
  EXPECT_EQ(r->tokens_consumed, 1000);
  EXPECT_EQ(available(), 0);
  EXPECT_EQ(reserved(), 0);
  // With less than the document's length of reply left: 402, nothing called.
  ASSERT_TRUE(accounts_->adjust(user_, -(available() - 400), "test", "t"));  // pays 210 + 120 at most
  model_.requests.clear();
  auto refused = repair(doc, Format::kYaml);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kPaymentRequired);
  EXPECT_TRUE(model_.requests.empty());
  EXPECT_EQ(reserved(), 0);
}

TEST_F(ConvertRepairTest, RequestQuotesTheInputAndForcesAJsonObject) {
  model_.replies = {FakeModelClient::reply("{}", 1, 1)};
  ASSERT_TRUE(repair("{broken", Format::kJson));
  ASSERT_EQ(model_.requests.size(), 1u);
  const auto& req = model_.requests[0];
  EXPECT_EQ(req.model, "tiny");
  EXPECT_EQ(req.temperature, 0.0);
  EXPECT_EQ(req.max_tokens, kRepairMaxTokens);  // the balance pays for the longest reply
  EXPECT_EQ(req.response_format, nlohmann::json({{"type", "json_object"}}));
  ASSERT_EQ(req.messages.size(), 2u);
  EXPECT_NE(req.messages[1].content.find("<data>\n{broken\n</data>"), std::string::npos);
  EXPECT_EQ(model_.request_ids, std::vector<std::string>{"req-1"});
}

TEST_F(ConvertRepairTest, AnswerThatIsNotAnObjectIsRepairFailedAndStillCharged) {
  model_.replies = {FakeModelClient::reply("[1, 2", 40, 10)};
  auto r = repair("{broken", Format::kJson);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, "repair_failed");
  EXPECT_EQ(available(), 100000 - 26);  // ceil((7 + 10) x 1.2) + 5
  EXPECT_EQ(usage()[0].record.status, 422);
}

TEST_F(ConvertRepairTest, GatewayRefusalIsReturnedAndNothingIsCharged) {
  model_.replies = {std::unexpected(
      inference::CallFailure{Error(ErrorCode::kDeadlineExceeded, "upstream timed out", "upstream_timeout"),
                             inference::Refusal::kTimeout,
                             "fake-1",
                             {}})};
  auto r = repair("{broken", Format::kJson);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(available(), 100000);
  EXPECT_EQ(reserved(), 0);
  EXPECT_EQ(usage()[0].record.status, 504);
  EXPECT_EQ(usage()[0].record.instance, "fake-1");
}

}  // namespace
}  // namespace llmd::convert
