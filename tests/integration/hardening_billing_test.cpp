// Billing cannot be bypassed (issue 13, items 2 and 3): every generation-length
// alias obeys the one limit the gateway reserved by, and a stream cut short —
// by the client or by a dying worker — is charged for its whole prompt and
// every token generated, with the real status in the usage record.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "support/http.h"
#include "support/llmd_serve.h"
#include "support/test_model.h"
#include "support/test_support.h"

namespace llmd::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
constexpr const char* kBinary = LLMD_BINARY;

class BillingHardening : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path models = dir_ / "models";
    fs::create_directories(models);
    fs::create_symlink(tiny_test_model(kBinary), models / "tiny.gguf");
    const int base = free_port();
    server_ = std::make_unique<LlmdServe>(
        kBinary,
        "limits: { ip_rpm: 100000, user_rpm: 100000 }\nauth: { bcrypt_cost: 10, initial_tokens: 1000000 }\n"
        "models:\n  dir: " +
            models.string() + "\n  default_model: tiny\n  port_range: \"" + std::to_string(base) + "-" +
            std::to_string(base + 20) + "\"\n");
    ASSERT_TRUE(server_->started()) << server_->log();
    auto r = call("POST", "/api/v1/auth/register",
                  json{{"username", "student"}, {"password", "password-123"}, {"email", "s@example.com"}}.dump());
    ASSERT_TRUE(r && r->status == 201) << (r ? r->body : "no reply");
    token_ = json::parse(r->body)["token"];
  }

  std::optional<HttpReply> call(const std::string& method, const std::string& path, const std::string& body = "") {
    std::map<std::string, std::string> h{{"Content-Type", "application/json"}};
    if (!token_.empty()) h["Authorization"] = "Bearer " + token_;
    return http_request(server_->port(), method, path, body, h);
  }
  std::int64_t balance() {
    auto r = call("GET", "/api/v1/auth/profile");
    return r && r->status == 200 ? json::parse(r->body)["user"]["tokens"].get<std::int64_t>() : -1;
  }
  // The newest usage record of the caller, once its count reaches `n`.
  json usage_record(std::size_t n) {
    const auto end = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < end) {
      auto r = call("GET", "/api/v1/auth/usage?limit=50");
      if (r && r->status == 200) {
        const json j = json::parse(r->body);
        if (j["records"].size() >= n) return j["records"][0];
      }
      std::this_thread::sleep_for(50ms);
    }
    return json();
  }

  TempDir dir_;
  std::unique_ptr<LlmdServe> server_;
  std::string token_;
};

// The attack: reserve by max_tokens 1, generate by n_predict 2000.
TEST_F(BillingHardening, EveryLengthAliasObeysTheReservedLimit) {
  const std::int64_t before = balance();
  std::size_t calls = 0;
  for (const std::string path : {"/v1/chat/completions", "/v1/completions"}) {
    for (const json& lengths :
         {json{{"max_tokens", 1}, {"n_predict", 2000}}, json{{"n_predict", 2000}, {"max_tokens", 1}},
          json{{"max_completion_tokens", 1}, {"n_predict", 2000}}, json{{"n_predict", 2}, {"max_tokens", 50}}}) {
      json body = {{"ignore_eos", true}, {"seed", 1}};
      if (path == "/v1/completions") {
        body["prompt"] = "hello";
      } else {
        body["messages"] = json::array({{{"role", "user"}, {"content", "hello"}}});
      }
      body.update(lengths);
      auto r = call("POST", path, body.dump());
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 200) << path << " " << lengths.dump() << ": " << r->body;
      ++calls;
      const json reply = json::parse(r->body);
      const std::int64_t expected = lengths.contains("n_predict") && lengths["n_predict"] == 2 ? 2 : 1;
      EXPECT_EQ(reply["usage"]["completion_tokens"], expected) << path << " " << lengths.dump();
      const json rec = usage_record(calls);
      EXPECT_EQ(rec["completion_tokens"], expected);
      EXPECT_EQ(rec["charged"].get<std::int64_t>(),
                rec["prompt_tokens"].get<std::int64_t>() + rec["completion_tokens"].get<std::int64_t>());
    }
  }
  // A conflicting alias of the wrong type is refused before anything runs.
  auto bad = call("POST", "/v1/completions", R"({"prompt":"x","max_tokens":1,"n_predict":"lots"})");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_LT(balance(), before);
}

