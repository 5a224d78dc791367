// The original document's API section (shared/seed/), every request body
// copied verbatim, against a real `llmd serve` with a real `llmd runner` on a
// generated model and the embedded defaults (a new account gets 1 000
// tokens). Then what a new account can afford with those 1 000 tokens.
//
// The tiny random-weight model fills every reply to its length limit, where
// a real model answers in a few dozen tokens: its price_multiplier of 0.25
// stands in for a real model's shorter replies (SPEC §5 pricing otherwise).
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "store/database.h"
#include "support/http.h"
#include "support/llmd_serve.h"
#include "support/process.h"
#include "support/test_support.h"

namespace llmd::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;
constexpr const char* kBinary = LLMD_BINARY;
constexpr double kModelFactor = 0.25;

// The request bodies of the document's API section, as printed there.
constexpr const char* kRegister = R"({
  "username": "testuser",
  "password": "password123",
  "email": "test@example.com"
})";
constexpr const char* kLogin = R"({
  "username": "testuser",
  "password": "password123"
})";
constexpr const char* kChat = R"({
  "message": "你好",
  "max_tokens": 100
})";
constexpr const char* kConvert = R"({
  "source_format": "json",
  "target_format": "yaml",
  "content": "{\"name\":\"test\",\"value\":123}"
})";
constexpr const char* kHomework = R"({
  "subject": "数学",
  "question": "计算 2+3×4 的结果",
  "answer": "14",
  "grade_level": "小学"
})";
constexpr const char* kSubtitle = R"({
  "video_path": "/path/to/video.mp4",
  "source_lang": "英文",
  "target_lang": "中文",
  "output_format": "srt"
})";

class SeedExamplesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    fs::create_directories(*dir_ / "models");
    Process gen({kBinary, "dev", "make-test-model", "--arch", "llama", "--seed", "7", "--out",
                 (*dir_ / "models/tiny.gguf").string()},
                dir_->path(), *dir_ / "gen.log");
    if (gen.wait(std::chrono::seconds(120)) != 0) return;
    const int base_port = free_port();
    // The embedded defaults (initial_tokens 1000, the SPEC's prices), one model.
    server_ =
        new LlmdServe(kBinary,
                      "auth: { bcrypt_cost: 10 }\nlimits: { ip_rpm: 0, user_rpm: 0 }\n"
                      "models: { dir: " +
                          (*dir_ / "models").string() + ", default_model: tiny, port_range: \"" +
                          std::to_string(base_port) + "-" + std::to_string(base_port + 20) +
                          "\", list: [ { name: tiny, file: tiny.gguf, ctx: 4096, parallel: 2, threads: 1, "
                          "price_multiplier: 0.25 }, { name: spare, file: tiny.gguf, ctx: 1024, threads: 1 } ] }\n");
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr) << "the test model could not be generated: " << read_file(*dir_ / "gen.log");
    ASSERT_TRUE(server_->started()) << server_->log();
  }

  static std::optional<HttpReply> call(const std::string& method, const std::string& path, const std::string& body,
                                       const std::string& token) {
    std::map<std::string, std::string> h;
    if (!token.empty()) h["Authorization"] = "Bearer " + token;
    return http_request(server_->port(), method, path, body, h);
  }
  static json ok(const std::optional<HttpReply>& r, int status = 200) {
    EXPECT_TRUE(r);
    if (!r) return json();
    EXPECT_EQ(r->status, status) << r->body;
    return json::parse(r->body, nullptr, false);
  }
  static std::string admin() {
    return ok(call("POST", "/api/v1/auth/login", json{{"username", "admin"}, {"password", kTestAdminPassword}}.dump(),
                   ""))["token"];
  }
  static std::pair<std::string, std::int64_t> new_user(const std::string& name) {
    const json j =
        ok(call("POST", "/api/v1/auth/register",
                json{{"username", name}, {"password", "password-" + name}, {"email", name + "@s.cn"}}.dump(), ""),
           201);
    return {j["token"], j["user"]["id"]};
  }
  static std::int64_t balance(const std::string& token) {
    return ok(call("GET", "/api/v1/auth/profile", "", token))["user"]["tokens"];
  }
  static json usage(std::int64_t user_id) {
    return ok(call("GET", "/api/v1/admin/usage?limit=500&user_id=" + std::to_string(user_id), "", admin()))["records"];
  }
  // The SPEC §5 charge of a usage record's counts for `task` (the model's factor included).
  static std::int64_t formula(const std::string& task, const json& record) {
    const double base = record["prompt_tokens"].get<double>() + record["completion_tokens"].get<double>();
    if (task == "homework") return static_cast<std::int64_t>(std::ceil(base * 2.0 * kModelFactor - 1e-9)) + 20;
    if (task == "subtitle") return static_cast<std::int64_t>(std::ceil(base * 3.0 * kModelFactor - 1e-9)) + 50;
    if (task == "chat") return static_cast<std::int64_t>(std::ceil(base * kModelFactor - 1e-9));
    return -1;
  }

  static TempDir* dir_;
  static LlmdServe* server_;
};
TempDir* SeedExamplesTest::dir_ = nullptr;
LlmdServe* SeedExamplesTest::server_ = nullptr;

