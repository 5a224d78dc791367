// Black-box tests of the model manager: the real `llmd serve` spawning real
// `llmd runner` workers on a generated tiny model (and runners started by
// the test as upstreams).
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>
#include <mutex>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/http.h"
#include "support/llmd_serve.h"
#include "support/process.h"
#include "support/test_model.h"
#include "support/test_support.h"

namespace llmd::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
constexpr const char* kBinary = LLMD_BINARY;

fs::path test_model() { return tiny_test_model(kBinary); }

// A models directory with the tiny model under the given names (symlinks).
std::string models_dir(const TempDir& dir, const std::vector<std::string>& names) {
  const fs::path d = dir / "models";
  fs::create_directories(d);
  for (const auto& n : names) fs::create_symlink(test_model(), d / (n + ".gguf"));
  return d.string();
}

std::string models_yaml(const std::string& dir, const std::string& extra = "") {
  const int base = free_port();
  return "limits: { ip_rpm: 100000, user_rpm: 100000 }\nauth: { bcrypt_cost: 10, initial_tokens: 100000000 }\n"
         "models:\n  dir: " +
         dir + "\n  port_range: \"" + std::to_string(base) + "-" + std::to_string(base + 30) + "\"\n" + extra;
}

// Every model route needs a caller: the tests act as the bootstrap admin
// (password from the environment LlmdServe sets), whose token is cached per
// server port.
std::string admin_token(int port) {
  static std::mutex mutex;
  static std::map<int, std::string> tokens;  // guarded by mutex
  std::lock_guard lock(mutex);
  auto& t = tokens[port];
  if (t.empty()) {
    auto r = http_request(port, "POST", "/api/v1/auth/login",
                          json{{"username", "admin"}, {"password", kTestAdminPassword}}.dump());
    if (r && r->status == 200) t = json::parse(r->body)["token"];
  }
  return t;
}

std::optional<HttpReply> api(int port, const std::string& method, const std::string& path,
                             const std::string& body = "") {
  return http_request(port, method, path, body, {{"Authorization", "Bearer " + admin_token(port)}});
}

json get_json(int port, const std::string& path) {
  auto r = api(port, "GET", path);
  if (!r) return json();
  return json::parse(r->body, nullptr, false);
}

bool wait_status(int port, const std::string& model, const std::string& status, std::chrono::seconds timeout = 60s) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (get_json(port, "/api/v1/models/" + model).value("status", "") == status) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

std::string chat_body(int max_tokens, bool stream = false, const std::string& model = "tiny") {
  return json{{"model", model},
              {"messages", {{{"role", "user"}, {"content", "hello"}}}},
              {"max_tokens", max_tokens},
              {"seed", 1},
              {"stream", stream}}
      .dump();
}

// Child pids of `pid` (the runner workers of a serve process).
std::vector<int> children_of(int pid) {
  std::vector<int> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string stat;
    std::getline(in, stat);
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(stat.c_str() + close + 2, "%c %d", &state, &ppid) == 2 && ppid == pid && state != 'Z') {
      out.push_back(std::stoi(name));
    }
  }
  return out;
}

bool alive(int pid) { return ::kill(pid, 0) == 0; }

