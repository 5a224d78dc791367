// Subtitle jobs end to end: the real `llmd serve` with a real `llmd runner`
// on the generated tiny model (its text is noise, but the JSON-schema
// constrained replies are valid), real HTTP on loopback.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "support/asr_stub.h"
#include "support/http.h"
#include "support/llmd_serve.h"
#include "support/process.h"
#include "support/test_media.h"
#include "support/test_model.h"
#include "support/test_support.h"
#include "tasks/subtitle/subtitle.h"

namespace llmd::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
constexpr const char* kBinary = LLMD_BINARY;
constexpr std::int64_t kInitialTokens = 10'000'000;

// `n` cues of short English text; every 7th gap is longer (batch cuts prefer it).
std::string make_srt(int n) {
  std::ostringstream out;
  std::int64_t t = 1000;
  auto stamp = [](std::int64_t ms) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld,%03lld", static_cast<long long>(ms / 3600000),
                  static_cast<long long>(ms / 60000 % 60), static_cast<long long>(ms / 1000 % 60),
                  static_cast<long long>(ms % 1000));
    return std::string(buf);
  };
  for (int i = 1; i <= n; ++i) {
    const std::int64_t start = t;
    const std::int64_t end = start + 1500 + (i % 5) * 100;
    out << i << "\n" << stamp(start) << " --> " << stamp(end) << "\nHello number " << i << "\n\n";
    t = end + ((i % 7 == 0) ? 2000 : 250);
  }
  return out.str();
}

struct SseEvent {
  std::string event;
  json data;
};

std::vector<SseEvent> parse_sse(const std::string& body) {
  std::vector<SseEvent> out;
  std::size_t pos = 0;
  while (pos < body.size()) {
    auto end = body.find("\n\n", pos);
    if (end == std::string::npos) end = body.size();
    std::string block = body.substr(pos, end - pos);
    pos = end + 2;
    SseEvent e;
    std::string data;
    std::istringstream lines(block);
    for (std::string line; std::getline(lines, line);) {
      if (line.starts_with("event: ")) e.event = line.substr(7);
      if (line.starts_with("data: ")) data += line.substr(6);
    }
    if (e.event.empty() && data.empty()) continue;
    e.data = json::parse(data, nullptr, false);
    out.push_back(std::move(e));
  }
  return out;
}

// One backend on a data directory that survives restarts (SIGKILL included).
class Backend {
 public:
  explicit Backend(const std::string& subtitle_yaml = "batch_min: 10, batch_max: 20",
                   const std::string& extra_yaml = "")
      : subtitle_yaml_(subtitle_yaml), extra_yaml_(extra_yaml) {
    fs::create_directories(dir_ / "models");
    fs::create_directories(dir_ / "media");
    fs::create_symlink(tiny_test_model(kBinary), dir_ / "models/tiny.gguf");
    start();
  }

  void start() {
    port_ = free_port();
    const int base = free_port();
    const std::string d = dir_.path().string();
    const std::string yaml = "server: { host: 127.0.0.1, port: " + std::to_string(port_) +
                             ", threads: 2, data_dir: " + d + "/data }\n" + "database: \"sqlite:" + d +
                             "/data/llmd.db\"\n"
                             "logging: { level: debug, format: json }\n"
                             "auth: { bcrypt_cost: 10, initial_tokens: " +
                             std::to_string(kInitialTokens) +
                             " }\n"
                             "limits: { ip_rpm: 0, user_rpm: 0 }\n"
                             "models: { dir: " +
                             d + "/models, default_model: tiny, port_range: \"" + std::to_string(base) + "-" +
                             std::to_string(base + 20) +
                             "\", list: [ { name: tiny, file: tiny.gguf, ctx: 4096, parallel: 2, threads: 1 } ] }\n"
                             "tasks: { subtitle: { " +
                             subtitle_yaml_ +
                             " } }\n"
                             "uploads: { dir: " +
                             d + "/data/uploads, media_roots: [" + d + "/media] }\n" + extra_yaml_;
    write_file(dir_ / "llmd.yaml", yaml);
    process_ = std::make_unique<Process>(
        std::vector<std::string>{kBinary, "serve", "-c", (dir_ / "llmd.yaml").string()}, dir_.path(),
        dir_ / "serve.log", std::map<std::string, std::string>{{"LLMD_ADMIN_PASSWORD", kTestAdminPassword}});
    started_ = wait_for_http(port_, "/health", 200, 60s);
  }

