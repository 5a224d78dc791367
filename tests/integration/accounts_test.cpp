// Accounts and the security checklist of the accounts issue, black-box
// against the real `llmd serve`. Every hostile request also checks that
// nothing changed (balances, users, keys) and that the server still serves.
#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/http.h"
#include "support/llmd_serve.h"

namespace llmd::testing {
namespace {

using nlohmann::json;
constexpr const char* kBinary = LLMD_BINARY;
constexpr const char* kAdminPassword = "admin-password-for-tests";

std::string b64url(const std::string& in) {
  static const char* kA = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  int val = 0, bits = -6;
  for (unsigned char c : in) {
    val = (val << 8) + c;
    bits += 8;
    while (bits >= 0) {
      out.push_back(kA[(val >> bits) & 0x3F]);
      bits -= 6;
    }
  }
  if (bits > -6) out.push_back(kA[((val << 8) >> (bits + 8)) & 0x3F]);
  return out;
}

std::string hs256(const std::string& key, const json& header, const json& payload) {
  const std::string input = b64url(header.dump()) + "." + b64url(payload.dump());
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(input.data()),
       input.size(), out, &len);
  return input + "." + b64url(std::string(reinterpret_cast<char*>(out), len));
}

class AccountsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new LlmdServe(kBinary,
                            "auth: { bcrypt_cost: 10, initial_tokens: 1000 }\n"
                            "limits: { login_attempts: 20, user_rpm: 0, ip_rpm: 0 }\n",
                            "", {{"LLMD_ADMIN_PASSWORD", kAdminPassword}});
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(server_->started()) << server_->log(); }

  int port() const { return server_->port(); }
  std::optional<HttpReply> call(const std::string& method, const std::string& path, const std::string& body = "",
                                const std::string& token = "") {
    std::map<std::string, std::string> h;
    if (!token.empty()) h["Authorization"] = "Bearer " + token;
    return http_request(port(), method, path, body, h);
  }
  // Registers a fresh user; returns {token, user json}.
  std::pair<std::string, json> new_user(const std::string& name) {
    auto r = call("POST", "/api/v1/auth/register",
                  json{{"username", name}, {"password", "password-" + name}, {"email", name + "@school.cn"}}.dump());
    EXPECT_TRUE(r);
    EXPECT_EQ(r->status, 201) << r->body;
    const auto j = json::parse(r->body);
    return {j["token"], j["user"]};
  }
  json profile(const std::string& token) {
    auto r = call("GET", "/api/v1/auth/profile", "", token);
    EXPECT_EQ(r->status, 200) << r->body;
    return json::parse(r->body)["user"];
  }
  std::string admin_token() {
    auto r = call("POST", "/api/v1/auth/login", json{{"username", "admin"}, {"password", kAdminPassword}}.dump());
    EXPECT_EQ(r->status, 200) << r->body;
    return json::parse(r->body)["token"];
  }
  std::string jwt_secret() { return std::string(text_trim(read_file(server_->dir() / "data/jwt_secret"))); }
  static std::string text_trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }
  void expect_still_serving() { EXPECT_EQ(call("GET", "/health")->status, 200); }

  static LlmdServe* server_;
};
LlmdServe* AccountsTest::server_ = nullptr;

TEST_F(AccountsTest, RegisterLoginProfileRoundTrip) {
  auto [token, user] = new_user("alice");
  EXPECT_EQ(user["username"], "alice");
  EXPECT_EQ(user["role"], "user");
  EXPECT_EQ(user["tokens"], 1000);
  EXPECT_FALSE(user.contains("password_hash"));
  auto login = call("POST", "/api/v1/auth/login", json{{"username", "alice"}, {"password", "password-alice"}}.dump());
  ASSERT_EQ(login->status, 200);
  const json p = profile(json::parse(login->body)["token"]);
  EXPECT_EQ(p["tokens"], 1000);
  EXPECT_EQ(p["usage"]["calls"], 0);
}

