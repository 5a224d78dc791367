// SPEC §4.3: "The official OpenAI client libraries must work against it
// unchanged." Runs the official Node clients (tests/clients/openai-node, npm
// `openai` pinned; tests/clients/anthropic-node, `@anthropic-ai/sdk` pinned)
// against a real `llmd serve` with spawned chat runners and an embeddings
// runner registered as an upstream.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "support/http.h"
#include "support/llmd_serve.h"
#include "support/process.h"
#include "support/test_model.h"
#include "support/test_support.h"

namespace llmd::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;
constexpr const char* kBinary = LLMD_BINARY;

// One serve for the official clients: a chat model, a tool-calling model
// (Llama 3.1's real template) and an embeddings runner as an upstream; a
// user with an API key.
class OfficialClients : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const fs::path models = *dir_ / "models";
    fs::create_directories(models);
    fs::create_symlink(tiny_test_model(kBinary), models / "tiny.gguf");
    fs::create_symlink(templated_test_model(kBinary, "meta-llama-Llama-3.1-8B-Instruct"), models / "tools.gguf");
    // Thinking: DeepSeek-R1's real template opens the thinking block itself.
    fs::create_symlink(templated_test_model(kBinary, "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B"),
                       models / "reasoner.gguf");
    const int embed_port = free_port();
    embed_ = new Process({kBinary, "runner", "--model", tiny_test_model(kBinary).string(), "--port",
                          std::to_string(embed_port), "--threads", "1", "--ctx", "256", "--parallel", "2",
                          "--embeddings", "--pooling", "mean", "--alias", "tiny-embed", "--log-level", "warn"},
                         dir_->path(), *dir_ / "embed-runner.log");
    if (!wait_for_http(embed_port, "/health", 200, 60s)) return;
    const int base = free_port();
    serve_ = new LlmdServe(kBinary,
                           "limits: { ip_rpm: 0, user_rpm: 0 }\nauth: { bcrypt_cost: 10, initial_tokens: 1000000 }\n"
                           "models:\n  dir: " +
                               models.string() + "\n  port_range: \"" + std::to_string(base) + "-" +
                               std::to_string(base + 10) +
                               "\"\n  list:\n    - { name: tiny, file: tiny.gguf, ctx: 512, parallel: 2, threads: 1 }\n"
                               "    - { name: tools, file: tools.gguf, ctx: 1024, parallel: 1, threads: 1 }\n"
                               "    - { name: reasoner, file: reasoner.gguf, ctx: 512, parallel: 1, threads: 1 }\n"
                               "upstreams:\n  - { name: embed, url: \"http://127.0.0.1:" +
                               std::to_string(embed_port) + "\", model: tiny-embed }\n");
    if (!serve_->started()) return;
    auto reg =
        http_request(serve_->port(), "POST", "/api/v1/auth/register",
                     json{{"username", "node-client"}, {"password", "node-client-pw"}, {"email", "n@c.io"}}.dump());
    if (!reg || reg->status != 201) return;
    token_ = json::parse(reg->body)["token"];
    auto key = http_request(serve_->port(), "POST", "/api/v1/auth/keys", json{{"name", "node"}}.dump(),
                            {{"Authorization", "Bearer " + token_}});
    if (key && key->status == 201) key_ = json::parse(key->body)["key"];
  }
  static void TearDownTestSuite() {
    delete serve_;
    delete embed_;
    delete dir_;
  }
  void SetUp() override {
    ASSERT_NE(serve_, nullptr) << "the embeddings runner did not start: " << embed_->log();
    ASSERT_TRUE(serve_->started()) << serve_->log();
    ASSERT_FALSE(key_.empty()) << "no API key";
  }

  // Runs `script` of the client package in tests/clients/`package` with node's test runner.
  static void run_client(const std::string& package, const std::string& installed,
                         std::map<std::string, std::string> env) {
    const fs::path client_dir = fs::path(LLMD_SOURCE_DIR) / "tests/clients" / package;
    ASSERT_TRUE(fs::exists(client_dir / "node_modules" / installed / "package.json"))
        << "run `npm ci` in " << client_dir << " (./setup.sh test does)";
    env["LLMD_API_KEY"] = key_;
    const std::int64_t before = tokens();
    Process node({"/usr/bin/env", "node", "--test", "--test-reporter=spec", "client_test.mjs"}, client_dir,
                 *dir_ / (package + ".log"), env);
    const auto code = node.wait(240s);
    EXPECT_EQ(code, 0) << node.log() << "\n--- serve log ---\n" << serve_->log();
    EXPECT_LT(tokens(), before);  // the calls were charged to the key's owner
  }
  static std::int64_t tokens() {
    auto profile =
        http_request(serve_->port(), "GET", "/api/v1/auth/profile", "", {{"Authorization", "Bearer " + token_}});
    if (!profile || profile->status != 200) return -1;
    return json::parse(profile->body)["user"]["tokens"].get<std::int64_t>();
  }

  static TempDir* dir_;
  static Process* embed_;
  static LlmdServe* serve_;
  static std::string token_;
  static std::string key_;
};
TempDir* OfficialClients::dir_ = nullptr;
Process* OfficialClients::embed_ = nullptr;
LlmdServe* OfficialClients::serve_ = nullptr;
std::string OfficialClients::token_;
std::string OfficialClients::key_;

TEST_F(OfficialClients, OpenAiNodeClientWorksUnchanged) {
  run_client("openai-node", "openai",
             {{"LLMD_BASE_URL", "http://127.0.0.1:" + std::to_string(serve_->port()) + "/v1"},
              {"LLMD_MODEL", "tiny"},
              {"LLMD_TOOL_MODEL", "tools"},
              {"LLMD_REASONING_MODEL", "reasoner"},
              {"LLMD_EMBED_MODEL", "tiny-embed"}});
}

// Issue: the Anthropic Messages dialect, with the official client unchanged.
TEST_F(OfficialClients, AnthropicNodeClientWorksUnchanged) {
  run_client("anthropic-node", "@anthropic-ai/sdk",
             {{"LLMD_ORIGIN", "http://127.0.0.1:" + std::to_string(serve_->port())},
              {"LLMD_MODEL", "tiny"},
              {"LLMD_TOOL_MODEL", "tools"},
              {"LLMD_REASONING_MODEL", "reasoner"}});
}

// The Ollama dialect, with the official client unchanged.
TEST_F(OfficialClients, OllamaClientWorksUnchanged) {
  run_client("ollama-node", "ollama",
             {{"LLMD_ORIGIN", "http://127.0.0.1:" + std::to_string(serve_->port())},
              {"LLMD_MODEL", "tiny"},
              {"LLMD_TOOL_MODEL", "tools"},
              {"LLMD_EMBED_MODEL", "tiny-embed"}});
}

}  // namespace
}  // namespace llmd::testing