TEST_F(SeedExamplesTest, EveryApiExampleOfTheDocumentWorksVerbatim) {
  // Register: the documented response fields.
  const json reg = ok(call("POST", "/api/v1/auth/register", kRegister, ""), 201);
  ASSERT_TRUE(reg["token"].is_string());
  EXPECT_TRUE(reg["user"]["id"].is_number_integer());
  EXPECT_EQ(reg["user"]["username"], "testuser");
  EXPECT_EQ(reg["user"]["email"], "test@example.com");
  EXPECT_EQ(reg["user"]["tokens"], 1000);

  const json login = ok(call("POST", "/api/v1/auth/login", kLogin, ""));
  const std::string token = login["token"];
  const json profile = ok(call("GET", "/api/v1/auth/profile", "", token));
  EXPECT_EQ(profile["user"]["username"], "testuser");
  EXPECT_EQ(profile["user"]["tokens"], 1000);

  // Models: the list (with the document's trailing slash), start, stop, chat.
  const json models = ok(call("GET", "/api/v1/models/", "", token));
  ASSERT_EQ(models["models"].size(), 2u) << models;
  for (const char* field : {"name", "description", "status", "size"}) {
    EXPECT_TRUE(models["models"][0].contains(field)) << field << " in " << models;
  }
  EXPECT_EQ(models["models"][0]["name"], "spare");  // by name
  EXPECT_EQ(models["models"][1]["name"], "tiny");
  const std::string admin_token = admin();
  auto start = call("POST", "/api/v1/models/tiny/start", "", admin_token);
  ASSERT_TRUE(start);
  EXPECT_TRUE(start->status == 200 || start->status == 202) << start->body;
  const json chat = ok(call("POST", "/api/v1/models/tiny/chat", kChat, token));
  EXPECT_TRUE(chat["reply"].is_string());
  EXPECT_LE(chat["usage"]["completion_tokens"].get<int>(), 100);
  const std::int64_t chat_cost = chat["tokens_consumed"];
  EXPECT_GT(chat_cost, 0);
  EXPECT_EQ(chat["remaining_tokens"], 1000 - chat_cost);
  auto stop = call("POST", "/api/v1/models/tiny/stop", "", admin_token);
  ASSERT_TRUE(stop);
  EXPECT_TRUE(stop->status == 200 || stop->status == 202) << stop->body;

  // Tasks.
  const json formats = ok(call("GET", "/api/v1/tasks/formats", "", token));
  EXPECT_FALSE(formats.empty());
  const json converted = ok(call("POST", "/api/v1/tasks/convert", kConvert, token));
  EXPECT_EQ(converted["success"], true);
  EXPECT_EQ(converted["converted_content"], "name: test\nvalue: 123\n");
  EXPECT_GT(converted["tokens_consumed"].get<int>(), 0);
  EXPECT_LE(converted["tokens_consumed"].get<int>(), 25);  // the document says 15
  const std::int64_t after_convert = converted["remaining_tokens"];
  EXPECT_EQ(after_convert, 1000 - chat_cost - converted["tokens_consumed"].get<std::int64_t>());

  // Homework with the model (started again on demand).
  const json graded = ok(call("POST", "/api/v1/tasks/homework", kHomework, token));
  EXPECT_EQ(graded["success"], true);
  EXPECT_EQ(graded["correct"], true);  // 2 + 3 x 4 = 14, whatever the model says
  EXPECT_GE(graded["score"].get<int>(), 60);
  EXPECT_TRUE(graded["feedback"].is_string());
  EXPECT_TRUE(graded["suggestions"].is_array());
  EXPECT_GT(graded["tokens_consumed"].get<int>(), 20);
  EXPECT_EQ(graded["remaining_tokens"], after_convert - graded["tokens_consumed"].get<std::int64_t>());

  // Subtitle: its languages are understood; its example path is outside the
  // media folders, and the error says where media may live.
  auto subtitle = call("POST", "/api/v1/tasks/subtitle", kSubtitle, token);
  ASSERT_TRUE(subtitle);
  EXPECT_EQ(subtitle->status, 400) << subtitle->body;
  const json error = json::parse(subtitle->body)["error"];
  EXPECT_EQ(error["code"], "path_not_allowed") << subtitle->body;
  EXPECT_NE(error["message"].get<std::string>().find("media_roots"), std::string::npos);
  EXPECT_EQ(balance(token), graded["remaining_tokens"].get<std::int64_t>());
}