int count_in(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Issue 17: serve knows the hardware. Through Mesa's lavapipe (visible to
// ggml's Vulkan backend with GGML_VK_VISIBLE_DEVICES) the host has a GPU:
// /health and the admin's /api/v1/models list it with its memory, a model
// left at gpu_layers auto puts its layers there, and each instance says
// where its model went.
TEST(Models, TheGpuAndEachInstancesPlacementAreVisible) {
  ASSERT_TRUE(fs::exists(fs::path(kBinary).parent_path() / "libggml-vulkan.so"))
      << "./setup.sh test installs the Vulkan engine variant";
  TempDir dir;
  const auto mdir = models_dir(dir, {"tiny"});
  const std::map<std::string, std::string> lavapipe{
      {"GGML_VK_VISIBLE_DEVICES", "0"}, {"LSAN_OPTIONS", "suppressions=" LLMD_SOURCE_DIR "/tests/lsan.supp"}};
  LlmdServe serve(kBinary, models_yaml(mdir, "  list:\n    - { name: tiny, file: tiny.gguf, ctx: 512, threads: 1 }\n"),
                  "", lavapipe);
  ASSERT_TRUE(serve.started()) << serve.log();
  const int port = serve.port();

  const json health = json::parse(http_request(port, "GET", "/health")->body);
  ASSERT_TRUE(health["devices"].is_array()) << health;
  ASSERT_FALSE(health["devices"].empty()) << health;
  EXPECT_EQ(health["devices"][0]["name"], "Vulkan0") << health;
  EXPECT_EQ(health["devices"][0]["type"], "gpu");
  const std::uint64_t gpu_total = health["devices"][0]["memory_total"];
  EXPECT_GT(gpu_total, 0u);
  EXPECT_TRUE(health["instances"].empty()) << "nothing runs yet";

  ASSERT_EQ(api(port, "POST", "/api/v1/models/tiny/start")->status, 202);
  ASSERT_TRUE(wait_status(port, "tiny", "running")) << serve.log();
  json instance;
  for (int i = 0; i < 100 && !instance.contains("gpu_layers"); ++i) {  // /props is read once it is ready
    std::this_thread::sleep_for(50ms);
    instance = get_json(port, "/api/v1/models")["models"][0]["instances"][0];
  }
  ASSERT_TRUE(instance.contains("gpu_layers")) << instance;
  EXPECT_EQ(instance["gpu_layers"], 3) << "auto: both layers and the output fit on the GPU";
  ASSERT_GE(instance["devices"].size(), 2u) << instance;
  EXPECT_EQ(instance["devices"][0]["name"], "Vulkan0");
  const std::uint64_t used = instance["devices"][0]["used_bytes"];
  EXPECT_GT(used, 0u);

  // The GPU's free memory is what it had less what the worker holds there.
  const json listing = get_json(port, "/api/v1/models");
  EXPECT_EQ(listing["devices"][0]["memory_free"].get<std::uint64_t>(),
            health["devices"][0]["memory_free"].get<std::uint64_t>() - used)
      << listing["devices"];
  const json later = json::parse(http_request(port, "GET", "/health")->body);
  ASSERT_EQ(later["instances"].size(), 1u) << later;
  EXPECT_EQ(later["instances"][0]["model"], "tiny");
  EXPECT_EQ(later["instances"][0]["gpu_layers"], 3);

  // A user sees the models, not the hardware or the instances' placement.
  auto reg = http_request(
      port, "POST", "/api/v1/auth/register",
      json{{"username", "gpuviewer"}, {"password", "viewer-password-1"}, {"email", "gv@school.cn"}}.dump());
  ASSERT_TRUE(reg && reg->status == 201) << (reg ? reg->body : "");
  const std::string user_token = json::parse(reg->body)["token"];
  const json as_user =
      json::parse(http_request(port, "GET", "/api/v1/models", "", {{"Authorization", "Bearer " + user_token}})->body);
  EXPECT_FALSE(as_user.contains("devices")) << as_user;
  EXPECT_FALSE(as_user["models"][0]["instances"][0].contains("devices")) << as_user;

  // It still answers as the CPU would: a chat at temperature 0.
  auto chat = api(port, "POST", "/v1/chat/completions", chat_body(4));
  ASSERT_TRUE(chat);
  EXPECT_EQ(chat->status, 200) << chat->body;

  // Stopped, it holds nothing: the GPU's memory is free again.
  ASSERT_EQ(api(port, "POST", "/api/v1/models/tiny/stop")->status, 202);
  ASSERT_TRUE(wait_status(port, "tiny", "available")) << serve.log();
  EXPECT_EQ(get_json(port, "/api/v1/models")["devices"][0]["memory_free"], health["devices"][0]["memory_free"]);
}

// A file that appears in models.dir while serve runs (what `llmd models
// pull` does with its final rename) is listed and usable without a restart.
TEST(Models, FileAddedToTheModelsDirectoryIsPickedUpWithoutARestart) {
  TempDir dir;
  const auto mdir = models_dir(dir, {});
  LlmdServe serve(kBinary, models_yaml(mdir));
  ASSERT_TRUE(serve.started()) << serve.log();
  EXPECT_EQ(get_json(serve.port(), "/api/v1/models")["models"].size(), 0u);
  fs::copy_file(test_model(), dir / "late.gguf.part");
  fs::rename(dir / "late.gguf.part", fs::path(mdir) / "late.gguf");
  json late;
  const auto end = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < end) {
    late = get_json(serve.port(), "/api/v1/models/late");
    if (late.contains("status")) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(late["status"], "available") << late.dump();
  EXPECT_EQ(late["arch"], "qwen2");
  auto r = api(serve.port(), "POST", "/v1/chat/completions", chat_body(2, false, "late"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200) << r->body;
}

TEST(Models, StartRunChatStopAndHostileFilesListedAsError) {
  TempDir dir;
  const auto mdir = models_dir(dir, {});
  testing::write_file(fs::path(mdir) / "junk.gguf", "GGUF\x03\x00\x00\x00garbage");
  testing::write_file(fs::path(mdir) / "huge.gguf",
                      std::string("GGUF\x03\x00\x00\x00", 8) + std::string(8, '\xff') + std::string(8, '\x7f'));
  fs::create_symlink(test_model(), fs::path(mdir) / "tiny-file.gguf");
  LlmdServe serve(kBinary, models_yaml(mdir,
                                       "  list:\n    - { name: tiny, file: tiny-file.gguf, description: test model, "
                                       "ctx: 512, parallel: 2, threads: 1 }\n"));
  ASSERT_TRUE(serve.started()) << serve.log();
  const int port = serve.port();

  auto list = get_json(port, "/api/v1/models");
  ASSERT_EQ(list["models"].size(), 3u) << list.dump();
  std::map<std::string, json> by_name;
  for (const auto& m : list["models"]) by_name[m["name"]] = m;
  EXPECT_EQ(by_name["tiny"]["status"], "available");
  EXPECT_EQ(by_name["tiny"]["arch"], "qwen2");
  EXPECT_EQ(by_name["tiny"]["description"], "test model");
  EXPECT_EQ(by_name["junk"]["status"], "error");
  EXPECT_EQ(by_name["huge"]["status"], "error");
  EXPECT_FALSE(by_name["huge"]["error"].get<std::string>().empty());
  EXPECT_EQ(api(port, "POST", "/v1/chat/completions", chat_body(4, false, "junk"))->status, 503);

  auto started = api(port, "POST", "/api/v1/models/tiny/start");
  ASSERT_EQ(started->status, 202) << started->body;
  EXPECT_EQ(json::parse(started->body)["status"], "starting");
  ASSERT_TRUE(wait_status(port, "tiny", "running")) << serve.log();
  EXPECT_EQ(api(port, "POST", "/api/v1/models/tiny/start")->status, 200);  // no-op

  auto chat = api(port, "POST", "/api/v1/models/tiny/chat", R"({"message":"你好","max_tokens":6})");
  ASSERT_EQ(chat->status, 200) << chat->body;
  auto cj = json::parse(chat->body);
  EXPECT_TRUE(cj["reply"].is_string());
  EXPECT_GT(cj["usage"]["prompt_tokens"].get<int>(), 0);
  EXPECT_GT(cj["usage"]["completion_tokens"].get<int>(), 0);
  EXPECT_EQ(cj["tokens_consumed"],
            cj["usage"]["prompt_tokens"].get<int>() + cj["usage"]["completion_tokens"].get<int>());

  auto sse = api(port, "POST", "/api/v1/models/tiny/chat", R"({"message":"hi","max_tokens":6,"stream":true})");
  ASSERT_EQ(sse->status, 200);
  EXPECT_NE(sse->header("content-type").find("text/event-stream"), std::string::npos);
  EXPECT_NE(sse->body.find("\"done\":true"), std::string::npos) << sse->body;

  auto oai = api(port, "POST", "/v1/chat/completions", chat_body(5));
  ASSERT_EQ(oai->status, 200) << oai->body;
  EXPECT_EQ(json::parse(oai->body)["object"], "chat.completion");
  auto st = api(port, "POST", "/v1/chat/completions", chat_body(5, true));
  ASSERT_EQ(st->status, 200);
  EXPECT_NE(st->body.find("data: [DONE]"), std::string::npos);
  EXPECT_EQ(st->body.find("\"choices\":[]"), std::string::npos);  // usage chunk only when asked for
  auto with_usage = json::parse(chat_body(5, true));
  with_usage["stream_options"] = {{"include_usage", true}};
  auto su = api(port, "POST", "/v1/chat/completions", with_usage.dump());
  EXPECT_NE(su->body.find("\"usage\""), std::string::npos);

  auto comp = api(port, "POST", "/v1/completions", R"({"model":"tiny","prompt":"a b c","max_tokens":3})");
  EXPECT_EQ(comp->status, 200) << comp->body;
  EXPECT_EQ(api(port, "POST", "/v1/chat/completions", R"({"model":"tiny","messages":[],"max_tokens":3})")->status, 400);
  EXPECT_EQ(api(port, "POST", "/v1/chat/completions", chat_body(1000000))->status, 400);
  EXPECT_EQ(api(port, "POST", "/v1/chat/completions",
                R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"temperature":9})")
                ->status,
            400);
  EXPECT_EQ(api(port, "POST", "/v1/chat/completions", chat_body(3, false, "nope"))->status, 404);
  auto models = get_json(port, "/v1/models");
  EXPECT_EQ(models["data"].size(), 1u) << models.dump();

  const auto workers = children_of(serve.process().pid());
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(api(port, "POST", "/api/v1/models/tiny/stop")->status, 202);
  ASSERT_TRUE(wait_status(port, "tiny", "available", 20s));
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(alive(workers[0]));
  auto metrics = api(port, "GET", "/metrics");
  EXPECT_NE(metrics->body.find("llmd_instance_requests_total{model=\"tiny\",instance=\"tiny#0\"}"), std::string::npos);
}

TEST(Models, OnDemandStartWithFiftyRequestsSpawnsOnceThenIdleUnloads) {
  TempDir dir;
  LlmdServe serve(kBinary, models_yaml(models_dir(dir, {"tiny"}), "  idle_unload_seconds: 2\n"));
  ASSERT_TRUE(serve.started()) << serve.log();
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&] {
      auto r = api(serve.port(), "POST", "/v1/chat/completions", chat_body(2));
      if (r && r->status == 200) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 50) << serve.log().substr(0, 4000);
  EXPECT_EQ(count_in(serve.log(), "\"worker started\""), 1);
  ASSERT_TRUE(wait_status(serve.port(), "tiny", "available", 15s));
  EXPECT_TRUE(children_of(serve.process().pid()).empty());
}

