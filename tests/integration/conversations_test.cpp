// Issue 23: conversations kept on the server per user (SPEC §4.5c), through
// the real `llmd serve` with the tiny model, on SQLite and on MariaDB.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "support/backends.h"
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

// The data events of an SSE body, parsed.
std::vector<json> sse_events(const std::string& body) {
  std::vector<json> out;
  for (auto at = body.find("data: "); at != std::string::npos; at = body.find("data: ", at + 1)) {
    const auto end = body.find('\n', at);
    out.push_back(json::parse(body.substr(at + 6, end - at - 6), nullptr, false));
  }
  return out;
}

class ConversationsApi : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    const fs::path models = dir_ / "models";
    fs::create_directories(models);
    fs::create_symlink(tiny_test_model(kBinary), models / "tiny.gguf");
    const int base = free_port();
    std::map<std::string, std::string> env;
    if (GetParam() == Backend::kMariaDb) env["LLMD_DATABASE"] = fresh_database_url(GetParam(), dir_);
    env_ = env;
    serve_ = std::make_unique<LlmdServe>(
        kBinary,
        "limits: { ip_rpm: 0, user_rpm: 0 }\nauth: { bcrypt_cost: 10, initial_tokens: 100000 }\n"
        "chat: { max_messages_per_conversation: 6, max_message_bytes: 2048, max_conversations: 50 }\n"
        "models:\n  dir: " +
            models.string() + "\n  port_range: \"" + std::to_string(base) + "-" + std::to_string(base + 20) + "\"\n",
        "", env);
    ASSERT_TRUE(serve_->started()) << serve_->log();
    alice_ = register_user("alice");
    bob_ = register_user("bob");
  }

  std::string register_user(const std::string& name) {
    auto r = call("POST", "/api/v1/auth/register",
                  json{{"username", name}, {"password", "password-123"}, {"email", name + "@example.com"}}.dump());
    EXPECT_TRUE(r && r->status == 201) << (r ? r->body : "no reply");
    return r && r->status == 201 ? json::parse(r->body)["token"].get<std::string>() : "";
  }

  std::optional<HttpReply> call(const std::string& method, const std::string& path, const std::string& body = "",
                                const std::string& token = "") {
    std::map<std::string, std::string> h{{"Content-Type", "application/json"}};
    if (!token.empty()) h["Authorization"] = "Bearer " + token;
    return http_request(serve_->port(), method, path, body, h);
  }

  // The reply's JSON after checking its status.
  json expect(int status, const std::optional<HttpReply>& r) {
    EXPECT_TRUE(r) << "no reply";
    if (!r) return json();
    EXPECT_EQ(r->status, status) << r->body;
    return json::parse(r->body, nullptr, false);
  }

  std::string create(const std::string& token, const json& body = json::object()) {
    return expect(201, call("POST", "/api/v1/conversations", body.dump(), token)).value("id", "");
  }

  json chat(const std::string& token, json body) {
    body["max_tokens"] = body.value("max_tokens", 4);
    body["temperature"] = 0;
    return expect(200, call("POST", "/api/v1/models/tiny/chat", body.dump(), token));
  }

  json conversation(const std::string& id, const std::string& token) {
    return expect(200, call("GET", "/api/v1/conversations/" + id, "", token));
  }

  std::int64_t balance(const std::string& token) {
    return expect(200, call("GET", "/api/v1/auth/profile", "", token))["user"]["tokens"].get<std::int64_t>();
  }

  std::string admin_token() {
    auto r = call("POST", "/api/v1/auth/login", json{{"username", "admin"}, {"password", kTestAdminPassword}}.dump());
    return expect(200, r).value("token", "");
  }

  TempDir dir_;
  std::map<std::string, std::string> env_;  // the database the server uses, for the CLI too
  std::unique_ptr<LlmdServe> serve_;
  std::string alice_, bob_;
};

