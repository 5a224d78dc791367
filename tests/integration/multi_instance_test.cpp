// Two real `llmd serve` instances on one private MariaDB and one private
// Redis: balances stay exact under concurrent spending through both, and
// rate limits are shared.
#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "store/database.h"
#include "support/http.h"
#include "support/llmd_serve.h"
#include "support/mariadb_server.h"
#include "support/redis_server.h"

namespace llmd::testing {
namespace {

using nlohmann::json;
constexpr const char* kBinary = LLMD_BINARY;
constexpr const char* kAdminPassword = "admin-password-for-tests";

class MultiInstanceTest : public ::testing::Test {
 protected:
  // Starts MariaDB, Redis and the two instances (one after the other: the
  // first creates the schema and the admin account).
  void start(const std::string& limits_yaml) {
    ASSERT_TRUE(mariadb_.started()) << mariadb_.error();
    ASSERT_TRUE(redis_.started()) << redis_.error();
    db_url_ = mariadb_.create_database(/*tcp=*/true);
    ASSERT_FALSE(db_url_.empty());
    const std::string yaml =
        "auth: { bcrypt_cost: 10, initial_tokens: 0, "
        "jwt_secret: \"a-shared-secret-of-more-than-32-bytes!!\" }\n" +
        limits_yaml;
    const std::map<std::string, std::string> env{
        {"LLMD_DATABASE", db_url_}, {"LLMD_REDIS", redis_.url()}, {"LLMD_ADMIN_PASSWORD", kAdminPassword}};
    a_ = std::make_unique<LlmdServe>(kBinary, yaml, "", env);
    ASSERT_TRUE(a_->started()) << a_->log();
    b_ = std::make_unique<LlmdServe>(kBinary, yaml, "", env);
    ASSERT_TRUE(b_->started()) << b_->log();
  }

  static std::optional<HttpReply> call(int port, const std::string& method, const std::string& path,
                                       const std::string& body = "", const std::string& token = "") {
    std::map<std::string, std::string> h;
    if (!token.empty()) h["Authorization"] = "Bearer " + token;
    return http_request(port, method, path, body, h);
  }
  std::string login(int port, const std::string& user, const std::string& password) {
    auto r = call(port, "POST", "/api/v1/auth/login", json{{"username", user}, {"password", password}}.dump());
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no reply");
    return r && r->status == 200 ? json::parse(r->body)["token"].get<std::string>() : "";
  }
  // Registers a user on instance A; returns {token, id}.
  std::pair<std::string, std::int64_t> new_user(const std::string& name) {
    auto r = call(a_->port(), "POST", "/api/v1/auth/register",
                  json{{"username", name}, {"password", "password-" + name}, {"email", name + "@school.cn"}}.dump());
    EXPECT_TRUE(r && r->status == 201) << (r ? r->body : "no reply");
    const auto j = json::parse(r->body);
    return {j["token"], j["user"]["id"]};
  }
  // {balance, SUM(ledger.delta), reserved} straight from the database.
  std::tuple<std::int64_t, std::int64_t, std::int64_t> books(std::int64_t user_id) {
    auto db = store::Database::open(db_url_, 1);
    EXPECT_TRUE(db);
    auto rows = (*db)->with_connection<std::vector<store::Row>>([&](store::Connection& c) {
      return c.query(
          "SELECT balance, (SELECT COALESCE(SUM(delta), 0) FROM "
          "ledger WHERE user_id = u.id), reserved "
          "FROM users u WHERE id = ?",
          std::vector<store::Value>{user_id});
    });
    EXPECT_TRUE(rows && rows->size() == 1);
    const auto& r = rows->front();
    return {r.integer(0), r.integer(1), r.integer(2)};
  }