TEST(Models, MaxLoadedEvictsLeastRecentlyUsed) {
  TempDir dir;
  LlmdServe serve(kBinary, models_yaml(models_dir(dir, {"a", "b"}), "  max_loaded: 1\n"));
  ASSERT_TRUE(serve.started()) << serve.log();
  ASSERT_EQ(api(serve.port(), "POST", "/v1/chat/completions", chat_body(2, false, "a"))->status, 200);
  EXPECT_EQ(get_json(serve.port(), "/api/v1/models/a")["status"], "running");
  ASSERT_EQ(api(serve.port(), "POST", "/v1/chat/completions", chat_body(2, false, "b"))->status, 200);
  EXPECT_EQ(get_json(serve.port(), "/api/v1/models/b")["status"], "running");
  EXPECT_TRUE(wait_status(serve.port(), "a", "available", 15s));
}

// A reply of exactly `tokens` tokens (end-of-generation banned), so that it
// takes a while even on the tiny model.
std::string long_chat_body(const std::string& model, int tokens) {
  return json{{"model", model},
              {"messages", {{{"role", "user"}, {"content", "hello"}}}},
              {"max_tokens", tokens},
              {"ignore_eos", true},
              {"seed", 1}}
      .dump();
}

std::string register_user(int port, const std::string& name) {
  auto r =
      http_request(port, "POST", "/api/v1/auth/register",
                   json{{"username", name}, {"password", "password-123"}, {"email", name + "@example.com"}}.dump());
  return r && r->status == 201 ? json::parse(r->body)["token"].get<std::string>() : "";
}

