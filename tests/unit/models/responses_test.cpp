// OpenAI Responses <-> chat completion translation, against the shapes of
// OpenAI's API reference: input items, the response object, stream events.
#include "models/responses.h"

#include <gtest/gtest.h>

namespace llmd::models::responses {
namespace {

using nlohmann::json;

TEST(Responses, InputItemsInstructionsToolsAndFormatBecomeAChatRequest) {
  const json request = json::parse(R"({
    "model": "tiny", "instructions": "Be brief.", "max_output_tokens": 64, "temperature": 0.5,
    "reasoning": {"effort": "minimal"}, "parallel_tool_calls": false,
    "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": true}},
    "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": false}],
    "tool_choice": {"type": "function", "name": "get_weather"},
    "input": [
      {"role": "developer", "content": "Use metric units."},
      {"role": "user", "content": [{"type": "input_text", "text": "Weather in "}, {"type": "input_text", "text": "Paris?"}]},
      {"type": "reasoning", "id": "rs_1", "summary": []},
      {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
      {"type": "function_call", "call_id": "call_2", "name": "get_weather", "arguments": "{\"city\":\"Lyon\"}"},
      {"type": "function_call_output", "call_id": "call_1", "output": "21 C"},
      {"type": "function_call_output", "call_id": "call_2", "output": "19 C"}]})");
  auto chat = to_chat(request);
  ASSERT_TRUE(chat) << chat.error().message;
  EXPECT_EQ((*chat)["max_tokens"], 64);
  EXPECT_EQ((*chat)["parallel_tool_calls"], false);
  EXPECT_EQ((*chat)["chat_template_kwargs"]["enable_thinking"], false);
  EXPECT_EQ((*chat)["response_format"]["json_schema"]["name"], "w");
  EXPECT_EQ((*chat)["tools"][0]["function"]["name"], "get_weather");
  EXPECT_EQ((*chat)["tool_choice"]["function"]["name"], "get_weather");
  const json& m = (*chat)["messages"];
  ASSERT_EQ(m.size(), 6u) << m.dump();
  EXPECT_EQ(m[0], json::parse(R"({"role":"system","content":"Be brief."})"));
  EXPECT_EQ(m[1], json::parse(R"({"role":"system","content":"Use metric units."})"));
  EXPECT_EQ(m[2]["content"], "Weather in Paris?");
  EXPECT_EQ(m[3]["role"], "assistant");
  ASSERT_EQ(m[3]["tool_calls"].size(), 2u);  // one turn, two calls
  EXPECT_EQ(m[3]["tool_calls"][1]["id"], "call_2");
  EXPECT_EQ(m[4], json::parse(R"({"role":"tool","tool_call_id":"call_1","content":"21 C"})"));
  EXPECT_EQ(m[5]["tool_call_id"], "call_2");
}

TEST(Responses, StatefulAndNonTextRequestsAreRefusedWithTheReason) {
  const auto why = [](const char* body) {
    auto r = to_chat(json::parse(body));
    return r ? std::string("accepted") : r.error().message;
  };
  EXPECT_EQ(why(R"({"model":"m","input":"hi"})"), "accepted");
  EXPECT_NE(why(R"({"model":"m","input":"hi","previous_response_id":"resp_1"})").find("keeps no responses"),
            std::string::npos);
  EXPECT_NE(why(R"({"model":"m","input":[{"type":"item_reference","id":"msg_1"}]})").find("stored"), std::string::npos);
  EXPECT_NE(why(R"({"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"x"}]}]})")
                .find("text only"),
            std::string::npos);
  EXPECT_NE(why(R"({"model":"m","input":"hi","tools":[{"type":"web_search"}]})").find("web_search"), std::string::npos);
  EXPECT_NE(why(R"({"model":"m","input":"hi","max_output_tokens":0})").find("max_output_tokens"), std::string::npos);
  EXPECT_NE(why(R"({"model":"m","input":[]})").find("empty"), std::string::npos);
}

