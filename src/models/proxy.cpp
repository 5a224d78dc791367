#include "models/proxy.h"

#include "http/errors.h"
#include "models/refusal.h"

namespace llmd::models {

namespace net = boost::asio;
using json = nlohmann::json;

namespace {
// The largest whole (non-streamed) reply taken in place of a stream.
constexpr std::size_t kMaxWholeReplyBytes = 64 * 1024 * 1024;

std::string queue_key_of(const http::RequestContext& ctx) {
  const auto* key = ctx.get<QueueKey>();
  return key ? key->caller : std::string();
}

// A request that waited for a busy model says so in its reply's headers.
void show_queue_wait(http::RequestContext& ctx, std::size_t position, std::chrono::milliseconds waited) {
  if (position == 0) return;
  ctx.response_headers.set("X-Llmd-Queue-Position", std::to_string(position));
  ctx.response_headers.set("X-Llmd-Queue-Wait-Ms", std::to_string(waited.count()));
}
}  // namespace

std::string SseSplitter::data_of(std::string_view block) {
  std::string out;
  bool first = true;
  while (!block.empty()) {
    const auto nl = block.find('\n');
    std::string_view line = block.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.starts_with("data:")) {
      line.remove_prefix(5);
      if (line.starts_with(' ')) line.remove_prefix(1);
      if (!first) out += '\n';
      out += line;
      first = false;
    }
    if (nl == std::string_view::npos) break;
    block.remove_prefix(nl + 1);
  }
  return out;
}

// A status that says the worker failed (another instance may do better),
// not that the request was wrong: 5xx, but not 501, which is the worker's
// answer that it does not offer what was asked (a chat model asked to rerank).
bool worker_fault(int status) { return status >= 500 && status != 501; }

bool read_usage(const json& reply, CallUsage& out) {
  if (!reply.is_object()) return false;
  auto it = reply.find("usage");
  if (it == reply.end() || !it->is_object()) return false;
  out.prompt_tokens = it->value("prompt_tokens", std::int64_t{0});
  out.completion_tokens = it->value("completion_tokens", std::int64_t{0});
  return true;
}

bool read_progress(const json& chunk, CallUsage& out) {
  if (!chunk.is_object()) return false;
  auto it = chunk.find("timings");
  if (it == chunk.end() || !it->is_object()) return false;
  const auto count = [&](const char* key) {
    auto v = it->find(key);
    return v != it->end() && v->is_number_integer() ? v->get<std::int64_t>() : std::int64_t{0};
  };
  if (!it->contains("predicted_n")) return false;
  out.prompt_tokens = count("cache_n") + count("prompt_n");
  out.completion_tokens = count("predicted_n");
  return true;
}

http::ClientRequest Proxy::make_request(const std::string& request_id, const Lease& lease, const std::string& path,
                                        const std::string& body) const {
  http::ClientRequest req;
  req.method = "POST";
  req.url = lease.base_url() + path;
  req.body = body;
  req.timeout = upstream_timeout_;
  req.headers.set("Content-Type", "application/json");
  req.headers.set("X-Request-ID", request_id);
  if (!lease.api_key().empty()) req.headers.set("Authorization", "Bearer " + lease.api_key());
  return req;
}

Error Proxy::shown_error(const Error& e, bool shutting_down_as_is) {
  const Refusal why = refusal_of(e);
  if (is_manager_refusal(why) && (why != Refusal::kShuttingDown || shutting_down_as_is)) return e;
  Error out = e;
  if (out.code != ErrorCode::kDeadlineExceeded) {
    out = Error(ErrorCode::kUnavailable, "the model worker failed: " + e.message, e.reason_or_default().data());
    out.retry_after_s = 2;
  }
  return out;
}

net::awaitable<Exchange> Proxy::send(const std::string& request_id, const std::string& model, const std::string& path,
                                     const std::string& body, LeaseKind kind, const std::string& caller) {
  Exchange out;
  std::vector<std::string> exclude;
  std::optional<Error> last;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto lease = co_await manager_.acquire(model, acquire_timeout_, exclude, kind, caller);
    if (!lease) {
      if (!last) last = lease.error();
      break;
    }
    out.instance = lease->instance_id();
    if (attempt == 0) {
      out.queue_position = lease->queue_position();
      out.queue_wait = lease->queue_wait();
    }
    const http::ClientRequest request = make_request(request_id, *lease, path, body);
    auto r = co_await client_.request(request);
    if (!r) {
      lease->finish(false);
      last = r.error();
      log_.warn(
          "worker call failed",
          {{"model", model}, {"instance", out.instance}, {"reason", r.error().message}, {"request_id", request_id}});
      if (refusal_of(r.error()) == Refusal::kUnreachable && attempt == 0) {
        exclude.push_back(out.instance);
        continue;
      }
      break;
    }
    if (worker_fault(r->status) && attempt == 0) {
      lease->finish(false);
      last = Error(ErrorCode::kUnavailable, "worker answered " + std::to_string(r->status), "upstream_error");
      exclude.push_back(out.instance);
      continue;
    }
    const json reply = json::parse(r->body, nullptr, false);
    read_usage(reply, out.usage);
    lease->finish(!worker_fault(r->status), out.usage.completion_tokens);
    out.reply = std::move(*r);
    co_return out;
  }
  out.error = last.value_or(Error(ErrorCode::kUnavailable, "no instance", "upstream_error"));
  co_return out;
}