// The value of an unlabelled-but-for-model gauge in /metrics text (-1 when absent).
double metric_value(const std::string& text, const std::string& series) {
  const auto at = text.find(series + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size() + 1));
}

// SPEC §4.4: max_loaded reached and every loaded model busy: a request for
// another model waits for one to become idle (it is then evicted), not 503.
TEST(Models, MaxLoadedWithBusyModelsMakesRequestsWaitInsteadOf503) {
  TempDir dir;
  LlmdServe serve(kBinary, models_yaml(models_dir(dir, {"a", "b"}), "  max_loaded: 1\n"));
  ASSERT_TRUE(serve.started()) << serve.log();
  const int port = serve.port();
  ASSERT_EQ(api(port, "POST", "/v1/chat/completions", chat_body(2, false, "a"))->status, 200);
  std::vector<std::thread> threads;
  std::vector<int> status(4, 0);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      if (i >= 2) std::this_thread::sleep_for(300ms);  // b's requests come while a's are running
      auto r = api(port, "POST", "/v1/chat/completions", long_chat_body(i < 2 ? "a" : "b", 60));
      status[i] = r ? r->status : -1;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(status, (std::vector<int>{200, 200, 200, 200})) << serve.log();
  EXPECT_EQ(get_json(port, "/api/v1/models/b")["status"], "running");
  EXPECT_TRUE(wait_status(port, "a", "available", 15s)) << "a was not evicted for b";
}

