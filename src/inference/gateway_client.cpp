#include "inference/gateway_client.h"

#include <algorithm>

#include "inference/token_estimate.h"
#include "models/proxy.h"

namespace llmd::inference {
namespace {

using nlohmann::json;

// A worker's non-200 reply as an error value: the status's canonical code,
// the message and reason of its {"error":{...}} body when it has one.
Error worker_error(const http::ClientResponse& r) {
  ErrorCode code = ErrorCode::kUnavailable;
  switch (r.status) {
    case 400: code = ErrorCode::kInvalidArgument; break;
    case 401: code = ErrorCode::kUnauthenticated; break;
    case 402: code = ErrorCode::kPaymentRequired; break;
    case 403: code = ErrorCode::kPermissionDenied; break;
    case 404: code = ErrorCode::kNotFound; break;
    case 413: code = ErrorCode::kTooLarge; break;
    case 422: code = ErrorCode::kUnprocessable; break;
    case 429: code = ErrorCode::kRateLimited; break;
    case 500: code = ErrorCode::kInternal; break;
    case 504: code = ErrorCode::kDeadlineExceeded; break;
    default: break;
  }
  Error e(code, "the model call failed (" + std::to_string(r.status) + ")", "model_error");
  const json body = json::parse(r.body, nullptr, false);
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    const json& err = body["error"];
    if (err.contains("message") && err["message"].is_string()) e.message = err["message"].get<std::string>();
    if (err.contains("code") && err["code"].is_string()) e.reason = err["code"].get<std::string>();
  }
  return e;
}

class GatewayClient final : public ModelClient {
 public:
  GatewayClient(models::Manager& manager, http::HttpClient& http, observe::Logger log, GatewayOptions options)
      : proxy_(manager, http, std::move(log), options.acquire_timeout, options.upstream_timeout) {}

  boost::asio::awaitable<CallResult<ChatReply>> chat(const ChatRequest& request, const CallTag& tag) override {
    const std::string body = chat_body(request);
    const std::string path = "/v1/chat/completions";
    models::Exchange sent = co_await proxy_.send(tag.request_id, request.model, path, body, models::LeaseKind::kRequest,
                                                 models::QueueKey::of_user(tag.user_id).caller);
    if (auto failed = failure_of(sent)) co_return std::unexpected(std::move(*failed));
    ChatReply reply = chat_reply_from_json(json::parse(sent.reply->body, nullptr, false));
    reply.usage = {sent.usage.prompt_tokens, sent.usage.completion_tokens};
    reply.instance = sent.instance;
    co_return reply;
  }

  boost::asio::awaitable<CallResult<ChatReply>> chat_streamed(const ChatRequest& request, const CallTag& tag,
                                                              Progress on_progress) override {
    json body = json::parse(chat_body(request));
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
    body["timings_per_token"] = true;  // the usage so far with every token
    const std::string sent_body = body.dump();
    const std::string path = "/v1/chat/completions";
    ChatReply reply;
    bool stopped = false;
    models::Proxy::OnEvent on_event = [&](const json& chunk) -> boost::asio::awaitable<bool> {
      add_chat_chunk(reply, chunk);
      models::CallUsage so_far;
      if (!models::read_progress(chunk, so_far)) co_return true;
      const Usage progress{so_far.prompt_tokens, so_far.completion_tokens};
      const bool go_on = co_await on_progress(progress);
      stopped = !go_on;
      co_return go_on;
    };
    models::ProxyResult r = co_await proxy_.stream_events(tag.request_id, request.model, path, sent_body, on_event,
                                                          models::QueueKey::of_user(tag.user_id).caller);
    const Usage usage{r.usage.prompt_tokens, r.usage.completion_tokens};
    if (r.error) co_return std::unexpected(CallFailure{*r.error, models::refusal_of(*r.error), r.instance, usage});
    if (!r.ok && !stopped) {
      if (r.response.status != 200 && r.response.status != 0 && !r.started) {
        const http::ClientResponse worker{r.response.status, {}, r.response.body};
        const Refusal why = r.response.status >= 500 ? Refusal::kWorkerFailed : Refusal::kWorkerRejected;
        co_return std::unexpected(CallFailure{worker_error(worker), why, r.instance, usage});
      }
      co_return std::unexpected(CallFailure{
          Error(ErrorCode::kUnavailable, "the model worker failed mid-reply", "upstream_error").with_retry_after(2),
          Refusal::kWorkerFailed, r.instance, usage});
    }
    if (stopped) reply.finish_reason = "length";
    reply.usage = usage;
    reply.instance = r.instance;
    co_return reply;
  }

  // The worker's own tokenizer (`/tokenize`, llama-server's shape, which
  // `llmd runner` speaks); an upstream server without that endpoint gets the
  // documented estimate instead of failing the task.
  boost::asio::awaitable<CallResult<std::int64_t>> count_tokens(const std::string& model, const std::string& text,
                                                                const CallTag& tag) override {
    if (text.empty()) co_return std::int64_t{0};
    CallResult<std::optional<std::int64_t>> counted = co_await tokenize(model, text, false, true, tag);
    if (!counted) co_return std::unexpected(std::move(counted.error()));
    co_return counted->value_or(estimated_tokens(text));
  }

