// The conversion task over HTTP (charging included) and `llmd convert`.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/http.h"
#include "support/llmd_serve.h"

namespace llmd::testing {
namespace {

using nlohmann::json;
constexpr const char* kBinary = LLMD_BINARY;

class ConvertApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ =
        new LlmdServe(kBinary, "auth: { bcrypt_cost: 10, initial_tokens: 1000 }\nlimits: { ip_rpm: 0, user_rpm: 0 }\n",
                      "", {{"LLMD_ADMIN_PASSWORD", "admin-password-x"}});
  }
  static void TearDownTestSuite() { delete server_; }
  void SetUp() override { ASSERT_TRUE(server_->started()) << server_->log(); }

  std::optional<HttpReply> call(const std::string& method, const std::string& path, const std::string& body,
                                const std::string& token) {
    std::map<std::string, std::string> h;
    if (!token.empty()) h["Authorization"] = "Bearer " + token;
    return http_request(server_->port(), method, path, body, h);
  }
  std::pair<std::string, int> user(const std::string& name) {
    auto r = call("POST", "/api/v1/auth/register",
                  json{{"username", name}, {"password", "password-" + name}, {"email", name + "@s.cn"}}.dump(), "");
    EXPECT_EQ(r->status, 201) << r->body;
    const auto j = json::parse(r->body);
    return {j["token"], j["user"]["id"]};
  }
  int tokens(const std::string& token) {
    return json::parse(call("GET", "/api/v1/auth/profile", "", token)->body)["user"]["tokens"];
  }
  std::string admin() {
    auto r =
        call("POST", "/api/v1/auth/login", json{{"username", "admin"}, {"password", "admin-password-x"}}.dump(), "");
    return json::parse(r->body)["token"];
  }
  static LlmdServe* server_;
};
LlmdServe* ConvertApiTest::server_ = nullptr;

TEST_F(ConvertApiTest, FormatsListsPairsAndConventions) {
  auto r = call("GET", "/api/v1/tasks/formats", "", "");
  ASSERT_EQ(r->status, 200);
  const auto j = json::parse(r->body);
  EXPECT_EQ(j["formats"].size(), 6u);
  EXPECT_EQ(j["conversions"].size(), 36u);
  EXPECT_FALSE(j["conventions"].empty());
}

TEST_F(ConvertApiTest, JsonToYamlIsChargedByTheSpecFormula) {
  auto [token, id] = user("conv1");
  const std::string content = R"({"name":"小明","zip":"01730","scores":[90,85]})";
  auto r = call("POST", "/api/v1/tasks/convert",
                json{{"source_format", "json"}, {"target_format", "yaml"}, {"content", content}}.dump(), token);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto j = json::parse(r->body);
  const std::string out = j["converted_content"];
  EXPECT_EQ(out, "name: 小明\nzip: \"01730\"\nscores:\n  - 90\n  - 85\n");
  EXPECT_EQ(j["method"], "parser");
  const long base = static_cast<long>((content.size() + out.size() + 3) / 4);
  const long charge = static_cast<long>(std::ceil(base * 1.2 - 1e-9)) + 5;
  EXPECT_EQ(j["tokens_consumed"], charge);
  EXPECT_EQ(j["remaining_tokens"], 1000 - charge);
  EXPECT_EQ(tokens(token), 1000 - charge);
  auto usage = call("GET", "/api/v1/admin/usage?task=convert&user_id=" + std::to_string(id), "", admin());
  const auto records = json::parse(usage->body)["records"];
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["charged"], charge);
}

TEST_F(ConvertApiTest, ParseErrorNamesLineAndColumnAndCostsNothing) {
  auto [token, id] = user("conv2");
  auto r =
      call("POST", "/api/v1/tasks/convert",
           json{{"source_format", "json"}, {"target_format", "xml"}, {"content", "{\n  \"a\": [1,\n}"}}.dump(), token);
  EXPECT_EQ(r->status, 400);
  const std::string msg = json::parse(r->body)["error"]["message"];
  EXPECT_NE(msg.find("line 3"), std::string::npos) << msg;
  EXPECT_EQ(tokens(token), 1000);
}