// A model with one slot, one user with six requests in line and another
// with one: the other user's request is served next but one, not last.
TEST(Models, WaitingRequestsAreServedInTurnsByUser) {
  TempDir dir;
  LlmdServe serve(
      kBinary, models_yaml(models_dir(dir, {"tiny"}), "  list:\n    - { name: tiny, file: tiny.gguf, parallel: 1 }\n"));
  ASSERT_TRUE(serve.started()) << serve.log();
  const int port = serve.port();
  ASSERT_EQ(api(port, "POST", "/api/v1/models/tiny/start")->status, 202);
  ASSERT_TRUE(wait_status(port, "tiny", "running"));
  const std::string bob = register_user(port, "bob");
  ASSERT_FALSE(bob.empty());

  // Short replies: seven in a row must end within the client's 30 s under
  // the sanitizer build and a loaded machine.
  std::mutex mutex;
  std::vector<std::string> finished;  // who, in the order replies ended
  std::vector<std::thread> admin;
  for (int i = 0; i < 6; ++i) {
    admin.emplace_back([&] {
      auto r = api(port, "POST", "/v1/chat/completions", long_chat_body("tiny", 12));
      std::lock_guard lock(mutex);
      finished.push_back(r && r->status == 200 ? "admin" : "admin failed");
    });
  }
  // Bob asks once the admin's five are waiting behind the one running.
  const auto end = std::chrono::steady_clock::now() + 30s;
  double waiting = 0;
  while (std::chrono::steady_clock::now() < end) {
    waiting = metric_value(api(port, "GET", "/metrics")->body, "llmd_model_queue_length{model=\"tiny\"}");
    if (waiting >= 5) break;
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_EQ(waiting, 5) << "the admin's requests did not queue";
  auto mine = http_request(port, "POST", "/v1/chat/completions", long_chat_body("tiny", 12),
                           {{"Authorization", "Bearer " + bob}});
  {
    std::lock_guard lock(mutex);
    finished.push_back(mine && mine->status == 200 ? "bob" : "bob failed");
  }
  for (auto& t : admin) t.join();
  ASSERT_TRUE(mine);
  // The admin's first waiting request goes first (it came first), then bob.
  EXPECT_EQ(mine->header("x-llmd-queue-position"), "2");
  EXPECT_FALSE(mine->header("x-llmd-queue-wait-ms").empty());
  const std::vector<std::string> expected{"admin", "admin", "bob", "admin", "admin", "admin", "admin"};
  EXPECT_EQ(finished, expected);
  const std::string metrics = api(port, "GET", "/metrics")->body;
  EXPECT_NE(metrics.find("llmd_model_queue_wait_seconds_count{model=\"tiny\"} 6"), std::string::npos) << metrics;
}

// models.list[] settings through the real serve and runner: an alias, a
// default system message, forced temperature and a max_tokens ceiling, and
// a model preloaded at boot.
// What a model's chat template can do, from llama.cpp's template layer:
// `llmd models inspect` reads it from the file, and the API shows what the
// worker reports once the model has run.
TEST(Models, TemplateCapabilitiesAreShownByInspectAndTheApi) {
  TempDir dir;
  const fs::path tools_model = templated_test_model(kBinary, "meta-llama-Llama-3.1-8B-Instruct");
  Process inspect({kBinary, "models", "inspect", tools_model.string(), "--json"}, dir.path(), dir / "inspect.log");
  ASSERT_EQ(inspect.wait(60s), 0) << inspect.log();
  const std::string out = inspect.log();
  const auto start = out.rfind("\n{\n") == std::string::npos ? out.find("{\n") : out.rfind("\n{\n") + 1;
  const json inspected = json::parse(out.substr(start), nullptr, false);  // after any log lines
  ASSERT_TRUE(inspected.contains("template_caps")) << out;
  EXPECT_EQ(inspected["template_caps"]["supports_tools"], true) << out;

  const auto mdir = models_dir(dir, {"tiny"});
  fs::create_symlink(tools_model, fs::path(mdir) / "llama31.gguf");
  LlmdServe serve(kBinary, models_yaml(mdir));
  ASSERT_TRUE(serve.started()) << serve.log();
  const int port = serve.port();
  EXPECT_FALSE(get_json(port, "/api/v1/models/tiny").contains("template_caps")) << "known before the model ran";
  for (const char* name : {"tiny", "llama31"}) {
    ASSERT_EQ(api(port, "POST", std::string("/api/v1/models/") + name + "/start")->status, 202);
  }
  json tiny, llama;
  const auto end = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < end &&
         !(tiny.contains("template_caps") && llama.contains("template_caps"))) {
    tiny = get_json(port, "/api/v1/models/tiny");
    llama = get_json(port, "/api/v1/models/llama31");
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(llama.contains("template_caps")) << llama.dump();
  EXPECT_EQ(llama["template_caps"]["supports_tools"], true) << llama.dump();
  EXPECT_EQ(llama["capabilities"], json::array({"completion", "tools"})) << llama.dump();
  ASSERT_TRUE(tiny.contains("template_caps")) << tiny.dump();
  EXPECT_EQ(tiny["template_caps"]["supports_tools"], false) << tiny.dump();
  EXPECT_EQ(tiny["template_caps"]["supports_system_role"], true) << tiny.dump();
}

TEST(Models, AliasesDefaultsForcedValuesAndPreloadReachTheWorker) {
  TempDir dir;
  const std::string list =
      "  list:\n"
      "    - { name: tiny, file: tiny.gguf, aliases: [gpt-4o-mini],\n"
      "        defaults: { system: \"You are a patient teacher who explains every step of the answer.\" },\n"
      "        forced: { frequency_penalty: 2, max_tokens: 8 } }\n"
      "    - { name: plain, file: plain.gguf, preload: true }\n";
  LlmdServe serve(kBinary, models_yaml(models_dir(dir, {"tiny", "plain"}), list));
  ASSERT_TRUE(serve.started()) << serve.log();
  const int port = serve.port();
  EXPECT_TRUE(wait_status(port, "plain", "running", 60s)) << "preload: started with no request";
  EXPECT_EQ(get_json(port, "/api/v1/models/tiny")["status"], "available");

  auto ask = [&](const std::string& model, int seed, const json& messages) {
    const json body = {{"model", model},     {"messages", messages}, {"max_tokens", 40},
                       {"temperature", 1.5}, {"seed", seed},         {"ignore_eos", true}};
    auto r = api(port, "POST", "/v1/chat/completions", body.dump());
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no reply");
    return r && r->status == 200 ? json::parse(r->body) : json::object();
  };
  const json hi = json::array({{{"role", "user"}, {"content", "hi"}}});
  const json a1 = ask("gpt-4o-mini", 1, hi);
  const json p1 = ask("plain", 1, hi);
  ASSERT_TRUE(a1.contains("usage") && p1.contains("usage"));
  // Forced: at most 8 tokens whatever the request says.
  EXPECT_EQ(a1["usage"]["completion_tokens"], 8);
  EXPECT_EQ(p1["usage"]["completion_tokens"], 40);
  // Forced frequency penalty: whatever the request says, the reply is the
  // penalised one (greedy, so the texts compare exactly; this random model
  // repeats one token unless penalised).
  auto complete = [&](const std::string& model, double penalty) {
    const json body = {{"model", model},     {"prompt", "Once upon a time"}, {"max_tokens", 8},
                       {"temperature", 0.0}, {"frequency_penalty", penalty}, {"ignore_eos", true}};
    auto r = api(port, "POST", "/v1/completions", body.dump());
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no reply");
    return r && r->status == 200 ? json::parse(r->body)["choices"][0]["text"].get<std::string>() : std::string();
  };
  const std::string penalised = complete("plain", 2.0);
  EXPECT_NE(penalised, complete("plain", 0.0)) << "the penalty must show (else the check below proves nothing)";
  EXPECT_EQ(complete("gpt-4o-mini", 0.0), penalised) << "the forced frequency_penalty did not reach the worker";
  // The default system message (12 words) is in the prompt, unless the
  // request has its own.
  EXPECT_GE(a1["usage"]["prompt_tokens"].get<int>(), p1["usage"]["prompt_tokens"].get<int>() + 8);
  const json with_own =
      json::array({{{"role", "system"}, {"content", "Short."}}, {{"role", "user"}, {"content", "hi"}}});
  EXPECT_EQ(ask("tiny", 1, with_own)["usage"]["prompt_tokens"], ask("plain", 1, with_own)["usage"]["prompt_tokens"]);

  const json listed = get_json(port, "/api/v1/models/gpt-4o-mini");
  EXPECT_EQ(listed["name"], "tiny");
  EXPECT_EQ(listed["file"], "tiny.gguf");
  EXPECT_EQ(listed["aliases"], json::array({"gpt-4o-mini"}));
  EXPECT_EQ(listed["forced"], (json{{"frequency_penalty", 2.0}, {"max_tokens", 8}}));
  EXPECT_EQ(listed["defaults"]["system"], "You are a patient teacher who explains every step of the answer.");
  EXPECT_EQ(get_json(port, "/api/v1/models/plain")["preload"], true);
}

TEST(Models, RerankAndEmbeddingModelsAreServedAndBilledThroughTheGateway) {
  TempDir dir;
  const auto mdir = models_dir(dir, {"tiny", "embedder"});
  Process gen({kBinary, "dev", "make-test-model", "--arch", "qwen3", "--reranker", "--seed", "7", "--out",
               (fs::path(mdir) / "ranker.gguf").string()},
              dir.path(), dir / "gen.log");
  ASSERT_EQ(gen.wait(120s), 0) << gen.log();
  const std::string list =
      "  list:\n"
      "    - { name: tiny, file: tiny.gguf }\n"
      "    - { name: ranker, file: ranker.gguf, mode: rerank, ctx: 512, parallel: 1 }\n"
      "    - { name: embedder, file: embedder.gguf, mode: embeddings, pooling: mean, ctx: 256, parallel: 1 }\n";
  LlmdServe serve(kBinary, models_yaml(mdir, list));
  ASSERT_TRUE(serve.started()) << serve.log();
  const int port = serve.port();
  EXPECT_EQ(get_json(port, "/api/v1/models/ranker")["mode"], "rerank");
  EXPECT_EQ(get_json(port, "/api/v1/models/tiny")["mode"], "chat");
  std::map<std::string, json> listed;
  const json models = get_json(port, "/v1/models");
  for (const auto& m : models["data"]) listed[m["id"]] = m["capabilities"];
  EXPECT_EQ(listed["ranker"], json::array({"rerank"}));
  EXPECT_EQ(listed["embedder"], json::array({"embedding"}));
  EXPECT_EQ(listed["tiny"], json::array({"completion"}));
  auto balance = [&] { return get_json(port, "/api/v1/auth/profile")["user"]["tokens"].get<std::int64_t>(); };

  const json documents = {"Machine learning is a field of artificial intelligence.", "Paris is in France.",
                          "Learning is acquiring knowledge."};
  const std::int64_t before = balance();
  auto jina = api(port, "POST", "/v1/rerank",
                  json{{"model", "ranker"}, {"query", "What is machine learning?"}, {"documents", documents}}.dump());
  ASSERT_TRUE(jina && jina->status == 200) << (jina ? jina->body : "no reply");
  const json j = json::parse(jina->body);
  ASSERT_EQ(j["results"].size(), 3u);
  EXPECT_GE(j["results"][0]["relevance_score"].get<double>(), j["results"][2]["relevance_score"].get<double>());
  const auto tokens = j["usage"]["prompt_tokens"].get<std::int64_t>();
  EXPECT_GT(tokens, 3 * 40) << "each document is scored in the reranker's prompt";
  EXPECT_EQ(jina->headers.at("x-llmd-tokens-consumed"), std::to_string(tokens));
  EXPECT_EQ(balance(), before - tokens) << "billed for the prompt tokens, exactly";

  // TEI's shape: the same scores, a bare array, the texts on request; billed the same.
  auto tei = api(port, "POST", "/v1/rerank",
                 json{{"model", "ranker"},
                      {"query", "What is machine learning?"},
                      {"texts", documents},
                      {"return_text", true},
                      {"top_n", 2}}
                     .dump());
  ASSERT_TRUE(tei && tei->status == 200) << (tei ? tei->body : "no reply");
  const json t = json::parse(tei->body);
  ASSERT_TRUE(t.is_array());
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0]["index"], j["results"][0]["index"]);
  EXPECT_EQ(t[0]["score"], j["results"][0]["relevance_score"]);
  EXPECT_EQ(t[0]["text"], documents[t[0]["index"].get<std::size_t>()]);
  EXPECT_EQ(balance(), before - 2 * tokens);

  // Refused at the gateway, before any worker or charge.
  for (const json& bad : {json{{"model", "ranker"}, {"query", "q"}, {"documents", json::array()}},
                          json{{"model", "ranker"}, {"documents", {"a"}}},
                          json{{"model", "ranker"}, {"query", "q"}, {"documents", {"a", 5}}}}) {
    auto r = api(port, "POST", "/v1/rerank", bad.dump());
    EXPECT_EQ(r->status, 400) << bad.dump() << " " << r->body;
  }
  EXPECT_EQ(balance(), before - 2 * tokens);
  // A chat model does not rerank: the worker says so.
  auto chat = api(port, "POST", "/v1/rerank", json{{"model", "tiny"}, {"query", "q"}, {"documents", {"a"}}}.dump());
  EXPECT_EQ(chat->status, 501) << chat->body;

  auto embedded =
      api(port, "POST", "/v1/embeddings", json{{"model", "embedder"}, {"input", {"hello", "world"}}}.dump());
  ASSERT_TRUE(embedded && embedded->status == 200) << (embedded ? embedded->body : "no reply");
  const json e = json::parse(embedded->body);
  ASSERT_EQ(e["data"].size(), 2u);
  EXPECT_EQ(e["data"][0]["embedding"].size(), 64u);
}