TEST_P(ConversationsApi, AChatTurnIsStoredWithItsCostAndTheNextTurnSeesIt) {
  const std::string id = create(alice_, {{"system", "Answer briefly."}});
  ASSERT_EQ(id.size(), 32u);
  const std::int64_t before = balance(alice_);
  const json first = chat(alice_, {{"conversation_id", id}, {"message", "What is 2+2?"}});
  EXPECT_EQ(first["conversation_id"], id);
  EXPECT_EQ(first["title"], "What is 2+2?");
  const std::int64_t charged = first["tokens_consumed"];
  EXPECT_EQ(before - balance(alice_), charged);

  json got = conversation(id, alice_);
  EXPECT_EQ(got["system"], "Answer briefly.");
  EXPECT_EQ(got["title"], "What is 2+2?");
  EXPECT_EQ(got["model"], "tiny");
  ASSERT_EQ(got["messages"].size(), 2u);
  const json& user = got["messages"][0];
  const json& reply = got["messages"][1];
  EXPECT_EQ(user["role"], "user");
  EXPECT_EQ(user["content"], "What is 2+2?");
  EXPECT_EQ(user["id"], first["user_message_id"]);
  EXPECT_EQ(reply["id"], first["message_id"]);
  EXPECT_EQ(reply["content"], first["reply"]);
  EXPECT_EQ(reply["tokens_consumed"], charged);
  EXPECT_EQ(reply["usage"], first["usage"]);
  EXPECT_TRUE(reply["finish_reason"] == "length" || reply["finish_reason"] == "stop") << reply;

  // The second turn's prompt holds the system prompt and the first exchange:
  // more prompt tokens than the first, though its message is shorter.
  const json second = chat(alice_, {{"conversation_id", id}, {"message", "And?"}, {"stream", false}});
  EXPECT_GT(second["usage"]["prompt_tokens"].get<int>(), first["usage"]["prompt_tokens"].get<int>());

  // A streamed turn ends with the ids.
  auto streamed =
      call("POST", "/api/v1/models/tiny/chat",
           json{{"conversation_id", id}, {"message", "Once more"}, {"stream", true}, {"max_tokens", 3}}.dump(), alice_);
  ASSERT_TRUE(streamed && streamed->status == 200);
  const auto events = sse_events(streamed->body);
  ASSERT_FALSE(events.empty());
  const json done = events.back();
  EXPECT_EQ(done["done"], true) << streamed->body;
  EXPECT_EQ(done["conversation_id"], id);
  std::string text;
  for (const auto& e : events) text += e.value("delta", "");
  got = conversation(id, alice_);
  ASSERT_EQ(got["messages"].size(), 6u);
  EXPECT_EQ(got["messages"][5]["id"], done["message_id"]);
  EXPECT_EQ(got["messages"][5]["content"], text);
  EXPECT_EQ(got["messages"][5]["tokens_consumed"], done["tokens_consumed"]);

  // The list shows it; history given by the client is refused with an id.
  const json list = expect(200, call("GET", "/api/v1/conversations", "", alice_));
  ASSERT_EQ(list["items"].size(), 1u);
  EXPECT_EQ(list["items"][0]["message_count"], 6);
  EXPECT_TRUE(list["next_cursor"].is_null());
  auto both = call("POST", "/api/v1/models/tiny/chat",
                   json{{"conversation_id", id}, {"message", "x"}, {"history", json::array()}}.dump(), alice_);
  EXPECT_EQ(expect(400, both)["error"]["code"], "invalid_request");
}

