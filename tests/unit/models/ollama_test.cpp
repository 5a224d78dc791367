// Ollama's native API <-> OpenAI translation, against the shapes of
// Ollama's API reference (docs/api.md): requests, replies, NDJSON lines.
#include "models/ollama.h"

#include <gtest/gtest.h>

namespace llmd::models::ollama {
namespace {

using nlohmann::json;

TEST(Ollama, AChatWithOptionsFormatThinkAndAToolRoundTripBecomesAChatRequest) {
  const json request = json::parse(R"({
    "model": "tiny", "think": true, "format": {"type": "object", "properties": {"a": {"type": "integer"}}},
    "options": {"temperature": 0.1, "top_k": 3, "num_predict": 50, "seed": 7, "stop": ["END"], "num_ctx": 8192},
    "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    "messages": [
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": "Weather in Paris and London?"},
      {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"function": {"name": "get_weather", "arguments": {"city": "London"}}}]},
      {"role": "tool", "content": "21 C"},
      {"role": "tool", "content": "15 C"}]})");
  auto chat = chat_request(request);
  ASSERT_TRUE(chat) << chat.error().message;
  EXPECT_EQ((*chat)["stream"], true);  // Ollama streams unless told not to
  EXPECT_EQ((*chat)["max_tokens"], 50);
  EXPECT_EQ((*chat)["top_k"], 3);
  EXPECT_EQ((*chat)["seed"], 7);
  EXPECT_EQ((*chat)["stop"], json::array({"END"}));
  EXPECT_FALSE(chat->contains("num_ctx"));
  EXPECT_EQ((*chat)["response_format"]["type"], "json_schema");
  EXPECT_EQ((*chat)["response_format"]["json_schema"]["schema"]["properties"]["a"]["type"], "integer");
  EXPECT_EQ((*chat)["chat_template_kwargs"]["enable_thinking"], true);
  EXPECT_EQ((*chat)["tools"][0]["function"]["name"], "get_weather");
  const json& m = (*chat)["messages"];
  ASSERT_EQ(m.size(), 5u);
  const json& calls = m[2]["tool_calls"];
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(json::parse(calls[1]["function"]["arguments"].get<std::string>()), (json{{"city", "London"}}));
  // Tool results answer the calls in order.
  EXPECT_EQ(m[3]["tool_call_id"], calls[0]["id"]);
  EXPECT_EQ(m[4]["tool_call_id"], calls[1]["id"]);
  EXPECT_EQ(m[4]["content"], "15 C");
}

TEST(Ollama, GenerateIsAChatOrWithRawThePromptAsItIs) {
  bool raw = true;
  auto chat = generate_request(json::parse(R"({"model":"m","prompt":"Hi","system":"Be brief.","stream":false,
                                               "format":"json"})"),
                               raw);
  ASSERT_TRUE(chat) << chat.error().message;
  EXPECT_FALSE(raw);
  EXPECT_EQ((*chat)["stream"], false);
  EXPECT_EQ((*chat)["messages"].size(), 2u);
  EXPECT_EQ((*chat)["response_format"]["type"], "json_object");
  auto text = generate_request(json::parse(R"({"model":"m","prompt":"[INST] Hi [/INST]","raw":true})"), raw);
  ASSERT_TRUE(text);
  EXPECT_TRUE(raw);
  EXPECT_EQ((*text)["prompt"], "[INST] Hi [/INST]");
  EXPECT_FALSE(text->contains("messages"));
}

TEST(Ollama, BadRequestsSayWhatIsWrong) {
  bool raw = false;
  EXPECT_FALSE(chat_request(json::parse(R"({"messages":[]})")));
  EXPECT_FALSE(chat_request(json::parse(R"({"model":"m","messages":[{"role":"robot","content":"x"}]})")));
  auto images =
      chat_request(json::parse(R"({"model":"m","messages":[{"role":"user","content":"x","images":["AA"]}]})"));
  ASSERT_FALSE(images);
  EXPECT_NE(images.error().message.find("text only"), std::string::npos);
  EXPECT_FALSE(
      chat_request(json::parse(R"({"model":"m","format":"yaml","messages":[{"role":"user","content":"x"}]})")));
  EXPECT_FALSE(generate_request(json::parse(R"({"model":"m","prompt":""})"), raw));
  EXPECT_FALSE(generate_request(json::parse(R"({"model":"m","prompt":"x","suffix":"y"})"), raw));
  EXPECT_FALSE(embed_request(json::parse(R"({"model":"m","input":[1,2]})")));
  EXPECT_TRUE(embed_request(json::parse(R"({"model":"m","input":["a","b"]})")));
}