TEST(Models, KilledWorkerMidStreamGivesCleanErrorAndRestarts) {
  TempDir dir;
  LlmdServe serve(kBinary, models_yaml(models_dir(dir, {"tiny"})));
  ASSERT_TRUE(serve.started()) << serve.log();
  const int port = serve.port();
  ASSERT_EQ(api(port, "POST", "/api/v1/models/tiny/start")->status, 202);
  ASSERT_TRUE(wait_status(port, "tiny", "running"));
  const auto workers = children_of(serve.process().pid());
  ASSERT_EQ(workers.size(), 1u);

  RawConnection conn(port);
  const std::string body = chat_body(400, true);
  ASSERT_TRUE(
      conn.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Authorization: Bearer " +
                admin_token(port) +
                "\r\n"
                "Content-Length: " +
                std::to_string(body.size()) + "\r\n\r\n" + body));
  // Kill the worker while tokens are flowing; the reply must still end properly.
  std::thread killer([&] {
    std::this_thread::sleep_for(400ms);
    ::kill(workers[0], SIGKILL);
  });
  auto reply = conn.read_reply(60s);
  killer.join();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_NE(reply->body.find("upstream_error"), std::string::npos) << reply->body.substr(0, 500);

  // The manager notices the exit, restarts the worker and waits for its /health.
  const auto end = std::chrono::steady_clock::now() + 60s;
  while (count_in(serve.log(), "\"worker ready\"") < 2 && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(count_in(serve.log(), "\"worker ready\""), 2) << serve.log();
  EXPECT_EQ(get_json(port, "/api/v1/models/tiny")["status"], "running");
  auto next = api(port, "POST", "/v1/chat/completions", chat_body(3));
  EXPECT_EQ(next->status, 200) << next->body;
  EXPECT_EQ(count_in(serve.log(), "\"worker started\""), 2);
}