TEST_P(ConversationsApi, AnotherUsersConversationIsNotFoundForEveryVerb) {
  const std::string id = create(alice_, {{"title", "private"}});
  chat(alice_, {{"conversation_id", id}, {"message", "my secret"}});
  const std::int64_t bobs = balance(bob_);
  const std::vector<std::tuple<std::string, std::string, std::string>> verbs = {
      {"GET", "/api/v1/conversations/" + id, ""},
      {"PATCH", "/api/v1/conversations/" + id, R"({"title":"mine"})"},
      {"DELETE", "/api/v1/conversations/" + id, ""},
      {"GET", "/api/v1/conversations/" + id + "/export?format=md", ""},
      {"GET", "/api/v1/conversations/" + id + "/export?format=json", ""},
      {"POST", "/api/v1/models/tiny/chat", json{{"conversation_id", id}, {"message", "hi"}}.dump()},
      {"POST", "/api/v1/models/tiny/chat", json{{"conversation_id", id}, {"regenerate", true}}.dump()},
  };
  const json missing = expect(404, call("GET", "/api/v1/conversations/0123456789abcdef0123456789abcdef", "", bob_));
  for (const auto& [method, path, body] : verbs) {
    const json error = expect(404, call(method, path, body, bob_));
    EXPECT_EQ(error["error"]["code"], missing["error"]["code"]) << method << " " << path;
    EXPECT_EQ(error["error"]["message"], missing["error"]["message"]) << method << " " << path;
  }
  EXPECT_EQ(balance(bob_), bobs);
  EXPECT_EQ(expect(200, call("GET", "/api/v1/conversations?q=secret", "", bob_))["items"].size(), 0u);
  EXPECT_EQ(expect(200, call("DELETE", "/api/v1/conversations", "", bob_))["deleted"], 0);
  const json mine = conversation(id, alice_);
  EXPECT_EQ(mine["title"], "private");
  EXPECT_EQ(mine["messages"].size(), 2u);
  EXPECT_EQ(expect(401, call("GET", "/api/v1/conversations/" + id))["error"]["code"], "unauthenticated");
}

TEST_P(ConversationsApi, RegenerateAndEditReplaceMessagesOnTheServer) {
  const std::string id = create(alice_);
  const json first = chat(alice_, {{"conversation_id", id}, {"message", "one"}});
  chat(alice_, {{"conversation_id", id}, {"message", "two"}});
  const json again = chat(alice_, {{"conversation_id", id}, {"regenerate", true}, {"max_tokens", 2}});
  json got = conversation(id, alice_);
  ASSERT_EQ(got["messages"].size(), 4u);
  EXPECT_EQ(got["messages"][2]["content"], "two");
  EXPECT_EQ(got["messages"][3]["id"], again["message_id"]);
  EXPECT_EQ(got["messages"][3]["usage"]["completion_tokens"], again["usage"]["completion_tokens"]);

  chat(alice_, {{"conversation_id", id}, {"edit_message_id", first["user_message_id"]}, {"message", "uno"}});
  got = conversation(id, alice_);
  ASSERT_EQ(got["messages"].size(), 2u);
  EXPECT_EQ(got["messages"][0]["content"], "uno");
  auto wrong = call(
      "POST", "/api/v1/models/tiny/chat",
      json{{"conversation_id", id}, {"edit_message_id", got["messages"][1]["id"]}, {"message", "x"}}.dump(), alice_);
  EXPECT_EQ(expect(404, wrong)["error"]["code"], "message_not_found");
  auto empty = create(alice_);
  auto nothing =
      call("POST", "/api/v1/models/tiny/chat", json{{"conversation_id", empty}, {"regenerate", true}}.dump(), alice_);
  EXPECT_EQ(expect(409, nothing)["error"]["code"], "nothing_to_regenerate");
}

