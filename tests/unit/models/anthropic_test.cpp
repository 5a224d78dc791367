// Anthropic Messages <-> OpenAI chat translation, against the shapes of
// Anthropic's API reference (requests, replies, the stream's events).
#include "models/anthropic.h"

#include <gtest/gtest.h>

namespace llmd::models::anthropic {
namespace {

using nlohmann::json;

TEST(Anthropic, ARequestWithSystemBlocksToolsAndAToolRoundTripBecomesAChatRequest) {
  const json request = json::parse(R"({
    "model": "tiny", "max_tokens": 256, "temperature": 0.2, "top_k": 5, "stop_sequences": ["END"],
    "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Answer in French."}],
    "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object",
               "properties": {"city": {"type": "string"}}, "required": ["city"]}}],
    "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "messages": [
      {"role": "user", "content": "Weather in Paris?"},
      {"role": "assistant", "content": [{"type": "thinking", "thinking": "Use the tool.", "signature": "x"},
                                        {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                         "input": {"city": "Paris"}}]},
      {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                    "content": [{"type": "text", "text": "21 C, sunny"}]},
                                   {"type": "text", "text": "Thanks!"}]}]})");
  auto chat = to_chat(request);
  ASSERT_TRUE(chat) << chat.error().message;
  EXPECT_EQ((*chat)["model"], "tiny");
  EXPECT_EQ((*chat)["max_tokens"], 256);
  EXPECT_EQ((*chat)["stop"], json::array({"END"}));
  EXPECT_EQ((*chat)["top_k"], 5);
  EXPECT_EQ((*chat)["parallel_tool_calls"], false);
  EXPECT_EQ((*chat)["tool_choice"], json::parse(R"({"type":"function","function":{"name":"get_weather"}})"));
  EXPECT_EQ((*chat)["chat_template_kwargs"]["enable_thinking"], true);
  EXPECT_EQ((*chat)["reasoning_budget_tokens"], 1024);
  ASSERT_EQ((*chat)["tools"].size(), 1u);
  EXPECT_EQ((*chat)["tools"][0]["function"]["parameters"]["required"], json::array({"city"}));
  const json& m = (*chat)["messages"];
  ASSERT_EQ(m.size(), 5u) << m.dump();
  EXPECT_EQ(m[0], json::parse(R"({"role":"system","content":"Be brief.\n\nAnswer in French."})"));
  EXPECT_EQ(m[1]["content"], "Weather in Paris?");
  EXPECT_EQ(m[2]["role"], "assistant");
  EXPECT_EQ(m[2]["reasoning_content"], "Use the tool.");
  EXPECT_EQ(m[2]["tool_calls"][0]["id"], "toolu_1");
  EXPECT_EQ(json::parse(m[2]["tool_calls"][0]["function"]["arguments"].get<std::string>()), (json{{"city", "Paris"}}));
  EXPECT_EQ(m[3], json::parse(R"({"role":"tool","tool_call_id":"toolu_1","content":"21 C, sunny"})"));
  EXPECT_EQ(m[4], json::parse(R"({"role":"user","content":"Thanks!"})"));
}

TEST(Anthropic, BadRequestsSayWhatIsWrong) {
  const auto why = [](const char* body, bool need_max = true) {
    auto r = to_chat(json::parse(body), need_max);
    return r ? std::string("accepted") : r.error().message;
  };
  EXPECT_NE(why(R"({"model":"m","messages":[{"role":"user","content":"x"}]})").find("max_tokens"), std::string::npos);
  EXPECT_EQ(why(R"({"model":"m","messages":[{"role":"user","content":"x"}]})", false), "accepted");
  EXPECT_NE(why(R"({"model":"m","max_tokens":5,"messages":[]})").find("messages"), std::string::npos);
  EXPECT_NE(why(R"({"model":"m","max_tokens":5,"messages":[{"role":"system","content":"x"}]})").find("role"),
            std::string::npos);
  EXPECT_NE(why(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image",
               "source":{"type":"base64","media_type":"image/png","data":"AA=="}}]}]})")
                .find("text only"),
            std::string::npos);
  EXPECT_NE(why(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_use",
               "id":"a","name":"f","input":{}}]}]})")
                .find("not allowed"),
            std::string::npos);
  EXPECT_NE(why(R"({"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]})").find("positive"),
            std::string::npos);
  EXPECT_NE(why(R"({"model":"m","max_tokens":5,"tool_choice":{"type":"sometimes"},
               "messages":[{"role":"user","content":"x"}]})")
                .find("tool_choice"),
            std::string::npos);
  EXPECT_NE(why(R"({"model":"m","max_tokens":5,"tools":[{"type":"web_search_20250305","name":"web_search"}],
               "messages":[{"role":"user","content":"x"}]})")
                .find("server tools"),
            std::string::npos);
}