TEST(Responses, AChatReplyBecomesAResponseWithItemsAndUsage) {
  const json completion = json::parse(R"({"choices":[{"finish_reason":"tool_calls","message":{"role":"assistant",
      "content":"","reasoning_content":"Paris.","tool_calls":[{"id":"call_9","type":"function",
      "function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}}],
      "usage":{"prompt_tokens":20,"completion_tokens":7}})");
  const json request = json::parse(R"({"model":"tiny","input":"x","max_output_tokens":50})");
  const json r = from_chat(completion, {"resp_abc", 1700000000}, request);
  EXPECT_EQ(r["object"], "response");
  EXPECT_EQ(r["status"], "completed");
  EXPECT_EQ(r["max_output_tokens"], 50);
  EXPECT_EQ(r["store"], false);
  ASSERT_EQ(r["output"].size(), 2u);  // no empty message beside a call
  EXPECT_EQ(r["output"][0]["type"], "reasoning");
  EXPECT_EQ(r["output"][0]["content"][0]["text"], "Paris.");
  EXPECT_EQ(r["output"][1]["type"], "function_call");
  EXPECT_EQ(r["output"][1]["call_id"], "call_9");
  EXPECT_EQ(r["usage"]["total_tokens"], 27);
  const json cut = from_chat(json::parse(R"({"choices":[{"finish_reason":"length","message":{"content":"Hel"}}]})"),
                             {"resp_abc", 1}, request);
  EXPECT_EQ(cut["status"], "incomplete");
  EXPECT_EQ(cut["incomplete_details"]["reason"], "max_output_tokens");
  EXPECT_EQ(cut["output"][0]["content"][0]["text"], "Hel");
}

TEST(Responses, StreamChunksBecomeTheResponsesEventSequence) {
  StreamTranslator t({"resp_abc", 1}, json::parse(R"({"model":"tiny","input":"x"})"));
  std::vector<SseEvent> events = t.start();
  const auto feed = [&](const char* chunk) {
    for (auto& e : t.feed(json::parse(chunk))) events.push_back(std::move(e));
  };
  feed(R"({"choices":[{"delta":{"content":"He"}}]})");
  feed(R"({"choices":[{"delta":{"content":"llo"}}]})");
  feed(
      R"({"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_1","function":{"name":"f","arguments":"{}"}}]}}]})");
  feed(R"({"choices":[{"delta":{},"finish_reason":"tool_calls"}]})");
  for (auto& e : t.finish(9, 4)) events.push_back(std::move(e));
  std::vector<std::string> names;
  for (const auto& e : events) names.push_back(e.event);
  const std::vector<std::string> expected = {"response.created",
                                             "response.in_progress",
                                             "response.output_item.added",
                                             "response.content_part.added",
                                             "response.output_text.delta",
                                             "response.output_text.delta",
                                             "response.output_text.done",
                                             "response.content_part.done",
                                             "response.output_item.done",
                                             "response.output_item.added",
                                             "response.function_call_arguments.delta",
                                             "response.function_call_arguments.done",
                                             "response.output_item.done",
                                             "response.completed"};
  EXPECT_EQ(names, expected);
  for (std::size_t i = 0; i < events.size(); ++i) {
    const json data = json::parse(events[i].data);
    EXPECT_EQ(data["type"], events[i].event);
    EXPECT_EQ(data["sequence_number"], i);  // in order, from 0
  }
  const json text_done = json::parse(events[6].data);
  EXPECT_EQ(text_done["text"], "Hello");
  EXPECT_EQ(json::parse(events[9].data)["output_index"], 1);
  const json completed = json::parse(events.back().data)["response"];
  EXPECT_EQ(completed["status"], "completed");
  ASSERT_EQ(completed["output"].size(), 2u);
  EXPECT_EQ(completed["output"][0]["content"][0]["text"], "Hello");
  EXPECT_EQ(completed["output"][1]["arguments"], "{}");
  EXPECT_EQ(completed["usage"]["output_tokens"], 4);
}

}  // namespace
}  // namespace llmd::models::responses