TEST_F(AccountsTest, PasswordChangeEndsEveryOtherSessionAndKeepsTheAccount) {
  auto [first, user] = new_user("pat");
  EXPECT_EQ(user["must_change_password"], false);
  auto second_login =
      call("POST", "/api/v1/auth/login", json{{"username", "pat"}, {"password", "password-pat"}}.dump());
  ASSERT_EQ(second_login->status, 200);
  const std::string second = json::parse(second_login->body)["token"];
  auto key = call("POST", "/api/v1/auth/keys", json{{"name", "script"}}.dump(), first);
  ASSERT_EQ(key->status, 201) << key->body;
  const std::string api_key = json::parse(key->body)["key"];
  auto change = [&](const std::string& token, const json& body) {
    return call("POST", "/api/v1/auth/password", body.dump(), token);
  };

  // Wrong current password: 401, nothing changes.
  auto wrong = change(first, {{"current_password", "not-it-at-all"}, {"new_password", "a-new-password"}});
  ASSERT_EQ(wrong->status, 401) << wrong->body;
  EXPECT_EQ(json::parse(wrong->body)["error"]["code"], "wrong_password");
  EXPECT_EQ(call("GET", "/api/v1/auth/profile", "", first)->status, 200);
  // The registration rules apply; the same password is not a change; bad types are 400.
  for (const json& bad : {json{{"current_password", "password-pat"}, {"new_password", "short"}},
                          json{{"current_password", "password-pat"}, {"new_password", std::string(80, 'x')}},
                          json{{"current_password", "password-pat"}, {"new_password", "password-pat"}},
                          json{{"current_password", "password-pat"}, {"new_password", 12345678}},
                          json{{"current_password", "password-pat"}}}) {
    auto r = change(first, bad);
    EXPECT_EQ(r->status, 400) << bad.dump() << " -> " << r->body;
  }
  EXPECT_EQ(change("", {{"current_password", "password-pat"}, {"new_password", "a-new-password"}})->status, 401);
  // An API key cannot change the password.
  EXPECT_EQ(change(api_key, {{"current_password", "password-pat"}, {"new_password", "a-new-password"}})->status, 403);

  auto ok = change(first, {{"current_password", "password-pat"}, {"new_password", "a-new-password"}});
  ASSERT_EQ(ok->status, 200) << ok->body;
  const std::string renewed = json::parse(ok->body)["token"];
  EXPECT_EQ(json::parse(ok->body)["user"]["username"], "pat");
  // Every JWT issued before the change is refused at once; the new one and the API key work.
  EXPECT_EQ(call("GET", "/api/v1/auth/profile", "", first)->status, 401);
  EXPECT_EQ(call("GET", "/api/v1/auth/profile", "", second)->status, 401);
  EXPECT_EQ(profile(renewed)["tokens"], 1000);
  EXPECT_EQ(call("GET", "/api/v1/auth/profile", "", api_key)->status, 200);
  // The old password no longer logs in; the new one does.
  EXPECT_EQ(call("POST", "/api/v1/auth/login", json{{"username", "pat"}, {"password", "password-pat"}}.dump())->status,
            401);
  EXPECT_EQ(
      call("POST", "/api/v1/auth/login", json{{"username", "pat"}, {"password", "a-new-password"}}.dump())->status,
      200);
  expect_still_serving();
}

TEST_F(AccountsTest, GuessingTheCurrentPasswordMeetsTheThrottle) {
  auto [token, user] = new_user("guesser");
  int last = 0;
  for (int i = 0; i < 25 && last != 429; ++i) {
    last = call("POST", "/api/v1/auth/password",
                json{{"current_password", "guess-" + std::to_string(i)}, {"new_password", "another-password"}}.dump(),
                token)
               ->status;
  }
  EXPECT_EQ(last, 429);
  // Even the right password waits now; the account itself is untouched.
  auto right = call("POST", "/api/v1/auth/password",
                    json{{"current_password", "password-guesser"}, {"new_password", "another-password"}}.dump(), token);
  EXPECT_EQ(right->status, 429);
  EXPECT_EQ(call("GET", "/api/v1/auth/profile", "", token)->status, 200);
}

