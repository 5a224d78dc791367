// Anthropic's Messages API (POST /v1/messages) translated to and from the
// OpenAI chat completion the workers speak, so the gateway can serve it with
// the same admission, billing, balancer and usage records as
// /v1/chat/completions. Pure JSON work: no HTTP, no I/O.
//
//   auto chat = anthropic::to_chat(request);          // Anthropic -> OpenAI request
//   json message = anthropic::from_chat(reply, id);   // OpenAI reply -> Anthropic message
//   anthropic::StreamTranslator t(id, model);         // OpenAI chunks -> Anthropic events
//   for (auto& e : t.feed(chunk)) send(e.data, e.event);
//   for (auto& e : t.finish()) send(e.data, e.event);
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/sse_event.h"

namespace llmd::models::anthropic {

// The OpenAI chat body of a Messages request (model, system, messages with
// text / tool_use / tool_result / thinking blocks, tools, tool_choice,
// max_tokens, stop_sequences, temperature, top_p, top_k, thinking, stream;
// llama.cpp's seed, min_p, repeat/presence/frequency penalties and
// logit_bias are passed on).
// `need_max_tokens`: a Messages call requires it; count_tokens does not.
// Errors: kInvalidArgument with what is wrong (images and documents are
// refused: the workers read text only).
Result<nlohmann::json> to_chat(const nlohmann::json& request, bool need_max_tokens = true);

// The Messages reply of an OpenAI chat completion body: thinking, text and
// tool_use blocks, stop_reason, usage.
nlohmann::json from_chat(const nlohmann::json& completion, const std::string& id, const std::string& model);

// The stop_reason of an OpenAI finish_reason.
std::string stop_reason(const std::string& finish_reason);

// Anthropic's error body for an error: {"type":"error","error":{type, message}}.
nlohmann::json error_body(int status, const std::string& message);
// The error type Anthropic names for an HTTP status.
std::string error_type(int status);

using Event = SseEvent;

// OpenAI stream chunks (chat.completion.chunk) to Anthropic's event
// sequence: message_start, then per block content_block_start /
// content_block_delta... / content_block_stop, then message_delta (stop
// reason, usage) and message_stop.
class StreamTranslator {
 public:
  StreamTranslator(std::string id, std::string model) : id_(std::move(id)), model_(std::move(model)) {}

  std::vector<Event> feed(const nlohmann::json& chunk);
  // The closing events; the usage is the worker's.
  std::vector<Event> finish(std::int64_t input_tokens, std::int64_t output_tokens);

 private:
  enum class Block { kNone, kThinking, kText, kTool };
  void start(std::vector<Event>& out);
  void open_block(std::vector<Event>& out, Block kind, nlohmann::json block);
  void close_block(std::vector<Event>& out);

  std::string id_;
  std::string model_;
  bool started_ = false;
  Block block_ = Block::kNone;
  int index_ = -1;      // the open block's index
  int tool_call_ = -1;  // the OpenAI tool-call index of the open tool_use block
  std::string finish_reason_;
  std::int64_t prompt_tokens_ = 0;
};

}  // namespace llmd::models::anthropic
