// Issue 19 (SPEC §4.5b): groups, scoped keys and redemption codes on two real
// `llmd serve` instances sharing one private MariaDB and one private Redis.
// The books are read straight from the database: balances, ledger rows, key
// budgets and group pools must agree however the calls were spread.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <concepts>
#include <ctime>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <tuple>

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

std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

// The parser path: 7 bytes in, "a: 1\n" out -> ceil(3 x 1.2) + 5 = 9 tokens.
const std::string kCheapConversion =
    json{{"source_format", "json"}, {"target_format", "yaml"}, {"content", "{\"a\":1}"}}.dump();
// Broken input with repair on: the parser fails, then the repair path opens a
// metered call for tasks.convert.model ("tiny-model", which does not exist).
const std::string kRepairConversion = json{
    {"source_format", "json"},
    {"target_format", "yaml"},
    {"content", "{bad"},
    {"options", {{"repair", true}}}}.dump();

std::string show(const std::optional<HttpReply>& r) {
  return r ? std::to_string(r->status) + " " + r->body : std::string("no reply");
}
std::string error_code(const std::optional<HttpReply>& r) {
  if (!r) return "";
  auto j = json::parse(r->body, nullptr, false);
  if (j.is_discarded() || !j.contains("error")) return "";
  return j["error"].value("code", "");
}

class GroupsTest : public ::testing::Test {
 protected:
  void SetUp() override { started_at_ = std::chrono::steady_clock::now(); }
  void TearDown() override {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_at_);
    std::cout << "[ timing ] " << ::testing::UnitTest::GetInstance()->current_test_info()->name() << ": " << ms.count()
              << " ms\n";
  }

  // Starts MariaDB, Redis and the two instances (one after the other: the
  // first creates the schema and the admin account); logs the admin in.
  void start(const std::string& extra_yaml = "") {
    ASSERT_TRUE(mariadb_.started()) << mariadb_.error();
    ASSERT_TRUE(redis_.started()) << redis_.error();
    db_url_ = mariadb_.create_database(/*tcp=*/true);
    ASSERT_FALSE(db_url_.empty());
    const std::string yaml =
        "auth: { bcrypt_cost: 10, initial_tokens: 0, register_per_ip_per_hour: 0, "
        "jwt_secret: \"a-shared-secret-of-more-than-32-bytes!!\" }\n"
        "limits: { login_attempts: 50, user_rpm: 0, ip_rpm: 0 }\n"
        "groups: { max_teacher_allowance: 500 }\n"
        "tasks: { convert: { model: tiny-model } }\n" +
        extra_yaml;
    const std::map<std::string, std::string> env{
        {"LLMD_DATABASE", db_url_}, {"LLMD_REDIS", redis_.url()}, {"LLMD_ADMIN_PASSWORD", kAdminPassword}};
    a_ = std::make_unique<LlmdServe>(kBinary, yaml, "", env);
    ASSERT_TRUE(a_->started()) << a_->log();
    b_ = std::make_unique<LlmdServe>(kBinary, yaml, "", env);
    ASSERT_TRUE(b_->started()) << b_->log();
    admin_ = login(a_->port(), "admin", kAdminPassword);
    ASSERT_FALSE(admin_.empty());
  }

  int A() const { return a_->port(); }
  int B() const { return b_->port(); }
  // Instance A for even i, B for odd.
  int either(int i) const { return i % 2 ? B() : A(); }

  // A call with a JWT or a key as "Authorization: Bearer".
  static std::optional<HttpReply> call(int port, const std::string& method, const std::string& path,
                                       const std::string& body = "", const std::string& token = "") {
    std::map<std::string, std::string> h;
    if (!token.empty()) h["Authorization"] = "Bearer " + token;
    return http_request(port, method, path, body, h);
  }
  // The same with a JSON body (exactly a json: "" stays a string).
  template <typename J>
  requires std::same_as<std::remove_cvref_t<J>, json>
  static std::optional<HttpReply> call(int port, const std::string& method, const std::string& path, J&& body,
                                       const std::string& token) {
    return call(port, method, path, body.dump(), token);
  }
  // A call with an API key as "x-api-key" (Anthropic's clients).
  static std::optional<HttpReply> call_x_api_key(int port, const std::string& method, const std::string& path,
                                                 const std::string& body, const std::string& key) {
    return http_request(port, method, path, body, {{"x-api-key", key}});
  }

  std::string login(int port, const std::string& user, const std::string& password) {
    auto r = call(port, "POST", "/api/v1/auth/login", json{{"username", user}, {"password", password}}.dump());
    EXPECT_TRUE(r && r->status == 200) << show(r);
    return r && r->status == 200 ? json::parse(r->body)["token"].get<std::string>() : "";
  }
  // Registers a user (on instance A unless told); returns {token, id}.
  std::pair<std::string, std::int64_t> new_user(const std::string& name, int port = 0) {
    auto r = call(port ? port : A(), "POST", "/api/v1/auth/register",
                  json{{"username", name}, {"password", "password-" + name}, {"email", name + "@school.cn"}}.dump());
    EXPECT_TRUE(r && r->status == 201) << show(r);
    if (!r || r->status != 201) return {"", 0};
    const auto j = json::parse(r->body);
    return {j["token"], j["user"]["id"]};
  }
  void grant_tokens(std::int64_t user_id, std::int64_t amount) {
    auto r = call(A(), "POST", "/api/v1/admin/users/" + std::to_string(user_id) + "/tokens",
                  json{{"amount", amount}, {"reason", "start"}}, admin_);
    ASSERT_TRUE(r && r->status == 200) << show(r);
  }
  void make_teacher(std::int64_t user_id) {
    auto r = call(B(), "POST", "/api/v1/admin/users/" + std::to_string(user_id) + "/role", json{{"role", "teacher"}},
                  admin_);
    ASSERT_TRUE(r && r->status == 200) << show(r);
    EXPECT_EQ(json::parse(r->body)["user"]["role"], "teacher");
  }
  // Creates a group as `token`; returns its id (0 on failure).
  std::int64_t new_group(const std::string& token, const json& body) {
    auto r = call(A(), "POST", "/api/v1/groups", body, token);
    EXPECT_TRUE(r && r->status == 201) << show(r);
    if (!r || r->status != 201) return 0;
    return json::parse(r->body)["group"]["id"];
  }
  // Creates an API key as `token`; returns {key, id}.
  std::pair<std::string, std::int64_t> new_key(const std::string& token, const json& scopes) {
    auto r = call(B(), "POST", "/api/v1/auth/keys", scopes, token);
    EXPECT_TRUE(r && r->status == 201) << show(r);
    if (!r || r->status != 201) return {"", 0};
    const auto j = json::parse(r->body);
    return {j["key"], j["id"]};
  }

  // Rows of a query, straight from the database.
  std::vector<store::Row> rows(const std::string& sql, std::vector<store::Value> params = {}) {
    auto db = store::Database::open(db_url_, 1);
    EXPECT_TRUE(db) << (db ? "" : db.error().message);
    if (!db) return {};
    auto r =
        (*db)->with_connection<std::vector<store::Row>>([&](store::Connection& c) { return c.query(sql, params); });
    EXPECT_TRUE(r) << sql << ": " << (r ? "" : r.error().message);
    return r ? *r : std::vector<store::Row>{};
  }
  std::int64_t scalar(const std::string& sql, std::vector<store::Value> params = {}) {
    auto r = rows(sql, std::move(params));
    EXPECT_EQ(r.size(), 1u) << sql;
    return r.empty() || r.front().is_null(0) ? 0 : r.front().integer(0);
  }
  // {balance, SUM(ledger.delta), reserved} of a user.
  std::tuple<std::int64_t, std::int64_t, std::int64_t> books(std::int64_t user_id) {
    auto r = rows(
        "SELECT balance, (SELECT COALESCE(SUM(delta), 0) FROM ledger WHERE user_id = u.id), reserved "
        "FROM users u WHERE id = ?",
        {user_id});
    EXPECT_EQ(r.size(), 1u);
    if (r.empty()) return {-1, -1, -1};
    return {r.front().integer(0), r.front().integer(1), r.front().integer(2)};
  }
  std::int64_t pool_of(std::int64_t group_id) {
    return scalar("SELECT pool FROM user_groups WHERE id = ?", {group_id});
  }
  std::int64_t group_ledger_sum(std::int64_t group_id) {
    return scalar("SELECT COALESCE(SUM(delta), 0) FROM group_ledger WHERE group_id = ?", {group_id});
  }

  MariaDbServer mariadb_;
  RedisServer redis_;
  std::string db_url_;
  std::unique_ptr<LlmdServe> a_, b_;
  std::string admin_;
  std::chrono::steady_clock::time_point started_at_;
};