TEST_F(AccountsTest, AdminResetsAForgottenPassword) {
  auto [token, user] = new_user("forgetful");
  const std::string admin = admin_token();
  const std::string path = "/api/v1/admin/users/" + std::to_string(user["id"].get<std::int64_t>()) + "/password";
  // Users cannot reset anyone's password.
  EXPECT_EQ(call("POST", path, json{{"password", "chosen-by-me"}}.dump(), token)->status, 403);
  EXPECT_EQ(call("POST", "/api/v1/admin/users/999999/password", json::object().dump(), admin)->status, 404);
  EXPECT_EQ(call("POST", path, json{{"password", "short"}}.dump(), admin)->status, 400);
  EXPECT_EQ(call("POST", path, json{{"must_change", "yes"}}.dump(), admin)->status, 400);

  // No password given: one is generated, shown once, and must be changed.
  auto reset = call("POST", path, json::object().dump(), admin);
  ASSERT_EQ(reset->status, 200) << reset->body;
  const json out = json::parse(reset->body);
  const std::string generated = out["password"];
  EXPECT_GE(generated.size(), 16u);
  EXPECT_EQ(out["user"]["must_change_password"], true);
  EXPECT_EQ(call("GET", "/api/v1/auth/profile", "", token)->status, 401);  // the old session ended
  auto login = call("POST", "/api/v1/auth/login", json{{"username", "forgetful"}, {"password", generated}}.dump());
  ASSERT_EQ(login->status, 200) << login->body;
  EXPECT_EQ(json::parse(login->body)["user"]["must_change_password"], true);
  const std::string session = json::parse(login->body)["token"];
  auto changed = call("POST", "/api/v1/auth/password",
                      json{{"current_password", generated}, {"new_password", "mine-again-1"}}.dump(), session);
  ASSERT_EQ(changed->status, 200) << changed->body;
  EXPECT_EQ(json::parse(changed->body)["user"]["must_change_password"], false);
  EXPECT_EQ(profile(json::parse(changed->body)["token"])["must_change_password"], false);

  // A password the admin chose, with must_change off.
  auto chosen = call("POST", path, json{{"password", "set-by-admin-1"}, {"must_change", false}}.dump(), admin);
  ASSERT_EQ(chosen->status, 200) << chosen->body;
  EXPECT_FALSE(json::parse(chosen->body).contains("password"));
  auto again =
      call("POST", "/api/v1/auth/login", json{{"username", "forgetful"}, {"password", "set-by-admin-1"}}.dump());
  ASSERT_EQ(again->status, 200);
  EXPECT_EQ(json::parse(again->body)["user"]["must_change_password"], false);
}

TEST_F(AccountsTest, DuplicateUsernameIs409CaseInsensitive) {
  new_user("bob");
  auto r = call("POST", "/api/v1/auth/register",
                json{{"username", "BOB"}, {"password", "whatever123"}, {"email", "b@b.cn"}}.dump());
  EXPECT_EQ(r->status, 409);
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "username_taken");
}

TEST_F(AccountsTest, RegistrationValidatesEveryField) {
  const json bad[] = {
      {{"username", "ab"}, {"password", "password1"}, {"email", "a@b.cn"}},
      {{"username", "carol"}, {"password", "short"}, {"email", "a@b.cn"}},
      {{"username", "carol"}, {"password", std::string(73, 'p')}, {"email", "a@b.cn"}},
      {{"username", "carol"}, {"password", "password1"}, {"email", "not-an-email"}},
      {{"username", 42}, {"password", "password1"}, {"email", "a@b.cn"}},
      {{"password", "password1"}, {"email", "a@b.cn"}},
  };
  for (const auto& b : bad) {
    auto r = call("POST", "/api/v1/auth/register", b.dump());
    EXPECT_EQ(r->status, 400) << b.dump() << " -> " << r->body;
  }
  EXPECT_EQ(call("POST", "/api/v1/auth/register", "[1,2]")->status, 400);
  EXPECT_EQ(call("POST", "/api/v1/auth/register", "{not json")->status, 400);
  auto long_pw = call("POST", "/api/v1/auth/register",
                      json{{"username", "carol"}, {"password", std::string(73, 'p')}, {"email", "a@b.cn"}}.dump());
  EXPECT_EQ(json::parse(long_pw->body)["error"]["code"], "password_too_long");
}