TEST(Ollama, RepliesCarryTheMessageDoneReasonAndCounts) {
  const json completion = json::parse(R"({"choices":[{"finish_reason":"length","message":{"role":"assistant",
      "content":"Hi","reasoning_content":"hm","tool_calls":[{"id":"c","type":"function",
      "function":{"name":"f","arguments":"{\"a\":1}"}}]}}],"usage":{"prompt_tokens":9,"completion_tokens":4}})");
  const json chat = reply(Kind::kChat, completion, "tiny", {9, 4, 1000});
  EXPECT_EQ(chat["message"]["content"], "Hi");
  EXPECT_EQ(chat["message"]["thinking"], "hm");
  EXPECT_EQ(chat["message"]["tool_calls"][0]["function"]["arguments"], (json{{"a", 1}}));
  EXPECT_EQ(chat["done"], true);
  EXPECT_EQ(chat["done_reason"], "length");
  EXPECT_EQ(chat["prompt_eval_count"], 9);
  EXPECT_EQ(chat["eval_count"], 4);
  const json generated = reply(Kind::kGenerate, completion, "tiny", {9, 4, 1000});
  EXPECT_EQ(generated["response"], "Hi");
  EXPECT_FALSE(generated.contains("message"));
}

TEST(Ollama, StreamChunksBecomeNdjsonLinesAndADoneLine) {
  StreamTranslator t(Kind::kChat, "tiny");
  std::vector<json> lines;
  const auto feed = [&](const char* chunk) {
    for (auto& l : t.feed(json::parse(chunk))) lines.push_back(std::move(l));
  };
  feed(R"({"choices":[{"delta":{"role":"assistant"}}]})");
  feed(R"({"choices":[{"delta":{"content":"Hel"}}]})");
  feed(R"({"choices":[{"delta":{"content":"lo"}}]})");
  feed(R"({"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{\"a\""}}]}}]})");
  feed(R"({"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}}]})");
  feed(R"({"choices":[{"delta":{},"finish_reason":"stop"}]})");
  for (auto& l : t.finish({5, 3, 2000})) lines.push_back(std::move(l));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0]["message"]["content"], "Hel");
  EXPECT_EQ(lines[1]["message"]["content"], "lo");
  EXPECT_EQ(lines[0]["done"], false);
  EXPECT_EQ(lines[2]["message"]["tool_calls"][0]["function"]["arguments"], (json{{"a", 1}}));
  EXPECT_EQ(lines[3]["done"], true);
  EXPECT_EQ(lines[3]["done_reason"], "stop");
  EXPECT_EQ(lines[3]["eval_count"], 3);
  EXPECT_EQ(lines[3]["model"], "tiny");
}

TEST(Ollama, KeepAliveReadsSecondsAndGoDurations) {
  const auto keep = [](json value) {
    auto k = keep_alive(json{{"keep_alive", value}});
    if (!k) return std::string("error");
    return *k ? std::to_string((*k)->count()) : std::string("absent");
  };
  EXPECT_EQ(keep("5m"), "300");
  EXPECT_EQ(keep("1h30m"), "5400");
  EXPECT_EQ(keep("90s"), "90");
  EXPECT_EQ(keep("1500ms"), "1");
  EXPECT_EQ(keep(90), "90");
  EXPECT_EQ(keep("0"), "0");
  EXPECT_EQ(keep(0), "0");
  EXPECT_EQ(keep("-1"), "-1");
  EXPECT_EQ(keep("-1m"), "-1");
  EXPECT_EQ(keep(-1), "-1");
  EXPECT_EQ(keep(json()), "absent");
  EXPECT_EQ(keep("abc"), "error");
  EXPECT_EQ(keep("5x"), "error");
  EXPECT_EQ(keep("nan"), "error");
  EXPECT_EQ(keep(""), "error");
  EXPECT_EQ(keep(json::array()), "error");
  EXPECT_EQ(keep_alive(json::object()).value(), std::nullopt);
}

}  // namespace
}  // namespace llmd::models::ollama
