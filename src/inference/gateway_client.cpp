#include "inference/gateway_client.h"

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
    models::Exchange sent = co_await proxy_.send(tag.request_id, request.model, path, body);
    if (auto failed = failure_of(sent)) co_return std::unexpected(std::move(*failed));
    ChatReply reply = chat_reply_from_json(json::parse(sent.reply->body, nullptr, false));
    reply.usage = {sent.usage.prompt_tokens, sent.usage.completion_tokens};
    reply.instance = sent.instance;
    co_return reply;
  }

  // The worker's own tokenizer (`/tokenize`, llama-server's shape, which
  // `llmd runner` speaks); an upstream server without that endpoint gets the
  // documented estimate instead of failing the task.
  boost::asio::awaitable<CallResult<std::int64_t>> count_tokens(const std::string& model, const std::string& text,
                                                                const CallTag& tag) override {
    if (text.empty()) co_return std::int64_t{0};
    const std::string body = json{{"content", text}, {"add_special", false}}.dump();
    const std::string path = "/tokenize";
    models::Exchange sent = co_await proxy_.send(tag.request_id, model, path, body);
    if (sent.reply && lacks_tokenizer(sent.reply->status)) co_return estimated_tokens(text);
    if (auto failed = failure_of(sent)) co_return std::unexpected(std::move(*failed));
    const json reply = json::parse(sent.reply->body, nullptr, false);
    if (!reply.is_object() || !reply.contains("tokens") || !reply["tokens"].is_array()) {
      co_return estimated_tokens(text);  // a 200 of another server's making
    }
    co_return static_cast<std::int64_t>(reply["tokens"].size());
  }

 private:
  // The statuses of a server that has no `/tokenize`.
  static bool lacks_tokenizer(int status) { return status == 404 || status == 405 || status == 501; }

  // The failure of an exchange that did not end in a 200 reply.
  static std::optional<CallFailure> failure_of(const models::Exchange& sent) {
    const Usage usage{sent.usage.prompt_tokens, sent.usage.completion_tokens};
    if (!sent.reply) {
      return CallFailure{models::Proxy::shown_error(*sent.error, false), models::refusal_of(*sent.error),
                         sent.instance, usage};
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

std::unique_ptr<ModelClient> make_gateway_client(models::Manager& manager, http::HttpClient& http,
                                                 observe::Logger log, GatewayOptions options) {
  return std::make_unique<GatewayClient>(manager, http, std::move(log), options);
}

}  // namespace llmd::inference