TEST_P(ConversationsApi, LimitsAnswerJsonErrorsAndKeepTheHistoryAndTheBalance) {
  const std::string id = create(alice_);
  for (const char* m : {"one", "two", "three"}) chat(alice_, {{"conversation_id", id}, {"message", m}});
  const std::int64_t before = balance(alice_);
  auto full =
      call("POST", "/api/v1/models/tiny/chat", json{{"conversation_id", id}, {"message", "four"}}.dump(), alice_);
  EXPECT_EQ(expect(409, full)["error"]["code"], "conversation_full");
  auto big = call("POST", "/api/v1/models/tiny/chat",
                  json{{"conversation_id", create(alice_)}, {"message", std::string(3000, 'x')}}.dump(), alice_);
  EXPECT_EQ(expect(413, big)["error"]["code"], "message_too_large");
  EXPECT_EQ(balance(alice_), before);
  EXPECT_EQ(conversation(id, alice_)["messages"].size(), 6u);

  // A caller who cannot pay is refused before anything is stored.
  const std::string poor = register_user("poor");
  auto admin = call("POST", "/api/v1/auth/login", json{{"username", "admin"}, {"password", kTestAdminPassword}}.dump());
  const std::string admin_token = expect(200, admin)["token"];
  const json users = expect(200, call("GET", "/api/v1/admin/users", "", admin_token));
  std::int64_t poor_id = 0;
  for (const auto& u : users["users"]) {
    if (u["username"] == "poor") poor_id = u["id"];
  }
  ASSERT_GT(poor_id, 0);
  expect(200, call("POST", "/api/v1/admin/users/" + std::to_string(poor_id) + "/tokens",
                   json{{"amount", -balance(poor)}, {"reason", "test"}}.dump(), admin_token));
  const std::string poor_chat = create(poor);
  auto refused =
      call("POST", "/api/v1/models/tiny/chat", json{{"conversation_id", poor_chat}, {"message", "hello"}}.dump(), poor);
  EXPECT_EQ(expect(402, refused)["error"]["code"], "insufficient_tokens");
  EXPECT_EQ(conversation(poor_chat, poor)["messages"].size(), 0u);

  // Bad requests.
  EXPECT_EQ(expect(400, call("GET", "/api/v1/conversations?cursor=junk", "", alice_))["error"]["code"],
            "invalid_cursor");
  EXPECT_EQ(expect(400, call("GET", "/api/v1/conversations?limit=0", "", alice_))["error"]["code"], "invalid_query");
  EXPECT_EQ(expect(400, call("PATCH", "/api/v1/conversations/" + id, R"({"title":7})", alice_))["error"]["code"],
            "invalid_request");
  EXPECT_EQ(expect(400, call("POST", "/api/v1/conversations/import", R"({"format":"x"})", alice_))["error"]["code"],
            "invalid_import");
}

