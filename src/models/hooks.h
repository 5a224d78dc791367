// The accounting/auth hook points of the model routes. The accounts module
// (auth + billing) implements CallHooks; until it does, open_call_hooks()
// admits every call and charges nothing.
//
// Sequence per model call (chat, /v1/*):
//   admit(ctx, call)  -> error: the client gets it (401/402/403/429), no model call;
//                        else the max_tokens allowed (maybe clamped to the balance)
//   ... the gateway calls the model (maybe retried once on another instance) ...
//   settle(ctx, call, outcome) -> exactly once per admitted call, also when it failed
//                                 (usage then holds whatever was produced, often 0)
// State between admit and settle (the open meter) belongs in the request context (ctx.set / ctx.take).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <nlohmann/json_fwd.hpp>

#include "core/error.h"
#include "http/context.h"

namespace llmd::models {

struct CallInfo {
  std::string route;               // "/v1/chat/completions", "/api/v1/models/{name}/chat", ...
  std::string model;               // resolved model name
  std::int64_t max_tokens = 0;     // completion tokens at most per choice (after gateway defaults)
  std::int64_t choices = 1;        // replies generated (OpenAI's n, or best_of when larger)
  std::uint64_t prompt_bytes = 0;  // size of the prompt material (the worst case when it cannot be counted)
  bool stream = false;
  // What the worker will be asked (valid during admit): the OpenAI body for
  // `worker_path`, whose prompt admit() counts with the model's tokenizer.
  std::string worker_path;
  const nlohmann::json* request = nullptr;
};

// Whom a model call is made for, as far as waiting goes: requests waiting for
// a busy model are served in turns by this key (Manager::acquire). admit()
// sets it in the request context ("user:<id>"); without one, every such
// request shares one turn.
struct QueueKey {
  std::string caller;
  static QueueKey of_user(std::int64_t user_id) { return {user_id > 0 ? "user:" + std::to_string(user_id) : ""}; }
};

// What admit() allows: the completion tokens the call may generate (as asked,
// or lowered to what the caller's balance pays for).
struct Admission {
  std::int64_t max_tokens = 0;
  bool clamped = false;
};

struct CallUsage {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
};

struct CallOutcome {
  std::string model;
  std::string instance;  // "" when no instance was reached
  CallUsage usage;       // as reported by the worker
  int status = 0;        // HTTP status sent to the client
  bool ok = false;       // the model call completed
  std::chrono::milliseconds latency{0};
};

struct Settlement {
  std::int64_t tokens_consumed = 0;              // what the caller was charged
  std::optional<std::int64_t> remaining_tokens;  // balance after, when known
};

class CallHooks {
 public:
  virtual ~CallHooks() = default;
  // Authenticates/authorizes and reserves before a model call; a balance
  // that cannot pay call.max_tokens but can pay a useful reply lowers it
  // (the route then sends the lower limit to the worker and says so).
  // Errors are sent to the client as they are.
  virtual boost::asio::awaitable<Result<Admission>> admit(http::RequestContext& ctx, const CallInfo& call) = 0;
  // Settles an admitted call; the result is reported to the client where the
  // API has room for it (chat: tokens_consumed, remaining_tokens).
  virtual boost::asio::awaitable<Settlement> settle(http::RequestContext& ctx, const CallInfo& call,
                                                    const CallOutcome& outcome) = 0;
  // Guards POST /api/v1/models/{name}/start|stop (SPEC: admin only).
  virtual boost::asio::awaitable<Result<void>> require_admin(http::RequestContext& ctx) = 0;
  // Guards the read-only listings (GET /api/v1/models..., GET /v1/models).
  virtual boost::asio::awaitable<Result<void>> require_user(http::RequestContext& ctx) = 0;
  // Guards a free call that may start `call.model` (counting a prompt): the
  // caller must be able to pay for the smallest reply of such a call, as
  // admit() would ask, so that nobody who cannot pay starts a model.
  // Nothing is reserved or charged. Errors: admit()'s 401/402.
  virtual boost::asio::awaitable<Result<void>> require_funds(http::RequestContext& ctx, const CallInfo& call) = 0;
};

// A turn of POST /api/v1/models/{name}/chat in a conversation kept on the
// server (SPEC §4.5c): what the client asked.
struct ChatTurn {
  enum class Kind { kSend, kRegenerate, kEdit };
  std::string conversation_id;
  Kind kind = Kind::kSend;
  std::string message;               // kSend, kEdit
  std::int64_t edit_message_id = 0;  // kEdit: this user message and all after it are replaced
};

// What the model is asked for the turn, read from the stored conversation.
struct ChatContext {
  std::string system;                                        // "" = none
  std::vector<std::pair<std::string, std::string>> history;  // {role, content} before the user message
  std::string user_text;
};

// Where the turn was stored.
struct StoredTurn {
  std::string conversation_id;
  std::int64_t user_message_id = 0;
  std::int64_t reply_message_id = 0;
  std::string title;
};

// How the reply ended, to be stored.
struct TurnEnding {
  std::string content;
  std::string reasoning_content;
  CallUsage usage;
  std::int64_t tokens_consumed = 0;
  std::string finish_reason;  // stop | length | stopped (client gone) | error
};

// The conversation memory of the chat route; its state between the calls of
// one turn lives in the request context.
class ChatMemory {
 public:
  virtual ~ChatMemory() = default;
  // Authenticates the caller and reads the turn's context; writes nothing.
  // Errors: 401, 404 (not the caller's), 409/413 limits.
  virtual boost::asio::awaitable<Result<ChatContext>> plan(http::RequestContext& ctx, const ChatTurn& turn) = 0;
  // After the call is admitted: stores the user message and a pending reply.
  virtual boost::asio::awaitable<Result<StoredTurn>> open(http::RequestContext& ctx, const std::string& model) = 0;
  // Stores the reply as it ended (failures are logged, not returned: the
  // client's reply is already decided).
  virtual boost::asio::awaitable<void> close(http::RequestContext& ctx, const StoredTurn& turn,
                                             const TurnEnding& ending) = 0;
};

// Admits everyone; settles with tokens_consumed = prompt + completion tokens.
std::shared_ptr<CallHooks> open_call_hooks();

}  // namespace llmd::models