  void kill9() {
    process_->signal(SIGKILL);
    process_->wait(10s);
  }

  bool started() const { return started_; }
  int port() const { return port_; }
  std::string log() const { return read_file(dir_ / "serve.log"); }
  const TempDir& dir() const { return dir_; }

  std::optional<HttpReply> call(const std::string& method, const std::string& path, const std::string& body = "",
                                const std::string& token = "") {
    std::map<std::string, std::string> h;
    if (!token.empty()) h["Authorization"] = "Bearer " + token;
    return http_request(port_, method, path, body, h);
  }

  std::pair<std::string, std::int64_t> user(const std::string& name) {
    auto r = call("POST", "/api/v1/auth/register",
                  json{{"username", name}, {"password", "password-" + name}, {"email", name + "@s.cn"}}.dump());
    EXPECT_EQ(r->status, 201) << r->body;
    const auto j = json::parse(r->body);
    return {j["token"], j["user"]["id"]};
  }

  std::string admin() {
    auto r = call("POST", "/api/v1/auth/login", json{{"username", "admin"}, {"password", kTestAdminPassword}}.dump());
    return json::parse(r->body)["token"];
  }

  std::int64_t tokens(const std::string& token) {
    return json::parse(call("GET", "/api/v1/auth/profile", "", token)->body)["user"]["tokens"];
  }

  json job(const std::string& token, const std::string& id) {
    auto r = call("GET", "/api/v1/jobs/" + id, "", token);
    if (!r || r->status != 200) return json();
    return json::parse(r->body);
  }

  // Polls until the job has ended; records every progress seen.
  json wait_job(const std::string& token, const std::string& id, std::chrono::seconds timeout,
                std::vector<std::int64_t>* seen = nullptr) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    json j;
    while (std::chrono::steady_clock::now() < deadline) {
      j = job(token, id);
      if (j.is_object()) {
        if (seen) seen->push_back(j["progress"]["done"]);
        const std::string s = j["status"];
        if (s == "done" || s == "failed" || s == "cancelled" || s == "insufficient_tokens") return j;
      }
      std::this_thread::sleep_for(200ms);
    }
    return j;
  }

  json usage(std::int64_t user_id) {
    auto r = call("GET", "/api/v1/admin/usage?task=subtitle&user_id=" + std::to_string(user_id), "", admin());
    return json::parse(r->body)["records"];
  }

 private:
  TempDir dir_;
  std::string subtitle_yaml_;
  std::string extra_yaml_;
  int port_ = 0;
  std::unique_ptr<Process> process_;
  bool started_ = false;
};

std::string job_body(const std::string& content, const std::string& format = "srt") {
  // Languages as the original document writes them (ICU resolves them to en and zh-Hans).
  return json{{"content", content}, {"source_lang", "英文"}, {"target_lang", "中文"}, {"output_format", format}}.dump();
}

std::int64_t spec_charge(std::int64_t base) {
  return static_cast<std::int64_t>(std::ceil(static_cast<double>(base) * 3.0 - 1e-9)) + 50;
}

// The schemas the runner was sent, from the serve's debug log: for every
// batch call, the "lines" array bounds.
std::vector<std::pair<std::int64_t, std::int64_t>> logged_line_bounds(const std::string& log,
                                                                      const std::string& job_id) {
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("subtitle batch call") == std::string::npos || line.find(job_id) == std::string::npos) continue;
    const json j = json::parse(line, nullptr, false);
    if (!j.is_object()) continue;
    const json& lines_schema = j["response_format"]["json_schema"]["schema"]["properties"]["lines"];
    out.emplace_back(lines_schema.value("minItems", std::int64_t{-1}),
                     lines_schema.value("maxItems", std::int64_t{-2}));
  }
  return out;
}