TEST(Anthropic, AChatReplyBecomesAMessageWithThinkingTextAndToolUse) {
  const json completion = json::parse(R"({"choices":[{"index":0,"finish_reason":"tool_calls","message":{
      "role":"assistant","content":"Let me check.","reasoning_content":"Paris, so the tool.",
      "tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}}],
      "usage":{"prompt_tokens":31,"completion_tokens":12}})");
  const json m = from_chat(completion, "msg_1", "tiny");
  EXPECT_EQ(m["type"], "message");
  EXPECT_EQ(m["role"], "assistant");
  EXPECT_EQ(m["stop_reason"], "tool_use");
  ASSERT_EQ(m["content"].size(), 3u);
  EXPECT_EQ(m["content"][0]["type"], "thinking");
  EXPECT_EQ(m["content"][1], json::parse(R"({"type":"text","text":"Let me check."})"));
  EXPECT_EQ(m["content"][2]["input"], (json{{"city", "Paris"}}));
  EXPECT_EQ(m["usage"], json::parse(R"({"input_tokens":31,"output_tokens":12})"));
  EXPECT_EQ(stop_reason("length"), "max_tokens");
  EXPECT_EQ(stop_reason("stop"), "end_turn");
}

TEST(Anthropic, StreamChunksBecomeTheMessagesEventSequence) {
  StreamTranslator t("msg_1", "tiny");
  std::vector<Event> events;
  const auto feed = [&](const char* chunk) {
    for (auto& e : t.feed(json::parse(chunk))) events.push_back(std::move(e));
  };
  feed(
      R"({"choices":[{"index":0,"delta":{"role":"assistant"}}],"timings":{"cache_n":0,"prompt_n":9,"predicted_n":0}})");
  feed(R"({"choices":[{"index":0,"delta":{"reasoning_content":"Hm."}}]})");
  feed(R"({"choices":[{"index":0,"delta":{"content":"It is "}}]})");
  feed(R"({"choices":[{"index":0,"delta":{"content":"sunny."}}]})");
  feed(
      R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","function":{"name":"f","arguments":"{\"a\""}}]}}]})");
  feed(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}}]})");
  feed(R"({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})");
  for (auto& e : t.finish(9, 7)) events.push_back(std::move(e));
  std::vector<std::string> names;
  for (const auto& e : events) names.push_back(e.event);
  const std::vector<std::string> expected = {
      "message_start",       "content_block_start", "content_block_delta", "content_block_stop",  // thinking
      "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",  // text
      "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",  // tool_use
      "message_delta",       "message_stop"};
  EXPECT_EQ(names, expected);
  EXPECT_EQ(json::parse(events[0].data)["message"]["usage"]["input_tokens"], 9);
  EXPECT_EQ(json::parse(events[5].data)["delta"], json::parse(R"({"type":"text_delta","text":"It is "})"));
  EXPECT_EQ(json::parse(events[8].data)["index"], 2);
  EXPECT_EQ(json::parse(events[8].data)["content_block"]["name"], "f");
  EXPECT_EQ(json::parse(events[10].data)["delta"]["partial_json"], ":1}");
  const json last = json::parse(events[12].data);
  EXPECT_EQ(last["delta"]["stop_reason"], "tool_use");
  EXPECT_EQ(last["usage"]["output_tokens"], 7);
  for (const auto& e : events) EXPECT_EQ(json::parse(e.data)["type"], e.event);
}

TEST(Anthropic, ErrorsHaveAnthropicsShapeAndTypes) {
  EXPECT_EQ(error_body(400, "bad"),
            json::parse(R"({"type":"error","error":{"type":"invalid_request_error","message":"bad"}})"));
  EXPECT_EQ(error_type(401), "authentication_error");
  EXPECT_EQ(error_type(402), "billing_error");
  EXPECT_EQ(error_type(404), "not_found_error");
  EXPECT_EQ(error_type(429), "rate_limit_error");
  EXPECT_EQ(error_type(503), "overloaded_error");
  EXPECT_EQ(error_type(500), "api_error");
}

}  // namespace
}  // namespace llmd::models::anthropic
