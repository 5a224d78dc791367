// Black-box tests of `llmd runner`: the real binary serving generated tiny
// models (random weights, real Qwen2 tokenizer and ChatML template).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "grammar/json_schema.h"
#include "support/http.h"
#include "support/process.h"
#include "support/test_model.h"
#include "support/test_support.h"

namespace llmd::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;
constexpr const char* kBinary = LLMD_BINARY;

// Generated models are cached in the build tree (deterministic from the
// seed), so each test process does not pay for generation again. Written to
// a temporary name and renamed, so parallel test processes never see half a file.
// `name` names the cached file; `flags` are make-test-model's.
fs::path generated_model(const std::string& name, const std::vector<std::string>& flags) {
  const fs::path dir = fs::path(LLMD_BINARY_DIR) / "test-models";
  const fs::path out = dir / ("runner-tiny-" + name + ".gguf");
  if (fs::exists(out)) return out;
  fs::create_directories(dir);
  const fs::path tmp = dir / ("tmp-" + std::to_string(::getpid()) + "-" + name + ".gguf");
  std::vector<std::string> argv{kBinary, "dev", "make-test-model", "--seed", "7", "--out", tmp.string()};
  argv.insert(argv.end(), flags.begin(), flags.end());
  Process gen(argv, dir, dir / ("gen-" + std::to_string(::getpid()) + ".log"));
  const auto rc = gen.wait(std::chrono::seconds(120));
  EXPECT_EQ(rc, 0) << gen.log();
  fs::rename(tmp, out);
  return out;
}

// `fim`: with Qwen2.5-Coder's fill-in-the-middle tokens.
fs::path test_model(const std::string& arch, bool fim = false) {
  if (fim) return generated_model(arch + "-fim", {"--arch", arch, "--fim"});
  return generated_model(arch, {"--arch", arch});
}

// One `llmd runner` process on a free port; killed on destruction.
class Runner {
 public:
  explicit Runner(const fs::path& model, std::vector<std::string> extra = {},
                  const std::map<std::string, std::string>& env = {}, bool wait_ready = true)
      : port_(free_port()) {
    std::vector<std::string> argv{kBinary, "runner", "--model", model.string(), "--port", std::to_string(port_),
                                  // One thread: the tests share two cores (and ASan) with other processes;
                                  // a spinning second ggml thread then only slows decoding down.
                                  "--threads", "1", "--log-level", "warn"};
    for (auto& a : extra) argv.push_back(std::move(a));
    process_ = std::make_unique<Process>(argv, dir_.path(), dir_ / "runner.log", env);
    if (wait_ready) ready_ = wait_for_http(port_, "/health", 200, std::chrono::seconds(60));
  }
  int port() const { return port_; }
  bool ready() const { return ready_; }
  Process& process() { return *process_; }
  std::string log() const { return process_->log(); }

 private:
  TempDir dir_;
  int port_;
  std::unique_ptr<Process> process_;
  bool ready_ = false;
};

std::optional<HttpReply> post(int port, const std::string& path, const json& body,
                              const std::map<std::string, std::string>& headers = {}) {
  auto h = headers;
  h.emplace("Content-Type", "application/json");
  return http_request(port, "POST", path, body.dump(), h);
}

json body_json(const std::optional<HttpReply>& r) {
  if (!r) return json();
  return json::parse(r->body, nullptr, false);
}

// The payloads of the `data:` lines of an SSE body, in order.
std::vector<std::string> sse_data(const std::string& body) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < body.size()) {
    auto end = body.find('\n', pos);
    if (end == std::string::npos) end = body.size();
    const std::string line = body.substr(pos, end - pos);
    if (line.rfind("data: ", 0) == 0) out.push_back(line.substr(6));
    pos = end + 1;
  }
  return out;
}

json chat(const std::string& user, int max_tokens, json extra = json::object()) {
  json b{{"model", "tiny"},
         {"messages", json::array({{{"role", "user"}, {"content", user}}})},
         {"max_tokens", max_tokens},
         {"temperature", 0}};
  b.update(extra);
  return b;
}

// A socket that reads a streamed reply piece by piece and can hang up mid-way.
class StreamSocket {
 public:
  explicit StreamSocket(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~StreamSocket() { hang_up(); }
  bool send_post(const std::string& path, const std::string& body) {
    const std::string req =
        "POST " + path +
        " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\n\r\n" + body;
    return fd_ >= 0 && ::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
  }
  // Reads until `needle` appeared in what was received (or timeout).
  bool read_until(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (received_.find(needle) == std::string::npos) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return false;
      received_.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }
  void hang_up() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  const std::string& received() const { return received_; }

 private:
  int fd_ = -1;
  std::string received_;
};

double metric(int port, const std::string& name) {
  auto r = http_request(port, "GET", "/metrics");
  if (!r) return -1;
  const auto at = r->body.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(r->body.substr(at + name.size() + 2));
}

// ---------------------------------------------------------------- one shared runner

// One runner shared by a suite's tests, made by Derived::start() before the
// first test and stopped after the last.
template <class Derived>
class SharedRunnerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { runner_ = Derived::start(); }
  static void TearDownTestSuite() {
    delete runner_;
    runner_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(runner_->ready()) << runner_->log(); }
  static int port() { return runner_->port(); }
  static inline Runner* runner_ = nullptr;
};

class RunnerTest : public SharedRunnerTest<RunnerTest> {
 public:
  static Runner* start() {
    return new Runner(test_model("qwen2"), {"--ctx", "512", "--parallel", "4", "--alias", "tiny"});
  }
};

TEST_F(RunnerTest, TokenizeDetokenizeRoundTripIncludingChinese) {
  for (const std::string text : {"Hello, world!", "你好，世界。今天天气很好。", "mixed 中文 and émojis 🙂"}) {
    auto tok = post(port(), "/tokenize", {{"content", text}});
    ASSERT_TRUE(tok);
    ASSERT_EQ(tok->status, 200) << tok->body;
    const auto tokens = body_json(tok)["tokens"];
    ASSERT_TRUE(tokens.is_array());
    ASSERT_FALSE(tokens.empty());
    auto detok = post(port(), "/detokenize", {{"tokens", tokens}});
    ASSERT_EQ(detok->status, 200) << detok->body;
    EXPECT_EQ(body_json(detok)["content"], text);
  }
  // Control tokens in text map to one special token.
  auto special = post(port(), "/tokenize", {{"content", "<|im_start|>"}});
  EXPECT_EQ(body_json(special)["tokens"].size(), 1u);
  // ... unless parse_special is false (llama-server's switch): then it is text.
  auto as_text = post(port(), "/tokenize", {{"content", "<|im_start|>"}, {"parse_special", false}});
  ASSERT_EQ(as_text->status, 200) << as_text->body;
  EXPECT_GT(body_json(as_text)["tokens"].size(), 1u);
  EXPECT_EQ(post(port(), "/detokenize", {{"tokens", {-5}}})->status, 400);
  EXPECT_EQ(post(port(), "/detokenize", {{"tokens", {99999999}}})->status, 400);
}

// What a gateway reserves for: /apply-template counts the prompt as the
// generation of the same request will (the BOS rule, the switches a
// response_format turns off), to the token.
TEST_F(RunnerTest, ApplyTemplateCountsThePromptAsTheGenerationWill) {
  const json messages = {{{"role", "system"}, {"content", "Be brief."}},
                         {{"role", "user"}, {"content", "你好, what is 2+3×4?"}}};
  for (const json& extra : {json::object(), json{{"response_format", {{"type", "json_object"}}}}}) {
    json request = {{"messages", messages}, {"max_tokens", 2}};
    request.update(extra);
    auto counted = post(port(), "/apply-template", request);
    ASSERT_EQ(counted->status, 200) << counted->body;
    const json rendered = body_json(counted);
    ASSERT_TRUE(rendered["prompt_tokens"].is_number_unsigned()) << rendered;
    auto reply = post(port(), "/v1/chat/completions", request);
    ASSERT_EQ(reply->status, 200) << reply->body;
    EXPECT_EQ(rendered["prompt_tokens"], body_json(reply)["usage"]["prompt_tokens"]) << extra;
    // A longer conversation counts more.
    json longer = request;
    longer["messages"].push_back({{"role", "assistant"}, {"content", "14"}});
    longer["messages"].push_back({{"role", "user"}, {"content", "And 2×3+4?"}});
    EXPECT_GT(body_json(post(port(), "/apply-template", longer))["prompt_tokens"].get<int>(),
              rendered["prompt_tokens"].get<int>());
  }
}

TEST_F(RunnerTest, ALastAssistantMessageIsContinuedNotAnsweredAndOnlyTheNewTextIsReturned) {
  const json prefill = {{{"role", "user"}, {"content", "Tell me a story"}},
                        {{"role", "assistant"}, {"content", "Once upon a"}}};
  const json rendered = body_json(post(port(), "/apply-template", {{"messages", prefill}}));
  const std::string prompt = rendered["prompt"];
  ASSERT_TRUE(prompt.ends_with("<|im_start|>assistant\nOnce upon a")) << prompt;  // no end of turn, no new turn
  EXPECT_EQ(body_json(post(port(), "/chat/completions/input_tokens", {{"messages", prefill}}))["input_tokens"],
            rendered["prompt_tokens"]);
  // vLLM's explicit spelling renders the same.
  EXPECT_EQ(body_json(post(
                port(), "/apply-template",
                {{"messages", prefill}, {"continue_final_message", true}, {"add_generation_prompt", false}}))["prompt"],
            prompt);
  // The reply holds only what follows the prefill: exactly the raw completion of the prompt.
  const json greedy = {{"max_tokens", 6}, {"temperature", 0}, {"ignore_eos", true}};
  json chat = greedy;
  chat["messages"] = prefill;
  auto c = post(port(), "/v1/chat/completions", chat);
  ASSERT_EQ(c->status, 200) << c->body;
  json raw = greedy;
  raw["prompt"] = prompt;
  const std::string continued = body_json(post(port(), "/v1/completions", raw))["choices"][0]["text"];
  EXPECT_EQ(body_json(c)["choices"][0]["message"]["content"], continued);
  chat["stream"] = true;
  std::string streamed;
  for (const auto& d : sse_data(post(port(), "/v1/chat/completions", chat)->body)) {
    if (d == "[DONE]") continue;
    const json chunk = json::parse(d);
    if (!chunk["choices"].empty()) streamed += chunk["choices"][0]["delta"].value("content", std::string());
  }
  EXPECT_EQ(streamed, continued);
  // A new turn after the assistant message when asked for; refusals otherwise.
  EXPECT_TRUE(
      body_json(post(port(), "/apply-template", {{"messages", prefill}, {"add_generation_prompt", true}}))["prompt"]
          .get<std::string>()
          .ends_with("<|im_start|>assistant\n"));
  json two = prefill;
  two.push_back({{"role", "assistant"}, {"content", "time"}});
  for (const json& bad :
       {json{{"messages", two}},
        json{{"messages", prefill}, {"continue_final_message", true}, {"add_generation_prompt", true}},
        json{{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"continue_final_message", true}},
        json{{"messages", prefill}, {"continue_final_message", "everything"}}}) {
    EXPECT_EQ(post(port(), "/v1/chat/completions", bad)->status, 400) << bad.dump();
  }
}

TEST_F(RunnerTest, ReturnTokensListsTheGeneratedIdsThatMakeTheContent) {
  const json req = {{"prompt", "Once upon a time"}, {"n_predict", 8}, {"temperature", 0}, {"ignore_eos", true}};
  const json plain = body_json(post(port(), "/completion", req));
  EXPECT_EQ(plain["tokens"], json::array());
  EXPECT_TRUE(plain["has_new_line"].is_boolean());
  json with = req;
  with["return_tokens"] = true;
  const json r = body_json(post(port(), "/completion", with));
  ASSERT_EQ(r["tokens"].size(), 8u) << r;
  EXPECT_EQ(body_json(post(port(), "/detokenize", {{"tokens", r["tokens"]}}))["content"], r["content"]);
  EXPECT_EQ(r["content"], plain["content"]);
}

