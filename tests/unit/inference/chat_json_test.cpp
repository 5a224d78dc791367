#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "inference/model_client.h"
#include "models/refusal.h"

namespace llmd::inference {
namespace {

using nlohmann::json;

TEST(ChatJson, RequestBodyHasTheTypedFieldsAndTheExtras) {
  ChatRequest r;
  r.model = "tiny";
  r.messages = {{"system", "s"}, {"user", "u"}};
  r.temperature = 0;
  r.max_tokens = 64;
  r.seed = 7;
  r.response_format = {{"type", "json_object"}};
  r.extra = {{"timings_per_token", true}};
  const json body = json::parse(chat_body(r));
  EXPECT_EQ(body, json::parse(R"({"model":"tiny","messages":[{"role":"system","content":"s"},
      {"role":"user","content":"u"}],"temperature":0,"max_tokens":64,"seed":7,
      "response_format":{"type":"json_object"},"timings_per_token":true})"));
  EXPECT_NE(chat_body(r).find("\"temperature\":0,"), std::string::npos);  // integral: written as an integer
}

TEST(ChatJson, RequestRoundTripsThroughOpenAiJson) {
  const json in = json::parse(R"({"messages":[{"role":"user","content":"hi"}],"temperature":0.3,
      "max_tokens":100,"response_format":{"type":"json_schema","json_schema":{"name":"x"}},"top_k":5})");
  const ChatRequest r = chat_request_from_json(in);
  EXPECT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.temperature, 0.3);
  EXPECT_EQ(r.max_tokens, 100);
  EXPECT_EQ(r.extra, json({{"top_k", 5}}));
  json out = json::parse(chat_body(r));
  out.erase("model");
  EXPECT_EQ(out, in);
}

TEST(ChatJson, ReplyReadsContentReasoningToolCallsAndUsage) {
  const ChatReply r = chat_reply_from_json(json::parse(R"({"choices":[{"finish_reason":"tool_calls","message":{
      "role":"assistant","content":"ok","reasoning_content":"because",
      "tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]}}],
      "usage":{"prompt_tokens":12,"completion_tokens":3}})"));
  EXPECT_EQ(r.content, "ok");
  EXPECT_EQ(r.reasoning_content, "because");
  EXPECT_EQ(r.finish_reason, "tool_calls");
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].name, "f");
  EXPECT_EQ(r.tool_calls[0].arguments, "{\"a\":1}");
  EXPECT_EQ(r.usage.total(), 15);
}

TEST(ChatJson, ReplyWithoutChoicesIsEmpty) {
  const ChatReply r = chat_reply_from_json(json::parse(R"({"error":{"message":"x"}})"));
  EXPECT_TRUE(r.content.empty());
  EXPECT_EQ(r.usage.total(), 0);
}

TEST(Refusal, ManagerReasonsAndClientErrorsAreClassifiedOnce) {
  using models::Refusal;
  EXPECT_EQ(models::refusal_of(Error(ErrorCode::kUnavailable, "", "model_starting")), Refusal::kModelStarting);
  EXPECT_EQ(models::refusal_of(Error(ErrorCode::kUnavailable, "", "shutting_down")), Refusal::kShuttingDown);
  EXPECT_EQ(models::refusal_of(Error(ErrorCode::kUnavailable, "", "upstream_unreachable")), Refusal::kUnreachable);
  EXPECT_EQ(models::refusal_of(Error(ErrorCode::kDeadlineExceeded, "", "upstream_timeout")), Refusal::kTimeout);
  EXPECT_EQ(models::refusal_of(Error(ErrorCode::kUnavailable, "", "upstream_error")), Refusal::kWorkerFailed);
  EXPECT_TRUE(models::is_manager_refusal(Refusal::kNoHealthyInstance));
  EXPECT_FALSE(models::is_manager_refusal(Refusal::kUnreachable));
}

TEST(ChatJson, StreamedChunksAddUpToTheReply) {
  ChatReply r;
  const char* chunks[] = {
      R"({"choices":[{"index":0,"delta":{"role":"assistant","reasoning_content":"Let me "}}]})",
      R"({"choices":[{"index":0,"delta":{"reasoning_content":"think."}}]})",
      R"({"choices":[{"index":0,"delta":{"content":"It is "}}]})",
      R"({"choices":[{"index":0,"delta":{"content":"14."}}]})",
      R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"c2","function":{"name":"add","arguments":"{\"a\""}}]}}]})",
      R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":":2}"}}]}}]})",
      R"({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})",
      R"({"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":9}})"};
  for (const char* c : chunks) add_chat_chunk(r, nlohmann::json::parse(c));
  EXPECT_EQ(r.reasoning_content, "Let me think.");
  EXPECT_EQ(r.content, "It is 14.");
  ASSERT_EQ(r.tool_calls.size(), 2u);  // by index: the first is an empty slot
  EXPECT_EQ(r.tool_calls[1].id, "c2");
  EXPECT_EQ(r.tool_calls[1].name, "add");
  EXPECT_EQ(r.tool_calls[1].arguments, R"({"a":2})");
  EXPECT_EQ(r.finish_reason, "tool_calls");
  EXPECT_EQ(r.usage.prompt_tokens, 12);
  EXPECT_EQ(r.usage.completion_tokens, 9);
  // Hostile indices do not allocate.
  add_chat_chunk(r, nlohmann::json::parse(R"({"choices":[{"delta":{"tool_calls":[{"index":99999999}]}}]})"));
  EXPECT_EQ(r.tool_calls.size(), 2u);
}

TEST(ChatJson, AWholeReplyInPlaceOfAStreamIsOneChunk) {
  ChatReply r;
  add_chat_chunk(r, nlohmann::json::parse(R"({"object":"chat.completion","choices":[{"index":0,"finish_reason":"stop",
      "message":{"role":"assistant","content":"done","tool_calls":[{"id":"a","function":{"name":"f","arguments":"{}"}},
      {"id":"b","function":{"name":"g","arguments":"[]"}}]}}],"usage":{"prompt_tokens":3,"completion_tokens":2}})"));
  EXPECT_EQ(r.content, "done");
  ASSERT_EQ(r.tool_calls.size(), 2u);
  EXPECT_EQ(r.tool_calls[0].name, "f");
  EXPECT_EQ(r.tool_calls[1].name, "g");
  EXPECT_EQ(r.finish_reason, "stop");
  EXPECT_EQ(r.usage.completion_tokens, 2);
}

}  // namespace
}  // namespace llmd::inference