TEST(SubtitleJobs, TwoHundredCuesTranslateInBatchesWithOrderedProgressAndTheSpecCharge) {
  Backend b("batch_min: 20, batch_max: 40");
  ASSERT_TRUE(b.started()) << b.log();
  auto [token, user_id] = b.user("alice");
  const std::string srt = make_srt(200);
  auto source = subtitle::parse(srt);
  ASSERT_TRUE(source);
  ASSERT_EQ(source->cues.size(), 200u);

  auto r = b.call("POST", "/api/v1/tasks/subtitle", job_body(srt), token);
  ASSERT_EQ(r->status, 202) << r->body;
  const auto accepted = json::parse(r->body);
  const std::string id = accepted["job_id"];
  EXPECT_EQ(id.size(), 32u);
  EXPECT_EQ(accepted["progress"]["total"], 200);
  EXPECT_EQ(accepted["progress"]["done"], 0);
  EXPECT_EQ(accepted["source_lang"], "en");       // "英文"
  EXPECT_EQ(accepted["target_lang"], "zh-Hans");  // "中文": Simplified Chinese

  // Progress as SSE, read while the job runs (the stream ends with the job).
  std::string sse_body;
  int sse_status = 0;
  std::string sse_type;
  std::thread listener([&, token = token] {
    // The stream lasts as long as the job: read it with a long deadline.
    RawConnection c(b.port());
    c.send("GET /api/v1/jobs/" + id + "/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token +
           "\r\nConnection: close\r\n\r\n");
    auto events = c.read_reply(std::chrono::seconds(800));
    if (events) {
      sse_status = events->status;
      sse_type = events->header("content-type");
      sse_body = events->body;
    }
  });
  const json done = b.wait_job(token, id, 800s);
  listener.join();
  ASSERT_EQ(done["status"], "done") << done.dump() << b.log().substr(0, 4000);
  EXPECT_EQ(done["progress"]["done"], 200);
  EXPECT_EQ(done["progress"]["percent"], 100.0);
  EXPECT_EQ(done["result"]["cues"], 200);

  // Events: progress strictly increasing, ending with "done".
  EXPECT_EQ(sse_status, 200);
  EXPECT_NE(sse_type.find("text/event-stream"), std::string::npos);
  const auto events = parse_sse(sse_body);
  ASSERT_GE(events.size(), 3u) << sse_body;
  EXPECT_EQ(events.back().event, "done");
  std::int64_t last = -1;
  int progress_events = 0;
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    ASSERT_EQ(events[i].event, "progress") << sse_body;
    const std::int64_t d = events[i].data["done"];
    EXPECT_GT(d, last) << sse_body;
    EXPECT_EQ(events[i].data["total"], 200);
    last = d;
    ++progress_events;
  }
  EXPECT_EQ(last, 200);
  EXPECT_GE(progress_events, 2);

  // The file: 200 cues with the source timings, served as SRT.
  auto file = b.call("GET", "/api/v1/jobs/" + id + "/result", "", token);
  ASSERT_EQ(file->status, 200) << file->body;
  EXPECT_EQ(file->header("content-type"), "application/x-subrip; charset=utf-8");
  const std::string disposition = file->header("content-disposition");
  EXPECT_TRUE(disposition.starts_with("attachment; filename=\"")) << disposition;
  EXPECT_NE(disposition.find(".zh-Hans.srt\""), std::string::npos) << disposition;
  auto out = subtitle::parse(file->body, subtitle::Format::kSrt);
  ASSERT_TRUE(out) << out.error().message;
  ASSERT_EQ(out->cues.size(), 200u);
  for (std::size_t i = 0; i < 200; ++i) {
    EXPECT_EQ(out->cues[i].start_ms, source->cues[i].start_ms) << i;
    EXPECT_EQ(out->cues[i].end_ms, source->cues[i].end_ms) << i;
  }

  // Every schema the runner got pinned the line count: minItems == maxItems
  // <= batch_max, and at least one call per batch (200 cues / at most 40).
  const auto bounds = logged_line_bounds(b.log(), id);
  EXPECT_GE(bounds.size(), 5u);
  for (const auto& [lo, hi] : bounds) {
    EXPECT_EQ(lo, hi);
    EXPECT_GE(lo, 1);
    EXPECT_LE(hi, 40);
  }

  // Charged once per job: ceil(base x 3.0) + 50 with base from the usage record.
  const auto records = b.usage(user_id);
  ASSERT_EQ(records.size(), 1u) << records.dump();
  EXPECT_EQ(records[0]["request_id"], id);
  const std::int64_t base =
      records[0]["prompt_tokens"].get<std::int64_t>() + records[0]["completion_tokens"].get<std::int64_t>();
  EXPECT_GT(base, 0);
  EXPECT_EQ(records[0]["charged"], spec_charge(base));
  EXPECT_EQ(done["result"]["tokens_consumed"], spec_charge(base));
  EXPECT_EQ(b.tokens(token), kInitialTokens - spec_charge(base));  // nothing left reserved

  // Listed as the user's own job.
  auto list = b.call("GET", "/api/v1/jobs", "", token);
  ASSERT_EQ(list->status, 200);
  const auto jobs = json::parse(list->body)["jobs"];
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0]["job_id"], id);
}