TEST_F(ConvertApiTest, BadRequestsAreRefusedWithTheRightStatus) {
  auto [token, id] = user("conv3");
  auto unknown = call("POST", "/api/v1/tasks/convert",
                      json{{"source_format", "docx"}, {"target_format", "json"}, {"content", "x"}}.dump(), token);
  EXPECT_EQ(unknown->status, 415);
  auto missing = call("POST", "/api/v1/tasks/convert", json{{"source_format", "json"}}.dump(), token);
  EXPECT_EQ(missing->status, 400);
  auto bad_option =
      call("POST", "/api/v1/tasks/convert",
           json{{"source_format", "json"}, {"target_format", "yaml"}, {"content", "{}"}, {"options", {{"indent", 99}}}}
               .dump(),
           token);
  EXPECT_EQ(bad_option->status, 400);
  auto anonymous = call("POST", "/api/v1/tasks/convert",
                        json{{"source_format", "json"}, {"target_format", "yaml"}, {"content", "{}"}}.dump(), "");
  EXPECT_EQ(anonymous->status, 401);
  auto bomb = call("POST", "/api/v1/tasks/convert",
                   json{{"source_format", "yaml"},
                        {"target_format", "json"},
                        {"content",
                         "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                         "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                         "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
                         "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"}}
                       .dump(),
                   token);
  EXPECT_EQ(bomb->status, 422);
  EXPECT_EQ(tokens(token), 1000);
}

TEST_F(ConvertApiTest, InsufficientBalanceIs402AndReturnsNoContent) {
  auto [token, id] = user("conv4");
  auto deduct = call("POST", "/api/v1/admin/users/" + std::to_string(id) + "/tokens",
                     json{{"amount", -995}, {"reason", "test"}}.dump(), admin());
  ASSERT_EQ(deduct->status, 200) << deduct->body;
  auto r = call("POST", "/api/v1/tasks/convert",
                json{{"source_format", "json"}, {"target_format", "yaml"}, {"content", "{\"a\":1}"}}.dump(), token);
  EXPECT_EQ(r->status, 402);
  const auto e = json::parse(r->body)["error"];
  EXPECT_EQ(e["code"], "insufficient_tokens");
  EXPECT_EQ(e["available"], 5);
  EXPECT_GT(e["needed"].get<int>(), 5);
  EXPECT_FALSE(json::parse(r->body).contains("converted_content"));
  EXPECT_EQ(tokens(token), 5);
}

TEST_F(ConvertApiTest, FiftyParallelSpendsWithBalanceForTenGiveExactlyTen) {
  auto [token, id] = user("conv5");
  // Each call below costs ceil(ceil((7 + 5) / 4) x 1.2) + 5 = 9 tokens; leave 90.
  auto deduct = call("POST", "/api/v1/admin/users/" + std::to_string(id) + "/tokens",
                     json{{"amount", -910}, {"reason", "test"}}.dump(), admin());
  ASSERT_EQ(deduct->status, 200);
  const std::string body = json{{"source_format", "json"}, {"target_format", "yaml"}, {"content", "{\"a\":1}"}}.dump();
  std::atomic<int> ok{0}, refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&] {
      auto r = call("POST", "/api/v1/tasks/convert", body, token);
      if (r && r->status == 200) ++ok;
      if (r && r->status == 402) ++refused;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 10);
  EXPECT_EQ(refused.load(), 40);
  EXPECT_EQ(tokens(token), 0);
}

TEST_F(ConvertApiTest, RepairWithoutAModelIs503AndCostsNothing) {
  auto [token, id] = user("conv6");
  auto r = call("POST", "/api/v1/tasks/convert",
                json{{"source_format", "json"},
                     {"target_format", "yaml"},
                     {"content", "{\"a\": 1,,}"},
                     {"options", {{"repair", true}}}}
                    .dump(),
                token);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "model_unavailable");
  EXPECT_EQ(tokens(token), 1000);
}

