// The typed model client: what the tasks (homework, convert repair, subtitle
// jobs) use to ask a model, through the gateway (balancer, one retry on
// another instance) but without HTTP in sight. The byte-exact /v1 relay for
// API clients is models::Proxy's business, not this.
//
//   inference::ChatRequest req;
//   req.model = "tiny";
//   req.messages = {{"system", "..."}, {"user", "..."}};
//   auto reply = co_await client.chat(req, {request_id});
//   if (!reply) log(reply.error().error.message);   // reply.error().refusal says why
//   else use(reply->content, reply->usage);
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/refusal.h"

namespace llmd::inference {

struct ChatMessage {
  std::string role;  // system | user | assistant
  std::string content;
};

// One chat completion (OpenAI's request, the fields the tasks use).
struct ChatRequest {
  std::string model;
  std::vector<ChatMessage> messages;
  std::optional<double> temperature;
  std::optional<std::int64_t> max_tokens;
  std::optional<std::int64_t> seed;
  nlohmann::json response_format;  // null = free text; {"type":"json_object"} or a json_schema
  nlohmann::json extra;            // any other request fields (an object), passed on as they are
};

// Who a call is made for: the request id the worker's log shows, and the
// user whose turn it takes when the model is busy (0: nobody in particular).
struct CallTag {
  std::string request_id;
  std::int64_t user_id = 0;
};

struct Usage {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t total() const { return prompt_tokens + completion_tokens; }
};

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text, as the model wrote it
};

struct ChatReply {
  std::string content;  // choices[0].message.content; "" when there is none
  std::string reasoning_content;
  std::vector<ToolCall> tool_calls;
  std::string finish_reason;
  Usage usage;
  std::string instance;  // the instance that answered
};

// Why the gateway or the worker refused or failed a call.
using models::Refusal;

// A failed call: the error to show the caller (code, reason, message,
// retry_after: as the gateway renders it), why, and what was used anyway.
struct CallFailure {
  Error error;
  Refusal refusal = Refusal::kWorkerFailed;
  std::string instance;  // the instance last tried ("" when none was reached)
  Usage usage;
};

template <typename T>
using CallResult = std::expected<T, CallFailure>;

// Told the usage so far while a reply is generated (about once per token);
// false stops the generation there.
using Progress = std::function<boost::asio::awaitable<bool>(const Usage& so_far)>;

class ModelClient {
 public:
  virtual ~ModelClient() = default;
  // One chat completion, not streamed. Thread-safe; the request and tag are
  // taken by reference and must outlive the co_await (they do when awaited
  // at once).
  virtual boost::asio::awaitable<CallResult<ChatReply>> chat(const ChatRequest& request, const CallTag& tag) = 0;

  // The same completion streamed from the worker, `on_progress` told the
  // usage as it grows. When it answers false the generation stops: the
  // reply so far is the result, with finish_reason "length" and the usage
  // last reported (what was generated until then). Same threading rules.
  virtual boost::asio::awaitable<CallResult<ChatReply>> chat_streamed(const ChatRequest& request, const CallTag& tag,
                                                                      Progress on_progress) = 0;

  // How many tokens `text` is to `model`'s own tokenizer (no BOS/EOS added;
  // special-token text counts as text): what a task bills for the user's
  // content. 0 for "" without a call; `estimated_tokens` when the model's
  // server has no tokenizer endpoint. Same threading rules as chat().
  virtual boost::asio::awaitable<CallResult<std::int64_t>> count_tokens(const std::string& model,
                                                                        const std::string& text,
                                                                        const CallTag& tag) = 0;

  // The prompt tokens of `request`, an OpenAI body for `path`
  // (/v1/chat/completions: the prompt its messages, tools and switches render
  // to; /v1/completions: its prompt; /v1/embeddings: its inputs), counted by
  // `model`'s worker as the generation will count them: what a call reserves
  // for its prompt. nullopt when the worker cannot count (an external
  // upstream, a prompt shape it does not take apart). A worker's 4xx about
  // the request is the error the generation would give. Same threading
  // rules as chat().
  virtual boost::asio::awaitable<CallResult<std::optional<std::int64_t>>> count_prompt(const std::string& model,
                                                                                       const std::string& path,
                                                                                       const nlohmann::json& request,
                                                                                       const CallTag& tag) = 0;
};

// The request as the worker's JSON body (what the prompt's worst case is
// estimated from). Integral temperatures are written as integers.
std::string chat_body(const ChatRequest& request);
// A request from an OpenAI chat body (the subtitle translator builds those).
ChatRequest chat_request_from_json(const nlohmann::json& body);
// The reply of a chat completion body (content, reasoning, tool calls,
// usage); fields that are missing stay empty.
ChatReply chat_reply_from_json(const nlohmann::json& body);
// Adds one streamed chunk (chat.completion.chunk) to `reply`: its delta's
// content, reasoning and tool-call pieces (by index), its finish_reason and
// usage when present. A whole reply (a server that ignored "stream") is
// taken as one chunk.
void add_chat_chunk(ChatReply& reply, const nlohmann::json& chunk);

}  // namespace llmd::inference