net::awaitable<ProxyResult> Proxy::call(http::RequestContext& ctx, const std::string& model, const std::string& path,
                                        const std::string& body) {
  Exchange sent = co_await send(ctx.request_id, model, path, body, LeaseKind::kRequest, queue_key_of(ctx));
  ProxyResult out;
  out.instance = sent.instance;
  out.usage = sent.usage;
  show_queue_wait(ctx, sent.queue_position, sent.queue_wait);
  if (!sent.reply) {
    out.response = http::error_response(shown_error(*sent.error, false), ctx.request_id);
    co_return out;
  }
  http::ClientResponse& r = *sent.reply;
  out.response.status = r.status;
  out.response.body = std::move(r.body);
  out.response.headers.set("Content-Type", std::string(r.headers.get("Content-Type").value_or("application/json")));
  out.response.headers.set("X-Llmd-Instance", out.instance);
  out.ok = r.status == 200;
  co_return out;
}

net::awaitable<ProxyResult> Proxy::stream_through(http::RequestContext& ctx, const std::string& model,
                                                  const std::string& path, const std::string& body,
                                                  bool forward_usage_chunk, bool forward_timings) {
  co_return co_await stream(ctx.request_id, &ctx, model, path, body, forward_usage_chunk, forward_timings, nullptr,
                            queue_key_of(ctx));
}

net::awaitable<ProxyResult> Proxy::stream_events(http::RequestContext& ctx, const std::string& model,
                                                 const std::string& path, const std::string& body, OnEvent on_event) {
  co_return co_await stream(ctx.request_id, &ctx, model, path, body, false, false, &on_event, queue_key_of(ctx));
}

net::awaitable<ProxyResult> Proxy::stream_events(const std::string& request_id, const std::string& model,
                                                 const std::string& path, const std::string& body, OnEvent on_event,
                                                 const std::string& caller) {
  co_return co_await stream(request_id, nullptr, model, path, body, false, false, &on_event, caller);
}

namespace {

// What a worker's stream said so far about its usage.
struct StreamTally {
  bool got_usage = false;     // a final usage object arrived
  bool got_progress = false;  // per-token timings arrived
  CallUsage progress;         // the latest of those
  std::int64_t content_events = 0;
};

// Reads one SSE event of a worker's stream into `tally` and `usage` and
// returns its JSON (discarded for "[DONE]" or a payload that is not JSON).
// `forward` is cleared for a usage-only chunk the client did not ask for;
// with `strip_timings`, `block` is rewritten without the worker's timings.
json tally_event(std::string& block, const std::string& payload, bool strip_timings, bool forward_usage_chunk,
                 StreamTally& tally, CallUsage& usage, bool& forward) {
  if (payload == "[DONE]" || payload.empty()) return json(json::value_t::discarded);
  json chunk = json::parse(payload, nullptr, false);
  const bool has_choices =
      chunk.is_object() && chunk.contains("choices") && chunk["choices"].is_array() && !chunk["choices"].empty();
  if (has_choices) ++tally.content_events;
  if (read_progress(chunk, tally.progress)) {
    tally.got_progress = true;
    if (strip_timings) {
      chunk.erase("timings");
      block = "data: " + chunk.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
    }
  }
  if (read_usage(chunk, usage)) {
    tally.got_usage = true;
    forward = has_choices || forward_usage_chunk;
  }
  return chunk;
}

// The headers of a stream relayed to the client from a worker's.
http::Headers relayed_stream_headers(const http::Headers& upstream, const std::string& instance) {
  http::Headers down;
  down.set("Content-Type", std::string(upstream.get("Content-Type").value_or("text/event-stream")));
  down.set("Cache-Control", "no-cache");
  down.set("X-Accel-Buffering", "no");
  down.set("X-Llmd-Instance", instance);
  return down;
}

// Tells an SSE client why its stream ends early, then ends it cleanly.
net::awaitable<void> end_with_upstream_error(http::RequestContext& ctx, const std::string& request_id) {
  const json err = {
      {"error",
       {{"code", "upstream_error"}, {"message", "the model worker failed mid-reply"}, {"request_id", request_id}}}};
  const std::string event = "data: " + err.dump() + "\n\n";
  co_await ctx.stream.write(event);
  co_await ctx.stream.end();
}

}  // namespace