  boost::asio::awaitable<CallResult<std::optional<std::int64_t>>> count_prompt(const std::string& model,
                                                                               const std::string& path,
                                                                               const json& request,
                                                                               const CallTag& tag) override {
    if (path == "/v1/chat/completions") co_return co_await rendered_prompt_tokens(model, request, tag);
    // As the runner tokenizes them: a completion's prompt with BOS and
    // special-token text as tokens, an embedding's input with BOS/EOS and
    // special-token text as text.
    const bool embedding = path == "/v1/embeddings";
    const json* prompt = request.is_object() ? find(request, embedding ? "input" : "prompt") : nullptr;
    if (prompt == nullptr) co_return std::nullopt;
    std::vector<const json*> texts;
    if (prompt->is_array() && !prompt->empty() && std::ranges::all_of(*prompt, &json::is_number_integer)) {
      co_return static_cast<std::int64_t>(prompt->size());  // token ids
    }
    if (prompt->is_string()) texts.push_back(prompt);
    if (prompt->is_array()) {
      for (const json& item : *prompt) {
        if (!item.is_string()) co_return std::nullopt;
        texts.push_back(&item);
      }
    }
    if (texts.empty()) co_return std::nullopt;
    std::int64_t total = 0;
    for (const json* text : texts) {
      const std::string content = text->get<std::string>();
      CallResult<std::optional<std::int64_t>> n = co_await tokenize(model, content, true, !embedding, tag);
      if (!n) co_return std::unexpected(std::move(n.error()));
      if (!*n) co_return std::nullopt;
      total += **n;
    }
    co_return total;
  }

 private:
  // The statuses of a server that has no such endpoint.
  static bool lacks_endpoint(int status) { return status == 404 || status == 405 || status == 501; }

  static const json* find(const json& object, const char* key) {
    auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
  }

  // `/tokenize` (llama-server's shape, which `llmd runner` speaks); nullopt
  // from a server without it.
  boost::asio::awaitable<CallResult<std::optional<std::int64_t>>> tokenize(const std::string& model,
                                                                           const std::string& text, bool add_special,
                                                                           bool parse_special, const CallTag& tag) {
    const std::string body =
        json{{"content", text}, {"add_special", add_special}, {"parse_special", parse_special}}.dump();
    const std::string path = "/tokenize";  // named: g++ 12 mishandles temporaries across co_await
    models::Exchange sent = co_await proxy_.send(tag.request_id, model, path, body, models::LeaseKind::kSideCall);
    if (sent.reply && lacks_endpoint(sent.reply->status)) co_return std::nullopt;
    if (auto failed = failure_of(sent)) co_return std::unexpected(std::move(*failed));
    const json reply = json::parse(sent.reply->body, nullptr, false);
    if (!reply.is_object() || !reply.contains("tokens") || !reply["tokens"].is_array()) {
      co_return std::nullopt;  // a 200 of another server's making
    }
    co_return static_cast<std::int64_t>(reply["tokens"].size());
  }

  // `/apply-template` with `llmd runner`'s prompt_tokens; nullopt from a
  // server without it (llama-server itself renders but does not count).
  boost::asio::awaitable<CallResult<std::optional<std::int64_t>>> rendered_prompt_tokens(const std::string& model,
                                                                                         const json& request,
                                                                                         const CallTag& tag) {
    const std::string path = "/apply-template";
    const std::string body = request.dump();
    models::Exchange sent = co_await proxy_.send(tag.request_id, model, path, body, models::LeaseKind::kSideCall);
    if (sent.reply && lacks_endpoint(sent.reply->status)) co_return std::nullopt;
    if (auto failed = failure_of(sent)) co_return std::unexpected(std::move(*failed));
    const json reply = json::parse(sent.reply->body, nullptr, false);
    if (!reply.is_object() || !reply.contains("prompt_tokens") || !reply["prompt_tokens"].is_number_unsigned()) {
      co_return std::nullopt;
    }
    co_return reply["prompt_tokens"].get<std::int64_t>();
  }

  // The failure of an exchange that did not end in a 200 reply.
  static std::optional<CallFailure> failure_of(const models::Exchange& sent) {
    const Usage usage{sent.usage.prompt_tokens, sent.usage.completion_tokens};
    if (!sent.reply) {
      return CallFailure{models::Proxy::shown_error(*sent.error, false), models::refusal_of(*sent.error), sent.instance,
                         usage};
    }
    if (sent.reply->status != 200) {
      const Refusal why = sent.reply->status >= 500 ? Refusal::kWorkerFailed : Refusal::kWorkerRejected;
      return CallFailure{worker_error(*sent.reply), why, sent.instance, usage};
    }
    return std::nullopt;
  }

  models::Proxy proxy_;
};

}  // namespace

std::unique_ptr<ModelClient> make_gateway_client(models::Manager& manager, http::HttpClient& http, observe::Logger log,
                                                 GatewayOptions options) {
  return std::make_unique<GatewayClient>(manager, http, std::move(log), options);
}

}  // namespace llmd::inference