TEST_F(AccountsTest, MassAssignmentOfRoleAndTokensIsIgnored) {
  auto r = call("POST", "/api/v1/auth/register",
                json{{"username", "mallory"},
                     {"password", "password-m"},
                     {"email", "m@b.cn"},
                     {"role", "admin"},
                     {"tokens", 1e9},
                     {"balance", 1e9}}
                    .dump());
  ASSERT_EQ(r->status, 201);
  const auto user = json::parse(r->body)["user"];
  EXPECT_EQ(user["role"], "user");
  EXPECT_EQ(user["tokens"], 1000);
  const std::string token = json::parse(r->body)["token"];
  EXPECT_EQ(call("GET", "/api/v1/admin/users", "", token)->status, 403);
}

TEST_F(AccountsTest, MissingEmptyGarbageAuthorizationIs401) {
  EXPECT_EQ(call("GET", "/api/v1/auth/profile")->status, 401);
  for (const std::string h : {"", "Bearer", "Bearer ", "Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Bearer garbage",
                              "Bearer a.b.c", "Bearer sk-doesnotexist"}) {
    auto r = http_request(port(), "GET", "/api/v1/auth/profile", "", {{"Authorization", h}});
    EXPECT_EQ(r->status, 401) << "'" << h << "'";
    EXPECT_EQ(json::parse(r->body)["error"]["request_id"], r->header("x-request-id"));
  }
  expect_still_serving();
}

TEST_F(AccountsTest, ForgedTokensAre401) {
  auto [token, user] = new_user("dave");
  const std::int64_t now = std::time(nullptr);
  const json claims = {
      {"iss", "llmd"}, {"sub", std::to_string(user["id"].get<int>())}, {"iat", now}, {"exp", now + 600}};
  // alg none
  const std::string none = b64url(json{{"alg", "none"}}.dump()) + "." + b64url(claims.dump()) + ".";
  EXPECT_EQ(call("GET", "/api/v1/auth/profile", "", none)->status, 401);
  // HS256 signed with another secret
  EXPECT_EQ(
      call("GET", "/api/v1/auth/profile", "", hs256("not-the-server-secret-not-the-server", {{"alg", "HS256"}}, claims))
          ->status,
      401);
  // Expired and not-yet-valid, signed with the real secret
  json expired = claims;
  expired["iat"] = now - 7200;
  expired["exp"] = now - 3600;
  EXPECT_EQ(call("GET", "/api/v1/auth/profile", "", hs256(jwt_secret(), {{"alg", "HS256"}}, expired))->status, 401);
  json future = claims;
  future["nbf"] = now + 3600;
  EXPECT_EQ(call("GET", "/api/v1/auth/profile", "", hs256(jwt_secret(), {{"alg", "HS256"}}, future))->status, 401);
  // The control: the same claims signed properly work.
  EXPECT_EQ(call("GET", "/api/v1/auth/profile", "", hs256(jwt_secret(), {{"alg", "HS256"}}, claims))->status, 200);
}

TEST_F(AccountsTest, WrongPasswordAndUnknownUserGiveTheSame401) {
  new_user("erin");
  auto wrong = call("POST", "/api/v1/auth/login", json{{"username", "erin"}, {"password", "wrong-password"}}.dump());
  auto unknown =
      call("POST", "/api/v1/auth/login", json{{"username", "nobody-here"}, {"password", "x-password"}}.dump());
  EXPECT_EQ(wrong->status, 401);
  EXPECT_EQ(unknown->status, 401);
  EXPECT_EQ(json::parse(wrong->body)["error"]["message"], json::parse(unknown->body)["error"]["message"]);
  EXPECT_EQ(json::parse(wrong->body)["error"]["code"], json::parse(unknown->body)["error"]["code"]);
}

TEST_F(AccountsTest, TwentyWrongPasswordsThen429) {
  new_user("frank");
  int last = 0;
  for (int i = 0; i < 21; ++i) {
    last =
        call("POST", "/api/v1/auth/login", json{{"username", "frank"}, {"password", "bad-" + std::to_string(i)}}.dump())
            ->status;
  }
  EXPECT_EQ(last, 429);
  auto r = call("POST", "/api/v1/auth/login", json{{"username", "frank"}, {"password", "password-frank"}}.dump());
  EXPECT_EQ(r->status, 429);  // even the right password waits
  EXPECT_FALSE(r->header("retry-after").empty());
}

