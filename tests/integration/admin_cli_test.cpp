// `llmd admin ...` on a real database, then the server sees the same users.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/http.h"
#include "support/llmd_serve.h"

namespace llmd::testing {
namespace {

using nlohmann::json;
constexpr const char* kBinary = LLMD_BINARY;

class AdminCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file(dir_ / "llmd.yaml", "database: \"sqlite:" + (dir_ / "data/llmd.db").string() +
                                       "\"\nauth: { bcrypt_cost: 10, initial_tokens: 100 }\n");
  }
  // Runs `llmd admin -c llmd.yaml ARGS` through the shell (for stdin); returns {exit code, output}.
  std::pair<int, std::string> admin(const std::string& args, const std::string& stdin_text = "") {
    const std::string cmd =
        (stdin_text.empty() ? "" : "printf '%s\\n' '" + stdin_text + "' | ") + kBinary + " admin -c llmd.yaml " + args;
    const auto log = dir_ / ("out-" + std::to_string(++calls_) + ".log");
    Process p({"/bin/sh", "-c", cmd}, dir_.path(), log);
    const auto code = p.wait(std::chrono::seconds(60));
    return {code.value_or(-1), read_file(log)};
  }
  json list() {
    auto [code, out] = admin("list --json");
    EXPECT_EQ(code, 0) << out;
    return json::parse(out, nullptr, false);
  }
  TempDir dir_;
  int calls_ = 0;
};

TEST_F(AdminCliTest, UserAddGrantRoleDisableList) {
  auto [code, out] = admin("user-add bob --email bob@school.cn --password-stdin", "bob-password-1");
  ASSERT_EQ(code, 0) << out;
  auto users = list();
  ASSERT_EQ(users.size(), 1u);
  EXPECT_EQ(users[0]["username"], "bob");
  EXPECT_EQ(users[0]["tokens"], 100);

  EXPECT_EQ(admin("grant bob 50 --reason prize").first, 0);
  EXPECT_EQ(list()[0]["tokens"], 150);
  EXPECT_EQ(admin("grant bob -500 --reason oops").first, 1);  // never below zero
  EXPECT_EQ(list()[0]["tokens"], 150);
  EXPECT_EQ(admin("set-role bob admin").first, 0);
  EXPECT_EQ(list()[0]["role"], "admin");
  // bob is now the only active administrator: never disabled (issue 13).
  EXPECT_EQ(admin("disable bob").first, 1);
  EXPECT_EQ(list()[0]["disabled"], false);
  ASSERT_EQ(admin("user-add carol --email carol@school.cn --password-stdin", "carol-password-1").first, 0);
  ASSERT_EQ(admin("set-role carol admin").first, 0);
  EXPECT_EQ(admin("disable bob").first, 0);
  for (const auto& u : list()) {
    if (u["username"] == "bob") EXPECT_EQ(u["disabled"], true);
  }
}

TEST_F(AdminCliTest, PasswdSetsOrGeneratesAPasswordAndEndsSessions) {
  ASSERT_EQ(admin("user-add erin --email erin@s.cn --password-stdin", "erin-password").first, 0);
  const int port = free_port();
  write_file(dir_ / "llmd.yaml", read_file(dir_ / "llmd.yaml") + "server: { port: " + std::to_string(port) +
                                     ", data_dir: " + (dir_ / "data").string() + " }\n");
  Process serve({kBinary, "serve", "-c", "llmd.yaml"}, dir_.path(), dir_ / "serve.log",
                {{"LLMD_ADMIN_PASSWORD", kTestAdminPassword}});
  ASSERT_TRUE(wait_for_http(port, "/health", 200, std::chrono::seconds(30))) << serve.log();
  auto login = [&](const std::string& password) {
    return http_request(port, "POST", "/api/v1/auth/login", json{{"username", "erin"}, {"password", password}}.dump());
  };
  auto first = login("erin-password");
  ASSERT_EQ(first->status, 200) << first->body;
  const std::string token = json::parse(first->body)["token"];

  auto [code, out] = admin("passwd erin --password-stdin", "erin-new-password");
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(login("erin-password")->status, 401);
  auto second = login("erin-new-password");
  ASSERT_EQ(second->status, 200);
  EXPECT_EQ(json::parse(second->body)["user"]["must_change_password"], false);
  EXPECT_EQ(http_request(port, "GET", "/api/v1/auth/profile", "", {{"Authorization", "Bearer " + token}})->status, 401);

  // Generated: printed once, to be changed at the next login.
  auto [gen_code, gen_out] = admin("passwd erin");
  ASSERT_EQ(gen_code, 0) << gen_out;
  const std::string marker = "generated password (shown once): ";
  const auto at = gen_out.find(marker);
  ASSERT_NE(at, std::string::npos) << gen_out;
  const std::string generated = gen_out.substr(at + marker.size(), 20);
  auto third = login(generated);
  ASSERT_EQ(third->status, 200) << generated;
  EXPECT_EQ(json::parse(third->body)["user"]["must_change_password"], true);

  EXPECT_EQ(admin("passwd nobody --password-stdin", "whatever-pass").first, 1);
  EXPECT_EQ(admin("passwd erin --password-stdin", "short").first, 1);
}

TEST_F(AdminCliTest, ErrorsAndBadFlags) {
  EXPECT_EQ(admin("grant nobody 5 --reason x").first, 1);
  EXPECT_EQ(admin("set-role nobody superuser").first, 2);
  EXPECT_EQ(admin("user-add x --email a@b.cn", "").first, 1);  // username too short
  EXPECT_EQ(admin("frobnicate").first, 2);
  auto [code, out] = admin("user-add carol --email carol@s.cn --password-stdin", std::string(80, 'p'));
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("72"), std::string::npos) << out;
}

TEST_F(AdminCliTest, ServerSeesUsersCreatedByTheCli) {
  ASSERT_EQ(admin("user-add dora --email dora@s.cn --password-stdin", "dora-password").first, 0);
  const int port = free_port();
  write_file(dir_ / "llmd.yaml", read_file(dir_ / "llmd.yaml") + "server: { port: " + std::to_string(port) +
                                     ", data_dir: " + (dir_ / "data").string() + " }\n");
  Process serve({kBinary, "serve", "-c", "llmd.yaml"}, dir_.path(), dir_ / "serve.log",
                {{"LLMD_ADMIN_PASSWORD", kTestAdminPassword}});
  ASSERT_TRUE(wait_for_http(port, "/health", 200, std::chrono::seconds(30))) << serve.log();
  auto r = http_request(port, "POST", "/api/v1/auth/login",
                        json{{"username", "dora"}, {"password", "dora-password"}}.dump());
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["user"]["tokens"], 100);
  EXPECT_EQ(admin("disable dora").first, 0);
  auto again = http_request(port, "POST", "/api/v1/auth/login",
                            json{{"username", "dora"}, {"password", "dora-password"}}.dump());
  EXPECT_EQ(again->status, 401);
  EXPECT_EQ(r->header("x-content-type-options"), "nosniff");
  EXPECT_EQ(r->header("cache-control"), "no-store");
}

}  // namespace
}  // namespace llmd::testing