TEST_F(RunnerTest, VerboseRepliesCarryTheRenderedPrompt) {
  const json messages = {{{"role", "user"}, {"content", "What is the best book"}}};
  auto plain = body_json(post(port(), "/chat/completions", {{"messages", messages}, {"max_tokens", 2}}));
  EXPECT_FALSE(plain.contains("__verbose"));
  auto verbose =
      body_json(post(port(), "/chat/completions", {{"messages", messages}, {"max_tokens", 2}, {"verbose", true}}));
  ASSERT_TRUE(verbose.contains("__verbose")) << verbose;
  EXPECT_EQ(verbose["__verbose"]["prompt"],
            body_json(post(port(), "/apply-template", {{"messages", messages}}))["prompt"]);
  EXPECT_EQ(verbose["__verbose"]["tokens_predicted"], 2);
}

TEST_F(RunnerTest, Qwen2ChatTemplateIsChatML) {
  auto r =
      post(port(), "/apply-template",
           {{"messages", {{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "你好"}}}}});
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(body_json(r)["prompt"],
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n");
  auto props = http_request(port(), "GET", "/props");
  ASSERT_EQ(props->status, 200);
  const auto p = body_json(props);
  EXPECT_NE(p["chat_template"].get<std::string>().find("<|im_start|>"), std::string::npos);
  EXPECT_EQ(p["total_slots"], 4);
  EXPECT_EQ(p["n_ctx"], 512);
  EXPECT_EQ(p["model_alias"], "tiny");
}

TEST_F(RunnerTest, UnprefixedOpenAiRoutesAndXApiKeyAsLlamaServerHasThem) {
  EXPECT_EQ(body_json(http_request(port(), "GET", "/models"))["data"][0]["id"], "tiny");
  const json a = body_json(post(port(), "/chat/completions", chat("hi", 4)));
  const json b = body_json(post(port(), "/v1/chat/completions", chat("hi", 4)));
  EXPECT_EQ(a["choices"][0]["message"], b["choices"][0]["message"]);
  // Unprefixed /completions is llama-server's own completion, as in llama-server.
  const json native = body_json(post(port(), "/completions", {{"prompt", "x"}, {"n_predict", 2}}));
  EXPECT_TRUE(native.contains("content")) << native.dump();
  EXPECT_TRUE(native.contains("tokens_predicted")) << native.dump();
  // As llama-server writes it: the engine's build number and commit.
  EXPECT_TRUE(b["system_fingerprint"].get<std::string>().starts_with("b")) << b.dump();
  EXPECT_NE(b["system_fingerprint"].get<std::string>().find('-'), std::string::npos);
}

TEST_F(RunnerTest, EchoPrependsThePromptToLegacyCompletions) {
  const json plain =
      body_json(post(port(), "/v1/completions", {{"prompt", "Once upon"}, {"max_tokens", 3}, {"temperature", 0}}));
  const json echoed = body_json(post(port(), "/v1/completions",
                                     {{"prompt", "Once upon"}, {"max_tokens", 3}, {"temperature", 0}, {"echo", true}}));
  EXPECT_EQ(echoed["choices"][0]["text"], "Once upon" + plain["choices"][0]["text"].get<std::string>());
  auto s = post(port(), "/v1/completions",
                {{"prompt", "Once upon"}, {"max_tokens", 3}, {"temperature", 0}, {"echo", true}, {"stream", true}});
  std::string streamed;
  for (const auto& data : sse_data(s->body)) {
    if (data != "[DONE]") streamed += json::parse(data)["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(streamed, echoed["choices"][0]["text"]);
  EXPECT_EQ(post(port(), "/v1/chat/completions", chat("x", 2, {{"echo", true}}))->status, 400);
}

TEST_F(RunnerTest, ModelsListsTheAlias) {
  auto r = http_request(port(), "GET", "/v1/models");
  ASSERT_EQ(r->status, 200);
  const auto j = body_json(r);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["data"][0]["id"], "tiny");
  EXPECT_EQ(j["data"][0]["object"], "model");
}

TEST_F(RunnerTest, ChatCompletionHasTheOpenAIShape) {
  auto r = post(port(), "/v1/chat/completions", chat("Say hi", 8));
  ASSERT_EQ(r->status, 200) << r->body;
  const auto j = body_json(r);
  EXPECT_EQ(j["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_GT(j["created"].get<int64_t>(), 1'600'000'000);
  EXPECT_EQ(j["model"], "tiny");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_TRUE(j["choices"][0]["message"]["content"].is_string());
  const std::string finish = j["choices"][0]["finish_reason"];
  EXPECT_TRUE(finish == "stop" || finish == "length");
  const auto& u = j["usage"];
  EXPECT_GT(u["prompt_tokens"].get<int>(), 5);
  EXPECT_GE(u["completion_tokens"].get<int>(), 1);
  EXPECT_LE(u["completion_tokens"].get<int>(), 8);
  EXPECT_EQ(u["total_tokens"], u["prompt_tokens"].get<int>() + u["completion_tokens"].get<int>());
  if (finish == "length") {
    EXPECT_EQ(u["completion_tokens"], 8);
  }
}

TEST_F(RunnerTest, StreamedChunksConcatenateToTheNonStreamedText) {
  for (const char* prompt : {"Tell me a story", "写一首诗", "1 2 3"}) {
    auto whole = post(port(), "/v1/chat/completions", chat(prompt, 24));
    ASSERT_EQ(whole->status, 200) << whole->body;
    const auto w = body_json(whole);
    auto streamed = post(port(), "/v1/chat/completions",
                         chat(prompt, 24, {{"stream", true}, {"stream_options", {{"include_usage", true}}}}));
    ASSERT_EQ(streamed->status, 200);
    EXPECT_NE(streamed->header("content-type").find("text/event-stream"), std::string::npos);
    const auto events = sse_data(streamed->body);
    ASSERT_GE(events.size(), 3u) << streamed->body;
    EXPECT_EQ(events.back(), "[DONE]");
    std::string text;
    std::string finish;
    json usage;
    for (std::size_t i = 0; i + 1 < events.size(); ++i) {
      const auto c = json::parse(events[i]);
      EXPECT_EQ(c["id"], events.size() > 1 ? json::parse(events[0])["id"] : c["id"]);
      if (c["choices"].empty()) {
        usage = c["usage"];  // the include_usage chunk
        continue;
      }
      EXPECT_EQ(c["object"], "chat.completion.chunk");
      EXPECT_TRUE(c.contains("usage") && c["usage"].is_null());
      const auto& d = c["choices"][0]["delta"];
      if (d.contains("content")) text += d["content"].get<std::string>();
      if (!c["choices"][0]["finish_reason"].is_null()) finish = c["choices"][0]["finish_reason"];
    }
    EXPECT_EQ(text, w["choices"][0]["message"]["content"]) << prompt;
    EXPECT_EQ(finish, w["choices"][0]["finish_reason"]);
    // Token counts agree; the cached share differs (the second run reuses the first's prompt).
    for (const char* k : {"prompt_tokens", "completion_tokens", "total_tokens"})
      EXPECT_EQ(usage[k], w["usage"][k]) << k;
  }
}

// OpenAI's n: every choice in one reply, the prompt evaluated and billed once.
TEST_F(RunnerTest, SeveralChoicesShareOnePromptAndStreamInterleaved) {
  const json extra{{"ignore_eos", true}, {"n", 3}};
  auto single = post(port(), "/v1/chat/completions", chat("Name three rivers", 10, {{"ignore_eos", true}}));
  ASSERT_EQ(single->status, 200) << single->body;
  const auto one = body_json(single);
  auto whole = post(port(), "/v1/chat/completions", chat("Name three rivers", 10, extra));
  ASSERT_EQ(whole->status, 200) << whole->body;
  const auto w = body_json(whole);
  ASSERT_EQ(w["choices"].size(), 3u) << w.dump();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(w["choices"][i]["index"], i);
    EXPECT_EQ(w["choices"][i]["message"]["content"], one["choices"][0]["message"]["content"]) << "choice " << i;
    EXPECT_EQ(w["choices"][i]["finish_reason"], "length");
  }
  EXPECT_EQ(w["usage"]["prompt_tokens"], one["usage"]["prompt_tokens"]);
  EXPECT_EQ(w["usage"]["completion_tokens"], 30);
  EXPECT_EQ(w["usage"]["total_tokens"], one["usage"]["prompt_tokens"].get<int>() + 30);

  // Streamed: each choice opens with its role and ends with its finish
  // reason; per-chunk timings are the whole request's running total.
  auto streamed = post(port(), "/v1/chat/completions",
                       chat("Name three rivers", 10,
                            {{"ignore_eos", true},
                             {"n", 2},
                             {"stream", true},
                             {"timings_per_token", true},
                             {"stream_options", {{"include_usage", true}}}}));
  ASSERT_EQ(streamed->status, 200) << streamed->body;
  const auto events = sse_data(streamed->body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  std::vector<std::string> texts(2);
  std::vector<int> roles(2, 0), finishes(2, 0);
  int last_predicted = 0;
  json usage;
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    const auto c = json::parse(events[i]);
    if (c["choices"].empty()) {
      usage = c["usage"];
      continue;
    }
    const int index = c["choices"][0]["index"];
    ASSERT_TRUE(index == 0 || index == 1) << events[i];
    const auto& d = c["choices"][0]["delta"];
    if (d.contains("role")) ++roles[index];
    if (d.contains("content")) texts[index] += d["content"].get<std::string>();
    if (!c["choices"][0]["finish_reason"].is_null()) ++finishes[index];
    if (c.contains("timings")) {
      const int predicted = c["timings"]["predicted_n"];
      EXPECT_GE(predicted, last_predicted) << "the running total went back";
      last_predicted = predicted;
      // Every running total holds the whole prompt (a cut stream pays for it).
      EXPECT_EQ(c["timings"]["cache_n"].get<int>() + c["timings"]["prompt_n"].get<int>(),
                one["usage"]["prompt_tokens"].get<int>())
          << events[i];
    }
  }
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(roles[i], 1) << i;
    EXPECT_EQ(finishes[i], 1) << i;
    EXPECT_EQ(texts[i], one["choices"][0]["message"]["content"]) << i;
  }
  EXPECT_EQ(last_predicted, 20);
  EXPECT_EQ(usage["completion_tokens"], 20);
  EXPECT_EQ(usage["prompt_tokens"], one["usage"]["prompt_tokens"]);

  // More choices than the runner has slots: a clear 400, and it keeps serving.
  auto too_many = post(port(), "/v1/chat/completions", chat("x", 4, {{"n", 5}}));
  ASSERT_EQ(too_many->status, 400) << too_many->body;
  EXPECT_NE(body_json(too_many)["error"]["message"].get<std::string>().find("n must be"), std::string::npos);
  EXPECT_EQ(post(port(), "/v1/chat/completions", chat("x", 4))->status, 200);
}

TEST_F(RunnerTest, BestOfReturnsTheLikeliestChoicesAndCountsEveryGeneratedToken) {
  const json req{{"prompt", "Once upon a time"},
                 {"max_tokens", 8},
                 {"temperature", 1.0},
                 {"seed", 11},
                 {"ignore_eos", true},
                 {"best_of", 3},
                 {"n", 1},
                 {"cache_prompt", false}};
  auto best = post(port(), "/v1/completions", req);
  ASSERT_EQ(best->status, 200) << best->body;
  const auto b = body_json(best);
  ASSERT_EQ(b["choices"].size(), 1u);
  EXPECT_EQ(b["choices"][0]["index"], 0);
  EXPECT_TRUE(b["choices"][0]["logprobs"].is_null()) << "logprobs were not asked for";
  EXPECT_EQ(b["usage"]["completion_tokens"], 24);  // all three were generated

  // The same three choices with their logprobs: the one returned is the
  // one with the highest mean log-probability per token.
  json all = req;
  all["n"] = 3;
  all["logprobs"] = 0;
  auto three = post(port(), "/v1/completions", all);
  ASSERT_EQ(three->status, 200) << three->body;
  const auto t = body_json(three);
  ASSERT_EQ(t["choices"].size(), 3u);
  double best_mean = -1e9;
  std::string best_text;
  for (const auto& c : t["choices"]) {
    double sum = 0;
    for (const auto& lp : c["logprobs"]["token_logprobs"]) sum += lp.get<double>();
    const double mean = sum / static_cast<double>(c["logprobs"]["token_logprobs"].size());
    if (mean > best_mean) {
      best_mean = mean;
      best_text = c["text"];
    }
  }
  EXPECT_EQ(b["choices"][0]["text"], best_text);
  auto streamed = post(port(), "/v1/completions", json{{"prompt", "x"}, {"best_of", 2}, {"stream", true}});
  EXPECT_EQ(streamed->status, 400);
}

TEST_F(RunnerTest, LlamaServerCompletionShapeAndStream) {
  json req{{"prompt", "The capital of France is"}, {"n_predict", 12}, {"temperature", 0}, {"cache_prompt", true}};
  auto r = post(port(), "/completion", req);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto j = body_json(r);
  EXPECT_TRUE(j["content"].is_string());
  EXPECT_EQ(j["stop"], true);
  EXPECT_GE(j["tokens_predicted"].get<int>(), 1);
  EXPECT_LE(j["tokens_predicted"].get<int>(), 12);
  EXPECT_GT(j["tokens_evaluated"].get<int>(), 3);
  EXPECT_TRUE(j["timings"].contains("predicted_per_second"));
  req["stream"] = true;
  auto s = post(port(), "/completion", req);
  ASSERT_EQ(s->status, 200);
  std::string text;
  json last;
  for (const auto& e : sse_data(s->body)) {
    last = json::parse(e);
    text += last["content"].get<std::string>();  // the final event's content is empty
  }
  EXPECT_EQ(last["stop"], true);
  EXPECT_EQ(text, j["content"]);
  // The prompt was cached by the first request: a repeat reuses it.
  EXPECT_GT(last["tokens_cached"].get<int>(), 0);
}

TEST_F(RunnerTest, CompletionReportsItsSettingsAndAnswersOnlyTheFieldsAsked) {
  const json r = body_json(post(
      port(), "/completion",
      {{"prompt", "Once upon a time"}, {"n_predict", 6}, {"temperature", 0.5}, {"seed", 3}, {"ignore_eos", true}}));
  const json& settings = r["generation_settings"];
  EXPECT_EQ(settings["n_predict"], 6);
  EXPECT_EQ(settings["seed"], 3);
  EXPECT_DOUBLE_EQ(settings["temperature"].get<double>(), 0.5);
  EXPECT_EQ(settings["ignore_eos"], true);
  // ignore_eos bans every end-of-generation token (null: -inf), as llama-server does.
  ASSERT_FALSE(settings["logit_bias"].empty()) << settings.dump();
  for (const auto& b : settings["logit_bias"]) EXPECT_TRUE(b["bias"].is_null()) << b.dump();
  EXPECT_EQ(r["tokens_predicted"], 6);
  EXPECT_EQ(r["prompt"], "Once upon a time");
  const json plain = body_json(post(port(), "/completion", {{"prompt", "Once upon a time"}, {"n_predict", 2}}));
  EXPECT_TRUE(plain["generation_settings"]["logit_bias"].empty());

  const json only = body_json(post(port(), "/completion",
                                   {{"prompt", "Once upon a time"},
                                    {"n_predict", 4},
                                    {"response_fields", {"content", "generation_settings/n_predict", "nope"}}}));
  EXPECT_EQ(only.size(), 2u) << only.dump();
  EXPECT_EQ(only["generation_settings/n_predict"], 4);
  EXPECT_TRUE(only["content"].is_string());
  EXPECT_EQ(post(port(), "/completion", {{"prompt", "x"}, {"response_fields", "content"}})->status, 400);
}

TEST_F(RunnerTest, LegacyCompletionsEndpoint) {
  auto r = post(port(), "/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", 5}, {"temperature", 0}});
  ASSERT_EQ(r->status, 200) << r->body;
  const auto j = body_json(r);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_TRUE(j["choices"][0]["text"].is_string());
  EXPECT_LE(j["usage"]["completion_tokens"].get<int>(), 5);
}