TEST(SubtitleJobs, InsufficientBalanceIs402UpFrontAndCreatesNoJob) {
  Backend b;
  ASSERT_TRUE(b.started()) << b.log();
  auto [token, user_id] = b.user("poor");
  auto deduct = b.call("POST", "/api/v1/admin/users/" + std::to_string(user_id) + "/tokens",
                       json{{"amount", -(kInitialTokens - 100)}, {"reason", "test"}}.dump(), b.admin());
  ASSERT_EQ(deduct->status, 200) << deduct->body;
  auto r = b.call("POST", "/api/v1/tasks/subtitle", job_body(make_srt(40)), token);
  ASSERT_EQ(r->status, 402) << r->body;
  const auto e = json::parse(r->body)["error"];
  EXPECT_EQ(e["code"], "insufficient_tokens");
  EXPECT_EQ(e["available"], 100);
  EXPECT_GT(e["needed"].get<std::int64_t>(), 100);
  EXPECT_EQ(json::parse(b.call("GET", "/api/v1/jobs", "", token)->body)["jobs"].size(), 0u);
  EXPECT_EQ(b.tokens(token), 100);
}

TEST(SubtitleJobs, ABalanceThatRunsOutMidJobEndsItWithTheFinishedCuesDownloadable) {
  Backend b;
  ASSERT_TRUE(b.started()) << b.log();
  auto [token, user_id] = b.user("thrifty");
  const std::string srt = make_srt(100);
  const auto source = subtitle::parse(srt);
  ASSERT_TRUE(source);
  const auto set_balance = [&](std::int64_t target) {
    auto r = b.call("POST", "/api/v1/admin/users/" + std::to_string(user_id) + "/tokens",
                    json{{"amount", target - b.tokens(token)}, {"reason", "test"}}.dump(), b.admin());
    ASSERT_EQ(r->status, 200) << r->body;
  };
  // What the first batch needs at least, from the refusal of a 100-token balance.
  set_balance(100);
  auto refused = b.call("POST", "/api/v1/tasks/subtitle", job_body(srt), token);
  ASSERT_EQ(refused->status, 402) << refused->body;
  const std::int64_t first = json::parse(refused->body)["error"]["needed"];
  EXPECT_LT(first, 3000);  // one batch of at most 20 short cues, not the whole file's worst case
  // Enough for the first batches: the job starts and stops before the last
  // of its five or more batches.
  const std::int64_t start = 3 * first;
  set_balance(start);
  auto r = b.call("POST", "/api/v1/tasks/subtitle", job_body(srt), token);
  ASSERT_EQ(r->status, 202) << r->body;
  const std::string id = json::parse(r->body)["job_id"];
  const json end = b.wait_job(token, id, 600s);
  ASSERT_EQ(end["status"], "insufficient_tokens") << end.dump() << b.log().substr(0, 4000);
  const std::int64_t done = end["progress"]["done"];
  EXPECT_GT(done, 0);
  EXPECT_LT(done, 100);
  EXPECT_NE(end["error"].get<std::string>().find(std::to_string(done) + " of 100 cues"), std::string::npos) << end;
  EXPECT_EQ(end["result"]["cues"], done);

  // The finished cues are the result, with their source timings.
  auto file = b.call("GET", "/api/v1/jobs/" + id + "/result", "", token);
  ASSERT_EQ(file->status, 200) << file->body;
  auto out = subtitle::parse(file->body, subtitle::Format::kSrt);
  ASSERT_TRUE(out) << out.error().message;
  ASSERT_EQ(static_cast<std::int64_t>(out->cues.size()), done);
  for (std::size_t i = 0; i < out->cues.size(); ++i) {
    EXPECT_EQ(out->cues[i].start_ms, source->cues[i].start_ms) << i;
    EXPECT_EQ(out->cues[i].end_ms, source->cues[i].end_ms) << i;
  }

  // Charged once, by the formula, for what was done; nothing stays reserved.
  const auto records = b.usage(user_id);
  ASSERT_EQ(records.size(), 1u) << records.dump();
  EXPECT_EQ(records[0]["status"], 402);
  const std::int64_t base =
      records[0]["prompt_tokens"].get<std::int64_t>() + records[0]["completion_tokens"].get<std::int64_t>();
  EXPECT_EQ(records[0]["charged"], spec_charge(base));
  EXPECT_EQ(end["tokens_consumed"], spec_charge(base));
  EXPECT_EQ(b.tokens(token), start - spec_charge(base));
  EXPECT_GE(b.tokens(token), 0);
}

