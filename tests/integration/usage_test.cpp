// GET /api/v1/auth/usage: a user's own usage records, for the web dashboard.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/http.h"
#include "support/llmd_serve.h"

namespace llmd::testing {
namespace {

using json = nlohmann::json;
constexpr const char* kBinary = LLMD_BINARY;

class UsageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<LlmdServe>(kBinary, "limits: { ip_rpm: 0, user_rpm: 0 }\n");
    ASSERT_TRUE(server_->started()) << server_->log();
  }
  std::optional<HttpReply> call(const std::string& method, const std::string& path, const std::string& body,
                                const std::string& token) {
    std::map<std::string, std::string> h{{"Content-Type", "application/json"}};
    if (!token.empty()) h["Authorization"] = "Bearer " + token;
    return http_request(server_->port(), method, path, body, h);
  }
  std::string register_user(const std::string& name) {
    auto r = call("POST", "/api/v1/auth/register",
                  json{{"username", name}, {"password", "password-123"}, {"email", name + "@example.com"}}.dump(), "");
    EXPECT_TRUE(r && r->status == 201) << (r ? r->body : "no reply");
    return r ? json::parse(r->body)["token"].get<std::string>() : "";
  }
  std::unique_ptr<LlmdServe> server_;
};

TEST_F(UsageTest, ListsOnlyTheCallersOwnRecords) {
  const std::string alice = register_user("alice");
  const std::string bob = register_user("bob");
  auto conv = call("POST", "/api/v1/tasks/convert",
                   json{{"source_format", "json"}, {"target_format", "yaml"}, {"content", "{\"a\": 1}"}}.dump(), alice);
  ASSERT_TRUE(conv);
  ASSERT_EQ(conv->status, 200) << conv->body;
  const auto charged = json::parse(conv->body)["tokens_consumed"].get<std::int64_t>();

  auto mine = call("GET", "/api/v1/auth/usage", "", alice);
  ASSERT_TRUE(mine);
  ASSERT_EQ(mine->status, 200) << mine->body;
  const auto j = json::parse(mine->body);
  ASSERT_EQ(j["total"], 1);
  ASSERT_EQ(j["records"].size(), 1u);
  EXPECT_EQ(j["records"][0]["task"], "convert");
  EXPECT_EQ(j["records"][0]["charged"], charged);
  EXPECT_GT(j["records"][0]["created_at"].get<std::int64_t>(), 0);

  auto theirs = call("GET", "/api/v1/auth/usage?user_id=1", "", bob);
  ASSERT_TRUE(theirs);
  ASSERT_EQ(theirs->status, 200);
  EXPECT_EQ(json::parse(theirs->body)["total"], 0);
}

TEST_F(UsageTest, FiltersAndRejectsBadQueries) {
  const std::string alice = register_user("alice");
  ASSERT_EQ(call("POST", "/api/v1/tasks/convert",
                 json{{"source_format", "json"}, {"target_format", "yaml"}, {"content", "[1]"}}.dump(), alice)
                ->status,
            200);
  EXPECT_EQ(json::parse(call("GET", "/api/v1/auth/usage?task=chat", "", alice)->body)["total"], 0);
  EXPECT_EQ(json::parse(call("GET", "/api/v1/auth/usage?task=convert", "", alice)->body)["total"], 1);
  auto bad = call("GET", "/api/v1/auth/usage?limit=0", "", alice);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(json::parse(bad->body)["error"]["code"], "invalid_query");
  auto anonymous = call("GET", "/api/v1/auth/usage", "", "");
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401);
}

}  // namespace
}  // namespace llmd::testing