TEST_F(AccountsTest, SqlMetacharactersAreJustData) {
  const std::string evil = "x' OR '1'='1";
  for (const auto& body :
       {json{{"username", evil}, {"password", "password1"}}, json{{"username", "admin"}, {"password", evil}},
        json{{"username", "admin'--"}, {"password", "anything1"}}}) {
    EXPECT_EQ(call("POST", "/api/v1/auth/login", body.dump())->status, 401) << body.dump();
  }
  EXPECT_EQ(call("GET", "/api/v1/auth/profile", "", "sk-' OR 1=1 --")->status, 401);
  const std::string admin = admin_token();
  auto search = call("GET", "/api/v1/admin/users?search=%25%27%20OR%201%3D1%20--", "", admin);
  ASSERT_EQ(search->status, 200);
  EXPECT_EQ(json::parse(search->body)["total"], 0);
  auto all = call("GET", "/api/v1/admin/users?search=%25", "", admin);  // a literal %, matches nobody
  EXPECT_EQ(json::parse(all->body)["total"], 0);
  expect_still_serving();
}

TEST_F(AccountsTest, ApiKeysCreateUseListRevoke) {
  auto [token, user] = new_user("grace");
  auto created = call("POST", "/api/v1/auth/keys", json{{"name", "laptop"}}.dump(), token);
  ASSERT_EQ(created->status, 201) << created->body;
  const std::string key = json::parse(created->body)["key"];
  const int id = json::parse(created->body)["id"];
  EXPECT_TRUE(key.starts_with("sk-"));
  EXPECT_EQ(call("GET", "/api/v1/auth/profile", "", key)->status, 200);  // the key works like a JWT
  auto list = call("GET", "/api/v1/auth/keys", "", token);
  const auto keys = json::parse(list->body)["keys"];
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_FALSE(keys[0].contains("key"));  // never shown again
  EXPECT_EQ(keys[0]["prefix"], key.substr(0, 10));
  EXPECT_EQ(call("DELETE", "/api/v1/auth/keys/" + std::to_string(id), "", token)->status, 200);
  EXPECT_EQ(call("GET", "/api/v1/auth/profile", "", key)->status, 401);  // at once
}

TEST_F(AccountsTest, AnotherUsersKeyIs404AndSurvives) {
  auto [a_token, a] = new_user("heidi");
  auto [b_token, b] = new_user("ivan");
  auto created = call("POST", "/api/v1/auth/keys", json{{"name", "k"}}.dump(), a_token);
  const int id = json::parse(created->body)["id"];
  const std::string key = json::parse(created->body)["key"];
  EXPECT_EQ(call("DELETE", "/api/v1/auth/keys/" + std::to_string(id), "", b_token)->status, 404);
  EXPECT_EQ(json::parse(call("GET", "/api/v1/auth/keys", "", b_token)->body)["keys"].size(), 0u);
  EXPECT_EQ(call("GET", "/api/v1/auth/profile", "", key)->status, 200);  // still valid
}

TEST_F(AccountsTest, UsersCannotCallAdminRoutes) {
  auto [token, user] = new_user("judy");
  const std::string id = std::to_string(user["id"].get<int>());
  EXPECT_EQ(call("GET", "/api/v1/admin/users", "", token)->status, 403);
  EXPECT_EQ(
      call("POST", "/api/v1/admin/users/" + id + "/tokens", json{{"amount", 1000000}, {"reason", "me"}}.dump(), token)
          ->status,
      403);
  EXPECT_EQ(call("POST", "/api/v1/admin/users/" + id + "/role", json{{"role", "admin"}}.dump(), token)->status, 403);
  EXPECT_EQ(call("GET", "/api/v1/admin/usage", "", token)->status, 403);
  EXPECT_EQ(call("GET", "/api/v1/admin/users")->status, 401);
  const json p = profile(token);
  EXPECT_EQ(p["role"], "user");
  EXPECT_EQ(p["tokens"], 1000);
}

