// OpenAI's Responses API (POST /v1/responses) translated to and from the chat
// completion the workers speak, so the gateway serves it with the same
// admission, billing and balancer as /v1/chat/completions. Stateless: llmd
// keeps no responses (`store` is answered false; `previous_response_id` is a
// 400 that says to send the conversation as `input`). Pure JSON work.
//
//   auto chat = responses::to_chat(request);
//   json response = responses::from_chat(completion, ids, request);
//   responses::StreamTranslator t(ids, request);
//   send(t.start()); for each chunk: send(t.feed(chunk)); send(t.finish(in, out));
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/sse_event.h"

namespace llmd::models::responses {

// The OpenAI chat body of a Responses request: input (a string, or message,
// function_call and function_call_output items), instructions, function
// tools, tool_choice, text.format, reasoning.effort, max_output_tokens,
// temperature, top_p, parallel_tool_calls, stream (and llama.cpp's seed,
// top_k, min_p, penalties and logit_bias). Errors: kInvalidArgument
// (images and files, built-in tools, previous_response_id and item
// references are refused).
Result<nlohmann::json> to_chat(const nlohmann::json& request);

// What names a response and its items.
struct Ids {
  std::string response;  // resp_...
  std::int64_t created_at = 0;
};

// The response object of a chat completion body (reasoning, message and
// function_call output items, usage, status "completed" or "incomplete").
nlohmann::json from_chat(const nlohmann::json& completion, const Ids& ids, const nlohmann::json& request);

// OpenAI stream chunks to the Responses event sequence: response.created,
// response.in_progress; per output item response.output_item.added, its
// parts and deltas (output_text, reasoning_text, function_call_arguments),
// their .done events and response.output_item.done; then
// response.completed (or response.incomplete when max_output_tokens cut it).
class StreamTranslator {
 public:
  StreamTranslator(Ids ids, nlohmann::json request) : ids_(std::move(ids)), request_(std::move(request)) {}

  std::vector<SseEvent> start();
  std::vector<SseEvent> feed(const nlohmann::json& chunk);
  std::vector<SseEvent> finish(std::int64_t input_tokens, std::int64_t output_tokens);

 private:
  enum class Item { kNone, kReasoning, kMessage, kCall };
  void emit(std::vector<SseEvent>& out, const char* type, nlohmann::json fields);
  void open_item(std::vector<SseEvent>& out, Item kind, nlohmann::json item);
  void close_item(std::vector<SseEvent>& out);
  std::string item_id() const;

  Ids ids_;
  nlohmann::json request_;
  std::int64_t sequence_ = 0;
  nlohmann::json output_ = nlohmann::json::array();  // the finished items
  Item item_ = Item::kNone;
  nlohmann::json current_;  // the open item
  std::string text_;        // its text or arguments so far
  int tool_call_ = -1;      // the chat tool-call index of the open function_call
  std::string finish_reason_;
};

}  // namespace llmd::models::responses
