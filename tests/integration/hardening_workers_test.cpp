// Workers cannot take serve down or leak through it (issue 13, items 1 and 17):
// a stop racing a start, and LRU eviction under parallel chats, never shut
// serve down (a SIGTERM aimed at a worker between fork and exec once ran
// serve's own handler); a crashing worker's output reaches the operator's log,
// never a user.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

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

std::string models_yaml(const fs::path& dir, const std::string& extra) {
  const int base = free_port();
  return "limits: { ip_rpm: 0, user_rpm: 0 }\nauth: { bcrypt_cost: 10, initial_tokens: 100000000 }\n"
         "models:\n  dir: " +
         dir.string() + "\n  port_range: \"" + std::to_string(base) + "-" + std::to_string(base + 40) + "\"\n" + extra;
}

std::string login(int port, const std::string& user, const std::string& password) {
  auto r = http_request(port, "POST", "/api/v1/auth/login", json{{"username", user}, {"password", password}}.dump());
  return r && r->status == 200 ? json::parse(r->body)["token"].get<std::string>() : "";
}

std::optional<HttpReply> as(int port, const std::string& token, const std::string& method, const std::string& path,
                            const std::string& body = "") {
  return http_request(port, method, path, body, {{"Authorization", "Bearer " + token}});
}

void expect_still_serving(LlmdServe& serve) {
  EXPECT_TRUE(serve.process().running()) << serve.log();
  auto health = http_request(serve.port(), "GET", "/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(serve.log().find("shutting down"), std::string::npos) << serve.log();
}

TEST(WorkerHardening, StartRacingStopNeverShutsServeDown) {
  TempDir dir;
  const fs::path models = dir / "models";
  fs::create_directories(models);
  fs::create_symlink(tiny_test_model(kBinary), models / "tiny.gguf");
  LlmdServe serve(kBinary, models_yaml(models, ""));
  ASSERT_TRUE(serve.started()) << serve.log();
  const std::string admin = login(serve.port(), "admin", kTestAdminPassword);
  ASSERT_FALSE(admin.empty());
  for (int round = 0; round < 12 && serve.process().running(); ++round) {
    std::vector<std::thread> callers;
    for (int i = 0; i < 20; ++i) {
      callers.emplace_back([&, i] {
        as(serve.port(), admin, "POST", std::string("/api/v1/models/tiny/") + (i % 2 ? "stop" : "start"));
      });
    }
    for (auto& t : callers) t.join();
  }
  expect_still_serving(serve);
}

TEST(WorkerHardening, EvictionUnderParallelChatsNeverShutsServeDown) {
  TempDir dir;
  const fs::path models = dir / "models";
  fs::create_directories(models);
  for (const char* name : {"a", "b", "c"})
    fs::create_symlink(tiny_test_model(kBinary), models / (std::string(name) + ".gguf"));
  LlmdServe serve(kBinary, models_yaml(models, "  max_loaded: 1\n"));
  ASSERT_TRUE(serve.started()) << serve.log();
  auto reg =
      http_request(serve.port(), "POST", "/api/v1/auth/register",
                   json{{"username", "student"}, {"password", "password-123"}, {"email", "s@example.com"}}.dump());
  ASSERT_TRUE(reg && reg->status == 201);
  const std::string user = json::parse(reg->body)["token"];
  for (int round = 0; round < 2 && serve.process().running(); ++round) {
    std::vector<std::thread> callers;
    for (int i = 0; i < 18; ++i) {
      callers.emplace_back([&, i] {
        const std::string model = std::string(1, static_cast<char>('a' + i % 3));
        as(serve.port(), user, "POST", "/v1/chat/completions",
           json{{"model", model}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 2}}.dump());
      });
    }
    for (auto& t : callers) t.join();
  }
  expect_still_serving(serve);
}

TEST(WorkerHardening, ACrashingWorkersOutputReachesTheLogNeverAUser) {
  TempDir dir;
  const fs::path models = dir / "models";
  fs::create_directories(models);
  const fs::path script = dir / "crash.sh";
  write_file(script, "#!/bin/sh\necho 'request_id=other-users-secret-4711'\nexit 3\n");
  ::chmod(script.c_str(), 0755);
  LlmdServe serve(kBinary,
                  models_yaml(models, "  list:\n    - { name: crashy, command: \"" + script.string() + "\" }\n"));
  ASSERT_TRUE(serve.started()) << serve.log();
  auto reg =
      http_request(serve.port(), "POST", "/api/v1/auth/register",
                   json{{"username", "student"}, {"password", "password-123"}, {"email", "s@example.com"}}.dump());
  ASSERT_TRUE(reg && reg->status == 201);
  const std::string user = json::parse(reg->body)["token"];
  const std::string chat =
      json{{"model", "crashy"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 2}}.dump();
  // Until the manager gives up restarting it, then once more.
  const auto end = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < end && serve.log().find("giving up") == std::string::npos) {
    auto r = as(serve.port(), user, "POST", "/v1/chat/completions", chat);
    ASSERT_TRUE(r);
    EXPECT_NE(r->status, 200);
    EXPECT_EQ(r->body.find("secret-4711"), std::string::npos) << r->body;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_NE(serve.log().find("giving up"), std::string::npos) << serve.log();
  for (const std::string path : {"/v1/chat/completions", "/api/v1/models", "/api/v1/models/crashy"}) {
    auto r = path == "/v1/chat/completions" ? as(serve.port(), user, "POST", path, chat)
                                            : as(serve.port(), user, "GET", path);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body.find("secret-4711"), std::string::npos) << path << ": " << r->body;
  }
  EXPECT_NE(serve.log().find("secret-4711"), std::string::npos) << "the operator's log keeps the worker's output";
}

}  // namespace
}  // namespace llmd::testing