  MariaDbServer mariadb_;
  RedisServer redis_;
  std::string db_url_;
  std::unique_ptr<LlmdServe> a_, b_;
};

TEST_F(MultiInstanceTest, ConcurrentSpendsThroughBothInstancesKeepTheExactBalance) {
  start("limits: { login_attempts: 20, user_rpm: 0, ip_rpm: 0 }\n");
  auto [token, id] = new_user("spender");
  const std::string admin_a = login(a_->port(), "admin", kAdminPassword);
  const std::string admin_b = login(b_->port(), "admin", kAdminPassword);
  const std::string tokens_path = "/api/v1/admin/users/" + std::to_string(id) + "/tokens";
  ASSERT_EQ(call(a_->port(), "POST", tokens_path, json{{"amount", 20}, {"reason", "start"}}.dump(), admin_a)->status,
            200);

  // 50 deductions of 1 against a balance of 20, half through each instance.
  std::atomic<int> ok{0}, refused{0}, other{0};
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < 50; ++i) {
      threads.emplace_back([&, i] {
        const bool on_a = i % 2 == 0;
        auto r = call(on_a ? a_->port() : b_->port(), "POST", tokens_path,
                      json{{"amount", -1}, {"reason", "spend " + std::to_string(i)}}.dump(), on_a ? admin_a : admin_b);
        if (r && r->status == 200)
          ++ok;
        else if (r && r->status == 402)
          ++refused;
        else
          ++other;
      });
    }
    for (auto& t : threads) t.join();
  }
  EXPECT_EQ(ok.load(), 20);
  EXPECT_EQ(refused.load(), 30);
  EXPECT_EQ(other.load(), 0);
  auto [balance, ledger_sum, reserved] = books(id);
  EXPECT_EQ(balance, 0);
  EXPECT_EQ(ledger_sum, balance);
  EXPECT_EQ(reserved, 0);

  // The same through a paid endpoint: a conversion that costs 9 tokens
  // (ceil((7 + 5) / 4) = 3 -> ceil(3 x 1.2) + 5), balance for exactly 10.
  ASSERT_EQ(call(b_->port(), "POST", tokens_path, json{{"amount", 90}, {"reason", "more"}}.dump(), admin_b)->status,
            200);
  const std::string body = json{{"source_format", "json"}, {"target_format", "yaml"}, {"content", "{\"a\":1}"}}.dump();
  std::atomic<int> converted{0}, unpaid{0};
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < 30; ++i) {
      threads.emplace_back([&, i] {
        auto r = call(i % 2 ? a_->port() : b_->port(), "POST", "/api/v1/tasks/convert", body, token);
        if (r && r->status == 200) {
          ++converted;
          EXPECT_EQ(json::parse(r->body)["tokens_consumed"], 9);
        } else if (r && r->status == 402) {
          ++unpaid;
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  EXPECT_EQ(converted.load(), 10);
  EXPECT_EQ(unpaid.load(), 20);
  auto [balance2, ledger_sum2, reserved2] = books(id);
  EXPECT_EQ(balance2, 0);
  EXPECT_EQ(ledger_sum2, 0);
  EXPECT_EQ(reserved2, 0);
  // Both instances see the same account.
  auto profile = call(b_->port(), "GET", "/api/v1/auth/profile", "", token);
  ASSERT_EQ(profile->status, 200) << profile->body;
  EXPECT_EQ(json::parse(profile->body)["user"]["tokens"], 0);
}

TEST_F(MultiInstanceTest, RateLimitIsSharedAcrossInstances) {
  start("limits: { login_attempts: 20, user_rpm: 0, ip_rpm: 6 }\n");
  for (int i = 0; i < 6; ++i) {
    auto r = call(i % 2 ? b_->port() : a_->port(), "GET", "/api/v1/tasks/formats");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << "request " << i << ": " << r->body;
  }
  // The 7th, on either instance, is over the shared limit of 6.
  for (int port : {a_->port(), b_->port()}) {
    auto r = call(port, "GET", "/api/v1/tasks/formats");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 429) << r->body;
    EXPECT_FALSE(r->header("retry-after").empty());
  }
  EXPECT_EQ(call(a_->port(), "GET", "/health")->status, 200) << "non-API routes are not limited";
}

TEST_F(MultiInstanceTest, RedisGoingDownKeepsTheApiUp) {
  start("limits: { login_attempts: 20, user_rpm: 0, ip_rpm: 1000 }\n");
  redis_.kill();
  for (int port : {a_->port(), b_->port()}) {
    auto r = call(port, "GET", "/api/v1/tasks/formats");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
  }
  EXPECT_NE(a_->log().find("per-instance limits"), std::string::npos) << "a warning says what happened";
}

}  // namespace
}  // namespace llmd::testing