net::awaitable<ProxyResult> Proxy::stream(const std::string& request_id, http::RequestContext* ctx,
                                          const std::string& model, const std::string& path, const std::string& body,
                                          bool forward_usage_chunk, bool forward_timings, const OnEvent* on_event,
                                          const std::string& caller) {
  ProxyResult out;
  std::vector<std::string> exclude;
  std::optional<Error> last;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto lease = co_await manager_.acquire(model, acquire_timeout_, exclude, LeaseKind::kRequest, caller);
    if (!lease) {
      if (!last || refusal_of(lease.error()) != Refusal::kNoHealthyInstance) last = lease.error();
      break;
    }
    out.instance = lease->instance_id();
    if (ctx && attempt == 0) show_queue_wait(*ctx, lease->queue_position(), lease->queue_wait());
    int status = 0;
    bool retry_status = false;
    bool client_gone = false;
    StreamTally tally;
    std::string error_body;
    std::string error_type = "application/json";
    SseSplitter splitter;
    // A server that ignores "stream" answers one JSON reply: for `on_event`,
    // that reply is the one event.
    bool whole_reply = false;
    std::string reply_body;

    auto on_head = [&](int s, const http::Headers& h) -> net::awaitable<bool> {
      status = s;
      if (worker_fault(s) && attempt == 0) {
        retry_status = true;
        co_return false;
      }
      if (s != 200) {
        error_type = std::string(h.get("Content-Type").value_or("application/json"));
        co_return true;
      }
      whole_reply = on_event && h.get("Content-Type").value_or("").starts_with("application/json");
      if (!on_event) {
        const http::Headers down = relayed_stream_headers(h, out.instance);
        out.started = true;
        if (!co_await ctx->stream.begin(200, down)) {
          client_gone = true;
          co_return false;
        }
      }
      co_return true;
    };
    auto on_chunk = [&](std::string_view data) -> net::awaitable<bool> {
      if (status != 200) {
        if (error_body.size() < 65536) error_body.append(data.substr(0, 65536 - error_body.size()));
        co_return true;
      }
      if (whole_reply) {
        reply_body.append(data);
        co_return reply_body.size() <= kMaxWholeReplyBytes;
      }
      std::vector<std::pair<std::string, std::string>> events;
      splitter.feed(data, [&](std::string_view block, std::string payload) {
        events.emplace_back(std::string(block), std::move(payload));
      });
      std::string pass;  // the blocks to forward, written in one piece
      for (auto& [block, payload] : events) {
        bool forward = true;
        const json chunk =
            tally_event(block, payload, !forward_timings && !on_event, forward_usage_chunk, tally, out.usage, forward);
        if (on_event) {
          if (!chunk.is_discarded() && chunk.is_object()) {
            out.started = true;
            if (!co_await (*on_event)(chunk)) {
              client_gone = true;
              co_return false;
            }
          }
        } else if (forward) {
          pass += block;
        }
      }
      if (!pass.empty() && !co_await ctx->stream.write(pass)) {
        client_gone = true;
        co_return false;
      }
      co_return true;
    };

    auto r = co_await client_.stream(make_request(request_id, *lease, path, body), on_head, on_chunk);
    if (!tally.got_usage) {
      // Cut short: what the worker reported so far (the prompt was
      // evaluated before the first chunk), else one token per chunk.
      out.usage = tally.got_progress ? tally.progress : CallUsage{0, tally.content_events};
    }
    if (retry_status) {
      lease->finish(false);
      last = Error(ErrorCode::kUnavailable, "worker answered " + std::to_string(status), "upstream_error");
      exclude.push_back(out.instance);
      continue;
    }
    if (!r) {
      lease->finish(false);
      last = r.error();
      log_.warn("worker stream failed", {{"model", model},
                                         {"instance", out.instance},
                                         {"reason", r.error().message},
                                         {"request_id", request_id},
                                         {"started", out.started}});
      if (!out.started && refusal_of(r.error()) == Refusal::kUnreachable && attempt == 0) {
        exclude.push_back(out.instance);
        continue;
      }
      if (!out.started) break;
      if (!on_event) {
        co_await end_with_upstream_error(*ctx, request_id);
        out.response = http::Response::already_streamed(200);
      }
      out.outcome_status = 502;
      co_return out;
    }
    if (client_gone) {
      lease->finish(true, out.usage.completion_tokens);  // not the worker's fault
      out.response = http::Response::already_streamed(200);
      out.outcome_status = kClientClosedRequest;
      co_return out;
    }
    if (status != 200) {
      lease->finish(!worker_fault(status));
      out.response.status = status;
      out.response.body = std::move(error_body);
      out.response.headers.set("Content-Type", error_type);
      co_return out;
    }
    if (whole_reply) {
      const json reply = json::parse(reply_body, nullptr, false);
      tally.got_usage = read_usage(reply, out.usage);
      if (reply.is_object()) {
        out.started = true;
        (void)co_await (*on_event)(reply);
      }
    }
    lease->finish(true, out.usage.completion_tokens);
    out.ok = true;
    if (!on_event) {
      if (auto rest = splitter.take_rest(); !rest.empty()) co_await ctx->stream.write(rest);
      co_await ctx->stream.end();
      out.response = http::Response::already_streamed(200);
    }
    co_return out;
  }
  const Error e = last.value_or(Error(ErrorCode::kUnavailable, "no instance", "upstream_error"));
  out.error = shown_error(e, true);
  out.response = http::error_response(*out.error, request_id);
  co_return out;
}

}  // namespace llmd::models