// A key's budget is held like a balance across instances: 50 racing calls on
// a key worth 10 conversions get exactly 10 through.
TEST_F(GroupsTest, KeyBudgetHoldsAcrossInstances) {
  start();
  auto [token, id] = new_user("keyholder");
  grant_tokens(id, 1000);
  auto [key, key_id] = new_key(token, json{{"name", "budgeted"}, {"budget", 90}, {"budget_period", "month"}});
  ASSERT_FALSE(key.empty());
  ASSERT_TRUE(key.starts_with("sk-")) << key;

  std::atomic<int> ok{0}, exhausted{0};
  std::mutex mutex;
  std::vector<std::string> others;
  std::vector<json> refusals;
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < 50; ++i) {
      threads.emplace_back([&, i] {
        // Alternating the instance and the way the key is sent.
        auto r = (i / 2) % 2 ? call_x_api_key(either(i), "POST", "/api/v1/tasks/convert", kCheapConversion, key)
                             : call(either(i), "POST", "/api/v1/tasks/convert", kCheapConversion, key);
        std::lock_guard lock(mutex);
        if (r && r->status == 200) {
          ++ok;
          EXPECT_EQ(json::parse(r->body)["tokens_consumed"], 9) << r->body;
        } else if (r && r->status == 402 && error_code(r) == "key_budget_exhausted") {
          ++exhausted;
          refusals.push_back(json::parse(r->body));
        } else {
          others.push_back(show(r));
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  EXPECT_EQ(ok.load(), 10);
  EXPECT_EQ(exhausted.load(), 40);
  EXPECT_TRUE(others.empty()) << others.size() << " other replies, e.g. " << (others.empty() ? "" : others.front());
  // The refusal says when the monthly budget comes back.
  for (const auto& j : refusals) {
    ASSERT_TRUE(j["error"].contains("resets_at")) << j.dump();
    EXPECT_GT(j["error"]["resets_at"].get<std::int64_t>(), unix_now()) << j.dump();
  }

  auto [balance, ledger_sum, reserved] = books(id);
  EXPECT_EQ(balance, 910);
  EXPECT_EQ(ledger_sum, balance);
  EXPECT_EQ(reserved, 0);
  EXPECT_EQ(scalar("SELECT budget_used FROM api_keys WHERE id = ?", {key_id}), 90);
  EXPECT_EQ(scalar("SELECT budget_reserved FROM api_keys WHERE id = ?", {key_id}), 0);
  EXPECT_EQ(-scalar("SELECT COALESCE(SUM(delta), 0) FROM ledger WHERE api_key_id = ?", {key_id}), 90);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM ledger WHERE api_key_id = ?", {key_id}), 10);
  // How much the calls overlapped: admitted calls (a reservation) that the
  // exact charge then refused, because other calls' holds used the budget.
  std::cout << "[ info     ] calls admitted on the key: "
            << scalar("SELECT COUNT(*) FROM reservations WHERE api_key_id = ?", {key_id}) << ", refused when settled: "
            << scalar("SELECT COUNT(*) FROM reservations WHERE api_key_id = ? AND state = 'released'", {key_id})
            << "\n";
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM reservations WHERE api_key_id = ? AND state = 'pending'", {key_id}), 0);

  for (int port : {A(), B()}) {
    auto keys = call(port, "GET", "/api/v1/auth/keys", "", token);
    ASSERT_TRUE(keys && keys->status == 200) << show(keys);
    const auto list = json::parse(keys->body)["keys"];
    ASSERT_EQ(list.size(), 1u) << keys->body;
    EXPECT_EQ(list[0]["id"], key_id);
    EXPECT_EQ(list[0]["budget"], 90);
    EXPECT_EQ(list[0]["budget_used"], 90) << keys->body;
    EXPECT_EQ(list[0]["budget_reserved"], 0) << keys->body;
    EXPECT_EQ(list[0]["budget_period"], "month");
  }

  // The key is spent, the user is not: a JWT call still converts.
  auto jwt = call(B(), "POST", "/api/v1/tasks/convert", kCheapConversion, token);
  ASSERT_TRUE(jwt && jwt->status == 200) << show(jwt);
  EXPECT_EQ(json::parse(jwt->body)["tokens_consumed"], 9);
  EXPECT_EQ(json::parse(jwt->body)["remaining_tokens"], 901);
  EXPECT_EQ(scalar("SELECT budget_used FROM api_keys WHERE id = ?", {key_id}), 90) << "not charged to the key";
  auto [balance2, ledger_sum2, reserved2] = books(id);
  EXPECT_EQ(balance2, 901);
  EXPECT_EQ(ledger_sum2, balance2);
  EXPECT_EQ(reserved2, 0);
  // And the key stays refused.
  auto again = call(A(), "POST", "/api/v1/tasks/convert", kCheapConversion, key);
  EXPECT_EQ(again->status, 402) << again->body;
  EXPECT_EQ(error_code(again), "key_budget_exhausted") << again->body;
}

// One code, 50 users racing for it through both instances: exactly one wins.
TEST_F(GroupsTest, RedemptionCodeRacedByFiftyCreditsOnce) {
  start();
  auto created = call(A(), "POST", "/api/v1/codes", json{{"count", 1}, {"amount", 100}}, admin_);
  ASSERT_TRUE(created && created->status == 201) << show(created);
  const auto codes = json::parse(created->body)["codes"];
  ASSERT_EQ(codes.size(), 1u) << created->body;
  const std::string code = codes[0];

  constexpr int kUsers = 50;
  std::vector<std::pair<std::string, std::int64_t>> users(kUsers);
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < kUsers; ++i) {
      threads.emplace_back([&, i] { users[i] = new_user("racer" + std::to_string(i), either(i)); });
    }
    for (auto& t : threads) t.join();
  }
  for (const auto& u : users) ASSERT_FALSE(u.first.empty());

  std::atomic<int> won{0}, used{0};
  std::mutex mutex;
  std::vector<std::string> others;
  std::int64_t winner = 0;
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < kUsers; ++i) {
      threads.emplace_back([&, i] {
        auto r = call(either(i), "POST", "/api/v1/auth/redeem", json{{"code", code}}, users[i].first);
        std::lock_guard lock(mutex);
        if (r && r->status == 200) {
          ++won;
          winner = users[i].second;
          const auto j = json::parse(r->body);
          EXPECT_EQ(j["tokens_added"], 100) << r->body;
          EXPECT_EQ(j["remaining_tokens"], 100) << r->body;
        } else if (r && r->status == 409 && error_code(r) == "code_used") {
          ++used;
        } else {
          others.push_back(show(r));
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(used.load(), kUsers - 1);
  EXPECT_TRUE(others.empty()) << others.size() << " other replies, e.g. " << (others.empty() ? "" : others.front());

  EXPECT_EQ(scalar("SELECT COUNT(*) FROM ledger WHERE delta = 100 AND reason LIKE 'redeemed code%'"), 1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM ledger WHERE reason LIKE 'redeemed code%'"), 1);
  ASSERT_NE(winner, 0);
  auto [balance, ledger_sum, reserved] = books(winner);
  EXPECT_EQ(balance, 100);
  EXPECT_EQ(ledger_sum, 100);
  EXPECT_EQ(reserved, 0);
  EXPECT_EQ(scalar("SELECT COALESCE(SUM(balance), 0) FROM users WHERE username LIKE 'racer%'"), 100);
  EXPECT_EQ(scalar("SELECT redeemed_by FROM redemption_codes"), winner);

  // The code, typed again in lower case by the winner: still used.
  std::string lower = code;
  for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (const auto& u : users) {
    if (u.second != winner) continue;
    auto r = call(B(), "POST", "/api/v1/auth/redeem", json{{"code", " " + lower + " "}}, u.first);
    EXPECT_EQ(r->status, 409) << r->body;
    EXPECT_EQ(error_code(r), "code_used") << r->body;
  }
  auto unknown =
      call(A(), "POST", "/api/v1/auth/redeem", json{{"code", "LLMD-00000-00000-00000-00000"}}, users[0].first);
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404) << unknown->body;
  EXPECT_EQ(error_code(unknown), "code_invalid") << unknown->body;
}

// A teacher manages the groups they own and nothing else.
TEST_F(GroupsTest, TeacherScope) {
  start();
  auto [t1, t1_id] = new_user("teacher1");
  auto [t2, t2_id] = new_user("teacher2");
  auto [pupil, pupil_id] = new_user("pupil");
  make_teacher(t1_id);
  make_teacher(t2_id);

  const std::int64_t gid = new_group(t1, json{{"name", "class 7b"}});
  ASSERT_NE(gid, 0);
  ASSERT_EQ(
      call(A(), "POST", "/api/v1/groups/" + std::to_string(gid) + "/members", json{{"username", "pupil"}}, t1)->status,
      201);
  const std::string g = "/api/v1/groups/" + std::to_string(gid);

  // Another teacher: the group does not exist for them.
  struct Probe {
    std::string method, path;
    json body;
  };
  const std::vector<Probe> hidden = {
      {"GET", g, nullptr},
      {"PATCH", g, json{{"name", "mine now"}}},
      {"DELETE", g, nullptr},
      {"GET", g + "/members", nullptr},
      {"POST", g + "/members", json{{"username", "teacher2"}}},
      {"DELETE", g + "/members/pupil", nullptr},
      {"POST", g + "/grant", json{{"username", "pupil"}, {"amount", 1}, {"reason", "x"}}},
      {"POST", g + "/keys", json{{"username", "pupil"}, {"name", "exam"}}},
      {"GET", "/api/v1/codes?group_id=" + std::to_string(gid), nullptr},
      {"POST", "/api/v1/codes", json{{"count", 1}, {"amount", 0}, {"group_id", gid}}},
  };
  for (const auto& p : hidden) {
    for (int port : {A(), B()}) {
      auto r = call(port, p.method, p.path, p.body.is_null() ? std::string() : p.body.dump(), t2);
      ASSERT_TRUE(r) << p.method << " " << p.path;
      EXPECT_EQ(r->status, 404) << "teacher2: " << p.method << " " << p.path << " -> " << r->body;
    }
  }
  // ... and nothing changed.
  auto still = call(B(), "GET", g, "", t1);
  ASSERT_TRUE(still && still->status == 200) << show(still);
  EXPECT_EQ(json::parse(still->body)["group"]["name"], "class 7b");
  EXPECT_EQ(json::parse(still->body)["group"]["members"], 1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM api_keys"), 0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM redemption_codes"), 0);

  auto list2 = call(A(), "GET", "/api/v1/groups", "", t2);
  ASSERT_TRUE(list2 && list2->status == 200) << show(list2);
  EXPECT_TRUE(json::parse(list2->body)["groups"].empty()) << list2->body;
  auto list1 = call(B(), "GET", "/api/v1/groups", "", t1);
  ASSERT_TRUE(list1 && list1->status == 200) << show(list1);
  ASSERT_EQ(json::parse(list1->body)["groups"].size(), 1u) << list1->body;
  EXPECT_EQ(json::parse(list1->body)["groups"][0]["id"], gid);
  auto all = call(A(), "GET", "/api/v1/groups", "", admin_);
  ASSERT_TRUE(all && all->status == 200) << show(all);
  EXPECT_EQ(json::parse(all->body)["groups"].size(), 1u) << all->body;

  // The owner makes an exam key for a member (not for anyone else): the member's key, of the group.
  auto exam = call(A(), "POST", g + "/keys", json{{"username", "PUPIL"}, {"name", "exam"}, {"budget", 50}}, t1);
  ASSERT_TRUE(exam && exam->status == 201) << show(exam);
  const json exam_key = json::parse(exam->body);
  EXPECT_EQ(exam_key["group_id"], gid);
  EXPECT_EQ(exam_key["budget"], 50);
  EXPECT_EQ(scalar("SELECT user_id FROM api_keys WHERE id = ?", {exam_key["id"].get<std::int64_t>()}), pupil_id);
  auto as_pupil = call(B(), "GET", "/api/v1/auth/profile", "", exam_key["key"].get<std::string>());
  ASSERT_TRUE(as_pupil && as_pupil->status == 200) << show(as_pupil);
  EXPECT_EQ(json::parse(as_pupil->body)["user"]["username"], "pupil");
  auto outsider = call(B(), "POST", g + "/keys", json{{"username", "teacher2"}, {"name", "exam"}}, t1);
  ASSERT_TRUE(outsider);
  EXPECT_EQ(outsider->status, 404) << outsider->body;
  EXPECT_EQ(error_code(outsider), "member_not_found");

  // Administrator-only things: 403 for a teacher, even on their own group.
  const std::string uid = std::to_string(pupil_id);
  const std::vector<Probe> admin_only = {
      {"POST", "/api/v1/admin/groups/" + std::to_string(gid) + "/pool", json{{"amount", 100}, {"reason", "x"}}},
      {"GET", "/api/v1/admin/users", nullptr},
      {"POST", "/api/v1/admin/users/" + uid + "/tokens", json{{"amount", 100}, {"reason", "x"}}},
      {"POST", "/api/v1/admin/users/" + uid + "/role", json{{"role", "teacher"}}},
      {"POST", "/api/v1/models/x/start", nullptr},
      {"PATCH", g, json{{"price_ratio", 0.5}}},
      {"POST", "/api/v1/groups", json{{"name", "cheap"}, {"price_ratio", 0.5}}},
      {"POST", "/api/v1/codes", json{{"count", 1}, {"amount", 10}}},  // a teacher's codes need a group
  };
  for (const auto& p : admin_only) {
    auto r = call(B(), p.method, p.path, p.body.is_null() ? std::string() : p.body.dump(), t1);
    ASSERT_TRUE(r) << p.method << " " << p.path;
    EXPECT_EQ(r->status, 403) << "teacher1: " << p.method << " " << p.path << " -> " << r->body;
  }
  EXPECT_EQ(pool_of(gid), 0);
  EXPECT_EQ(std::get<0>(books(pupil_id)), 0);
  EXPECT_EQ(scalar("SELECT CAST(ROUND(price_ratio * 100) AS SIGNED) FROM user_groups WHERE id = ?", {gid}), 100);

  // An allowance above groups.max_teacher_allowance (500).
  auto big = call(A(), "PATCH", g, json{{"allowance", {{"amount", 501}, {"period", "week"}}}}, t1);
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 403) << big->body;
  EXPECT_EQ(error_code(big), "allowance_above_limit") << big->body;
  auto big_new = call(B(), "POST", "/api/v1/groups",
                      json{{"name", "rich"}, {"allowance", {{"amount", 501}, {"period", "day"}}}}, t1);
  ASSERT_TRUE(big_new);
  EXPECT_EQ(big_new->status, 403) << big_new->body;
  EXPECT_EQ(error_code(big_new), "allowance_above_limit") << big_new->body;
  auto at_limit = call(A(), "PATCH", g, json{{"allowance", {{"amount", 500}, {"period", "week"}}}}, t1);
  ASSERT_TRUE(at_limit);
  EXPECT_EQ(at_limit->status, 200) << at_limit->body;
  // The administrator sets what a teacher may not.
  auto ratio =
      call(B(), "PATCH", g, json{{"price_ratio", 0.5}, {"allowance", {{"amount", 900}, {"period", "week"}}}}, admin_);
  ASSERT_TRUE(ratio);
  EXPECT_EQ(ratio->status, 200) << ratio->body;
  EXPECT_EQ(json::parse(ratio->body)["group"]["price_ratio"], 0.5) << ratio->body;

  // A plain user manages no groups.
  for (int port : {A(), B()}) {
    auto create = call(port, "POST", "/api/v1/groups", json{{"name", "mine"}}, pupil);
    ASSERT_TRUE(create);
    EXPECT_EQ(create->status, 403) << create->body;
    auto list = call(port, "GET", "/api/v1/groups", "", pupil);
    ASSERT_TRUE(list);
    EXPECT_EQ(list->status, 403) << list->body;
    auto get = call(port, "GET", g, "", pupil);
    ASSERT_TRUE(get);
    EXPECT_EQ(get->status, 403) << get->body;
    auto codes = call(port, "POST", "/api/v1/codes", json{{"count", 1}, {"amount", 10}}, pupil);
    ASSERT_TRUE(codes);
    EXPECT_EQ(codes->status, 403) << codes->body;
  }
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM user_groups"), 1);
}

// Tokens flow from the admin's top-up through the pool to members, by grant
// and by the group's codes; the pool never goes below zero.
TEST_F(GroupsTest, PoolGrantsAndCodesFromThePool) {
  start();
  auto [t1, t1_id] = new_user("teacher1");
  auto [member, member_id] = new_user("member1");
  auto [outsider, outsider_id] = new_user("outsider", B());
  make_teacher(t1_id);
  const std::int64_t gid = new_group(t1, json{{"name", "class 8a"}});
  ASSERT_NE(gid, 0);
  const std::string g = "/api/v1/groups/" + std::to_string(gid);

  auto top_up = call(B(), "POST", "/api/v1/admin/groups/" + std::to_string(gid) + "/pool",
                     json{{"amount", 1000}, {"reason", "autumn term"}}, admin_);
  ASSERT_TRUE(top_up && top_up->status == 200) << show(top_up);
  EXPECT_EQ(json::parse(top_up->body)["pool"], 1000);

  ASSERT_EQ(call(A(), "POST", g + "/members", json{{"username", "member1"}}, t1)->status, 201);
  auto grant = call(B(), "POST", g + "/grant", json{{"username", "member1"}, {"amount", 200}, {"reason", "lab"}}, t1);
  ASSERT_TRUE(grant && grant->status == 200) << show(grant);
  EXPECT_EQ(json::parse(grant->body)["pool"], 800) << grant->body;
  EXPECT_EQ(json::parse(grant->body)["remaining_tokens"], 200) << grant->body;
  EXPECT_EQ(books(member_id), std::make_tuple(std::int64_t{200}, std::int64_t{200}, std::int64_t{0}));
  EXPECT_EQ(pool_of(gid), 800);

  auto codes = call(A(), "POST", "/api/v1/codes", json{{"count", 3}, {"amount", 100}, {"group_id", gid}}, t1);
  ASSERT_TRUE(codes && codes->status == 201) << show(codes);
  const auto list = json::parse(codes->body)["codes"];
  ASSERT_EQ(list.size(), 3u) << codes->body;
  EXPECT_EQ(pool_of(gid), 500);
  auto seen = call(B(), "GET", g, "", t1);
  ASSERT_TRUE(seen && seen->status == 200) << show(seen);
  EXPECT_EQ(json::parse(seen->body)["group"]["pool"], 500) << seen->body;

  // A non-member redeems one of the group's codes and joins the group.
  auto redeemed = call(B(), "POST", "/api/v1/auth/redeem", json{{"code", list[1]}}, outsider);
  ASSERT_TRUE(redeemed && redeemed->status == 200) << show(redeemed);
  EXPECT_EQ(json::parse(redeemed->body)["tokens_added"], 100);
  EXPECT_EQ(json::parse(redeemed->body)["remaining_tokens"], 100);
  EXPECT_EQ(json::parse(redeemed->body)["group"]["id"], gid) << redeemed->body;
  EXPECT_EQ(books(outsider_id), std::make_tuple(std::int64_t{100}, std::int64_t{100}, std::int64_t{0}));
  EXPECT_EQ(pool_of(gid), 500) << "the code's tokens left the pool when it was made";
  auto members = call(A(), "GET", g + "/members", "", t1);
  ASSERT_TRUE(members && members->status == 200) << show(members);
  std::map<std::string, std::int64_t> tokens_of;
  const json member_list = json::parse(members->body)["members"];
  for (const auto& m : member_list) {
    tokens_of[m["username"].get<std::string>()] = m["tokens"].get<std::int64_t>();
  }
  EXPECT_EQ(tokens_of, (std::map<std::string, std::int64_t>{{"member1", 200}, {"outsider", 100}})) << members->body;
  auto code_list = call(B(), "GET", "/api/v1/codes?group_id=" + std::to_string(gid), "", t1);
  ASSERT_TRUE(code_list && code_list->status == 200) << show(code_list);
  int redeemed_count = 0;
  const json code_rows = json::parse(code_list->body)["codes"];
  for (const auto& c : code_rows) {
    EXPECT_EQ(c["amount"], 100);
    EXPECT_EQ(c["prefix"].get<std::string>().size(), 10u) << "only a prefix is shown: " << c.dump();
    if (!c["redeemed_by"].is_null()) {
      ++redeemed_count;
      EXPECT_EQ(c["redeemed_by"], outsider_id);
    }
  }
  EXPECT_EQ(code_rows.size(), 3u) << code_list->body;
  for (const auto& c : list) {
    EXPECT_EQ(code_list->body.find(c.get<std::string>()), std::string::npos) << "codes are shown once";
  }
  EXPECT_EQ(redeemed_count, 1);

  // Beyond the pool: codes worth 600 of 500, a grant of 501.
  auto too_many = call(A(), "POST", "/api/v1/codes", json{{"count", 6}, {"amount", 100}, {"group_id", gid}}, t1);
  ASSERT_TRUE(too_many);
  EXPECT_EQ(too_many->status, 402) << too_many->body;
  auto too_much =
      call(B(), "POST", g + "/grant", json{{"username", "member1"}, {"amount", 501}, {"reason", "too much"}}, t1);
  ASSERT_TRUE(too_much);
  EXPECT_EQ(too_much->status, 402) << too_much->body;
  EXPECT_EQ(pool_of(gid), 500);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM redemption_codes"), 3) << "no codes made from an empty pool";
  EXPECT_EQ(std::get<0>(books(member_id)), 200);
  // Granting to someone outside the group: 404, nothing moves.
  auto stranger = call(A(), "POST", g + "/grant", json{{"username", "teacher1"}, {"amount", 10}, {"reason", "x"}}, t1);
  ASSERT_TRUE(stranger);
  EXPECT_EQ(stranger->status, 404) << stranger->body;

  // Exactly the pool: allowed, and the pool is empty.
  auto rest = call(A(), "POST", g + "/grant", json{{"username", "outsider"}, {"amount", 500}, {"reason", "rest"}}, t1);
  ASSERT_TRUE(rest && rest->status == 200) << show(rest);
  EXPECT_EQ(json::parse(rest->body)["pool"], 0);
  EXPECT_EQ(pool_of(gid), 0);
  EXPECT_EQ(group_ledger_sum(gid), pool_of(gid)) << "the group's ledger adds up to its pool";
  // Every token the admin put in is with a member or in an unredeemed code.
  EXPECT_EQ(std::get<0>(books(member_id)) + std::get<0>(books(outsider_id)) +
                scalar("SELECT COALESCE(SUM(amount), 0) FROM redemption_codes WHERE redeemed_by IS NULL"),
            1000);
  for (auto id : {member_id, outsider_id}) {
    auto [balance, ledger_sum, reserved] = books(id);
    EXPECT_EQ(ledger_sum, balance);
    EXPECT_EQ(reserved, 0);
  }
}

// Model allowlists (group and key), key expiry and key subnets.
TEST_F(GroupsTest, AllowlistExpiryAndSubnet) {
  start();
  auto [member, member_id] = new_user("member1");
  auto [loner, loner_id] = new_user("loner");
  const std::int64_t gid = new_group(admin_, json{{"name", "restricted"}, {"models", {"only-this"}}});
  ASSERT_NE(gid, 0);
  ASSERT_EQ(
      call(A(), "POST", "/api/v1/groups/" + std::to_string(gid) + "/members", json{{"username", "member1"}}, admin_)
          ->status,
      201);
  grant_tokens(member_id, 100);
  grant_tokens(loner_id, 100);

  for (int port : {A(), B()}) {
    auto r = call(port, "POST", "/api/v1/tasks/convert", kRepairConversion, member);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 403) << r->body;
    EXPECT_EQ(error_code(r), "model_not_allowed") << r->body;
    EXPECT_NE(r->body.find("tiny-model"), std::string::npos) << "names the model: " << r->body;
  }
  EXPECT_EQ(books(member_id), std::make_tuple(std::int64_t{100}, std::int64_t{100}, std::int64_t{0}))
      << "nothing charged, nothing held";
  // The parser path needs no model: allowed.
  auto parsed = call(B(), "POST", "/api/v1/tasks/convert", kCheapConversion, member);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->status, 200) << parsed->body;

  // A key's own model list, for a user in no group.
  auto [narrow, narrow_id] = new_key(loner, json{{"name", "narrow"}, {"models", {"only-that"}}});
  ASSERT_FALSE(narrow.empty());
  auto by_key = call(A(), "POST", "/api/v1/tasks/convert", kRepairConversion, narrow);
  ASSERT_TRUE(by_key);
  EXPECT_EQ(by_key->status, 403) << by_key->body;
  EXPECT_EQ(error_code(by_key), "model_not_allowed") << by_key->body;
  EXPECT_NE(by_key->body.find("tiny-model"), std::string::npos) << by_key->body;
  // The same user without the key: the model is allowed (and missing: not a 403).
  auto by_jwt = call(B(), "POST", "/api/v1/tasks/convert", kRepairConversion, loner);
  ASSERT_TRUE(by_jwt);
  EXPECT_NE(by_jwt->status, 403) << by_jwt->body;
  EXPECT_EQ(books(loner_id), std::make_tuple(std::int64_t{100}, std::int64_t{100}, std::int64_t{0}));

  // Expiry: works until expires_at, then 401 key_expired on both instances.
  const std::int64_t expires_at = unix_now() + 3;
  auto [brief, brief_id] = new_key(loner, json{{"name", "brief"}, {"expires_at", expires_at}});
  ASSERT_FALSE(brief.empty());
  auto before = call(A(), "POST", "/api/v1/tasks/convert", kCheapConversion, brief);
  ASSERT_TRUE(before);
  EXPECT_EQ(before->status, 200) << before->body;
  while (unix_now() <= expires_at) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (int port : {A(), B()}) {
    auto after = call(port, "POST", "/api/v1/tasks/convert", kCheapConversion, brief);
    ASSERT_TRUE(after);
    EXPECT_EQ(after->status, 401) << after->body;
    EXPECT_EQ(error_code(after), "key_expired") << after->body;
  }

  // Subnets: 127.0.0.1 is outside 10.0.0.0/8, inside 127.0.0.0/8.
  auto [lan, lan_id] = new_key(loner, json{{"name", "lan"}, {"subnets", {"10.0.0.0/8"}}});
  auto [local, local_id] = new_key(loner, json{{"name", "local"}, {"subnets", {"127.0.0.0/8"}}});
  for (int port : {A(), B()}) {
    auto outside = call_x_api_key(port, "POST", "/api/v1/tasks/convert", kCheapConversion, lan);
    ASSERT_TRUE(outside);
    EXPECT_EQ(outside->status, 403) << outside->body;
    EXPECT_EQ(error_code(outside), "network_not_allowed") << outside->body;
    auto inside = call(port, "POST", "/api/v1/tasks/convert", kCheapConversion, local);
    ASSERT_TRUE(inside);
    EXPECT_EQ(inside->status, 200) << inside->body;
  }
  // 100 - 9 (brief) - 2 x 9 (local).
  auto [balance, ledger_sum, reserved] = books(loner_id);
  EXPECT_EQ(balance, 73);
  EXPECT_EQ(ledger_sum, balance);
  EXPECT_EQ(reserved, 0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM ledger WHERE api_key_id = ?", {lan_id}), 0);
}

// A key's and a group's requests per minute hold across instances (Redis),
// and the refusal says which limit it was.
TEST_F(GroupsTest, KeyAndGroupRpmAreSharedAndNamed) {
  start();
  auto [user, user_id] = new_user("quick");
  auto [key, key_id] = new_key(user, json{{"name", "slow"}, {"rpm", 3}});
  ASSERT_FALSE(key.empty());
  for (int i = 0; i < 3; ++i) {
    auto r = call(either(i), "GET", "/api/v1/auth/profile", "", key);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << "request " << i << ": " << r->body;
  }
  for (int port : {A(), B()}) {
    auto r = call(port, "GET", "/api/v1/auth/profile", "", key);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 429) << r->body;
    EXPECT_EQ(error_code(r), "rate_limited");
    EXPECT_NE(r->body.find("API key"), std::string::npos) << "names the key's limit: " << r->body;
    EXPECT_FALSE(r->header("retry-after").empty());
  }
  auto session = call(A(), "GET", "/api/v1/auth/profile", "", user);
  ASSERT_TRUE(session);
  EXPECT_EQ(session->status, 200) << "the key's limit is the key's only: " << session->body;

  const std::int64_t gid = new_group(admin_, json{{"name", "steady"}, {"rpm", 2}});
  ASSERT_NE(gid, 0);
  ASSERT_EQ(call(B(), "POST", "/api/v1/groups/" + std::to_string(gid) + "/members", json{{"username", "quick"}}, admin_)
                ->status,
            201);
  for (int i = 0; i < 2; ++i) {
    auto r = call(either(i), "GET", "/api/v1/auth/profile", "", user);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << "request " << i << ": " << r->body;
  }
  auto over = call(B(), "GET", "/api/v1/auth/profile", "", user);
  ASSERT_TRUE(over);
  EXPECT_EQ(over->status, 429) << over->body;
  EXPECT_NE(over->body.find("group"), std::string::npos) << "names the group's limit: " << over->body;
}