TEST_P(ConversationsApi, AStreamClosedEarlyStoresTheMessageAndThePartialReplyBilledAsUsed) {
  const std::string id = create(alice_);
  const std::int64_t before = balance(alice_);
  {
    RawConnection conn(serve_->port());
    ASSERT_TRUE(conn.ok());
    const std::string body =
        json{{"conversation_id", id}, {"message", "Tell a long story"}, {"stream", true}, {"max_tokens", 3000}}.dump();
    ASSERT_TRUE(conn.send("POST /api/v1/models/tiny/chat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + alice_ +
                          "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                          "\r\n\r\n" + body));
    auto head = conn.read_head(120s);
    ASSERT_TRUE(head);
    ASSERT_EQ(head->status, 200);
    std::string seen;
    const auto end = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < end && sse_events(seen).size() < 4) {
      auto piece = conn.read_some(5s);
      if (!piece || piece->empty()) break;
      seen += *piece;
    }
    ASSERT_GE(sse_events(seen).size(), 4u) << seen;
  }  // hang up mid-reply
  json reply;
  const auto end = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < end) {
    const json got = conversation(id, alice_);
    if (got["messages"].size() == 2 && got["messages"][1]["finish_reason"] != "pending") {
      reply = got["messages"][1];
      EXPECT_EQ(got["messages"][0]["content"], "Tell a long story");
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_FALSE(reply.is_null()) << "the reply was never closed";
  EXPECT_EQ(reply["finish_reason"], "stopped");
  EXPECT_FALSE(reply["content"].get<std::string>().empty());
  const std::int64_t completion = reply["usage"]["completion_tokens"];
  EXPECT_GE(completion, 3);
  EXPECT_LT(completion, 3000);
  EXPECT_EQ(reply["tokens_consumed"].get<std::int64_t>(),
            reply["usage"]["prompt_tokens"].get<std::int64_t>() + completion);
  EXPECT_EQ(before - balance(alice_), reply["tokens_consumed"].get<std::int64_t>());
}

TEST_P(ConversationsApi, ListPagesSearchRenameExportImportAndDelete) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(create(alice_, {{"title", "note " + std::to_string(i)}}));
  chat(alice_, {{"conversation_id", ids[2]}, {"message", "The mitochondria is the powerhouse of the cell"}});
  std::set<std::string> seen;
  std::string cursor;
  do {
    const json page = expect(200, call("GET", "/api/v1/conversations?limit=2&cursor=" + cursor, "", alice_));
    EXPECT_LE(page["items"].size(), 2u);
    for (const auto& item : page["items"]) EXPECT_TRUE(seen.insert(item["id"]).second);
    cursor = page["next_cursor"].is_null() ? "" : page["next_cursor"].get<std::string>();
  } while (!cursor.empty());
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(expect(200, call("GET", "/api/v1/conversations", "", alice_))["items"][0]["id"], ids[2]);  // newest

  const json found = expect(200, call("GET", "/api/v1/conversations?q=powerhouse", "", alice_));
  ASSERT_EQ(found["items"].size(), 1u);
  EXPECT_EQ(found["items"][0]["id"], ids[2]);

  const json renamed = expect(200, call("PATCH", "/api/v1/conversations/" + ids[2],
                                        R"({"title":"Biology <img src=x onerror=alert(1)>"})", alice_));
  EXPECT_EQ(renamed["title"], "Biology <img src=x onerror=alert(1)>");

  auto md = call("GET", "/api/v1/conversations/" + ids[2] + "/export?format=md", "", alice_);
  ASSERT_TRUE(md && md->status == 200);
  EXPECT_NE(md->header("content-type").find("text/markdown"), std::string::npos);
  EXPECT_NE(md->header("content-disposition").find("attachment"), std::string::npos);
  EXPECT_NE(md->body.find("powerhouse of the cell"), std::string::npos);
  auto exported = call("GET", "/api/v1/conversations/" + ids[2] + "/export?format=json", "", alice_);
  ASSERT_TRUE(exported && exported->status == 200);
  const json file = json::parse(exported->body);
  EXPECT_EQ(file["format"], "llmd.conversations");

  // Bob imports Alice's file: a copy of his own, exactly as exported.
  const json imported = expect(201, call("POST", "/api/v1/conversations/import", exported->body, bob_));
  auto again =
      call("GET", "/api/v1/conversations/" + imported["id"].get<std::string>() + "/export?format=json", "", bob_);
  ASSERT_TRUE(again && again->status == 200);
  json a = file, b = json::parse(again->body);
  a.erase("exported_at");
  b.erase("exported_at");
  EXPECT_EQ(a, b);
  const json all = expect(200, call("GET", "/api/v1/conversations/export", "", alice_));
  EXPECT_EQ(all["conversations"].size(), 5u);

  expect(200, call("DELETE", "/api/v1/conversations/" + ids[2], "", alice_));
  expect(404, call("GET", "/api/v1/conversations/" + ids[2], "", alice_));
  EXPECT_EQ(expect(200, call("GET", "/api/v1/conversations?q=powerhouse", "", alice_))["items"].size(), 0u);
  EXPECT_EQ(expect(200, call("DELETE", "/api/v1/conversations", "", alice_))["deleted"], 4);
  EXPECT_EQ(expect(200, call("GET", "/api/v1/conversations", "", alice_))["items"].size(), 0u);
  EXPECT_EQ(expect(200, call("GET", "/api/v1/conversations", "", bob_))["items"].size(), 1u);
}

TEST_P(ConversationsApi, TwoConcurrentChatsIntoOneConversationStoreEveryMessageInOrder) {
  const std::string id = create(alice_);
  std::vector<std::thread> threads;
  std::vector<json> replies(2);
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      replies[i] = chat(alice_, {{"conversation_id", id}, {"message", "question " + std::to_string(i)}});
    });
  }
  for (auto& t : threads) t.join();
  const json got = conversation(id, alice_);
  ASSERT_EQ(got["messages"].size(), 4u);
  std::set<std::string> questions;
  for (int i = 0; i < 4; i += 2) {
    const json& q = got["messages"][i];
    const json& a = got["messages"][i + 1];
    EXPECT_EQ(q["role"], "user");
    EXPECT_EQ(a["role"], "assistant");
    questions.insert(q["content"]);
    const json& r = replies[q["content"] == "question 0" ? 0 : 1];
    EXPECT_EQ(a["id"], r["message_id"]);
    EXPECT_EQ(a["content"], r["reply"]);
  }
  EXPECT_EQ(questions, (std::set<std::string>{"question 0", "question 1"}));
}

