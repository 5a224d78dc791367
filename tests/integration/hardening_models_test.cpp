// Issue 13, item 14: the runners `llmd serve` spawns are not an open side
// door around billing. Each spawned runner requires a random key that only
// serve knows (handed over in a 0600 file, not on the command line), and a
// plain user's model listing does not say where the runners listen.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
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

class HardeningModels : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path models = dir_ / "models";
    fs::create_directories(models);
    fs::create_symlink(tiny_test_model(kBinary), models / "tiny.gguf");
    const int base = free_port();
    serve_ = std::make_unique<LlmdServe>(
        kBinary,
        "limits: { ip_rpm: 0, user_rpm: 0 }\nauth: { bcrypt_cost: 10, initial_tokens: 1000000 }\n"
        "models:\n  dir: " +
            models.string() + "\n  port_range: \"" + std::to_string(base) + "-" + std::to_string(base + 20) + "\"\n");
    ASSERT_TRUE(serve_->started()) << serve_->log();
    auto login =
        call("POST", "/api/v1/auth/login", json{{"username", "admin"}, {"password", kTestAdminPassword}}.dump());
    ASSERT_TRUE(login && login->status == 200) << (login ? login->body : "no reply");
    admin_ = json::parse(login->body)["token"];
    auto reg = call("POST", "/api/v1/auth/register",
                    json{{"username", "student"}, {"password", "password-123"}, {"email", "s@example.com"}}.dump());
    ASSERT_TRUE(reg && reg->status == 201) << (reg ? reg->body : "no reply");
    user_ = json::parse(reg->body)["token"];
  }

  std::optional<HttpReply> call(const std::string& method, const std::string& path, const std::string& body = "",
                                const std::string& token = "") {
    std::map<std::string, std::string> h{{"Content-Type", "application/json"}};
    if (!token.empty()) h["Authorization"] = "Bearer " + token;
    return http_request(serve_->port(), method, path, body, h);
  }

  json get(const std::string& path, const std::string& token) {
    auto r = call("GET", path, "", token);
    return r && r->status == 200 ? json::parse(r->body, nullptr, false) : json();
  }

  // Starts the model as the admin and returns the port its runner listens on.
  int start_tiny() {
    auto r = call("POST", "/api/v1/models/tiny/start", "", admin_);
    EXPECT_TRUE(r && (r->status == 202 || r->status == 200)) << (r ? r->body : "no reply");
    const auto end = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < end) {
      const json m = get("/api/v1/models/tiny", admin_);
      if (m.value("status", "") == "running") return m["instances"][0]["port"].get<int>();
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "tiny did not start: " << serve_->log();
    return 0;
  }

  static std::string chat_body() {
    return json{{"model", "tiny"}, {"messages", {{{"role", "user"}, {"content", "hello"}}}}, {"max_tokens", 3}}.dump();
  }

  TempDir dir_;
  std::unique_ptr<LlmdServe> serve_;
  std::string admin_, user_;
};

// The command line of every live child of `pid`.
std::vector<std::string> child_command_lines(int pid) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat_in(e.path() / "stat");
    std::string stat;
    std::getline(stat_in, stat);
    const auto close = stat.rfind(')');
    char state = 0;
    int ppid = 0;
    if (close == std::string::npos || std::sscanf(stat.c_str() + close + 2, "%c %d", &state, &ppid) != 2) continue;
    if (ppid != pid || state == 'Z') continue;
    std::ifstream cmd_in(e.path() / "cmdline");
    std::string cmd((std::istreambuf_iterator<char>(cmd_in)), std::istreambuf_iterator<char>());
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    out.push_back(cmd);
  }
  return out;
}

TEST_F(HardeningModels, SpawnedRunnerRefusesCallsWithoutServesKey) {
  const int runner = start_tiny();
  ASSERT_GT(runner, 0);

  // Straight to the runner: no key, a made-up key, another route — all 401.
  const std::map<std::string, std::string> json_type{{"Content-Type", "application/json"}};
  auto bare = http_request(runner, "POST", "/v1/chat/completions", chat_body(), json_type);
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->status, 401) << bare->body;
  EXPECT_EQ(json::parse(bare->body)["error"]["code"], "invalid_api_key") << bare->body;
  auto guessed = http_request(runner, "POST", "/completion", R"({"prompt":"hi","n_predict":2})",
                              {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + user_}});
  ASSERT_TRUE(guessed);
  EXPECT_EQ(guessed->status, 401);

  // Through serve, the same call works (serve sends the runner its key).
  auto chat = call("POST", "/v1/chat/completions", chat_body(), user_);
  ASSERT_TRUE(chat);
  EXPECT_EQ(chat->status, 200) << chat->body;
  auto own = call("POST", "/api/v1/models/tiny/chat", R"({"message":"hi","max_tokens":2,"stream":true})", user_);
  ASSERT_TRUE(own);
  EXPECT_EQ(own->status, 200);
  EXPECT_NE(own->body.find("\"done\":true"), std::string::npos) << own->body;

  // The key is not on the runner's command line: a 0600 file in a 0700 directory.
  const auto cmds = child_command_lines(serve_->process().pid());
  ASSERT_EQ(cmds.size(), 1u);
  const std::string& cmd = cmds[0];
  EXPECT_EQ(cmd.find("--api-key "), std::string::npos) << cmd;
  EXPECT_EQ(cmd.find("llmd-worker-"), cmd.find("llmd-worker-keys-")) << cmd;  // only the directory's name
  const auto at = cmd.find("--api-key-file ");
  ASSERT_NE(at, std::string::npos) << cmd;
  const std::string rest = cmd.substr(at + 15);
  const fs::path key_file = rest.substr(0, rest.find(' '));
  struct stat st {};
  ASSERT_EQ(::stat(key_file.c_str(), &st), 0) << key_file;
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(key_file.parent_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(HardeningModels, PlainUsersDoNotSeeWhereRunnersListenAdminsDo) {
  const int runner = start_tiny();
  ASSERT_GT(runner, 0);
  const std::string port = std::to_string(runner);

  for (const std::string path : {"/api/v1/models", "/api/v1/models/tiny"}) {
    auto r = call("GET", path, "", user_);
    ASSERT_TRUE(r && r->status == 200) << path;
    EXPECT_EQ(r->body.find("127.0.0.1"), std::string::npos) << path << ": " << r->body;
    EXPECT_EQ(r->body.find("\"url\""), std::string::npos) << path << ": " << r->body;
    EXPECT_EQ(r->body.find("\"port\""), std::string::npos) << path << ": " << r->body;
    EXPECT_EQ(r->body.find(":" + port), std::string::npos) << path << ": " << r->body;
    // What a user needs is still there.
    const json j = json::parse(r->body);
    const json& m = j.contains("models") ? j["models"][0] : j;
    EXPECT_EQ(m["status"], "running");
    ASSERT_EQ(m["instances"].size(), 1u);
    EXPECT_EQ(m["instances"][0]["status"], "running");
  }

  const json admin_view = get("/api/v1/models", admin_);
  const json& inst = admin_view["models"][0]["instances"][0];
  EXPECT_EQ(inst["url"], "http://127.0.0.1:" + port);
  EXPECT_EQ(inst["port"], runner);
  EXPECT_GE(inst["threads"].get<int>(), 1);
}

}  // namespace
}  // namespace llmd::testing