// A weekly allowance is credited once per member and period, however many
// instances ask at once; the profile shows what is left and when it resets.
TEST_F(GroupsTest, AllowanceShowsInProfileAndLapsesNotDoubleCredited) {
  start();
  auto [member, member_id] = new_user("member1");
  const std::int64_t gid = new_group(admin_, json{{"name", "weekly"}});
  ASSERT_NE(gid, 0);
  const std::string g = "/api/v1/groups/" + std::to_string(gid);
  ASSERT_EQ(call(A(), "POST", g + "/members", json{{"username", "member1"}}, admin_)->status, 201);
  EXPECT_EQ(std::get<0>(books(member_id)), 0);
  // The allowance comes after the membership: nothing is credited yet, and
  // 20 profile reads race to credit it through both instances.
  auto patched = call(B(), "PATCH", g, json{{"allowance", {{"amount", 300}, {"period", "week"}}}}, admin_);
  ASSERT_TRUE(patched && patched->status == 200) << show(patched);

  std::mutex mutex;
  std::vector<json> profiles;
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < 20; ++i) {
      threads.emplace_back([&, i] {
        auto r = call(either(i), "GET", "/api/v1/auth/profile", "", member);
        std::lock_guard lock(mutex);
        EXPECT_TRUE(r && r->status == 200) << show(r);
        if (r && r->status == 200) profiles.push_back(json::parse(r->body)["user"]);
      });
    }
    for (auto& t : threads) t.join();
  }
  for (const auto& u : profiles) {
    EXPECT_EQ(u["tokens"], 300) << u.dump();
    ASSERT_EQ(u["groups"].size(), 1u) << u.dump();
    const auto& a = u["groups"][0]["allowance"];
    ASSERT_TRUE(a.is_object()) << u.dump();
    EXPECT_EQ(a["amount"], 300);
    EXPECT_EQ(a["period"], "week");
    EXPECT_EQ(a["left"], 300) << u.dump();
    ASSERT_TRUE(a["resets_at"].is_number_integer()) << u.dump();
    EXPECT_GT(a["resets_at"].get<std::int64_t>(), unix_now());
    EXPECT_LE(a["resets_at"].get<std::int64_t>(), unix_now() + 7 * 86400 + 3600);
  }
  auto [balance, ledger_sum, reserved] = books(member_id);
  EXPECT_EQ(balance, 300) << "credited once, not once per instance or request";
  EXPECT_EQ(ledger_sum, balance);
  EXPECT_EQ(reserved, 0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM ledger WHERE user_id = ? AND reason LIKE 'allowance:%'", {member_id}), 1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM allowance_credits WHERE user_id = ?", {member_id}), 1);

  // Spending draws on the allowance: 9 of 300 used.
  auto spent = call(A(), "POST", "/api/v1/tasks/convert", kCheapConversion, member);
  ASSERT_TRUE(spent && spent->status == 200) << show(spent);
  auto profile = call(B(), "GET", "/api/v1/auth/profile", "", member);
  ASSERT_TRUE(profile && profile->status == 200) << show(profile);
  const auto u = json::parse(profile->body)["user"];
  EXPECT_EQ(u["tokens"], 291) << u.dump();
  ASSERT_EQ(u["groups"].size(), 1u) << u.dump();
  EXPECT_EQ(u["groups"][0]["allowance"]["left"], 291) << u.dump();
  auto members = call(A(), "GET", g + "/members", "", admin_);
  ASSERT_TRUE(members && members->status == 200) << show(members);
  const auto m = json::parse(members->body)["members"];
  ASSERT_EQ(m.size(), 1u) << members->body;
  EXPECT_EQ(m[0]["allowance_left"], 291) << members->body;
  EXPECT_EQ(m[0]["tokens"], 291) << members->body;

  // Leaving the group lapses what is left of the allowance.
  auto left = call(B(), "DELETE", g + "/members/member1", "", admin_);
  ASSERT_TRUE(left && left->status == 200) << show(left);
  auto [balance2, ledger_sum2, reserved2] = books(member_id);
  EXPECT_EQ(balance2, 0) << "the unspent allowance lapsed";
  EXPECT_EQ(ledger_sum2, balance2);
  EXPECT_EQ(reserved2, 0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM ledger WHERE user_id = ? AND reason LIKE 'allowance:%'", {member_id}), 1);
}

}  // namespace
}  // namespace llmd::testing