TEST_F(SeedExamplesTest, ANewAccountGradesTheDocumentsHomeworkFiveTimes) {
  auto [token, id] = new_user("pupil");
  int graded = 0;
  std::int64_t left = 1000;
  for (int i = 0; i < 5; ++i) {
    auto r = call("POST", "/api/v1/tasks/homework", kHomework, token);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << "grade " << i + 1 << " with " << left << " tokens left: " << r->body;
    const json j = json::parse(r->body);
    EXPECT_EQ(j["correct"], true);
    left = j["remaining_tokens"];
    ++graded;
  }
  EXPECT_EQ(graded, 5);
  // Each charge is the formula applied to the usage record's counts, and the
  // billed prompt is the question and the answer only.
  const json records = usage(id);
  ASSERT_EQ(records.size(), 5u) << records;
  std::int64_t charged = 0;
  for (const auto& rec : records) {
    EXPECT_EQ(rec["charged"], formula("homework", rec)) << rec;
    EXPECT_LT(rec["prompt_tokens"].get<int>(), 30) << rec;
    charged += rec["charged"].get<std::int64_t>();
  }
  EXPECT_EQ(balance(token), 1000 - charged);
  EXPECT_EQ(left, 1000 - charged);
}

TEST_F(SeedExamplesTest, ANewAccountConvertsTheDocumentsJsonFortyTimes) {
  auto [token, id] = new_user("converter");
  std::int64_t charged = 0;
  for (int i = 0; i < 40; ++i) {
    const json j = ok(call("POST", "/api/v1/tasks/convert", kConvert, token));
    ASSERT_EQ(j["success"], true) << i;
    charged += j["tokens_consumed"].get<std::int64_t>();
  }
  EXPECT_EQ(balance(token), 1000 - charged);
  EXPECT_GE(balance(token), 0);
}

TEST_F(SeedExamplesTest, HomeworkWithTooFewTokensForMaxTokensIsClampedNotRefused) {
  auto [token, id] = new_user("frugal");
  // Leave 100 tokens: a grade of ~150 tokens at this model's price, not one of 1 024.
  const json left = ok(call("POST", "/api/v1/admin/users/" + std::to_string(id) + "/tokens",
                            json{{"amount", -900}, {"reason", "test"}}.dump(), admin()));
  EXPECT_EQ(left["user"]["tokens"], 100);
  const json r = ok(call("POST", "/api/v1/tasks/homework", kHomework, token));
  EXPECT_EQ(r["max_tokens_clamped"], true) << r;
  EXPECT_GE(r["remaining_tokens"].get<int>(), 0);
  EXPECT_EQ(balance(token), r["remaining_tokens"].get<std::int64_t>());
  // With 20 left (not even a 64-token reply): 402, nothing charged.
  auto refused = call("POST", "/api/v1/admin/users/" + std::to_string(id) + "/tokens",
                      json{{"amount", 20 - balance(token)}, {"reason", "test"}}.dump(), admin());
  ASSERT_EQ(refused->status, 200) << refused->body;
  auto poor = call("POST", "/api/v1/tasks/homework", kHomework, token);
  EXPECT_EQ(poor->status, 402) << poor->body;
  EXPECT_EQ(balance(token), 20);
}

// Ten cues of a film's dialogue, as a user would upload them.
constexpr const char* kTenCueSrt =
    "1\n00:00:01,000 --> 00:00:02,500\nWhere are you going?\n\n"
    "2\n00:00:02,800 --> 00:00:04,000\nTo the station.\n\n"
    "3\n00:00:04,300 --> 00:00:06,000\nThe last train leaves at nine.\n\n"
    "4\n00:00:06,500 --> 00:00:08,000\nThen we have to hurry.\n\n"
    "5\n00:00:08,200 --> 00:00:09,500\nDid you bring the tickets?\n\n"
    "6\n00:00:10,000 --> 00:00:11,200\nThey are in my bag.\n\n"
    "7\n00:00:11,500 --> 00:00:13,000\nGood. Let's go.\n\n"
    "8\n00:00:14,000 --> 00:00:15,500\nWait for me!\n\n"
    "9\n00:00:16,000 --> 00:00:17,000\nHurry up.\n\n"
    "10\n00:00:17,500 --> 00:00:19,000\nWe made it.\n\n";