// OpenAI's n through the gateway: every choice is generated and paid for,
// whole or streamed; the prompt once.
TEST_F(BillingHardening, SeveralChoicesArePaidForEveryChoiceAndThePromptOnce) {
  std::size_t calls = 0;
  for (const bool stream : {false, true}) {
    const std::int64_t before = balance();
    json body{{"messages", json::array({{{"role", "user"}, {"content", "three answers please"}}})},
              {"max_tokens", 5},
              {"ignore_eos", true},
              {"n", 3},
              {"seed", 4}};
    if (stream) body["stream"] = true;
    auto r = call("POST", "/v1/chat/completions", body.dump());
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    ++calls;
    if (!stream) {
      const json reply = json::parse(r->body);
      ASSERT_EQ(reply["choices"].size(), 3u);
      EXPECT_EQ(reply["usage"]["completion_tokens"], 15);
    } else {
      std::set<int> indices;
      for (auto at = r->body.find("\"index\":"); at != std::string::npos; at = r->body.find("\"index\":", at + 1)) {
        indices.insert(r->body[at + 8] - '0');
      }
      EXPECT_EQ(indices, (std::set<int>{0, 1, 2})) << r->body;
    }
    const json rec = usage_record(calls);
    ASSERT_FALSE(rec.is_null());
    EXPECT_EQ(rec["completion_tokens"], 15) << "stream: " << stream;
    EXPECT_LT(rec["prompt_tokens"].get<std::int64_t>(), 40) << "the prompt was counted more than once";
    EXPECT_EQ(rec["charged"].get<std::int64_t>(), rec["prompt_tokens"].get<std::int64_t>() + 15);
    EXPECT_EQ(before - balance(), rec["charged"].get<std::int64_t>());
  }
  // More than the gateway allows, or best_of where it does not apply: 400, free.
  const std::int64_t before = balance();
  for (const json& extra : {json{{"n", 17}}, json{{"best_of", 2}}, json{{"n", "2"}}}) {
    json body{{"messages", json::array({{{"role", "user"}, {"content", "x"}}})}, {"max_tokens", 5}};
    body.update(extra);
    auto r = call("POST", "/v1/chat/completions", body.dump());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << extra.dump() << ": " << r->body;
  }
  EXPECT_EQ(balance(), before);
}

// A long prompt, a few events read, then the client hangs up.
TEST_F(BillingHardening, AStreamClosedEarlyPaysForItsWholePrompt) {
  std::string prompt;
  for (int i = 0; i < 600; ++i) prompt += "hello world ";
  // The prompt's size in tokens, from an unstreamed call.
  auto ref = call("POST", "/v1/completions", json{{"prompt", prompt}, {"max_tokens", 1}}.dump());
  ASSERT_TRUE(ref && ref->status == 200) << (ref ? ref->body : "no reply");
  const std::int64_t prompt_tokens = json::parse(ref->body)["usage"]["prompt_tokens"];
  ASSERT_GT(prompt_tokens, 1000);

  const std::int64_t before = balance();
  {
    RawConnection conn(server_->port());
    ASSERT_TRUE(conn.ok());
    const std::string body =
        json{{"prompt", prompt}, {"max_tokens", 2000}, {"ignore_eos", true}, {"stream", true}, {"cache_prompt", false}}
            .dump();
    ASSERT_TRUE(conn.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token_ +
                          "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                          "\r\n\r\n" + body));
    auto head = conn.read_head();
    ASSERT_TRUE(head);
    ASSERT_EQ(head->status, 200);
    std::string seen;
    const auto end = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < end) {  // four events, then hang up
      auto piece = conn.read_some(std::chrono::seconds(5));
      if (!piece || piece->empty()) break;
      seen += *piece;
      std::size_t events = 0;
      for (auto at = seen.find("data: "); at != std::string::npos; at = seen.find("data: ", at + 1)) ++events;
      if (events >= 4) break;
    }
    EXPECT_EQ(seen.find("\"timings\""), std::string::npos) << "timings leak to a client that did not ask";
  }
  const json rec = usage_record(2);
  ASSERT_FALSE(rec.is_null());
  EXPECT_EQ(rec["status"], 499);
  EXPECT_EQ(rec["prompt_tokens"], prompt_tokens);
  EXPECT_GE(rec["completion_tokens"].get<std::int64_t>(), 3);
  EXPECT_LT(rec["completion_tokens"].get<std::int64_t>(), 2000);
  const std::int64_t charged = rec["charged"];
  EXPECT_EQ(charged, prompt_tokens + rec["completion_tokens"].get<std::int64_t>());
  EXPECT_EQ(before - balance(), charged);
}

}  // namespace
}  // namespace llmd::testing
