// SPEC §4.3: "The official OpenAI client libraries must work against it
// unchanged." Runs the official Node client (tests/clients/openai-node, npm
// `openai` pinned) against a real `llmd serve` with a spawned chat runner
// and an embeddings runner registered as an upstream.
#include <gtest/gtest.h>

#include <filesystem>
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

TEST(OpenAiNodeClient, OfficialClientWorksUnchanged) {
  const fs::path client_dir = fs::path(LLMD_SOURCE_DIR) / "tests/clients/openai-node";
  ASSERT_TRUE(fs::exists(client_dir / "node_modules/openai/package.json"))
      << "run `npm ci` in " << client_dir << " (./setup.sh test does)";

  TempDir dir;
  const fs::path models = dir / "models";
  fs::create_directories(models);
  fs::create_symlink(tiny_test_model(kBinary), models / "tiny.gguf");
  // Tool calls: the same tiny model with Llama 3.1's real chat template.
  fs::create_symlink(templated_test_model(kBinary, "meta-llama-Llama-3.1-8B-Instruct"), models / "tools.gguf");

  const int embed_port = free_port();
  Process embed({kBinary, "runner", "--model", tiny_test_model(kBinary).string(), "--port", std::to_string(embed_port),
                 "--threads", "1", "--ctx", "256", "--parallel", "2", "--embeddings", "--pooling", "mean", "--alias", "tiny-embed",
                 "--log-level", "warn"},
                dir.path(), dir / "embed-runner.log");
  ASSERT_TRUE(wait_for_http(embed_port, "/health", 200, 60s)) << embed.log();

  const int base = free_port();
  LlmdServe serve(kBinary,
                  "limits: { ip_rpm: 0, user_rpm: 0 }\nauth: { bcrypt_cost: 10, initial_tokens: 1000000 }\n"
                  "models:\n  dir: " + models.string() + "\n  port_range: \"" + std::to_string(base) + "-" +
                      std::to_string(base + 10) +
                      "\"\n  list:\n    - { name: tiny, file: tiny.gguf, ctx: 512, parallel: 2, threads: 1 }\n"
                      "    - { name: tools, file: tools.gguf, ctx: 1024, parallel: 1, threads: 1 }\n"
                      "upstreams:\n  - { name: embed, url: \"http://127.0.0.1:" + std::to_string(embed_port) +
                      "\", model: tiny-embed }\n");
  ASSERT_TRUE(serve.started()) << serve.log();

  auto reg = http_request(serve.port(), "POST", "/api/v1/auth/register",
                          json{{"username", "node-client"}, {"password", "node-client-pw"}, {"email", "n@c.io"}}.dump());
  ASSERT_TRUE(reg && reg->status == 201) << (reg ? reg->body : "no reply");
  const std::string token = json::parse(reg->body)["token"];
  auto key = http_request(serve.port(), "POST", "/api/v1/auth/keys", json{{"name", "node"}}.dump(),
                          {{"Authorization", "Bearer " + token}});
  ASSERT_TRUE(key && key->status == 201) << (key ? key->body : "no reply");

  Process node({"/usr/bin/env", "node", "--test", "--test-reporter=spec", "client_test.mjs"}, client_dir,
               dir / "node.log",
               {{"LLMD_BASE_URL", "http://127.0.0.1:" + std::to_string(serve.port()) + "/v1"},
                {"LLMD_API_KEY", json::parse(key->body)["key"].get<std::string>()},
                {"LLMD_MODEL", "tiny"},
                {"LLMD_TOOL_MODEL", "tools"},
                {"LLMD_EMBED_MODEL", "tiny-embed"}});
  const auto code = node.wait(240s);
  EXPECT_EQ(code, 0) << node.log() << "\n--- serve log ---\n" << serve.log();
  // The calls were charged to the key's owner.
  auto profile = http_request(serve.port(), "GET", "/api/v1/auth/profile", "", {{"Authorization", "Bearer " + token}});
  ASSERT_TRUE(profile && profile->status == 200);
  EXPECT_LT(json::parse(profile->body)["user"]["tokens"].get<long>(), 1000000);
}

}  // namespace
}  // namespace llmd::testing