TEST_F(SeedExamplesTest, ANewAccountTranslatesATenCueSrt) {
  auto [token, id] = new_user("viewer");
  const json body = {
      {"content", kTenCueSrt}, {"source_lang", "英文"}, {"target_lang", "中文"}, {"output_format", "srt"}};
  const json accepted = ok(call("POST", "/api/v1/tasks/subtitle", body.dump(), token), 202);
  const std::string job = accepted["job_id"];
  json j;
  for (int i = 0; i < 600; ++i) {
    j = ok(call("GET", "/api/v1/jobs/" + job, "", token));
    if (j["status"] != "queued" && j["status"] != "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(j["status"], "done") << j;
  EXPECT_EQ(j["result"]["cues"], 10);
  const json records = usage(id);
  ASSERT_EQ(records.size(), 1u) << records;
  const json& rec = records[0];
  EXPECT_EQ(rec["charged"], formula("subtitle", rec)) << rec;
  EXPECT_EQ(j["result"]["tokens_consumed"], rec["charged"]);
  // The billed prompt is the cue texts (74 words), not the translation instructions.
  EXPECT_LT(rec["prompt_tokens"].get<int>(), 100) << rec;
  EXPECT_EQ(balance(token), 1000 - rec["charged"].get<std::int64_t>());
}

TEST_F(SeedExamplesTest, ChatWithTooFewTokensForMaxTokensIsClampedNotRefused) {
  auto [token, id] = new_user("chatty");
  const json left = ok(call("POST", "/api/v1/admin/users/" + std::to_string(id) + "/tokens",
                            json{{"amount", -900}, {"reason", "test"}}.dump(), admin()));
  ASSERT_EQ(left["user"]["tokens"], 100);
  // 1 000 completion tokens cost up to 260 at this model's price; 100 pay a base of 400.
  const json chat = ok(call("POST", "/api/v1/models/tiny/chat", R"({"message":"你好","max_tokens":1000})", token));
  EXPECT_EQ(chat["max_tokens_clamped"], true) << chat;
  const std::int64_t base =
      chat["usage"]["prompt_tokens"].get<std::int64_t>() + chat["usage"]["completion_tokens"].get<std::int64_t>();
  EXPECT_LE(base, 400) << chat;
  EXPECT_GT(chat["usage"]["completion_tokens"].get<int>(), 0) << chat;
  EXPECT_EQ(chat["tokens_consumed"], static_cast<std::int64_t>(std::ceil(base * kModelFactor - 1e-9)));
  EXPECT_EQ(balance(token), 100 - chat["tokens_consumed"].get<std::int64_t>());

  // The OpenAI route says it in a header; the limit the worker obeyed is below what was asked.
  ASSERT_EQ(call("POST", "/api/v1/admin/users/" + std::to_string(id) + "/tokens",
                 json{{"amount", 100 - balance(token)}, {"reason", "test"}}.dump(), admin())
                ->status,
            200);
  auto v1 = call("POST", "/v1/chat/completions",
                 R"({"model":"tiny","messages":[{"role":"user","content":"你好"}],"max_tokens":1000})", token);
  ASSERT_TRUE(v1);
  ASSERT_EQ(v1->status, 200) << v1->body;
  const std::string limit = v1->header("x-llmd-max-tokens-clamped");
  ASSERT_FALSE(limit.empty());
  EXPECT_LT(std::stoll(limit), 1000);
  EXPECT_LE(json::parse(v1->body)["usage"]["completion_tokens"].get<std::int64_t>(), std::stoll(limit));
  EXPECT_GE(balance(token), 0);

  // A balance that cannot pay even a 64-token reply: 402, nothing charged.
  auto set = call("POST", "/api/v1/admin/users/" + std::to_string(id) + "/tokens",
                  json{{"amount", 10 - balance(token)}, {"reason", "test"}}.dump(), admin());
  ASSERT_EQ(set->status, 200) << set->body;
  auto poor = call("POST", "/api/v1/models/tiny/chat", R"({"message":"你好","max_tokens":1000})", token);
  EXPECT_EQ(poor->status, 402) << poor->body;
  EXPECT_EQ(balance(token), 10);
}

// SPEC §5: a chat or /v1 call reserves its prompt, counted by the model's
// tokenizer, and its max_tokens; a task reserves the user's content and a
// first allowance of reply that grows as the reply streams. For what people
// typically send (the document's chat, a conversation, an SDK's chat and
// completion, the document's conversion and homework, a short subtitle
// file) that is at most half again what the call is then charged.
TEST_F(SeedExamplesTest, TwentyTypicalCallsReserveAtMostHalfAgainTheirCharge) {
  auto [token, id] = new_user("typical");
  // Enough that no reservation is lowered to the balance.
  ASSERT_EQ(call("POST", "/api/v1/admin/users/" + std::to_string(id) + "/tokens",
                 json{{"amount", 4000}, {"reason", "test"}}.dump(), admin())
                ->status,
            200);
  std::vector<std::pair<std::string, std::string>> calls;  // path, body
  for (int i = 0; i < 4; ++i) calls.emplace_back("/api/v1/models/tiny/chat", kChat);
  json history = json::array();
  for (int i = 0; i < 2; ++i) {
    history.push_back({{"role", "user"}, {"content", "第" + std::to_string(i + 1) + "个问题：2+3×4 等于几？"}});
    history.push_back({{"role", "assistant"}, {"content", "等于 14，先算乘法再算加法。"}});
    calls.emplace_back("/api/v1/models/tiny/chat",
                       json{{"message", "为什么？"}, {"history", history}, {"max_tokens", 80}}.dump());
  }
  for (int i = 0; i < 4; ++i) {
    calls.emplace_back("/v1/chat/completions",
                       json{{"model", "tiny"},
                            {"messages",
                             {{{"role", "system"}, {"content", "You are a helpful tutor."}},
                              {{"role", "user"}, {"content", "Explain fractions in one sentence."}}}},
                            {"max_tokens", 48}}
                           .dump());
    if (i < 3) {
      calls.emplace_back(
          "/v1/completions",
          json{{"model", "tiny"}, {"prompt", "Once upon a time, in a quiet village,"}, {"max_tokens", 32}}.dump());
    }
    calls.emplace_back("/api/v1/tasks/convert", kConvert);
  }
  calls.emplace_back(
      "/api/v1/models/tiny/chat",
      json{{"message", "用一句话解释分数。"}, {"system", "你是一位耐心的老师。"}, {"max_tokens", 60}}.dump());
  calls.emplace_back("/api/v1/tasks/homework", kHomework);
  for (const auto& [path, body] : calls) ok(call("POST", path, body, token));
  const json srt = {
      {"content", kTenCueSrt}, {"source_lang", "英文"}, {"target_lang", "中文"}, {"output_format", "srt"}};
  const std::string job = ok(call("POST", "/api/v1/tasks/subtitle", srt.dump(), token), 202)["job_id"];
  json j;
  for (int i = 0; i < 600; ++i) {
    j = ok(call("GET", "/api/v1/jobs/" + job, "", token));
    if (j["status"] != "queued" && j["status"] != "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(j["status"], "done") << j;

  // Every usage record beside what its request reserved, from the server's database.
  auto db = store::Database::open("sqlite:" + (server_->dir() / "data/llmd.db").string(), 1);
  ASSERT_TRUE(db) << db.error().message;
  // A subtitle job's one reservation is held under its submit request's id,
  // its usage record under the job's id.
  auto rows = (*db)->with_connection<std::vector<store::Row>>([&](store::Connection& c) {
    return c.query(
        "SELECT u.route, u.charged, u.prompt_tokens, u.completion_tokens, "
        "(SELECT COALESCE(SUM(r.amount), 0) FROM reservations r WHERE r.user_id = u.user_id AND "
        " (r.request_id = u.request_id OR (u.task = 'subtitle' AND r.request_id NOT IN "
        "  (SELECT request_id FROM usage_records WHERE user_id = u.user_id)))), u.task "
        "FROM usage_records u WHERE u.user_id = ? ORDER BY u.id",
        std::vector<store::Value>{id});
  });
  ASSERT_TRUE(rows) << rows.error().message;
  ASSERT_EQ(rows->size(), 20u);
  // The subtitle job first reserves the reply a translation of its cues
  // takes (48 + each cue's characters + 4, SPEC §5) and grows from there; the
  // random test model may write far less than a real one, so its bound is
  // that first allowance or one growth step past what it wrote.
  constexpr std::int64_t kGrowStep = 64, kGrowMargin = 8;  // billing::ReplyAllowance's
  std::int64_t subtitle_floor = 48;
  for (std::string_view cue : {"Where are you going?", "To the station.", "The last train leaves at nine.",
                               "Then we have to hurry.", "Did you bring the tickets?", "They are in my bag.",
                               "Good. Let's go.", "Wait for me!", "Hurry up.", "We made it."}) {
    subtitle_floor += static_cast<std::int64_t>(cue.size()) + 4;
  }
  std::int64_t charged = 0;
  for (const auto& row : *rows) {
    const std::int64_t charge = row.integer(1);
    const std::int64_t reserved = row.integer(4);
    EXPECT_GT(charge, 0) << row.text(0);
    double bound = 1.5 * static_cast<double>(charge);
    if (row.text(5) == "subtitle") {
      const std::int64_t reply = std::max(subtitle_floor, row.integer(3) + kGrowStep + kGrowMargin);
      const json counts = {{"prompt_tokens", row.integer(2)}, {"completion_tokens", reply}};
      bound = std::max(bound, static_cast<double>(formula("subtitle", counts)));
    }
    EXPECT_LE(static_cast<double>(reserved), bound)
        << row.text(0) << ": reserved " << reserved << ", charged " << charge << " for " << row.integer(2)
        << " prompt + " << row.integer(3) << " completion tokens";
    charged += charge;
  }
  EXPECT_EQ(balance(token), 5000 - charged);
  // The ledger adds up to the balance; nothing stays reserved.
  auto books = (*db)->with_connection<std::vector<store::Row>>([&](store::Connection& c) {
    return c.query(
        "SELECT balance, reserved, (SELECT SUM(delta) FROM ledger WHERE user_id = u.id) FROM users u "
        "WHERE id = ?",
        std::vector<store::Value>{id});
  });
  ASSERT_TRUE(books && books->size() == 1);
  EXPECT_EQ(books->front().integer(0), books->front().integer(2));
  EXPECT_EQ(books->front().integer(1), 0);
}

// The other dialects are served like /v1/chat/completions: the same prompt,
// the same tokens, the same charge, said in X-Llmd-Tokens-Consumed.
TEST_F(SeedExamplesTest, EveryDialectIsChargedLikeTheSameChatCall) {
  auto [token, id] = new_user("dialects");
  const json chat_body = {
      {"model", "tiny"},
      {"messages",
       {{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "计算 2+3×4 的结果"}}}},
      {"max_tokens", 20},
      {"temperature", 0}};
  auto chat = call("POST", "/v1/chat/completions", chat_body.dump(), token);
  ASSERT_TRUE(chat && chat->status == 200) << (chat ? chat->body : "");
  const json chat_usage = json::parse(chat->body)["usage"];
  const json messages_body = {{"model", "tiny"},
                              {"system", "Be brief."},
                              {"messages", {{{"role", "user"}, {"content", "计算 2+3×4 的结果"}}}},
                              {"max_tokens", 20},
                              {"temperature", 0}};
  // Anthropic's clients send the key as x-api-key.
  auto message = http_request(server_->port(), "POST", "/v1/messages", messages_body.dump(),
                              {{"x-api-key", token}, {"anthropic-version", "2023-06-01"}});
  ASSERT_TRUE(message && message->status == 200) << (message ? message->body : "");
  const json reply = json::parse(message->body);
  EXPECT_EQ(reply["usage"]["input_tokens"], chat_usage["prompt_tokens"]);
  EXPECT_EQ(reply["usage"]["output_tokens"], chat_usage["completion_tokens"]);
  EXPECT_EQ(reply["content"][0]["text"], json::parse(chat->body)["choices"][0]["message"]["content"]);
  const std::string chat_cost = chat->header("x-llmd-tokens-consumed");
  ASSERT_FALSE(chat_cost.empty());
  EXPECT_EQ(message->header("x-llmd-tokens-consumed"), chat_cost);
  EXPECT_EQ(std::stoll(message->header("x-llmd-remaining-tokens")), balance(token));
  const json records = usage(id);
  ASSERT_EQ(records.size(), 2u) << records;
  for (const auto& rec : records) EXPECT_EQ(std::to_string(rec["charged"].get<std::int64_t>()), chat_cost) << rec;
  EXPECT_EQ(balance(token), 1000 - 2 * std::stoll(chat_cost));

  // Streamed: the same events a client assembles, charged the same.
  json streamed_body = messages_body;
  streamed_body["stream"] = true;
  auto stream = http_request(server_->port(), "POST", "/v1/messages", streamed_body.dump(), {{"x-api-key", token}});
  ASSERT_TRUE(stream && stream->status == 200) << (stream ? stream->body : "");
  EXPECT_NE(stream->body.find("event: message_start"), std::string::npos);
  EXPECT_NE(stream->body.find("event: message_stop"), std::string::npos);
  EXPECT_EQ(balance(token), 1000 - 3 * std::stoll(chat_cost));

  // A refused call is Anthropic-shaped and costs nothing.
  auto bad = http_request(server_->port(), "POST", "/v1/messages", R"({"model":"tiny","messages":[]})",
                          {{"x-api-key", token}});
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(json::parse(bad->body)["error"]["type"], "invalid_request_error") << bad->body;
  EXPECT_EQ(balance(token), 1000 - 3 * std::stoll(chat_cost));

  // OpenAI Responses and Ollama's chat: the same tokens, the same charge.
  const json response_body = {{"model", "tiny"},
                              {"instructions", "Be brief."},
                              {"input", "计算 2+3×4 的结果"},
                              {"max_output_tokens", 20},
                              {"temperature", 0}};
  auto response = call("POST", "/v1/responses", response_body.dump(), token);
  ASSERT_TRUE(response && response->status == 200) << (response ? response->body : "");
  EXPECT_EQ(json::parse(response->body)["usage"]["input_tokens"], chat_usage["prompt_tokens"]);
  EXPECT_EQ(json::parse(response->body)["usage"]["output_tokens"], chat_usage["completion_tokens"]);
  EXPECT_EQ(response->header("x-llmd-tokens-consumed"), chat_cost);
  const json ollama_body = {{"model", "tiny"},
                            {"messages", chat_body["messages"]},
                            {"stream", false},
                            {"options", {{"num_predict", 20}, {"temperature", 0}}}};
  auto ollama = call("POST", "/api/chat", ollama_body.dump(), token);
  ASSERT_TRUE(ollama && ollama->status == 200) << (ollama ? ollama->body : "");
  EXPECT_EQ(json::parse(ollama->body)["prompt_eval_count"], chat_usage["prompt_tokens"]);
  EXPECT_EQ(json::parse(ollama->body)["eval_count"], chat_usage["completion_tokens"]);
  EXPECT_EQ(ollama->header("x-llmd-tokens-consumed"), chat_cost);
  EXPECT_EQ(balance(token), 1000 - 5 * std::stoll(chat_cost));
  auto ollama_bad = call("POST", "/api/chat", R"({"model":"nope","messages":[{"role":"user","content":"x"}]})", token);
  ASSERT_TRUE(ollama_bad);
  EXPECT_EQ(ollama_bad->status, 404);
  EXPECT_TRUE(json::parse(ollama_bad->body)["error"].is_string()) << ollama_bad->body;
  EXPECT_EQ(balance(token), 1000 - 5 * std::stoll(chat_cost));
}

// Forty calls at once in four dialects by one user whose balance pays for
// only some: none takes it below zero, and the ledger adds up.
TEST_F(SeedExamplesTest, FortyParallelCallsAcrossDialectsNeverOverspend) {
  auto [token, id] = new_user("parallel");
  ASSERT_EQ(call("POST", "/api/v1/admin/users/" + std::to_string(id) + "/tokens",
                 json{{"amount", 150 - 1000}, {"reason", "test"}}.dump(), admin())
                ->status,
            200);
  const std::string message = "计算 2+3×4 的结果";
  const std::vector<std::pair<std::string, std::string>> dialects = {
      {"/v1/chat/completions",
       json{{"model", "tiny"}, {"messages", {{{"role", "user"}, {"content", message}}}}, {"max_tokens", 40}}.dump()},
      {"/v1/messages", json{{"model", "tiny"},
                            {"messages", {{{"role", "user"}, {"content", message}}}},
                            {"max_tokens", 40},
                            {"stream", true}}
                           .dump()},
      {"/v1/responses", json{{"model", "tiny"}, {"input", message}, {"max_output_tokens", 40}}.dump()},
      {"/api/chat", json{{"model", "tiny"},
                         {"messages", {{{"role", "user"}, {"content", message}}}},
                         {"options", {{"num_predict", 40}}}}
                        .dump()}};
  std::atomic<int> served{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 40; ++i) {
    threads.emplace_back([&, i] {
      const auto& [path, body] = dialects[static_cast<std::size_t>(i) % dialects.size()];
      auto r = call("POST", path, body, token);
      if (r && r->status == 200) ++served;
      if (r && r->status == 402) ++refused;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(served + refused, 40);
  EXPECT_GT(served.load(), 0);
  EXPECT_GT(refused.load(), 0);  // 150 tokens do not pay for forty replies
  auto db = store::Database::open("sqlite:" + (server_->dir() / "data/llmd.db").string(), 1);
  ASSERT_TRUE(db) << db.error().message;
  auto books = (*db)->with_connection<std::vector<store::Row>>([&](store::Connection& c) {
    return c.query(
        "SELECT balance, reserved, (SELECT SUM(delta) FROM ledger WHERE user_id = u.id), "
        "(SELECT COALESCE(SUM(charged), 0) FROM usage_records WHERE user_id = u.id) FROM users u WHERE id = ?",
        std::vector<store::Value>{id});
  });
  ASSERT_TRUE(books && books->size() == 1);
  const store::Row& row = books->front();
  EXPECT_GE(row.integer(0), 0);
  EXPECT_EQ(row.integer(1), 0);
  EXPECT_EQ(row.integer(0), row.integer(2));
  EXPECT_EQ(row.integer(0), 150 - row.integer(3));
}

// Ollama's keep_alive is the model's idle timer when an administrator sends
// it (a user's is ignored: one student must not unload a shared model), and
// a generate without a prompt loads or (keep_alive 0) unloads a model.
TEST_F(SeedExamplesTest, AnAdministratorsKeepAliveLoadsAndUnloadsAModelOllamasWay) {
  auto [token, id] = new_user("keeper");
  const auto status = [&] { return ok(call("GET", "/api/v1/models/spare", "", admin()))["status"].get<std::string>(); };
  const auto wait_for = [&](const std::string& wanted) {
    for (int i = 0; i < 300 && status() != wanted; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return status();
  };
  const std::string chat = R"({"model":"spare","messages":[{"role":"user","content":"hi"}],"stream":false,
                               "options":{"num_predict":2},"keep_alive":0})";
  ASSERT_EQ(ok(call("POST", "/api/chat", chat, token))["done"], true);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(status(), "running");  // a user's keep_alive 0 changed nothing

  const json unloaded = ok(call("POST", "/api/generate", R"({"model":"spare","keep_alive":0})", admin()));
  EXPECT_EQ(unloaded["done_reason"], "unload");
  EXPECT_EQ(wait_for("available"), "available");
  const json loaded = ok(call("POST", "/api/generate", R"({"model":"spare"})", admin()));
  EXPECT_EQ(loaded["done_reason"], "load");
  EXPECT_EQ(wait_for("running"), "running");

  // An administrator's chat with keep_alive "0s": unloaded once it is answered.
  const std::string admin_chat = R"({"model":"spare","messages":[{"role":"user","content":"hi"}],"stream":false,
                                     "options":{"num_predict":2},"keep_alive":"0s"})";
  ASSERT_EQ(ok(call("POST", "/api/chat", admin_chat, admin()))["done"], true);
  EXPECT_EQ(wait_for("available"), "available");
  // A user cannot unload or load that way: the prompt is required.
  auto refused = call("POST", "/api/generate", R"({"model":"spare","keep_alive":0})", token);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400);
  auto bad = call("POST", "/api/chat", R"({"model":"spare","messages":[],"keep_alive":"soon"})", token);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
}

// Counting a prompt needs the model running: a caller who cannot pay for
// the smallest reply is refused before that, and no model is started for them.
TEST_F(SeedExamplesTest, ACallerWhoCannotPayStartsNoModel) {
  auto [token, id] = new_user("broke");
  ASSERT_EQ(call("POST", "/api/v1/admin/users/" + std::to_string(id) + "/tokens",
                 json{{"amount", -1000}, {"reason", "test"}}.dump(), admin())
                ->status,
            200);
  auto chat = call("POST", "/api/v1/models/spare/chat", kChat, token);
  EXPECT_EQ(chat->status, 402) << chat->body;
  auto v1 = call("POST", "/v1/chat/completions",
                 R"({"model":"spare","messages":[{"role":"user","content":"你好"}],"max_tokens":10})", token);
  EXPECT_EQ(v1->status, 402) << v1->body;
  // Counting is free, but it too needs the model: not for a caller who could not use it.
  auto counted =
      http_request(server_->port(), "POST", "/v1/messages/count_tokens",
                   R"({"model":"spare","messages":[{"role":"user","content":"你好"}]})", {{"x-api-key", token}});
  ASSERT_TRUE(counted);
  EXPECT_EQ(counted->status, 402) << counted->body;
  EXPECT_EQ(json::parse(counted->body)["error"]["type"], "billing_error") << counted->body;
  EXPECT_EQ(ok(call("GET", "/api/v1/models/spare", "", admin()))["status"], "available");
  EXPECT_EQ(balance(token), 0);
}

}  // namespace
}  // namespace llmd::testing