TEST_P(ConversationsApi, AdminsSeeSizesNeverTextAndExportUserWritesEverything) {
  const std::string id = create(alice_, {{"title", "diary"}});
  chat(alice_, {{"conversation_id", id}, {"message", "my private diary entry"}});
  const std::string admin = admin_token();
  const json users = expect(200, call("GET", "/api/v1/admin/users?search=alice", "", admin));
  ASSERT_EQ(users["users"].size(), 1u);
  const std::int64_t alice_id = users["users"][0]["id"];
  const std::string stats_path = "/api/v1/admin/conversations?user_ids=" + std::to_string(alice_id) + ",99999";
  auto stats = call("GET", stats_path, "", admin);
  const json all_sizes = expect(200, stats);
  ASSERT_EQ(all_sizes["users"].size(), 1u);  // the unknown id has none
  const json& sizes = all_sizes["users"][0];
  EXPECT_EQ(sizes["user_id"], alice_id);
  EXPECT_EQ(sizes["conversations"], 1);
  EXPECT_EQ(sizes["messages"], 2);
  EXPECT_GT(sizes["bytes"].get<std::int64_t>(), 20);
  EXPECT_EQ(stats->body.find("diary"), std::string::npos) << stats->body;
  expect(403, call("GET", stats_path, "", bob_));
  expect(400, call("GET", "/api/v1/admin/conversations?user_ids=1,x", "", admin));

  // A class with a weekly allowance: the export says so.
  const json group =
      expect(201, call("POST", "/api/v1/groups",
                       json{{"name", "Class 1A"}, {"allowance", {{"amount", 50}, {"period", "week"}}}}.dump(),
                       admin))["group"];
  expect(201, call("POST", "/api/v1/groups/" + std::to_string(group["id"].get<std::int64_t>()) + "/members",
                   json{{"username", "alice"}}.dump(), admin));

  const fs::path out = dir_ / "alice.json";
  Process cli(
      {kBinary, "admin", "-c", (serve_->dir() / "llmd.yaml").string(), "export-user", "alice", "--out", out.string()},
      dir_.path(), dir_ / "cli.log", env_);
  ASSERT_EQ(cli.wait(60s).value_or(-1), 0) << read_file(dir_ / "cli.log");
  EXPECT_EQ(fs::status(out).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  const json file = json::parse(read_file(out));
  EXPECT_EQ(file["profile"]["username"], "alice");
  EXPECT_EQ(file["profile"]["tokens"], balance(alice_));
  EXPECT_GE(file["ledger"].size(), 2u);  // the registration credit and the chat's charge
  ASSERT_EQ(file["usage"].size(), 1u);
  EXPECT_EQ(file["usage"][0]["route"], "/api/v1/models/{name}/chat");
  const json& conversations = file["conversations"];
  ASSERT_EQ(conversations["conversations"].size(), 1u);
  EXPECT_EQ(conversations["conversations"][0]["messages"][0]["content"], "my private diary entry");
  EXPECT_EQ(file.dump().find("password"), std::string::npos);
  ASSERT_EQ(file["groups"]["member_of"].size(), 1u);
  EXPECT_EQ(file["groups"]["member_of"][0]["name"], "Class 1A");
  ASSERT_EQ(file["groups"]["allowance_credits"].size(), 1u);
  EXPECT_EQ(file["groups"]["allowance_credits"][0]["amount"], 50);
  EXPECT_EQ(file["groups"]["allowance_credits"][0]["state"], "open");
  // The conversations part is an import file as it is.
  expect(201, call("POST", "/api/v1/conversations/import", conversations.dump(), bob_));
}

INSTANTIATE_TEST_SUITE_P(Backends, ConversationsApi, ::testing::ValuesIn(all_backends()), backend_name);

}  // namespace
}  // namespace llmd::testing
