// Sends one model call to an instance chosen by the Manager and relays the
// reply: whole (non-streamed) or chunk by chunk (server-sent events), with
// one retry on another instance when the first fails before anything was
// sent to the client, usage captured from the worker's reply, and the lease
// reporting success/failure to the balancer. A client that disconnects
// mid-stream drops the upstream connection (the worker frees its slot).
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include "http/client.h"
#include "http/context.h"
#include "models/hooks.h"
#include "models/manager.h"
#include "observe/log.h"

namespace llmd::models {

struct ProxyResult {
  // The reply to return from the handler: the worker's reply (call), an
  // error reply when nothing was streamed, or already_streamed.
  http::Response response;
  bool ok = false;       // the worker answered 200 and the reply was complete
  bool started = false;  // bytes went to the client
  std::string instance;  // the instance that served (last tried)
  // From the worker's reply; for a stream cut short (client gone, worker
  // died), the usage so far from its per-chunk timings (timings_per_token):
  // the whole prompt plus the tokens generated.
  CallUsage usage;
  // The status the usage record shows when it differs from response.status:
  // a stream that began with 200 and ended with the client gone (499) or the
  // worker failing mid-reply (502).
  int outcome_status = 0;
  int status_for_usage() const { return outcome_status != 0 ? outcome_status : response.status; }
  // The gateway's own error when no worker answered (response renders it).
  std::optional<Error> error;
};

// A whole (non-streamed) call made for no client connection: the worker's
// last reply (any status), or the gateway's error when there is none.
struct Exchange {
  std::optional<http::ClientResponse> reply;
  std::optional<Error> error;      // set exactly when reply is not
  std::string instance;            // the instance last tried ("" when none was reached)
  CallUsage usage;                 // from the reply
  std::size_t queue_position = 0;  // where it joined the model's queue; 0 = it did not wait
  std::chrono::milliseconds queue_wait{0};
};

// Status recorded for a stream the client closed before it ended (nginx's).
inline constexpr int kClientClosedRequest = 499;

// Reads llama-server's per-chunk "timings" {cache_n, prompt_n, predicted_n}
// into `out` (prompt = cache_n + prompt_n). False when the chunk has none.
bool read_progress(const nlohmann::json& chunk, CallUsage& out);

// Splits a byte stream into server-sent events ("\n\n" or "\r\n\r\n" separated).
class SseSplitter {
 public:
  // Appends bytes; calls on_event(raw_block_with_separator, data_payload) per complete event.
  template <typename F>
  void feed(std::string_view bytes, F&& on_event);
  std::string take_rest() { return std::exchange(buffer_, {}); }
  // Joins the `data:` lines of one event block.
  static std::string data_of(std::string_view block);

 private:
  std::string buffer_;
};

template <typename F>
void SseSplitter::feed(std::string_view bytes, F&& on_event) {
  buffer_.append(bytes);
  std::size_t start = 0;
  for (;;) {
    const auto a = buffer_.find("\n\n", start);
    const auto b = buffer_.find("\r\n\r\n", start);
    if (a == std::string::npos && b == std::string::npos) break;
    const bool crlf = b != std::string::npos && (a == std::string::npos || b < a);
    const std::size_t end = crlf ? b + 4 : a + 2;
    const std::string_view block(buffer_.data() + start, end - start);
    on_event(block, data_of(block));
    start = end;
  }
  buffer_.erase(0, start);
}

// Reads {"usage":{"prompt_tokens":..,"completion_tokens":..}} from a reply.
bool read_usage(const nlohmann::json& reply, CallUsage& out);

class Proxy {
 public:
  Proxy(Manager& manager, http::HttpClient& client, observe::Logger log, std::chrono::milliseconds acquire_timeout,
        std::chrono::milliseconds upstream_timeout)
      : manager_(manager),
        client_(client),
        log_(std::move(log)),
        acquire_timeout_(acquire_timeout),
        upstream_timeout_(upstream_timeout) {}

  // Non-streamed call for no client: POST `path` with `body` (X-Request-ID
  // `request_id`), retried once on another instance when the first is
  // unreachable or answers 5xx. `caller` is whom it waits for a busy model
  // for (Manager::acquire; the calls of a client connection take it from
  // the request's QueueKey).
  boost::asio::awaitable<Exchange> send(const std::string& request_id, const std::string& model,
                                        const std::string& path, const std::string& body,
                                        LeaseKind kind = LeaseKind::kRequest, const std::string& caller = {});
  // The error a caller is shown for a failed exchange: the manager's refusal
  // as it is (shutting_down too when `shutting_down_as_is`), otherwise a
  // retryable 503 "the model worker failed" (a timeout stays a 504).
  static Error shown_error(const Error& e, bool shutting_down_as_is);

  // Non-streamed call: send(); the worker's reply is returned as it is.
  boost::asio::awaitable<ProxyResult> call(http::RequestContext& ctx, const std::string& model, const std::string& path,
                                           const std::string& body);
  // Streamed call relayed event by event. The worker's usage chunk (empty
  // choices) is forwarded only when `forward_usage_chunk`; the per-chunk
  // "timings" (ask the worker for them with timings_per_token in `body`, so
  // a stream cut short is billed exactly) only when `forward_timings`.
  // Events are forwarded byte-exactly unless timings are removed.
  boost::asio::awaitable<ProxyResult> stream_through(http::RequestContext& ctx, const std::string& model,
                                                     const std::string& path, const std::string& body,
                                                     bool forward_usage_chunk, bool forward_timings);
  // Streamed call whose events (parsed JSON data, "[DONE]" excluded) go to
  // `on_event`, which writes to the client itself; false = client gone. A
  // worker that answers one JSON reply instead of a stream (a server that
  // ignores "stream") gives that reply as the one event.
  using OnEvent = std::function<boost::asio::awaitable<bool>(const nlohmann::json&)>;
  boost::asio::awaitable<ProxyResult> stream_events(http::RequestContext& ctx, const std::string& model,
                                                    const std::string& path, const std::string& body, OnEvent on_event);
  // The same for no client connection (X-Request-ID `request_id`, waiting
  // for `caller` as send() does): false from `on_event` stops the generation
  // (outcome_status 499, the usage so far).
  boost::asio::awaitable<ProxyResult> stream_events(const std::string& request_id, const std::string& model,
                                                    const std::string& path, const std::string& body, OnEvent on_event,
                                                    const std::string& caller = {});

 private:
  // `ctx` is the client's connection to relay to; null when `on_event`
  // takes the events instead.
  boost::asio::awaitable<ProxyResult> stream(const std::string& request_id, http::RequestContext* ctx,
                                             const std::string& model, const std::string& path, const std::string& body,
                                             bool forward_usage_chunk, bool forward_timings, const OnEvent* on_event,
                                             const std::string& caller);
  http::ClientRequest make_request(const std::string& request_id, const Lease& lease, const std::string& path,
                                   const std::string& body) const;

  Manager& manager_;
  http::HttpClient& client_;
  observe::Logger log_;
  std::chrono::milliseconds acquire_timeout_;
  std::chrono::milliseconds upstream_timeout_;
};

}  // namespace llmd::models