TEST(SubtitleJobs, CancelStopsTheJobAndReleasesTheUnusedReservation) {
  Backend b;
  ASSERT_TRUE(b.started()) << b.log();
  auto [token, user_id] = b.user("canceller");
  auto r = b.call("POST", "/api/v1/tasks/subtitle", job_body(make_srt(60)), token);
  ASSERT_EQ(r->status, 202) << r->body;
  const std::string id = json::parse(r->body)["job_id"];
  // While it runs, the worst case is held.
  EXPECT_LT(b.tokens(token), kInitialTokens);
  // Cancel after the first batch.
  const auto deadline = std::chrono::steady_clock::now() + 300s;
  while (std::chrono::steady_clock::now() < deadline && b.job(token, id)["progress"]["done"] == 0) {
    std::this_thread::sleep_for(100ms);
  }
  auto del = b.call("DELETE", "/api/v1/jobs/" + id, "", token);
  ASSERT_EQ(del->status, 200) << del->body;
  const std::string status = json::parse(del->body)["status"];
  EXPECT_TRUE(status == "cancelling" || status == "cancelled") << status;
  const json end = b.wait_job(token, id, 120s);
  ASSERT_EQ(end["status"], "cancelled") << end.dump();
  EXPECT_LT(end["progress"]["done"].get<int>(), 60);
  const std::int64_t charged = end["tokens_consumed"];
  const auto records = b.usage(user_id);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["charged"], charged);
  const std::int64_t base =
      records[0]["prompt_tokens"].get<std::int64_t>() + records[0]["completion_tokens"].get<std::int64_t>();
  EXPECT_EQ(charged, spec_charge(base));
  // Balance back to before, minus only what was charged.
  EXPECT_EQ(b.tokens(token), kInitialTokens - charged);
  // No result for a cancelled job; cancelling again changes nothing.
  EXPECT_EQ(b.call("GET", "/api/v1/jobs/" + id + "/result", "", token)->status, 409);
  auto again = b.call("DELETE", "/api/v1/jobs/" + id, "", token);
  EXPECT_EQ(again->status, 200);
  EXPECT_EQ(json::parse(again->body)["status"], "cancelled");
  EXPECT_EQ(b.tokens(token), kInitialTokens - charged);
}

TEST(SubtitleJobs, AnotherUsersJobIsNotFoundOnEveryRoute) {
  Backend b("batch_min: 5, batch_max: 10");
  ASSERT_TRUE(b.started()) << b.log();
  auto [alice, alice_id] = b.user("alice2");
  auto [bob, bob_id] = b.user("bob2");
  auto r = b.call("POST", "/api/v1/tasks/subtitle", job_body(make_srt(12)), alice);
  ASSERT_EQ(r->status, 202) << r->body;
  const std::string id = json::parse(r->body)["job_id"];
  for (const auto& [method, path] :
       std::vector<std::pair<std::string, std::string>>{{"GET", "/api/v1/jobs/" + id},
                                                        {"GET", "/api/v1/jobs/" + id + "/result"},
                                                        {"GET", "/api/v1/jobs/" + id + "/events"},
                                                        {"DELETE", "/api/v1/jobs/" + id},
                                                        {"GET", "/api/v1/jobs/0123456789abcdef0123456789abcdef"},
                                                        {"GET", "/api/v1/jobs/not-an-id"}}) {
    auto reply = b.call(method, path, "", bob);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->status, 404) << method << " " << path << " " << reply->body;
    EXPECT_EQ(json::parse(reply->body)["error"]["code"], "job_not_found") << path;
  }
  EXPECT_EQ(json::parse(b.call("GET", "/api/v1/jobs", "", bob)->body)["jobs"].size(), 0u);
  EXPECT_EQ(b.call("GET", "/api/v1/jobs/" + id, "", "")->status, 401);
  // Bob's DELETE did not touch it: it finishes for Alice.
  EXPECT_EQ(b.wait_job(alice, id, 300s)["status"], "done");
}