TEST_F(AccountsTest, AdminGrantsDeductsSetsRoleAndDisables) {
  auto [token, user] = new_user("ken");
  const std::string id = std::to_string(user["id"].get<int>());
  const std::string admin = admin_token();
  auto grant =
      call("POST", "/api/v1/admin/users/" + id + "/tokens", json{{"amount", 250}, {"reason", "prize"}}.dump(), admin);
  ASSERT_EQ(grant->status, 200) << grant->body;
  EXPECT_EQ(json::parse(grant->body)["user"]["tokens"], 1250);
  EXPECT_EQ(profile(token)["tokens"], 1250);
  auto deduct =
      call("POST", "/api/v1/admin/users/" + id + "/tokens", json{{"amount", -2000}, {"reason", "x"}}.dump(), admin);
  EXPECT_EQ(deduct->status, 402);
  EXPECT_EQ(profile(token)["tokens"], 1250);
  EXPECT_EQ(call("POST", "/api/v1/admin/users/" + id + "/tokens", json{{"amount", 5}}.dump(), admin)->status, 400);
  auto role = call("POST", "/api/v1/admin/users/" + id + "/role", json{{"role", "admin"}}.dump(), admin);
  EXPECT_EQ(json::parse(role->body)["user"]["role"], "admin");
  auto disable = call("POST", "/api/v1/admin/users/" + id + "/disable", json{{"disabled", true}}.dump(), admin);
  ASSERT_EQ(disable->status, 200);
  EXPECT_EQ(call("GET", "/api/v1/auth/profile", "", token)->status, 401);  // the token stops working at once
  auto login = call("POST", "/api/v1/auth/login", json{{"username", "ken"}, {"password", "password-ken"}}.dump());
  EXPECT_EQ(login->status, 401);
  EXPECT_EQ(
      call("POST", "/api/v1/admin/users/999999/tokens", json{{"amount", 5}, {"reason", "x"}}.dump(), admin)->status,
      404);
}

TEST_F(AccountsTest, AdminCannotChangeOwnRole) {
  const std::string admin = admin_token();
  auto users = json::parse(call("GET", "/api/v1/admin/users?search=admin", "", admin)->body)["users"];
  ASSERT_FALSE(users.empty());
  const std::string id = std::to_string(users[0]["id"].get<int>());
  EXPECT_EQ(call("POST", "/api/v1/admin/users/" + id + "/role", json{{"role", "user"}}.dump(), admin)->status, 403);
}

TEST_F(AccountsTest, HostileBodiesAre4xxAndServerKeepsServing) {
  auto [token, user] = new_user("leo");
  const std::string deep = std::string(10000, '[') + std::string(10000, ']');
  EXPECT_EQ(call("POST", "/api/v1/auth/keys", deep, token)->status, 400);
  const std::string deep_obj = "{\"name\":" + std::string(10000, '[') + std::string(10000, ']') + "}";
  EXPECT_EQ(call("POST", "/api/v1/auth/keys", deep_obj, token)->status, 400);
  EXPECT_EQ(call("POST", "/api/v1/auth/keys", "{\"name\":\"\xff\xfe\"}", token)->status, 400);
  auto huge = call("POST", "/api/v1/auth/keys", std::string(11 * 1024 * 1024, ' '), token);
  ASSERT_TRUE(huge);  // the server reads on until we are done sending, so the 413 arrives
  EXPECT_EQ(huge->status, 413);
  EXPECT_EQ(call("POST", "/api/v1/auth/keys", "{\"name\": 12}", token)->status, 400);
  EXPECT_EQ(json::parse(call("GET", "/api/v1/auth/keys", "", token)->body)["keys"].size(), 0u);
  EXPECT_EQ(profile(token)["tokens"], 1000);
  expect_still_serving();
}

TEST_F(AccountsTest, FirstStartCreatedTheAdminWithThePasswordFromTheEnvironment) {
  auto r = call("POST", "/api/v1/auth/login", json{{"username", "admin"}, {"password", kAdminPassword}}.dump());
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["user"]["role"], "admin");
  EXPECT_EQ(server_->log().find(kAdminPassword), std::string::npos);  // never logged
}