TEST(Models, BackendSigkillLeavesNoRunner) {
  TempDir dir;
  LlmdServe serve(kBinary, models_yaml(models_dir(dir, {"tiny"})));
  ASSERT_TRUE(serve.started()) << serve.log();
  ASSERT_EQ(api(serve.port(), "POST", "/api/v1/models/tiny/start")->status, 202);
  ASSERT_TRUE(wait_status(serve.port(), "tiny", "running"));
  const auto workers = children_of(serve.process().pid());
  ASSERT_EQ(workers.size(), 1u);
  serve.process().signal(SIGKILL);
  serve.process().wait(10s);
  const auto end = std::chrono::steady_clock::now() + 10s;
  while (alive(workers[0]) && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(alive(workers[0]));
}

// Two runners started by the test, registered as upstreams with weights 3:1.
class UpstreamTest : public ::testing::Test {
 protected:
  std::unique_ptr<Process> runner(int port) {
    auto p = std::make_unique<Process>(
        std::vector<std::string>{kBinary, "runner", "--model", test_model().string(), "--port", std::to_string(port),
                                 "--threads", "1", "--ctx", "256", "--parallel", "2", "--alias", "remote",
                                 "--log-level", "warn"},
        dir_.path(), dir_ / ("runner-" + std::to_string(port) + ".log"));
    EXPECT_TRUE(wait_for_http(port, "/health", 200, 60s)) << p->log();
    return p;
  }
  std::map<std::string, int> spread(int port, int n, int& failures) {
    std::map<std::string, int> seen;
    for (int i = 0; i < n; ++i) {
      auto r = api(port, "POST", "/v1/chat/completions", chat_body(1, false, "remote"));
      if (!r || r->status != 200) {
        ++failures;
        continue;
      }
      ++seen[r->header("x-llmd-instance")];
    }
    return seen;
  }
  TempDir dir_;
};

TEST_F(UpstreamTest, WeightedRoundRobinDeadUpstreamSkippedRetriedAndRejoins) {
  const int p1 = free_port(), p2 = free_port();
  auto r1 = runner(p1);
  auto r2 = runner(p2);
  const std::string yaml =
      models_yaml(models_dir(dir_, {})) + "upstreams:\n  - { name: big, url: \"http://127.0.0.1:" + std::to_string(p1) +
      "\", model: remote, weight: 3 }\n  - { name: small, url: \"http://127.0.0.1:" + std::to_string(p2) +
      "\", model: remote, weight: 1 }\n"
      "balancer: { strategy: weighted_round_robin, health_interval: 1, fail_threshold: 50, cooldown: 1 }\n";
  LlmdServe serve(kBinary, yaml);
  ASSERT_TRUE(serve.started()) << serve.log();
  int failures = 0;
  auto seen = spread(serve.port(), 400, failures);
  EXPECT_EQ(failures, 0);
  EXPECT_NEAR(seen["upstream:big"], 300, 20);
  EXPECT_NEAR(seen["upstream:small"], 100, 20);

  // A dead upstream: requests routed to it fail before the first byte and
  // are retried on the other one, until the health check marks it down.
  r2.reset();
  seen = spread(serve.port(), 20, failures);
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(seen["upstream:big"], 20);
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(get_json(serve.port(), "/api/v1/models/remote")["instances"][1]["health"], "down");

  r2 = runner(p2);  // it comes back and rejoins after the next health check
  std::this_thread::sleep_for(2500ms);
  seen = spread(serve.port(), 40, failures);
  EXPECT_EQ(failures, 0);
  EXPECT_NEAR(seen["upstream:small"], 10, 3);
}

// A streamed reply held open on a raw connection: the instance that serves
// it (from the response head) stays busy until the stream is closed.
class OpenStream {
 public:
  OpenStream(int port, const std::string& body, const std::string& token) : conn_(port) {
    conn_.send(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Authorization: Bearer " +
        token + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  }
  // The X-Llmd-Instance header of the response head ("" when none arrived).
  std::string instance() {
    auto head = conn_.read_head(60s);
    return head && head->status == 200 ? head->header("x-llmd-instance") : "";
  }

 private:
  RawConnection conn_;
};

// Least connections: while a slow stream keeps one upstream busy, every
// short request goes to the idle one (round robin would alternate), and the
// next slow stream lands on the idle one too, so slow streams spread evenly.
TEST_F(UpstreamTest, LeastConnectionsSendsWorkToTheIdleInstanceWhileAStreamIsSlow) {
  const int p1 = free_port(), p2 = free_port();
  auto r1 = runner(p1);
  auto r2 = runner(p2);
  const std::string yaml =
      models_yaml(models_dir(dir_, {})) + "upstreams:\n  - { name: a, url: \"http://127.0.0.1:" + std::to_string(p1) +
      "\", model: remote }\n  - { name: b, url: \"http://127.0.0.1:" + std::to_string(p2) +
      "\", model: remote }\n"
      "balancer: { strategy: least_connections, health_interval: 1, fail_threshold: 50, cooldown: 1 }\n";
  LlmdServe serve(kBinary, yaml);
  ASSERT_TRUE(serve.started()) << serve.log();
  // Slow on purpose: a long schema-constrained string from a random model.
  const std::string slow =
      json{{"model", "remote"},
           {"messages", {{{"role", "user"}, {"content", "write"}}}},
           {"max_tokens", 200},
           {"stream", true},
           {"response_format",
            {{"type", "json_schema"},
             {"json_schema",
              {{"name", "t"},
               {"schema",
                {{"type", "object"},
                 {"properties", {{"text", {{"type", "string"}, {"minLength", 150}, {"maxLength", 190}}}}},
                 {"required", {"text"}}}}}}}}}
          .dump();
  const std::string token = admin_token(serve.port());
  OpenStream first(serve.port(), slow, token);
  const std::string busy = first.instance();
  ASSERT_FALSE(busy.empty());
  int failures = 0;
  auto seen = spread(serve.port(), 6, failures);
  EXPECT_EQ(failures, 0);
  EXPECT_FALSE(seen.contains(busy)) << "short requests went to the busy instance " << busy;
  EXPECT_EQ(seen.size(), 1u);
  OpenStream second(serve.port(), slow, token);
  const std::string other = second.instance();
  EXPECT_FALSE(other.empty());
  EXPECT_NE(other, busy);
}

}  // namespace
}  // namespace llmd::testing