// The repair path with a real runner on a generated model: whatever the
// (random-weight) model says is forced to a JSON object by the grammar and
// written by the exact writer, and the call is charged from its usage.
TEST(ConvertRepair, BrokenInputIsRecoveredByTheModelAndCharged) {
  TempDir dir;
  std::filesystem::create_directories(dir / "models");
  Process gen({kBinary, "dev", "make-test-model", "--arch", "qwen2", "--out", (dir / "models/tiny.gguf").string()},
              dir.path(), dir / "gen.log");
  ASSERT_EQ(gen.wait(std::chrono::seconds(120)), 0) << gen.log();
  const int base_port = free_port();
  LlmdServe server(kBinary,
                   "auth: { bcrypt_cost: 10, initial_tokens: 5000 }\nlimits: { ip_rpm: 0, user_rpm: 0 }\n"
                   "models: { dir: " +
                       (dir / "models").string() + ", port_range: \"" + std::to_string(base_port) + "-" +
                       std::to_string(base_port + 20) +
                       "\", list: [ { name: tiny, file: tiny.gguf, ctx: 4096, parallel: 1, threads: 1 } ] }\n"
                       "tasks: { convert: { model: tiny } }\n");
  ASSERT_TRUE(server.started()) << server.log();
  auto reg = http_request(server.port(), "POST", "/api/v1/auth/register",
                          json{{"username", "fixer"}, {"password", "password-fixer"}, {"email", "f@s.cn"}}.dump());
  const std::string token = json::parse(reg->body)["token"];
  const std::map<std::string, std::string> auth{{"Authorization", "Bearer " + token}};

  // Input that parses needs no model: method "parser".
  auto good = http_request(server.port(), "POST", "/api/v1/tasks/convert",
                           json{{"source_format", "json"},
                                {"target_format", "json"},
                                {"content", "{\"a\": 1}"},
                                {"options", {{"repair", true}}}}
                               .dump(),
                           auth);
  ASSERT_EQ(good->status, 200) << good->body;
  EXPECT_EQ(json::parse(good->body)["method"], "parser");
  const int before = json::parse(good->body)["remaining_tokens"];

  auto r = http_request(server.port(), "POST", "/api/v1/tasks/convert",
                        json{{"source_format", "json"},
                             {"target_format", "json"},
                             {"content", "{\"name\": \"小明\", \"age\": 12,,"},
                             {"options", {{"repair", true}}}}
                            .dump(),
                        auth);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto j = json::parse(r->body);
  EXPECT_EQ(j["method"], "model");
  EXPECT_TRUE(json::parse(j["converted_content"].get<std::string>()).is_object()) << j["converted_content"];
  const int charged = j["tokens_consumed"];
  EXPECT_GT(charged, 5);  // at least the fixed part of base x 1.2 + 5
  EXPECT_EQ(j["remaining_tokens"], before - charged);
}

TEST(ConvertCli, StdinToStdoutAndExitCodes) {
  TempDir dir;
  write_file(dir / "in.json", "{\"a\": [1, 2], \"b\": \"yes\"}");
  {
    Process p({"/bin/sh", "-c", std::string(kBinary) + " convert --from json --to yaml < in.json"}, dir.path(),
              dir / "out.yaml");
    ASSERT_EQ(p.wait(std::chrono::seconds(30)), 0);
    EXPECT_EQ(read_file(dir / "out.yaml"), "a:\n  - 1\n  - 2\nb: \"yes\"\n");
  }
  write_file(dir / "bad.json", "{\"a\": ");
  Process bad({kBinary, "convert", "--from", "json", "--to", "xml", (dir / "bad.json").string()}, dir.path(),
              dir / "bad.log");
  EXPECT_EQ(bad.wait(std::chrono::seconds(30)), 1);
  EXPECT_NE(bad.log().find("line"), std::string::npos) << bad.log();
  Process flags({kBinary, "convert", "--from", "docx", "--to", "xml"}, dir.path(), dir / "flags.log");
  EXPECT_EQ(flags.wait(std::chrono::seconds(30)), 2);
}

}  // namespace
}  // namespace llmd::testing