TEST(AccountsFirstStart, AGeneratedAdminPasswordIsPrintedOnceAndMustBeChanged) {
  LlmdServe server(kBinary, "auth: { bcrypt_cost: 10 }\n", "", {{"LLMD_ADMIN_PASSWORD", ""}});
  ASSERT_TRUE(server.started()) << server.log();
  const std::string log = server.log();
  const std::string marker = "password: ";
  const auto at = log.find(marker);
  ASSERT_NE(at, std::string::npos) << log;
  const std::string password = log.substr(at + marker.size(), 20);
  EXPECT_EQ(log.find(password, at + marker.size() + 20), std::string::npos);  // printed once, not logged again
  auto login = http_request(server.port(), "POST", "/api/v1/auth/login",
                            json{{"username", "admin"}, {"password", password}}.dump());
  ASSERT_EQ(login->status, 200) << login->body;
  EXPECT_EQ(json::parse(login->body)["user"]["must_change_password"], true);
  auto changed = http_request(server.port(), "POST", "/api/v1/auth/password",
                              json{{"current_password", password}, {"new_password", "the-admins-own-1"}}.dump(),
                              {{"Authorization", "Bearer " + json::parse(login->body)["token"].get<std::string>()}});
  ASSERT_EQ(changed->status, 200) << changed->body;
  EXPECT_EQ(json::parse(changed->body)["user"]["must_change_password"], false);
  EXPECT_EQ(json::parse(changed->body)["user"]["role"], "admin");
}

TEST(AccountsRateLimit, PerIpLimitGives429WithRetryAfterAndOthersUnaffected) {
  LlmdServe server(kBinary, "auth: { bcrypt_cost: 10 }\nlimits: { ip_rpm: 5, user_rpm: 0 }\n", "",
                   {{"LLMD_ADMIN_PASSWORD", kAdminPassword}});
  ASSERT_TRUE(server.started());
  int ok = 0, limited = 0;
  std::string retry_after;
  for (int i = 0; i < 8; ++i) {
    auto r = http_request(server.port(), "GET", "/api/v1/auth/profile");
    if (r->status == 401) ++ok;
    if (r->status == 429) {
      ++limited;
      retry_after = r->header("retry-after");
    }
  }
  EXPECT_EQ(ok, 5);
  EXPECT_EQ(limited, 3);
  EXPECT_FALSE(retry_after.empty());
  EXPECT_EQ(http_request(server.port(), "GET", "/health")->status, 200);  // ops routes are not limited
}

TEST(AccountsRestart, SecretPersistsSoTokensSurviveARestart) {
  std::string token;
  TempDir shared;
  {
    LlmdServe first(kBinary, "auth: { bcrypt_cost: 10 }\n", "", {{"LLMD_ADMIN_PASSWORD", kAdminPassword}});
    ASSERT_TRUE(first.started());
    auto r = http_request(first.port(), "POST", "/api/v1/auth/login",
                          json{{"username", "admin"}, {"password", kAdminPassword}}.dump());
    token = json::parse(r->body)["token"];
    std::filesystem::copy(first.dir() / "data", shared / "data", std::filesystem::copy_options::recursive);
  }
  // Start a second server on a copy of the first one's data directory.
  const int port = free_port();
  write_file(shared / "llmd.yaml",
             "server: { port: " + std::to_string(port) + ", data_dir: " + (shared / "data").string() +
                 " }\ndatabase: \"sqlite:" + (shared / "data/llmd.db").string() + "\"\nauth: { bcrypt_cost: 10 }\n");
  Process second({kBinary, "serve", "-c", (shared / "llmd.yaml").string()}, shared.path(), shared / "log");
  ASSERT_TRUE(wait_for_http(port, "/health", 200, std::chrono::seconds(30))) << second.log();
  auto r = http_request(port, "GET", "/api/v1/auth/profile", "", {{"Authorization", "Bearer " + token}});
  EXPECT_EQ(r->status, 200);
}

}  // namespace
}  // namespace llmd::testing