TEST(SubtitleJobs, BadInputsAreRefusedBeforeAnythingIsReservedOrCreated) {
  Backend b;
  ASSERT_TRUE(b.started()) << b.log();
  auto [token, user_id] = b.user("carol");
  const std::string srt = make_srt(3);
  auto post = [&](const json& body) { return b.call("POST", "/api/v1/tasks/subtitle", body.dump(), token); };
  auto expect = [&](const json& body, int status, const std::string& code) {
    auto r = post(body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, status) << body.dump() << " -> " << r->body;
    EXPECT_EQ(json::parse(r->body)["error"]["code"], code) << r->body;
  };
  expect(json{{"source_lang", "en"}, {"target_lang", "zh"}}, 400, "invalid_input");
  expect(json{{"content", srt}, {"video_path", "x.mkv"}, {"target_lang", "zh"}}, 400, "invalid_input");
  expect(json{{"content", srt}}, 400, "missing_field");  // target_lang missing
  expect(json{{"content", srt}, {"target_lang", "zh\"; rm -rf /"}}, 400, "invalid_language");
  expect(json{{"content", srt}, {"target_lang", std::string(100, 'a')}}, 400, "invalid_language");
  expect(json{{"content", srt}, {"target_lang", "zh"}, {"output_format", "docx"}}, 415, "unsupported_format");
  expect(json{{"content", srt}, {"target_lang", "zh"}, {"bilingual", "yes"}}, 400, "invalid_field");
  expect(json{{"content", srt}, {"target_lang", "zh"}, {"max_line_chars", 100000}}, 400, "invalid_field");
  expect(json{{"content", ""}, {"target_lang", "zh"}}, 400, "invalid_subtitle");
  expect(json{{"content", "WEBVTT\n\n"}, {"target_lang", "zh"}}, 400, "invalid_subtitle");  // no cues

  // A broken subtitle names the line and the cue.
  auto broken =
      post(json{{"content", "1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n99:99:99,999 --> 00:00:01,000\nbad\n"},
                {"target_lang", "zh"}});
  ASSERT_EQ(broken->status, 400) << broken->body;
  const std::string message = json::parse(broken->body)["error"]["message"];
  EXPECT_NE(message.find("line 6"), std::string::npos) << message;
  EXPECT_NE(message.find("cue 2"), std::string::npos) << message;

  // video_path outside the media root: traversal, absolute, symlink escape.
  fs::create_symlink("/etc", b.dir() / "media/escape");
  for (const std::string& path :
       {std::string("../../etc/passwd"), std::string("/etc/passwd"), (b.dir() / "media/../llmd.yaml").string(),
        (b.dir() / "media/escape/passwd").string(), (b.dir() / "media/missing.mkv").string()}) {
    auto r = post(json{{"video_path", path}, {"target_lang", "zh"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << path << " -> " << r->body;
    EXPECT_EQ(r->body.find("/etc"), std::string::npos) << r->body;  // no path echoed back
  }
  // The original document's own request, verbatim: its language names are
  // understood; its path is outside the media folders, and the error says
  // where media may live (without echoing any server path).
  auto seed = post(json::parse(R"({
  "video_path": "/path/to/video.mp4",
  "source_lang": "英文",
  "target_lang": "中文",
  "output_format": "srt"
})"));
  ASSERT_EQ(seed->status, 400) << seed->body;
  const json seed_error = json::parse(seed->body)["error"];
  EXPECT_EQ(seed_error["code"], "path_not_allowed");
  EXPECT_NE(seed_error["message"].get<std::string>().find("media_roots"), std::string::npos) << seed->body;
  EXPECT_NE(seed_error["message"].get<std::string>().find("upload_id"), std::string::npos) << seed->body;
  expect(json{{"content", srt}, {"target_lang", "Klingonese"}}, 400, "invalid_language");
  expect(json{{"content", srt}, {"source_lang", "火星语"}, {"target_lang", "zh"}}, 400, "invalid_language");

  // A video without subtitles needs speech recognition, which is not configured here.
  const fs::path silent = make_test_media(b.dir() / "media", TestMedia::kMp4NoSubtitles);
  ASSERT_FALSE(silent.empty());
  expect(json{{"video_path", silent.string()}, {"target_lang", "zh"}}, 422, "asr_not_configured");

  auto anonymous = b.call("POST", "/api/v1/tasks/subtitle", job_body(srt));
  EXPECT_EQ(anonymous->status, 401);

  // None of it created a job or held tokens.
  EXPECT_EQ(json::parse(b.call("GET", "/api/v1/jobs", "", token)->body)["jobs"].size(), 0u);
  EXPECT_EQ(b.tokens(token), kInitialTokens);
}

TEST(SubtitleJobs, RestartMidJobResumesFromTheLastFinishedBatch) {
  Backend b("batch_min: 10, batch_max: 10");
  ASSERT_TRUE(b.started()) << b.log();
  auto [token, user_id] = b.user("dave");
  const std::string srt = make_srt(60);
  auto r = b.call("POST", "/api/v1/tasks/subtitle", job_body(srt, "vtt"), token);
  ASSERT_EQ(r->status, 202) << r->body;
  const std::string id = json::parse(r->body)["job_id"];

  // Some progress, then the backend dies without warning.
  std::vector<std::int64_t> seen;
  const auto deadline = std::chrono::steady_clock::now() + 300s;
  while (std::chrono::steady_clock::now() < deadline) {
    const json j = b.job(token, id);
    seen.push_back(j["progress"]["done"]);
    if (seen.back() >= 20) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_GE(seen.back(), 20) << b.log().substr(0, 4000);
  b.kill9();
  const std::int64_t before_kill = seen.back();

  b.start();
  ASSERT_TRUE(b.started()) << b.log();
  const json done = b.wait_job(token, id, 600s, &seen);
  ASSERT_EQ(done["status"], "done") << done.dump();
  // Never backwards past what was persisted before the kill.
  for (std::size_t i = 1; i < seen.size(); ++i) EXPECT_GE(seen[i], seen[i - 1]) << "at " << i;
  EXPECT_GE(seen.back(), before_kill);
  EXPECT_NE(b.log().find("subtitle job resumed"), std::string::npos);

  auto file = b.call("GET", "/api/v1/jobs/" + id + "/result", "", token);
  ASSERT_EQ(file->status, 200);
  EXPECT_EQ(file->header("content-type"), "text/vtt; charset=utf-8");
  auto out = subtitle::parse(file->body, subtitle::Format::kVtt);
  ASSERT_TRUE(out) << out.error().message;
  auto source = subtitle::parse(srt);
  ASSERT_EQ(out->cues.size(), 60u);
  for (std::size_t i = 0; i < 60; ++i) {
    EXPECT_EQ(out->cues[i].start_ms, source->cues[i].start_ms);
    EXPECT_EQ(out->cues[i].end_ms, source->cues[i].end_ms);
  }
  // Charged once, by the spec formula, and nothing stays reserved.
  const auto records = b.usage(user_id);
  ASSERT_EQ(records.size(), 1u) << records.dump();
  const std::int64_t base =
      records[0]["prompt_tokens"].get<std::int64_t>() + records[0]["completion_tokens"].get<std::int64_t>();
  EXPECT_EQ(records[0]["charged"], spec_charge(base));
  EXPECT_EQ(b.tokens(token), kInitialTokens - spec_charge(base));
}

// Cues from an uploaded SRT, from the subrip track of an MKV (made with the
// ffmpeg command) and, for audio without subtitles, from speech recognition
// (a stub whisper.cpp server). Bitmap subtitles are refused up front.
TEST(SubtitleJobs, UploadedSrtMkvSubtitleTrackAndSpeechBecomeJobs) {
  AsrStub asr;
  Backend b("batch_min: 3, batch_max: 10", "asr: { url: \"" + asr.url("/inference") + "\" }\n");
  ASSERT_TRUE(b.started()) << b.log();
  auto [token, user_id] = b.user("erin");
  const auto expected = subtitle::parse(kTestSrt);
  ASSERT_TRUE(expected);
  // Waits for the job and returns its downloaded result (empty on failure).
  auto check_result = [&](const std::string& id, std::size_t cues, const std::string& name) -> subtitle::Document {
    const json done = b.wait_job(token, id, 600s);
    EXPECT_EQ(done["status"], "done") << done.dump();
    EXPECT_EQ(done["result"]["cues"], cues);
    auto file = b.call("GET", "/api/v1/jobs/" + id + "/result", "", token);
    EXPECT_EQ(file->status, 200);
    EXPECT_EQ(file->header("content-disposition"), "attachment; filename=\"" + name + "\"");
    auto out = subtitle::parse(file->body);
    EXPECT_TRUE(out) << file->body;
    if (!out || out->cues.size() != cues) {
      ADD_FAILURE() << "result has the wrong cues: " << file->body;
      subtitle::Document empty;
      empty.cues.resize(cues);
      return empty;
    }
    return *out;
  };

  // An uploaded .srt file.
  const std::string boundary = "llmd-test-boundary";
  const std::string multipart = "--" + boundary +
                                "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"movie night.srt\"\r\n"
                                "Content-Type: application/x-subrip\r\n\r\n" +
                                std::string(kTestSrt) + "\r\n--" + boundary + "--\r\n";
  auto up = http_request(
      b.port(), "POST", "/api/v1/uploads", multipart,
      {{"Authorization", "Bearer " + token}, {"Content-Type", "multipart/form-data; boundary=" + boundary}});
  ASSERT_TRUE(up);
  ASSERT_EQ(up->status, 201) << up->body;
  const std::string upload_id = json::parse(up->body)["upload_id"];
  auto r = b.call("POST", "/api/v1/tasks/subtitle",
                  json{{"upload_id", upload_id}, {"source_lang", "en"}, {"target_lang", "zh"}}.dump(), token);
  ASSERT_EQ(r->status, 202) << r->body;
  {
    const auto out = check_result(json::parse(r->body)["job_id"], 3, "movie_night.zh-Hans.srt");
    for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(out.cues[i].start_ms, expected->cues[i].start_ms);
  }
  // Another user cannot use that upload.
  auto [other, other_id] = b.user("frank");
  auto stolen =
      b.call("POST", "/api/v1/tasks/subtitle", json{{"upload_id", upload_id}, {"target_lang", "zh"}}.dump(), other);
  EXPECT_EQ(stolen->status, 404) << stolen->body;

  // The subrip track of an MKV inside the media root.
  const fs::path mkv = make_test_media(b.dir() / "media", TestMedia::kMkvSubrip);
  ASSERT_FALSE(mkv.empty());
  r = b.call("POST", "/api/v1/tasks/subtitle",
             json{{"video_path", mkv.string()}, {"target_lang", "zh"}, {"output_format", "vtt"}}.dump(), token);
  ASSERT_EQ(r->status, 202) << r->body;
  {
    const auto out = check_result(json::parse(r->body)["job_id"], 3, mkv.stem().string() + ".zh-Hans.vtt");
    for (std::size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(out.cues[i].start_ms, expected->cues[i].start_ms);
      EXPECT_EQ(out.cues[i].end_ms, expected->cues[i].end_ms);
    }
  }

  // Audio only: 5 s of sound, recognised by the stub as one segment per started 2 s.
  const fs::path audio = make_test_media(b.dir() / "media", TestMedia::kAudioOnly);
  ASSERT_FALSE(audio.empty());
  r = b.call("POST", "/api/v1/tasks/subtitle",
             json{{"video_path", audio.string()}, {"source_lang", "en"}, {"target_lang", "zh"}}.dump(), token);
  ASSERT_EQ(r->status, 202) << r->body;
  EXPECT_EQ(asr.requests(), 1);
  EXPECT_EQ(asr.last_request().path, "/inference");
  {
    const auto out = check_result(json::parse(r->body)["job_id"], 3, audio.stem().string() + ".zh-Hans.srt");
    EXPECT_EQ(out.cues[0].start_ms, 0);
    EXPECT_EQ(out.cues[1].start_ms, 2000);
  }

  // Bitmap subtitles: no OCR, a clear 422 and no job.
  const fs::path pgs = make_test_media(b.dir() / "media", TestMedia::kMkvPgs);
  ASSERT_FALSE(pgs.empty());
  r = b.call("POST", "/api/v1/tasks/subtitle", json{{"video_path", pgs.string()}, {"target_lang", "zh"}}.dump(), token);
  EXPECT_EQ(r->status, 422) << r->body;
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "bitmap_subtitles");
  EXPECT_EQ(json::parse(b.call("GET", "/api/v1/jobs", "", token)->body)["jobs"].size(), 3u);
}

}  // namespace
}  // namespace llmd::testing