TEST_F(RunnerTest, ParallelRequestsGiveTheSameOutputsAsSequentialOnes) {
  std::vector<json> reqs;
  for (int i = 0; i < 8; ++i) {
    reqs.push_back({{"prompt", "Request number " + std::to_string(i) + " says"},
                    {"n_predict", 16},
                    {"temperature", 0},
                    {"cache_prompt", false}});
  }
  std::vector<std::string> sequential(8), parallel(8);
  for (int i = 0; i < 8; ++i) {
    auto r = post(port(), "/completion", reqs[static_cast<std::size_t>(i)]);
    ASSERT_EQ(r->status, 200) << r->body;
    sequential[static_cast<std::size_t>(i)] = body_json(r)["content"];
  }
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto r = post(port(), "/completion", reqs[static_cast<std::size_t>(i)]);
      if (r && r->status == 200) {
        parallel[static_cast<std::size_t>(i)] = body_json(r)["content"];
        ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(parallel[static_cast<std::size_t>(i)], sequential[static_cast<std::size_t>(i)]) << i;
}

TEST_F(RunnerTest, JsonObjectResponseFormatParses) {
  for (int seed = 0; seed < 2; ++seed) {
    auto r = post(
        port(), "/v1/chat/completions",
        chat("JSON please", 120,
             {{"temperature", 1.0}, {"top_k", 3}, {"seed", seed}, {"response_format", {{"type", "json_object"}}}}));
    ASSERT_EQ(r->status, 200) << r->body;
    const auto j = body_json(r);
    const std::string content = j["choices"][0]["message"]["content"];
    if (j["choices"][0]["finish_reason"] == "stop") {
      const auto out = json::parse(content, nullptr, false);
      EXPECT_TRUE(out.is_object()) << content;
    }
  }
}

TEST_F(RunnerTest, DigitGrammarYieldsOnlyDigits) {
  for (int seed = 0; seed < 5; ++seed) {
    auto r = post(port(), "/completion",
                  {{"prompt", "Write something:"},
                   {"n_predict", 12},
                   {"temperature", 1.0},
                   {"seed", seed},
                   {"grammar", "root ::= [0-9]+"}});
    ASSERT_EQ(r->status, 200) << r->body;
    const std::string content = body_json(r)["content"];
    ASSERT_FALSE(content.empty());
    for (char c : content) EXPECT_TRUE(c >= '0' && c <= '9') << content;
  }
}

TEST_F(RunnerTest, InvalidParametersAre400AndTheRunnerKeepsServing) {
  const std::vector<std::pair<json, std::string>> cases = {
      {chat("x", 4, {{"temperature", "hot"}}), "temperature"},
      {chat("x", 4, {{"temperature", 5}}), "temperature"},
      {chat("x", 4, {{"top_p", -0.5}}), "top_p"},
      {chat("x", 4, {{"top_k", -1}}), "top_k"},
      {chat("x", 4, {{"min_p", 1e300}}), "min_p"},
      {chat("x", 0), "max_tokens"},
      {chat("x", -3), "max_tokens"},
      {chat("x", 100000), "context"},
      {chat("x", 4, {{"max_tokens", 1e30}}), "max_tokens"},
      {chat("x", 4, {{"seed", "abc"}}), "seed"},
      {chat("x", 4, {{"top_logprobs", 3}}), "top_logprobs"},
      {chat("x", 4, {{"logprobs", true}, {"top_logprobs", 50}}), "top_logprobs"},
      {chat("x", 4, {{"n", 17}}), "n"},
      {chat("x", 4, {{"presence_penalty", 5}}), "presence_penalty"},
      {chat("x", 4, {{"repeat_penalty", -1}}), "repeat_penalty"},
      {chat("x", 4, {{"mirostat", 7}}), "mirostat"},
      {chat("x", 4, {{"dry_multiplier", "lots"}}), "dry_multiplier"},
      {chat("x", 4, {{"logit_bias", "x"}}), "logit_bias"},
      {chat("x", 4, {{"tool_choice", "required"}}), "tool_choice"},
      {chat("x", 4, {{"reasoning_effort", "max"}}), "reasoning_effort"},
      {chat("x", 4, {{"stop", 5}}), "stop"},
      {chat("x", 4, {{"stream", "yes"}}), "stream"},
      {chat("x", 4, {{"response_format", {{"type", "xml"}}}}), "response_format"},
      {chat("x", 4, {{"grammar", "root ::= root \"a\" | \"\""}}), "grammar"},
      {chat("x", 4, {{"grammar", "root ::= x"}}), "grammar"},
      {{{"messages", "hello"}}, "messages"},
      {{{"messages", json::array()}}, "messages"},
      {{{"messages", {{{"role", "wizard"}, {"content", "x"}}}}}, "role"},
  };
  for (const auto& [body, word] : cases) {
    auto r = post(port(), "/v1/chat/completions", body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << body.dump() << " -> " << r->body;
    const auto j = body_json(r);
    EXPECT_NE(j["error"]["message"].get<std::string>().find(word), std::string::npos) << r->body;
    EXPECT_FALSE(j["error"]["code"].get<std::string>().empty());
  }
  // Not UTF-8, not JSON, not an object.
  auto utf8 = http_request(port(), "POST", "/v1/chat/completions",
                           "{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}");
  EXPECT_EQ(utf8->status, 400);
  EXPECT_EQ(body_json(utf8)["error"]["code"], "invalid_utf8");
  EXPECT_EQ(http_request(port(), "POST", "/completion", "{\"prompt\":")->status, 400);
  EXPECT_EQ(http_request(port(), "POST", "/completion", "[1,2]")->status, 400);
  // A schema outside the supported subset is refused, not ignored.
  auto unsupported =
      post(port(), "/completion", {{"prompt", "x"}, {"json_schema", {{"type", "string"}, {"pattern", "a+"}}}});
  EXPECT_EQ(unsupported->status, 422) << unsupported->body;
  EXPECT_EQ(post(port(), "/v1/chat/completions", chat("still alive?", 4))->status, 200);
}

TEST_F(RunnerTest, OversizedPromptIs400ThenANormalRequestSucceeds) {
  std::string big;
  for (int i = 0; i < 400; ++i) big += "lorem ipsum dolor ";
  auto r = post(port(), "/v1/chat/completions", chat(big, 4));
  ASSERT_EQ(r->status, 400) << r->body;
  const json e = body_json(r)["error"];
  EXPECT_EQ(e["code"], "context_length_exceeded");
  EXPECT_NE(e["message"].get<std::string>().find("context"), std::string::npos);
  // OpenAI's type, and the sizes llama-server reports.
  EXPECT_EQ(e["type"], "exceed_context_size_error");
  EXPECT_GT(e["n_prompt_tokens"].get<int>(), 512);
  EXPECT_EQ(e["n_ctx"], 512);
  EXPECT_EQ(post(port(), "/v1/chat/completions", chat("short", 4))->status, 200);
  // Every error names its type.
  EXPECT_EQ(body_json(post(port(), "/v1/chat/completions", chat("x", 4, {{"top_p", 7}})))["error"]["type"],
            "invalid_request_error");
}

TEST_F(RunnerTest, EmbeddingsWithoutEmbeddingsModeIsAClear4xx) {
  auto r = post(port(), "/v1/embeddings", {{"input", "hello"}, {"model", "tiny"}});
  ASSERT_EQ(r->status, 422) << r->body;
  EXPECT_EQ(body_json(r)["error"]["code"], "embeddings_not_supported");
}

TEST_F(RunnerTest, MetricsExposeRunnerGauges) {
  ASSERT_EQ(post(port(), "/completion", {{"prompt", "count"}, {"n_predict", 3}})->status, 200);
  EXPECT_EQ(metric(port(), "llmd_runner_slots_total"), 4);
  EXPECT_EQ(metric(port(), "llmd_runner_slots_busy"), 0);
  EXPECT_EQ(metric(port(), "llmd_runner_queue_length"), 0);
  EXPECT_GE(metric(port(), "llmd_runner_completion_tokens_total"), 1);
  EXPECT_GE(metric(port(), "llmd_runner_prompt_tokens_total"), 1);
  EXPECT_GE(metric(port(), "llmd_runner_requests_total"), 1);
  EXPECT_GE(metric(port(), "llmd_runner_tokens_per_second"), 0);
}

TEST_F(RunnerTest, CurlOpenAIChatRequestWorks) {
  // setup.sh installs curl; a missing curl is a broken setup, not a reason to skip.
  ASSERT_EQ(std::system("command -v curl >/dev/null 2>&1"), 0) << "curl is not installed";
  const std::string cmd = "curl -sS -m 60 http://127.0.0.1:" + std::to_string(port()) +
                          "/v1/chat/completions -H 'Content-Type: application/json' "
                          "-d '{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello!\"}],"
                          "\"max_tokens\":8}'";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  EXPECT_EQ(::pclose(p), 0);
  const auto j = json::parse(out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_TRUE(j["choices"][0]["message"]["content"].is_string());
}

// ---------------------------------------------------------------- sampling parameters

// Token ids of `text` in the runner's vocabulary.
std::vector<int> token_ids(int port, const std::string& text) {
  std::vector<int> ids;
  const json reply = body_json(post(port, "/tokenize", {{"content", text}}));
  for (const auto& t : reply["tokens"]) ids.push_back(t.get<int>());
  return ids;
}

TEST_F(RunnerTest, LogitBiasOfMinus100BansATokenAndPlus100ForcesIt) {
  // Ban the greedy first token, then the next favourite, ...: each ban moves
  // the greedy choice to a token not banned yet.
  json ban = json::object();
  std::set<int> banned;
  for (int round = 0; round < 4; ++round) {
    auto r = body_json(post(port(), "/v1/completions",
                            {{"prompt", "tell me"}, {"max_tokens", 1}, {"temperature", 0}, {"logit_bias", ban}}));
    const std::string piece = r["choices"][0]["text"];
    const auto ids = token_ids(port(), piece);
    ASSERT_EQ(ids.size(), 1u) << piece;
    EXPECT_EQ(banned.count(ids[0]), 0u) << "banned token " << ids[0] << " was emitted";
    banned.insert(ids[0]);
    ban[std::to_string(ids[0])] = -100;
  }
  // llama-server's text form: every token of "{" pushed up, so it is all the model writes.
  auto forced = body_json(post(port(), "/v1/chat/completions",
                               chat("tell me", 5, {{"logit_bias", json::array({json::array({"{", 100})})}})));
  EXPECT_EQ(forced["choices"][0]["message"]["content"], "{{{{{");
}

TEST_F(RunnerTest, LogprobsHaveTheOpenAiShapesAndAreProbabilities) {
  auto r =
      body_json(post(port(), "/v1/chat/completions", chat("tell me", 6, {{"logprobs", true}, {"top_logprobs", 3}})));
  const json& choice = r["choices"][0];
  const json& content = choice["logprobs"]["content"];
  ASSERT_EQ(content.size(), r["usage"]["completion_tokens"].get<std::size_t>()) << r.dump();
  std::string text;
  for (const auto& t : content) {
    text += t["token"].get<std::string>();
    const double lp = t["logprob"];
    EXPECT_LE(lp, 0.0);
    ASSERT_EQ(t["top_logprobs"].size(), 3u);
    double mass = 0;
    for (const auto& alt : t["top_logprobs"]) mass += std::exp(alt["logprob"].get<double>());
    EXPECT_LE(mass, 1.0 + 1e-4);
    // Greedy: the chosen token is the likeliest one.
    EXPECT_EQ(t["top_logprobs"][0]["token"], t["token"]);
    EXPECT_NEAR(t["top_logprobs"][0]["logprob"].get<double>(), lp, 1e-5);
    EXPECT_EQ(t["bytes"].size(), t["token"].get<std::string>().size());
  }
  EXPECT_EQ(text, choice["message"]["content"]);

  // Streamed: the chunks' logprobs cover the same tokens.
  auto s = post(port(), "/v1/chat/completions", chat("tell me", 6, {{"logprobs", true}, {"stream", true}}));
  std::string streamed;
  for (const auto& data : sse_data(s->body)) {
    if (data == "[DONE]") break;
    const json c = json::parse(data)["choices"][0];
    if (c["logprobs"].is_object()) {
      for (const auto& t : c["logprobs"]["content"]) streamed += t["token"].get<std::string>();
    }
  }
  EXPECT_EQ(streamed, text);

  // Legacy completions: logprobs is a count; llama-server: n_probs.
  auto legacy = body_json(
      post(port(), "/v1/completions", {{"prompt", "tell me"}, {"max_tokens", 4}, {"temperature", 0}, {"logprobs", 2}}));
  const json& lp = legacy["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 4u) << legacy.dump();
  EXPECT_EQ(lp["token_logprobs"].size(), 4u);
  EXPECT_EQ(lp["top_logprobs"][0].size(), 2u);
  EXPECT_EQ(lp["text_offset"][1].get<std::size_t>(), lp["tokens"][0].get<std::string>().size());
  auto llama = body_json(
      post(port(), "/completion", {{"prompt", "tell me"}, {"n_predict", 3}, {"temperature", 0}, {"n_probs", 2}}));
  ASSERT_EQ(llama["completion_probabilities"].size(), 3u) << llama.dump();
  EXPECT_EQ(llama["completion_probabilities"][0]["top_logprobs"].size(), 2u);
}

TEST_F(RunnerTest, PenaltiesChangeARepetitiveGreedyOutput) {
  auto distinct = [&](const std::string& text) {
    auto ids = token_ids(port(), text);
    std::sort(ids.begin(), ids.end());
    return std::unique(ids.begin(), ids.end()) - ids.begin();
  };
  const std::string plain =
      body_json(post(port(), "/v1/chat/completions", chat("again", 40)))["choices"][0]["message"]["content"];
  // (A presence penalty of 2, OpenAI's maximum, is smaller than the random
  // model's lead for its favourite token: it runs below, with the others.)
  for (const json& extra :
       {json{{"frequency_penalty", 2}}, json{{"repeat_penalty", 3}, {"repeat_last_n", -1}},
        json{{"dry_multiplier", 5}, {"dry_allowed_length", 1}, {"dry_sequence_breakers", json::array({"@"})}}}) {
    const std::string penalised =
        body_json(post(port(), "/v1/chat/completions", chat("again", 40, extra)))["choices"][0]["message"]["content"];
    EXPECT_NE(penalised, plain) << extra.dump();
    EXPECT_GE(distinct(penalised), distinct(plain)) << extra.dump() << "\n" << plain << "\n" << penalised;
  }
  // The other samplers run (sampled, seeded: reproducible).
  for (const json& extra :
       {json{{"presence_penalty", 2}}, json{{"typical_p", 0.5}}, json{{"xtc_probability", 1}, {"xtc_threshold", 0.01}},
        json{{"mirostat", 1}}, json{{"mirostat", 2}, {"mirostat_tau", 3}}}) {
    json body = chat("again", 10, extra);
    body["temperature"] = 0.8;
    body["seed"] = 11;
    auto a = post(port(), "/v1/chat/completions", body);
    auto b = post(port(), "/v1/chat/completions", body);
    ASSERT_EQ(a->status, 200) << extra.dump() << a->body;
    EXPECT_EQ(body_json(a)["choices"][0]["message"]["content"], body_json(b)["choices"][0]["message"]["content"])
        << extra.dump();
  }
}

// ---------------------------------------------------------------- real templates: tools and reasoning

json weather_tools() {
  return json::array({{{"type", "function"},
                       {"function",
                        {{"name", "get_weather"},
                         {"description", "Current weather in a city"},
                         {"parameters",
                          {{"type", "object"},
                           {"properties", {{"city", {{"type", "string"}, {"enum", {"Paris", "London"}}}}}},
                           {"required", {"city"}}}}}}}});
}

// The Llama 3.1 template writes a call as a JSON object; the grammar lets the
// model write text first, so the random-weight model is nudged to "{" and the
// grammar does the rest.
json forced_call(bool stream) {
  json b{{"messages", json::array({{{"role", "user"}, {"content", "Weather in Paris?"}}})},
         {"tools", weather_tools()},
         {"tool_choice", "required"},
         {"parallel_tool_calls", false},
         {"logit_bias", json::array({json::array({"{", 100})})},
         {"max_tokens", 200},
         {"temperature", 0},
         {"stream", stream}};
  return b;
}

class ToolRunnerTest : public SharedRunnerTest<ToolRunnerTest> {
 public:
  static Runner* start() {
    return new Runner(templated_test_model(kBinary, "meta-llama-Llama-3.1-8B-Instruct"),
                      {"--ctx", "1024", "--parallel", "2", "--alias", "tools"});
  }
};

TEST_F(ToolRunnerTest, PropsShowTheTemplateAndItsCapabilities) {
  const json p = body_json(http_request(port(), "GET", "/props"));
  EXPECT_NE(p["chat_template"].get<std::string>().find("<|start_header_id|>"), std::string::npos);
  EXPECT_TRUE(p["chat_template_caps"]["supports_tools"].get<bool>());
  EXPECT_TRUE(p["chat_template_caps"]["supports_tool_calls"].get<bool>());
}

TEST_F(ToolRunnerTest, ForcedToolCallIsParsedIntoToolCallsMatchingTheSchema) {
  auto r = post(port(), "/v1/chat/completions", forced_call(false));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json choice = body_json(r)["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "tool_calls") << r->body;
  EXPECT_TRUE(choice["message"]["content"].is_null()) << r->body;
  ASSERT_EQ(choice["message"]["tool_calls"].size(), 1u) << r->body;
  const json call = choice["message"]["tool_calls"][0];
  EXPECT_EQ(call["type"], "function");
  EXPECT_TRUE(call["id"].get<std::string>().starts_with("call_"));
  EXPECT_EQ(call["function"]["name"], "get_weather");
  const json args = json::parse(call["function"]["arguments"].get<std::string>());
  ASSERT_TRUE(args.is_object()) << call.dump();
  EXPECT_TRUE(args["city"] == "Paris" || args["city"] == "London") << call.dump();
}

TEST_F(ToolRunnerTest, StreamedToolCallDeltasAssembleToTheSameCall) {
  const json whole = body_json(post(port(), "/v1/chat/completions", forced_call(false)))["choices"][0]["message"];
  auto r = post(port(), "/v1/chat/completions", forced_call(true));
  ASSERT_TRUE(r && r->status == 200);
  std::string id;
  std::string name;
  std::string arguments;
  std::string finish;
  std::string content;
  for (const auto& data : sse_data(r->body)) {
    if (data == "[DONE]") break;
    const json chunk = json::parse(data);
    const json& c = chunk["choices"][0];
    if (!c["finish_reason"].is_null()) finish = c["finish_reason"];
    if (c["delta"].contains("content") && c["delta"]["content"].is_string()) content += c["delta"]["content"];
    if (!c["delta"].contains("tool_calls")) continue;
    const json& d = c["delta"]["tool_calls"][0];
    EXPECT_EQ(d["index"], 0);
    if (d.contains("id")) id += d["id"].get<std::string>();
    if (d["function"].contains("name")) name += d["function"]["name"].get<std::string>();
    arguments += d["function"]["arguments"].get<std::string>();
  }
  EXPECT_EQ(finish, "tool_calls");
  EXPECT_EQ(content, "");
  EXPECT_TRUE(id.starts_with("call_"));
  EXPECT_EQ(name, "get_weather");
  EXPECT_EQ(json::parse(arguments), json::parse(whole["tool_calls"][0]["function"]["arguments"].get<std::string>()));
}

TEST_F(ToolRunnerTest, ToolResultGoesBackAndRendersInTheNextTurn) {
  const json call = body_json(post(port(), "/v1/chat/completions", forced_call(false)))["choices"][0]["message"];
  ASSERT_TRUE(call.contains("tool_calls")) << call.dump();
  json next{{"messages", json::array({{{"role", "user"}, {"content", "Weather in Paris?"}},
                                      call,
                                      {{"role", "tool"},
                                       {"tool_call_id", call["tool_calls"][0]["id"]},
                                       {"content", "{\"temperature_c\": 21, \"sky\": \"sunny\"}"}}})},
            {"tools", weather_tools()},
            {"max_tokens", 6},
            {"temperature", 0}};
  auto prompt = body_json(post(port(), "/apply-template", next))["prompt"].get<std::string>();
  EXPECT_NE(prompt.find("ipython"), std::string::npos) << prompt;  // Llama 3.1's tool-result role
  EXPECT_NE(prompt.find("sunny"), std::string::npos) << prompt;
  auto r = post(port(), "/v1/chat/completions", next);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  // A named tool_choice forces that function.
  json named = forced_call(false);
  named["tool_choice"] = {{"type", "function"}, {"function", {{"name", "get_weather"}}}};
  const json n = body_json(post(port(), "/v1/chat/completions", named));
  EXPECT_EQ(n["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "get_weather") << n.dump();
}

TEST(RunnerTemplates, ThinkingArrivesInReasoningContentNeverInContent) {
  // DeepSeek-R1's template opens the thinking block in the generation prompt:
  // whatever the model writes next is its reasoning.
  Runner runner(templated_test_model(kBinary, "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B"),
                {"--ctx", "512", "--parallel", "1"});
  ASSERT_TRUE(runner.ready()) << runner.log();
  const json whole = body_json(post(runner.port(), "/v1/chat/completions", chat("2+2?", 10)));
  const json& message = whole["choices"][0]["message"];
  EXPECT_FALSE(message["reasoning_content"].get<std::string>().empty()) << whole.dump();
  EXPECT_EQ(message["content"], "") << whole.dump();
  auto r = post(runner.port(), "/v1/chat/completions", chat("2+2?", 10, {{"stream", true}}));
  ASSERT_TRUE(r && r->status == 200);
  std::string reasoning;
  for (const auto& data : sse_data(r->body)) {
    if (data == "[DONE]") break;
    const json d = json::parse(data)["choices"][0]["delta"];
    if (d.contains("content")) EXPECT_EQ(d["content"], "") << data;
    if (d.contains("reasoning_content")) reasoning += d["reasoning_content"].get<std::string>();
  }
  EXPECT_EQ(reasoning, message["reasoning_content"]);
  // /props says the template thinks.
  EXPECT_TRUE(
      body_json(http_request(runner.port(), "GET", "/props"))["chat_template_caps"]["supports_thinking"].get<bool>());

  // A thinking budget: after 3 tokens the end tag is forced, and the answer follows.
  const json budget =
      body_json(post(runner.port(), "/v1/chat/completions", chat("2+2?", 24, {{"reasoning_budget_tokens", 3}})));
  const json& limited = budget["choices"][0]["message"];
  const auto n_reasoning = token_ids(runner.port(), limited["reasoning_content"].get<std::string>()).size();
  EXPECT_GE(n_reasoning, 1u) << budget.dump();
  EXPECT_LE(n_reasoning, 5u) << budget.dump();
  EXPECT_FALSE(limited["content"].get<std::string>().empty()) << budget.dump();
}

// Grammar checks cost per vocabulary entry: the 32k-token SentencePiece model
// keeps 50 constrained generations quick under sanitizers.
class LlamaRunnerTest : public SharedRunnerTest<LlamaRunnerTest> {
 public:
  static Runner* start() { return new Runner(test_model("llama"), {"--ctx", "512", "--parallel", "4"}); }
};

TEST_F(LlamaRunnerTest, JsonSchemaOutputParsesAndValidatesOverManySeeds) {
  // Bounded sizes (enum, integer range, maxLength, maxItems): every sentence
  // of the grammar fits in max_tokens, so output always completes.
  const json schema = {
      {"type", "object"},
      {"properties",
       {{"grade", {{"type", "integer"}, {"minimum", 0}, {"maximum", 100}}},
        {"ok", {{"type", "boolean"}}},
        {"tag", {{"enum", {"a", "b", "c"}}}},
        {"note", {{"type", "string"}, {"maxLength", 6}}},
        {"list",
         {{"type", "array"}, {"items", {{"type", "integer"}, {"minimum", 0}, {"maximum", 9}}}, {"maxItems", 3}}}}},
      {"required", {"grade", "ok", "tag"}}};
  const int seeds = 50;
  std::atomic<int> valid{0};
  std::vector<std::thread> threads;
  std::mutex mu;
  std::vector<std::string> failures;
  // Four clients at a time: the runner batches them on its four slots.
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (int seed = w; seed < seeds; seed += 4) {
        json req = chat(
            "Grade this", 200,
            {{"temperature", 1.0},
             {"top_k", 3},
             {"seed", seed},
             {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "g"}, {"schema", schema}}}}}});
        auto r = post(port(), "/v1/chat/completions", req);
        std::lock_guard lock(mu);
        if (!r || r->status != 200) {
          failures.push_back("seed " + std::to_string(seed) + ": " + (r ? r->body : "no reply"));
          continue;
        }
        const std::string content = body_json(r)["choices"][0]["message"]["content"];
        const auto out = json::parse(content, nullptr, false);
        if (out.is_discarded()) {
          failures.push_back("seed " + std::to_string(seed) + " not JSON: " + content);
        } else if (auto v = grammar::validate(out, schema); !v) {
          failures.push_back("seed " + std::to_string(seed) + " invalid: " + v.error().message + ": " + content);
        } else {
          ++valid;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(valid.load(), seeds);
  for (const auto& f : failures) ADD_FAILURE() << f;
}

// ---------------------------------------------------------------- fill-in-the-middle

class FimRunnerTest : public SharedRunnerTest<FimRunnerTest> {
 public:
  static Runner* start() { return new Runner(test_model("qwen2", true), {"--ctx", "1024", "--parallel", "2"}); }
};

json greedy_fields(int n_predict) { return {{"n_predict", n_predict}, {"temperature", 0}, {"ignore_eos", true}}; }

// The FIM layout, as text the tokenizer maps to the control tokens.
std::string fim_text(const std::string& files, const std::string& prefix, const std::string& suffix) {
  return "<|repo_name|>myproject\n" + files + "<|file_sep|>filename\n<|fim_prefix|>" + prefix + "<|fim_suffix|>" +
         suffix + "<|fim_middle|>";
}

TEST_F(FimRunnerTest, InfillPromptIsTheFimLayoutOfTheCodeAroundTheGap) {
  json req{{"input_prefix", "#include <cstdio>\nint main() {\n"},
           {"prompt", "    int n = "},
           {"input_suffix", "}\n"},
           {"input_extra", json::array({{{"filename", "llama.h"}, {"text", "int n_threads();\n"}}})}};
  req.update(greedy_fields(8));
  auto infill = post(port(), "/infill", req);
  ASSERT_EQ(infill->status, 200) << infill->body;
  const auto i = body_json(infill);
  EXPECT_TRUE(i["content"].is_string());
  EXPECT_EQ(i["tokens_predicted"], 8);
  // The same prompt written out with the control tokens generates the same.
  const std::string layout =
      fim_text("<|file_sep|>llama.h\nint n_threads();\n", "#include <cstdio>\nint main() {\n    int n = ", "}\n");
  json same{{"prompt", layout}};
  same.update(greedy_fields(8));
  auto completion = post(port(), "/completion", same);
  ASSERT_EQ(completion->status, 200) << completion->body;
  const auto c = body_json(completion);
  EXPECT_EQ(i["tokens_evaluated"], c["tokens_evaluated"]);
  EXPECT_EQ(i["content"], c["content"]);

  // OpenAI's suffix on /v1/completions is the same gap without other files.
  auto openai = post(port(), "/v1/completions",
                     json{{"prompt", "def add(a, b):\n"},
                          {"suffix", "\nprint(add(1, 2))\n"},
                          {"max_tokens", 8},
                          {"temperature", 0},
                          {"ignore_eos", true}});
  ASSERT_EQ(openai->status, 200) << openai->body;
  json plain{{"prompt", fim_text("", "def add(a, b):\n", "\nprint(add(1, 2))\n")}};
  plain.update(greedy_fields(8));
  auto reference = post(port(), "/completion", plain);
  ASSERT_EQ(reference->status, 200);
  EXPECT_EQ(body_json(openai)["choices"][0]["text"], body_json(reference)["content"]);
  EXPECT_EQ(body_json(openai)["usage"]["prompt_tokens"], body_json(reference)["tokens_evaluated"]);
}

TEST_F(FimRunnerTest, InvalidInfillRequestsAre400) {
  // llama-server's own cases (tools/server/tests/unit/test_infill.py), and ours.
  for (const json& extra : {json::object(), json{{"filename", "ok"}}, json{{"filename", 123}},
                            json{{"filename", 123}, {"text", "abc"}}, json{{"filename", 123}, {"text", 456}}}) {
    json req{{"input_extra", json::array({extra})},
             {"input_prefix", "int main() {\n"},
             {"prompt", "  int n = "},
             {"input_suffix", "}\n"}};
    auto r = post(port(), "/infill", req);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << extra.dump() << " -> " << r->body;
    EXPECT_TRUE(body_json(r).contains("error"));
  }
  for (const json& req :
       {json{{"input_suffix", "x"}}, json{{"input_prefix", "x"}}, json{{"input_prefix", 1}, {"input_suffix", "x"}},
        json{{"input_prefix", "x"}, {"input_suffix", "y"}, {"prompt", 5}},
        json{{"input_prefix", "x"}, {"input_suffix", "y"}, {"input_extra", "z"}}}) {
    auto r = post(port(), "/infill", req);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << req.dump() << " -> " << r->body;
  }
  // suffix needs a text prompt; it has no place in chat.
  EXPECT_EQ(post(port(), "/v1/completions", json{{"prompt", json::array({1, 2, 3})}, {"suffix", "x"}})->status, 400);
  EXPECT_EQ(post(port(), "/v1/chat/completions", chat("hi", 4, {{"suffix", "x"}}))->status, 400);
  EXPECT_EQ(post(port(), "/infill", json{{"input_prefix", "a"}, {"input_suffix", "b"}, {"n_predict", 2}})->status, 200);
}

TEST_F(RunnerTest, InfillOnAModelWithoutFimTokensSaysSo) {
  auto r = post(port(), "/infill", json{{"input_prefix", "a"}, {"input_suffix", "b"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 422) << r->body;
  EXPECT_EQ(body_json(r)["error"]["code"], "infill_not_supported") << r->body;
  EXPECT_EQ(post(port(), "/v1/completions", json{{"prompt", "a"}, {"suffix", "b"}})->status, 422);
}

// ---------------------------------------------------------------- single-slot runner

class SingleSlotRunnerTest : public SharedRunnerTest<SingleSlotRunnerTest> {
 public:
  static Runner* start() {
    return new Runner(test_model("qwen2"), {"--ctx", "4096", "--parallel", "1", "--queue", "1"});
  }

 protected:
  // A stream that would run for a long time: thousands of tokens, no EOS.
  static std::string endless_stream() {
    return json{{"prompt", "Go on forever"}, {"n_predict", 4000}, {"ignore_eos", true}, {"stream", true}}.dump();
  }
};

TEST_F(SingleSlotRunnerTest, DisconnectMidStreamFreesTheSlotAtOnce) {
  {
    StreamSocket s(port());
    ASSERT_TRUE(s.send_post("/completion", endless_stream()));
    ASSERT_TRUE(s.read_until("\"content\"", std::chrono::seconds(30))) << s.received();
    EXPECT_EQ(metric(port(), "llmd_runner_slots_busy"), 1);
  }  // hang up
  const auto t0 = std::chrono::steady_clock::now();
  auto r = post(port(), "/completion", {{"prompt", "next"}, {"n_predict", 4}});
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_LT(waited, std::chrono::seconds(5));
  EXPECT_EQ(metric(port(), "llmd_runner_slots_busy"), 0);
}

TEST_F(SingleSlotRunnerTest, QueueFullIs503WithRetryAfter) {
  StreamSocket running(port());
  ASSERT_TRUE(running.send_post("/completion", endless_stream()));
  ASSERT_TRUE(running.read_until("\"content\"", std::chrono::seconds(30))) << running.received();
  StreamSocket queued(port());  // takes the one queue place
  ASSERT_TRUE(queued.send_post("/completion", endless_stream()));
  // Wait until the second request sits in the engine's queue (else the probe
  // below could take the queue place itself).
  bool queued_up = false;
  for (int i = 0; i < 500 && !queued_up; ++i) {
    queued_up = metric(port(), "llmd_runner_queue_length") == 1;
    if (!queued_up) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(queued_up);
  auto r = post(port(), "/completion", {{"prompt", "me too"}, {"n_predict", 4}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  EXPECT_EQ(body_json(r)["error"]["code"], "queue_full");
  EXPECT_FALSE(r->header("retry-after").empty());
  running.hang_up();
  queued.hang_up();
  // Once both streams are gone the slot serves again. A hang-up is noticed at
  // the stream's next write (the queued one's when it gets the slot): a few
  // milliseconds, so retry briefly.
  int status = 0;
  for (int i = 0; i < 100 && status != 200; ++i) {
    auto again = post(port(), "/completion", {{"prompt", "me too"}, {"n_predict", 4}});
    status = again ? again->status : 0;
    if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(status, 200);
}

TEST_F(SingleSlotRunnerTest, SlotsShowTheRunningRequestWithoutItsText) {
  auto idle = http_request(port(), "GET", "/slots");
  ASSERT_EQ(idle->status, 200) << idle->body;
  auto slots = body_json(idle);
  ASSERT_EQ(slots.size(), 1u);
  EXPECT_EQ(slots[0]["id"], 0);
  EXPECT_EQ(slots[0]["n_ctx"], 4096);
  StreamSocket running(port());
  ASSERT_TRUE(running.send_post("/completion", endless_stream()));
  ASSERT_TRUE(running.read_until("\"content\"", std::chrono::seconds(30))) << running.received();
  auto busy = body_json(http_request(port(), "GET", "/slots"));
  ASSERT_EQ(busy.size(), 1u);
  EXPECT_EQ(busy[0]["is_processing"], true) << busy.dump();
  EXPECT_GT(busy[0]["n_prompt_tokens"].get<int>(), 0);
  const auto& next = busy[0]["next_token"][0];
  EXPECT_GT(next["n_decoded"].get<int>(), 0);
  EXPECT_EQ(next["n_remain"].get<int>() + next["n_decoded"].get<int>(), 4000);
  EXPECT_FALSE(busy[0].contains("prompt")) << "a slot's text belongs to its caller";
  EXPECT_FALSE(busy[0].contains("generated"));
  running.hang_up();
  bool freed = false;
  for (int i = 0; i < 200 && !freed; ++i) {
    const auto after = body_json(http_request(port(), "GET", "/slots"));
    freed = after[0]["is_processing"] == false;
    if (freed) {
      // The finished request's budget does not linger on the idle slot.
      EXPECT_EQ(after[0]["next_token"][0]["n_remain"], -1);
      EXPECT_EQ(after[0]["next_token"][0]["n_decoded"], 0);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  EXPECT_TRUE(freed);
}

TEST(RunnerLifecycle, NoSlotsFlagAnd501AndNPredictCapsEveryRequest) {
  Runner r(test_model("qwen2"), {"--ctx", "256", "--no-slots", "--n-predict", "5"});
  ASSERT_TRUE(r.ready()) << r.log();
  auto slots = http_request(r.port(), "GET", "/slots");
  ASSERT_TRUE(slots);
  EXPECT_EQ(slots->status, 501) << slots->body;
  EXPECT_EQ(body_json(slots)["error"]["code"], "not_supported");
  const auto predicted = [&](json extra) {
    json body{{"prompt", "count"}, {"ignore_eos", true}};
    body.update(extra);
    return body_json(post(r.port(), "/completion", body))["tokens_predicted"];
  };
  EXPECT_EQ(predicted(json::object()), 5) << "no limit given: the runner's";
  EXPECT_EQ(predicted({{"n_predict", 3}}), 3);
  EXPECT_EQ(predicted({{"n_predict", 50}}), 5) << "a larger limit is capped";
  EXPECT_EQ(predicted({{"n_predict", -1}}), 5);
}

TEST(RunnerLifecycle, ReasoningFlagSetsWhetherChatsThinkUnlessTheRequestSays) {
  const fs::path qwen3 = fs::path(LLMD_SOURCE_DIR) / "engine/llama/templates/Qwen-Qwen3-0.6B.jinja";
  Runner r(test_model("qwen2"), {"--ctx", "256", "--chat-template", qwen3.string(), "--reasoning", "off"});
  ASSERT_TRUE(r.ready()) << r.log();
  const json ask{{"messages", json::array({{{"role", "user"}, {"content", "What is today?"}}})}};
  const std::string off = body_json(post(r.port(), "/apply-template", ask))["prompt"];
  EXPECT_TRUE(off.ends_with("<|im_start|>assistant\n<think>\n\n</think>\n\n")) << off;
  json on = ask;
  on["chat_template_kwargs"] = {{"enable_thinking", true}};
  const std::string thinking = body_json(post(r.port(), "/apply-template", on))["prompt"];
  EXPECT_TRUE(thinking.ends_with("<|im_start|>assistant\n")) << thinking;
}

// ---------------------------------------------------------------- own processes

TEST(RunnerLifecycle, HealthIsLoadingThenOk) {
  Runner r(test_model("qwen2"), {"--ctx", "256"}, {{"LLMD_RUNNER_TEST_LOAD_DELAY_MS", "2000"}}, false);
  ASSERT_TRUE(wait_for_http(r.port(), "/health", 503, std::chrono::seconds(20))) << r.log();
  auto h = http_request(r.port(), "GET", "/health");
  ASSERT_TRUE(h);
  if (h->status == 503) {
    EXPECT_EQ(body_json(h)["status"], "loading model");
    auto models = http_request(r.port(), "GET", "/v1/models");
    if (models->status == 503) {  // still loading (not a race with the load finishing)
      EXPECT_EQ(body_json(models)["error"]["code"], "loading_model");
      EXPECT_FALSE(models->header("retry-after").empty());
    }
  }
  ASSERT_TRUE(wait_for_http(r.port(), "/health", 200, std::chrono::seconds(60))) << r.log();
  EXPECT_EQ(body_json(http_request(r.port(), "GET", "/health"))["status"], "ok");
  EXPECT_EQ(http_request(r.port(), "GET", "/v1/models")->status, 200);
  // SIGTERM: a clean, prompt exit.
  r.process().signal(SIGTERM);
  EXPECT_EQ(r.process().wait(std::chrono::seconds(20)), 0) << r.log();
}

TEST(RunnerLifecycle, ApiKeyIsRequiredEverywhereButHealth) {
  Runner r(test_model("qwen2"), {"--ctx", "256", "--api-key", "s3cret-key"});
  ASSERT_TRUE(r.ready()) << r.log();
  EXPECT_EQ(http_request(r.port(), "GET", "/health")->status, 200);
  auto none = http_request(r.port(), "GET", "/v1/models");
  EXPECT_EQ(body_json(none)["error"]["type"], "authentication_error") << none->body;
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(body_json(none)["error"]["code"], "invalid_api_key");
  EXPECT_EQ(http_request(r.port(), "GET", "/v1/models", "", {{"Authorization", "Bearer wrong"}})->status, 401);
  EXPECT_EQ(post(r.port(), "/v1/chat/completions", chat("hi", 2), {{"Authorization", "Bearer s3cret-key-x"}})->status,
            401);
  EXPECT_EQ(http_request(r.port(), "GET", "/v1/models", "", {{"Authorization", "Bearer s3cret-key"}})->status, 200);
  EXPECT_EQ(post(r.port(), "/v1/chat/completions", chat("hi", 2), {{"Authorization", "Bearer s3cret-key"}})->status,
            200);
  // x-api-key (Anthropic-style clients) carries the same key.
  EXPECT_EQ(http_request(r.port(), "GET", "/v1/models", "", {{"x-api-key", "s3cret-key"}})->status, 200);
  EXPECT_EQ(http_request(r.port(), "GET", "/v1/models", "", {{"x-api-key", "s3cret"}})->status, 401);
}

TEST(RunnerLifecycle, EmbeddingsModeReturnsNormalisedVectors) {
  Runner r(test_model("qwen2"), {"--ctx", "256", "--embeddings", "--pooling", "mean"});
  ASSERT_TRUE(r.ready()) << r.log();
  auto e = post(r.port(), "/v1/embeddings", {{"input", {"hello", "你好"}}, {"model", "tiny"}});
  ASSERT_EQ(e->status, 200) << e->body;
  const auto j = body_json(e);
  ASSERT_EQ(j["data"].size(), 2u);
  const auto& v = j["data"][1]["embedding"];
  ASSERT_EQ(v.size(), 64u);
  double norm = 0;
  for (const auto& x : v) norm += x.get<double>() * x.get<double>();
  EXPECT_NEAR(norm, 1.0, 1e-3);
  EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 1);
  // Completions are not served in embeddings mode.
  EXPECT_EQ(post(r.port(), "/completion", {{"prompt", "x"}})->status / 100, 4);
}

TEST(RunnerLifecycle, EmbeddingInputsMayBeTokenIdsOrMixedAndLlamaServersShapeToo) {
  Runner r(test_model("qwen2"), {"--ctx", "256", "--embeddings", "--pooling", "mean"});
  ASSERT_TRUE(r.ready()) << r.log();
  const json ids = body_json(post(r.port(), "/tokenize", {{"content", "hello world"}}))["tokens"];
  ASSERT_EQ(ids.size(), 2u);
  auto text = body_json(post(r.port(), "/v1/embeddings", {{"input", "hello world"}}));
  // The same text as token ids, and as ids mixed with text, is the same input.
  auto as_ids = body_json(post(r.port(), "/v1/embeddings", {{"input", ids}}));
  auto mixed = body_json(post(r.port(), "/v1/embeddings", {{"input", {ids[0], " world"}}}));
  EXPECT_EQ(as_ids["data"][0]["embedding"], text["data"][0]["embedding"]);
  EXPECT_EQ(mixed["data"][0]["embedding"], text["data"][0]["embedding"]);
  EXPECT_EQ(as_ids["usage"]["prompt_tokens"], 2);
  // Several inputs of each form.
  auto several = post(r.port(), "/v1/embeddings", {{"input", {json("hello world"), ids, json{ids[0], " world"}}}});
  ASSERT_EQ(several->status, 200) << several->body;
  ASSERT_EQ(body_json(several)["data"].size(), 3u);
  EXPECT_EQ(body_json(several)["data"][2]["embedding"], text["data"][0]["embedding"]);
  EXPECT_EQ(body_json(several)["usage"]["prompt_tokens"], 6);

  // llama-server's own shape: [{index, embedding: [[...]]}]; embd_normalize -1 leaves the vector as pooled.
  auto raw = post(r.port(), "/embeddings", {{"content", "hello world"}, {"embd_normalize", -1}});
  ASSERT_EQ(raw->status, 200) << raw->body;
  const json vec = body_json(raw)[0]["embedding"][0];
  ASSERT_EQ(vec.size(), 64u);
  double norm = 0;
  for (const auto& x : vec) norm += x.get<double>() * x.get<double>();
  EXPECT_GT(std::fabs(norm - 1.0), 1e-3) << "not normalised";
  for (std::size_t i = 0; i < vec.size(); ++i) {
    EXPECT_NEAR(vec[i].get<double>() / std::sqrt(norm), text["data"][0]["embedding"][i].get<double>(), 1e-4);
  }
  EXPECT_EQ(body_json(post(r.port(), "/embedding", {{"input", "hello world"}}))[0]["embedding"][0].size(), 64u);

  for (const json& bad :
       {json{{"input", ""}}, json{{"input", {1, 2, -3}}}, json{{"input", {1, nullptr}}}, json{{"input", {151936}}},
        json{{"input", json::array()}}, json{{"input", {1}}, {"embd_normalize", "2"}}}) {
    auto e = post(r.port(), "/v1/embeddings", bad);
    EXPECT_EQ(e->status, 400) << bad.dump() << " " << e->body;
  }
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "This is a test ";
  auto too_long = post(r.port(), "/v1/embeddings", {{"input", long_text}});
  EXPECT_EQ(too_long->status, 400);
  EXPECT_NE(body_json(too_long)["error"]["message"].get<std::string>().find("too large"), std::string::npos);
}

TEST(RunnerLifecycle, PoolingNoneGivesAVectorPerTokenOnlyInLlamaServersShape) {
  Runner r(test_model("qwen2"), {"--ctx", "256", "--embeddings", "--pooling", "none"});
  ASSERT_TRUE(r.ready()) << r.log();
  auto e = post(r.port(), "/embeddings", {{"input", "hello hello hello"}});
  ASSERT_EQ(e->status, 200) << e->body;
  const json per_token = body_json(e)[0]["embedding"];
  const auto n_tokens = body_json(post(r.port(), "/tokenize", {{"content", "hello hello hello"}}))["tokens"].size();
  ASSERT_EQ(per_token.size(), n_tokens);
  EXPECT_EQ(per_token[0].size(), 64u);
  EXPECT_NE(per_token[0], per_token[1]) << "each token has its own vector";
  auto oai = post(r.port(), "/v1/embeddings", {{"input", "hello"}});
  EXPECT_EQ(oai->status, 400) << "one vector per token is not OpenAI's shape";
}

TEST_F(RunnerTest, CompletionPromptsMayMixTokenIdsAndText) {
  const json ids = body_json(post(port(), "/tokenize", {{"content", "Once upon"}}))["tokens"];
  auto complete = [&](const json& prompt) {
    auto c = post(port(), "/completion", {{"prompt", prompt}, {"n_predict", 6}, {"temperature", 0}});
    EXPECT_EQ(c->status, 200) << c->body;
    return body_json(c);
  };
  const json text = complete("Once upon a time");
  const json mixed = complete(json{ids[0], ids[1], " a time"});
  EXPECT_EQ(mixed["content"], text["content"]);
  EXPECT_EQ(mixed["tokens_evaluated"], text["tokens_evaluated"]);
  EXPECT_EQ(post(port(), "/completion", {{"prompt", {1, "x", -5}}})->status, 400);
  EXPECT_EQ(post(port(), "/completion", {{"prompt", {1, "x", 99999999}}})->status, 400);
}

// Documents of llama.cpp's own rerank test (tools/server/tests/unit/test_rerank.py).
const std::vector<std::string> kRerankDocuments = {
    "A machine is a physical system that uses power to apply forces and control movement to perform an action.",
    "Learning is the process of acquiring new understanding, knowledge, behaviors, skills, values, attitudes.",
    "Machine learning is a field of study in artificial intelligence concerned with statistical algorithms.",
    "Paris, capitale de la France, est une grande ville europeenne et un centre mondial de l'art.",
};

TEST(RunnerLifecycle, RerankScoresEveryDocumentInJinaAndTeiShapes) {
  Runner r(generated_model("qwen3-reranker", {"--arch", "qwen3", "--reranker"}),
           {"--ctx", "512", "--reranking", "--alias", "ranker"});
  ASSERT_TRUE(r.ready()) << r.log();
  auto a = post(r.port(), "/rerank", {{"query", "Machine learning is"}, {"documents", kRerankDocuments}});
  ASSERT_EQ(a->status, 200) << a->body;
  const json ja = body_json(a);
  EXPECT_EQ(ja["object"], "list");
  EXPECT_EQ(ja["model"], "ranker");
  ASSERT_EQ(ja["results"].size(), 4u);
  std::set<int> indices;
  std::set<double> distinct;
  double previous = 2;
  for (const auto& d : ja["results"]) {
    indices.insert(d["index"].get<int>());
    const double score = d["relevance_score"].get<double>();
    EXPECT_GE(score, 0.0);  // P("yes") of the yes/no head
    EXPECT_LE(score, 1.0);
    EXPECT_LE(score, previous) << "most relevant first";
    previous = score;
    distinct.insert(score);
  }
  EXPECT_EQ(indices, (std::set<int>{0, 1, 2, 3}));
  EXPECT_GT(distinct.size(), 1u) << "the document must change the score";

  // The usage counts exactly the tokens of the four filled rerank prompts,
  // tokenized as llama-server does (one text, control tokens parsed).
  const std::string tmpl =
      "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
      "provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n<Instruct>: "
      "Given a web search query, retrieve relevant passages that answer the query\n<Query>: Machine learning is\n"
      "<Document>: ";
  std::size_t expected_tokens = 0;
  for (const auto& d : kRerankDocuments) {
    const std::string prompt = tmpl + d + "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
    auto t = post(r.port(), "/tokenize", {{"content", prompt}, {"parse_special", true}});
    expected_tokens += body_json(t)["tokens"].size();
  }
  EXPECT_EQ(ja["usage"]["prompt_tokens"].get<std::size_t>(), expected_tokens);
  EXPECT_EQ(ja["usage"]["total_tokens"], ja["usage"]["prompt_tokens"]);

  // TEI's shape on /v1/rerank: a bare array, the same order and scores, texts on request.
  auto t = post(r.port(), "/v1/rerank",
                {{"query", "Machine learning is"}, {"texts", kRerankDocuments}, {"return_text", true}});
  ASSERT_EQ(t->status, 200) << t->body;
  const json jt = body_json(t);
  ASSERT_TRUE(jt.is_array());
  ASSERT_EQ(jt.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(jt[i]["index"], ja["results"][i]["index"]);
    EXPECT_FLOAT_EQ(jt[i]["score"].get<float>(), ja["results"][i]["relevance_score"].get<float>());
    EXPECT_EQ(jt[i]["text"], kRerankDocuments[jt[i]["index"].get<std::size_t>()]);
  }

  // top_n keeps the best; more than there are keeps all.
  auto top =
      post(r.port(), "/reranking", {{"query", "Machine learning is"}, {"documents", kRerankDocuments}, {"top_n", 2}});
  ASSERT_EQ(body_json(top)["results"].size(), 2u);
  EXPECT_EQ(body_json(top)["results"][0], ja["results"][0]);
  auto all = post(r.port(), "/v1/reranking",
                  {{"query", "Machine learning is"}, {"documents", kRerankDocuments}, {"top_n", 99}});
  EXPECT_EQ(body_json(all)["results"].size(), 4u);

  // Bad requests are 400 with an OpenAI-shaped error, and the runner keeps serving.
  for (const json& bad :
       {json{{"query", "q"}, {"documents", json::array()}}, json{{"query", "q"}, {"documents", nullptr}},
        json{{"query", "q"}, {"documents", 123}}, json{{"query", "q"}, {"documents", {1, 2, 3}}},
        json{{"documents", {"a"}}}, json{{"query", 5}, {"documents", {"a"}}},
        json{{"query", "q"}, {"documents", {"a"}}, {"top_n", -1}}}) {
    auto e = post(r.port(), "/rerank", bad);
    EXPECT_EQ(e->status, 400) << bad.dump() << " " << e->body;
    EXPECT_EQ(body_json(e)["error"]["type"], "invalid_request_error") << bad.dump();
  }
  auto again = post(r.port(), "/rerank", {{"query", "Machine learning is"}, {"documents", kRerankDocuments}});
  EXPECT_EQ(body_json(again)["results"], ja["results"]) << "scores are deterministic";
  // A reranker does not generate.
  EXPECT_EQ(post(r.port(), "/completion", {{"prompt", "x"}})->status / 100, 4);
}

TEST_F(RunnerTest, RerankOnAGenerativeRunnerIs501NotSupported) {
  auto r = post(port(), "/rerank", {{"query", "q"}, {"documents", {"a"}}});
  ASSERT_EQ(r->status, 501) << r->body;
  EXPECT_EQ(body_json(r)["error"]["type"], "not_supported_error");
}

TEST(RunnerLifecycle, LoraAdaptersLoadFromFlagsAndScalePerRequestOrForAll) {
  const fs::path base = test_model("qwen2");
  const fs::path adapter = base.parent_path() / "runner-tiny-qwen2-lora.gguf";
  if (!fs::exists(adapter)) {
    const fs::path tmp = base.parent_path() / ("tmp-" + std::to_string(::getpid()) + "-lora.gguf");
    Process gen({kBinary, "dev", "make-test-lora", "--base", base.string(), "--out", tmp.string(), "--seed", "3"},
                base.parent_path(), base.parent_path() / "gen-lora.log");
    ASSERT_EQ(gen.wait(std::chrono::seconds(60)), 0) << gen.log();
    fs::rename(tmp, adapter);
  }
  Runner r(base, {"--ctx", "256", "--parallel", "2", "--lora-scaled", adapter.string(), "0.5", "--lora",
                  adapter.string(), "--lora-init-without-apply"});
  ASSERT_TRUE(r.ready()) << r.log();
  auto list = http_request(r.port(), "GET", "/lora-adapters");
  ASSERT_EQ(list->status, 200);
  const json adapters = body_json(list);
  ASSERT_EQ(adapters.size(), 2u);
  EXPECT_EQ(adapters[0]["id"], 0);
  EXPECT_EQ(adapters[1]["path"], adapter.string());
  EXPECT_EQ(adapters[0]["scale"], 0.0) << "--lora-init-without-apply";

  auto complete = [&](const json& extra) {
    json body{{"prompt", "Look in thy glass"}, {"n_predict", 8}, {"temperature", 0}, {"ignore_eos", true}};
    body.update(extra);
    auto c = post(r.port(), "/completion", body);
    EXPECT_EQ(c->status, 200) << c->body;
    return body_json(c);
  };
  const std::string plain = complete(json::object())["content"];
  const json on = complete({{"lora", {{{"id", 1}, {"scale", 1.0}}}}});
  EXPECT_NE(on["content"], plain);
  EXPECT_EQ(on["generation_settings"]["lora"], (json{{{"id", 1}, {"scale", 1.0}}}));

  // POST sets the defaults for requests without a list; unlisted adapters go off.
  auto set = post(r.port(), "/lora-adapters", json::array({{{"id", 1}, {"scale", 1.0}}}));
  ASSERT_EQ(set->status, 200) << set->body;
  EXPECT_EQ(body_json(set)["success"], true);
  EXPECT_EQ(complete(json::object())["content"], on["content"]);
  EXPECT_EQ(body_json(http_request(r.port(), "GET", "/lora-adapters"))[1]["scale"], 1.0);

  auto bad_id = post(r.port(), "/completion", {{"prompt", "x"}, {"lora", {{{"id", 9}, {"scale", 1}}}}});
  EXPECT_EQ(bad_id->status, 400);
  EXPECT_NE(body_json(bad_id)["error"]["message"].get<std::string>().find("id 9"), std::string::npos);
  EXPECT_EQ(post(r.port(), "/lora-adapters", {{"id", 1}, {"scale", 1}})->status, 400) << "must be an array";
  EXPECT_EQ(body_json(http_request(r.port(), "GET", "/lora-adapters"))[1]["scale"], 1.0)
      << "a refused change changes nothing";
}

TEST(RunnerLifecycle, AnAdapterThatDoesNotFitExitsWithOneClearLine) {
  const fs::path model = test_model("qwen2");
  TempDir dir;
  Process p({kBinary, "runner", "--model", model.string(), "--port", std::to_string(free_port()), "--lora",
             model.string(), "--log-level", "warn"},
            dir.path(), dir / "runner.log");
  EXPECT_EQ(p.wait(std::chrono::seconds(60)), 1) << p.log();
  EXPECT_NE(p.log().find("cannot load the LoRA adapter"), std::string::npos) << p.log();
}

// Writes a GGUF header with one tensor whose shape is `dims`.
std::string gguf_with_tensor(std::vector<uint64_t> dims) {
  std::string b = "GGUF";
  auto u32 = [&](uint32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); };
  auto u64 = [&](uint64_t v) { b.append(reinterpret_cast<const char*>(&v), 8); };
  u32(3);   // version
  u64(1);   // tensors
  u64(1);   // kv pairs
  u64(20);  // key
  b += "general.architecture";
  u32(8);  // string
  u64(5);
  b += "qwen2";
  u64(18);
  b += "token_embd.weight";
  u32(static_cast<uint32_t>(dims.size()));
  for (auto d : dims) u64(d);
  u32(0);  // F32
  u64(0);  // offset
  b.resize((b.size() + 31) / 32 * 32, '\0');
  b += std::string(64, '\0');
  return b;
}

TEST(RunnerLifecycle, BadGgufFilesExitCleanlyWithOneClearLine) {
  TempDir dir;
  const std::string good = read_file(test_model("qwen2"));
  ASSERT_GT(good.size(), 1000u);
  std::vector<std::pair<std::string, std::string>> files = {
      {"truncated.gguf", good.substr(0, good.size() / 2)},
      {"header-only.gguf", good.substr(0, 24)},
      {"wrong-magic.gguf", "GGUX" + good.substr(4)},
      {"empty.gguf", ""},
      {"absurd-tensor.gguf", gguf_with_tensor({1ull << 40, 1ull << 40})},
      {"huge-dims.gguf", gguf_with_tensor({UINT64_MAX / 2})},
  };
  for (const auto& [name, content] : files) {
    write_file(dir / name, content);
    Process p({kBinary, "runner", "--model", (dir / name).string(), "--port", std::to_string(free_port()),
               "--log-level", "warn"},
              dir.path(), dir / (name + ".log"));
    const auto rc = p.wait(std::chrono::seconds(30));
    ASSERT_TRUE(rc.has_value()) << name << " did not exit";
    EXPECT_EQ(*rc, 1) << name << ": " << p.log();
    const std::string log = p.log();
    EXPECT_NE(log.find("llmd: cannot load model: "), std::string::npos) << name << ": " << log;
    EXPECT_EQ(log.find("AddressSanitizer"), std::string::npos) << log;
  }
}

// ---------------------------------------------------------------- GPU devices (issue 17)
// The Vulkan build's backend (engine/install.sh's linux-x64-vulkan variant,
// copied beside the binary) on Mesa's software Vulkan driver, lavapipe:
// ggml skips CPU-type Vulkan devices unless GGML_VK_VISIBLE_DEVICES names
// them, so these runners see lavapipe as Vulkan0 and the others do not.
// (ggml's Vulkan backend never frees its devices: tests/lsan.supp.)
const std::map<std::string, std::string> kLavapipe{
    {"GGML_VK_VISIBLE_DEVICES", "0"}, {"LSAN_OPTIONS", "suppressions=" LLMD_SOURCE_DIR "/tests/lsan.supp"}};

// 4 layers of 512 wide: ~8 MiB a layer, enough for fitting to tell layers apart.
fs::path layered_model() {
  return generated_model("llama-4x512", {"--arch", "llama", "--layers", "4", "--embd", "512", "--heads", "8",
                                         "--kv-heads", "8", "--ff", "2048"});
}

void expect_vulkan_runtime() {
  const fs::path backend = fs::path(kBinary).parent_path() / "libggml-vulkan.so";
  ASSERT_TRUE(fs::exists(backend)) << backend << " is missing: ./setup.sh test installs the Vulkan engine variant";
  ASSERT_TRUE(fs::exists("/usr/share/vulkan/icd.d/lvp_icd.x86_64.json"))
      << "lavapipe is missing: ./setup.sh test installs mesa-vulkan-drivers";
}

// Lavapipe compiles each of ggml's Vulkan pipelines on first use: minutes
// on a busy two-core machine.
json slow_completion(const Runner& r, const json& body) {
  return body_json(http_request(r.port(), "POST", "/completion", body.dump(), {{"Content-Type", "application/json"}},
                                std::chrono::minutes(5)));
}

json placement_of(const Runner& r) { return body_json(http_request(r.port(), "GET", "/props"))["placement"]; }

// What the placement projects for one device (model + context + compute), in bytes.
std::uint64_t projected_bytes(const json& placement, const std::string& device) {
  for (const json& d : placement["devices"]) {
    if (d["name"] == device) {
      return d["model_bytes"].get<std::uint64_t>() + d["context_bytes"].get<std::uint64_t>() +
             d["compute_bytes"].get<std::uint64_t>();
    }
  }
  return 0;
}

TEST(RunnerDevices, ListDevicesShowsLavapipeAsAVulkanGpuOnlyWhenVisible) {
  expect_vulkan_runtime();
  TempDir dir;
  Process visible({kBinary, "runner", "--list-devices"}, dir.path(), dir / "visible.log", kLavapipe);
  ASSERT_EQ(visible.wait(std::chrono::seconds(60)), 0) << visible.log();
  EXPECT_NE(visible.log().find("Vulkan0: llvmpipe"), std::string::npos) << visible.log();
  EXPECT_NE(visible.log().find("\"type\":\"gpu\""), std::string::npos) << visible.log();
  Process hidden({kBinary, "runner", "--list-devices"}, dir.path(), dir / "hidden.log");
  ASSERT_EQ(hidden.wait(std::chrono::seconds(60)), 0) << hidden.log();
  EXPECT_EQ(hidden.log().find("Vulkan0"), std::string::npos) << hidden.log();
  EXPECT_NE(hidden.log().find("CPU: "), std::string::npos) << hidden.log();
}

// (The tiny model: lavapipe runs a 32k-vocabulary 512-wide output layer at
// about 0.6 s a token here.)
TEST(RunnerDevices, EveryLayerOnVulkanWritesWhatTheCpuWritesAtTemperatureZero) {
  expect_vulkan_runtime();
  const fs::path model = test_model("qwen2");
  Runner cpu(model, {"--device", "none", "--ctx", "512"});
  Runner gpu(model, {"--gpu-layers", "all", "--device", "Vulkan0", "--ctx", "512"}, kLavapipe);
  ASSERT_TRUE(cpu.ready()) << cpu.log();
  ASSERT_TRUE(gpu.ready()) << gpu.log();

  const json on_cpu = placement_of(cpu);
  const json on_gpu = placement_of(gpu);
  EXPECT_EQ(on_cpu["gpu_layers"], 0) << on_cpu;
  ASSERT_EQ(on_cpu["devices"].size(), 1u) << on_cpu;
  EXPECT_EQ(on_cpu["devices"][0]["name"], "CPU");
  EXPECT_EQ(on_gpu["gpu_layers"], on_gpu["n_layer"].get<int>() + 1) << on_gpu;
  ASSERT_EQ(on_gpu["devices"].size(), 2u) << on_gpu;
  EXPECT_EQ(on_gpu["devices"][0]["name"], "Vulkan0");
  EXPECT_NE(on_gpu["devices"][0]["description"].get<std::string>().find("llvmpipe"), std::string::npos);
  EXPECT_GT(on_gpu["devices"][0]["model_bytes"].get<std::uint64_t>(), 0u) << "the layers' weights are there";
  EXPECT_GT(on_gpu["devices"][0]["memory_total"].get<std::uint64_t>(), 0u);

  for (const std::string prompt : {"The capital of France is", "def fibonacci(n):", "你好，世界"}) {
    const json body{{"prompt", prompt}, {"n_predict", 16}, {"temperature", 0}, {"n_probs", 3}};
    const json a = slow_completion(cpu, body);
    const json b = slow_completion(gpu, body);
    ASSERT_TRUE(a.contains("content") && b.contains("content")) << a << b;
    EXPECT_EQ(a["content"], b["content"]) << prompt;
    ASSERT_EQ(a["completion_probabilities"].size(), b["completion_probabilities"].size());
    for (std::size_t i = 0; i < a["completion_probabilities"].size(); ++i) {
      const json& pa = a["completion_probabilities"][i];
      const json& pb = b["completion_probabilities"][i];
      EXPECT_EQ(pa["id"], pb["id"]) << prompt << " token " << i;
      EXPECT_NEAR(pa["logprob"].get<double>(), pb["logprob"].get<double>(), 0.05) << prompt << " token " << i;
    }
  }

  const std::string metrics = http_request(gpu.port(), "GET", "/metrics")->body;
  EXPECT_NE(metrics.find("llmd_runner_gpu_layers " + std::to_string(on_gpu["gpu_layers"].get<int>())),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("llmd_runner_device_memory_bytes{device=\"Vulkan0\",kind=\"model\"}"), std::string::npos)
      << metrics;
}

// --gpu-layers auto is llama.cpp's fitting: every layer when the device has
// room; as many as keep --fit-target MiB free when it has not.
TEST(RunnerDevices, AutoPutsTheLayersThatFitBesideTheMarginOnTheDevice) {
  expect_vulkan_runtime();
  const fs::path model = layered_model();
  json roomy;
  {
    Runner r(model, {"--gpu-layers", "auto", "--fit-target", "0", "--ctx", "512"}, kLavapipe);
    ASSERT_TRUE(r.ready()) << r.log();
    roomy = placement_of(r);
  }
  const int all = roomy["n_layer"].get<int>() + 1;
  ASSERT_EQ(roomy["gpu_layers"], all) << roomy;
  const std::uint64_t free_mib = roomy["devices"][0]["memory_free"].get<std::uint64_t>() >> 20;
  const std::uint64_t needed_mib = (projected_bytes(roomy, "Vulkan0") >> 20) + 1;
  // Twelve MiB short of room for everything: about one and a half layers stay on the host.
  const std::uint64_t margin_mib = free_mib - needed_mib + 12;
  Runner tight(model, {"--gpu-layers", "auto", "--fit-target", std::to_string(margin_mib), "--ctx", "512"}, kLavapipe);
  ASSERT_TRUE(tight.ready()) << tight.log();
  const json fitted = placement_of(tight);
  EXPECT_GT(fitted["gpu_layers"].get<int>(), 0) << fitted;
  EXPECT_LT(fitted["gpu_layers"].get<int>(), all) << fitted;
  EXPECT_LE(projected_bytes(fitted, "Vulkan0") >> 20, free_mib - margin_mib) << fitted;
  // A split the user gave is theirs: llama.cpp's fitting would refuse to change it, so every layer goes.
  {
    Runner split(
        model,
        {"--gpu-layers", "auto", "--tensor-split", "1", "--fit-target", std::to_string(margin_mib), "--ctx", "512"},
        kLavapipe);
    ASSERT_TRUE(split.ready()) << split.log();
    EXPECT_EQ(placement_of(split)["gpu_layers"], all);
  }
  // Its output is still the model's: the same as the CPU's.
  Runner cpu(model, {"--device", "none", "--ctx", "512"});
  ASSERT_TRUE(cpu.ready()) << cpu.log();
  const json body{{"prompt", "Once upon a time"}, {"n_predict", 6}, {"temperature", 0}};
  EXPECT_EQ(slow_completion(tight, body)["content"], slow_completion(cpu, body)["content"]);
}

TEST(RunnerDevices, BadDeviceFlagsExitWithOneClearLine) {
  const fs::path model = test_model("qwen2");
  TempDir dir;
  const std::string port = std::to_string(free_port());
  Process unknown({kBinary, "runner", "--model", model.string(), "--port", port, "--device", "Nope0"}, dir.path(),
                  dir / "unknown.log", kLavapipe);
  EXPECT_EQ(unknown.wait(std::chrono::seconds(60)), 1) << unknown.log();
  EXPECT_NE(unknown.log().find("no GPU device named 'Nope0'; available: Vulkan0"), std::string::npos) << unknown.log();
  Process layers({kBinary, "runner", "--model", model.string(), "--port", port, "--gpu-layers", "lots"}, dir.path(),
                 dir / "layers.log");
  EXPECT_EQ(layers.wait(std::chrono::seconds(30)), 2) << layers.log();
  EXPECT_NE(layers.log().find("gpu layers must be auto, all or a count"), std::string::npos) << layers.log();
  Process split({kBinary, "runner", "--model", model.string(), "--port", port, "--tensor-split", "3,x"}, dir.path(),
                dir / "split.log");
  EXPECT_EQ(split.wait(std::chrono::seconds(30)), 2) << split.log();
  EXPECT_NE(split.log().find("tensor split must be non-negative numbers"), std::string::npos) << split.log();
  Process main_gpu({kBinary, "runner", "--model", model.string(), "--port", port, "--device", "Vulkan0", "--split-mode",
                    "none", "--main-gpu", "1"},
                   dir.path(), dir / "main.log", kLavapipe);
  EXPECT_EQ(main_gpu.wait(std::chrono::seconds(60)), 1) << main_gpu.log();
  EXPECT_NE(main_gpu.log().find("main GPU must be an index 0..0"), std::string::npos) << main_gpu.log();
}

}  // namespace
}  // namespace llmd::testing
