#include "models/routes.h"

#include <algorithm>
#include <ctime>

#include <nlohmann/json.hpp>

#include "http/client.h"
#include "http/errors.h"
#include "http/sse.h"
#include "models/anthropic.h"
#include "models/chat_input.h"
#include "models/ollama.h"
#include "models/proxy.h"
#include "models/request_settings.h"
#include "models/responses.h"

namespace llmd::models {
namespace {

namespace net = boost::asio;
using json = nlohmann::json;

// What GET /api/version answers: the Ollama API version llmd's dialect follows.
constexpr const char* kOllamaVersion = "0.12.0";

class OpenHooks final : public CallHooks {
 public:
  net::awaitable<Result<Admission>> admit(http::RequestContext&, const CallInfo& call) override {
    co_return Admission{call.max_tokens, false};
  }
  net::awaitable<Settlement> settle(http::RequestContext&, const CallInfo&, const CallOutcome& o) override {
    co_return Settlement{o.usage.prompt_tokens + o.usage.completion_tokens, std::nullopt};
  }
  net::awaitable<Result<void>> require_admin(http::RequestContext&) override { co_return Result<void>{}; }
  net::awaitable<Result<void>> require_user(http::RequestContext&) override { co_return Result<void>{}; }
  net::awaitable<Result<void>> require_funds(http::RequestContext&, const CallInfo&) override {
    co_return Result<void>{};
  }
};

// Who reads a model listing: where an instance listens (url, port, threads,
// its worker's output in `error`) is for administrators only.
enum class Audience { kUser, kAdmin };

json instance_json(const InstanceStatus& i, Audience audience) {
  json j = {{"id", i.id},         {"status", i.status},    {"health", i.health}, {"in_flight", i.in_flight},
            {"remote", i.remote}, {"restarts", i.restarts}};
  if (audience == Audience::kAdmin) {
    j["url"] = i.url;
    j["port"] = i.port;
    if (!i.remote) j["threads"] = i.threads;
    if (i.gpu_layers >= 0) {
      j["gpu_layers"] = i.gpu_layers;
      j["devices"] = devices_json(i.devices);
    }
    if (!i.error.empty()) j["error"] = i.error;
  }
  return j;
}

// What a model can be asked for: "completion" (chat and completions), with
// "tools" and "thinking" when its chat template has them (known once it has
// run), or "embedding", or "rerank" (Ollama's and vLLM's names).
json capabilities_json(const ModelStatus& m) {
  if (m.mode == "embeddings") return json::array({"embedding"});
  if (m.mode == "rerank") return json::array({"rerank"});
  json caps = json::array({"completion"});
  const auto has = [&](const char* cap) {
    const auto it = m.template_caps.find(cap);
    return it != m.template_caps.end() && it->second;
  };
  if (has("supports_tools")) caps.push_back("tools");
  if (has("supports_thinking")) caps.push_back("thinking");
  return caps;
}

json model_json(const ModelStatus& m, bool detail, Audience audience = Audience::kAdmin) {
  json inst = json::array();
  for (const auto& i : m.instances) inst.push_back(instance_json(i, audience));
  json j = {{"name", m.name},
            {"description", m.description},
            {"status", m.status},
            {"size", m.size},
            {"arch", m.arch},
            {"quantization", m.quantization},
            {"context_length", m.context_length},
            {"instances", inst},
            {"aliases", m.aliases},
            {"defaults", params_json(m.defaults)},
            {"forced", params_json(m.forced)},
            {"pinned", m.pinned},
            {"preload", m.preload},
            {"mode", m.mode},
            {"capabilities", capabilities_json(m)},
            {"waiting", m.waiting}};
  if (detail) {
    j["parameter_count"] = m.parameter_count;
    j["has_chat_template"] = m.has_chat_template;
  }
  if (!m.template_caps.empty()) j["template_caps"] = m.template_caps;
  if ((detail || m.status == "error") && !m.error.empty()) j["error"] = m.error;
  if (audience == Audience::kAdmin) {
    j["deletable"] = m.deletable;
    if (!m.file.empty()) j["file"] = m.file;
  }
  return j;
}

json usage_json(const CallUsage& u) {
  json j = json::object();
  j["prompt_tokens"] = u.prompt_tokens;
  j["completion_tokens"] = u.completion_tokens;
  return j;
}

// Shared state of the handlers.
struct Routes {
  explicit Routes(ModelRoutesDeps d) : deps(std::move(d)) {
    if (!deps.hooks) deps.hooks = open_call_hooks();
  }
  ModelRoutesDeps deps;

  Proxy proxy() { return Proxy(deps.manager, deps.client, deps.log, deps.acquire_timeout, deps.upstream_timeout); }

  // The caller of a listing, already known to be a user.
  net::awaitable<Audience> audience(http::RequestContext& ctx) {
    const Result<void> admin = co_await deps.hooks->require_admin(ctx);
    co_return admin ? Audience::kAdmin : Audience::kUser;
  }

  net::awaitable<Result<http::Response>> list(http::RequestContext& ctx) {
    const Result<void> allowed = co_await deps.hooks->require_user(ctx);
    if (!allowed) co_return std::unexpected(allowed.error());
    const Audience who = co_await audience(ctx);
    json arr = json::array();
    for (const auto& m : deps.manager.list()) arr.push_back(model_json(m, false, who));
    json body = {{"models", arr}};
    // The host's devices and their memory: for administrators, as the instances' placement.
    if (who == Audience::kAdmin) body["devices"] = devices_json(deps.manager.host_devices());
    co_return http::Response::json(200, body);
  }

  net::awaitable<Result<http::Response>> detail(http::RequestContext& ctx) {
    const Result<void> allowed = co_await deps.hooks->require_user(ctx);
    if (!allowed) co_return std::unexpected(allowed.error());
    const Audience who = co_await audience(ctx);
    auto m = deps.manager.get(ctx.param("name"));
    if (!m) co_return std::unexpected(m.error());
    co_return http::Response::json(200, model_json(*m, true, who));
  }

  net::awaitable<Result<http::Response>> start(http::RequestContext& ctx) {
    const Result<void> allowed = co_await deps.hooks->require_admin(ctx);
    if (!allowed) co_return std::unexpected(allowed.error());
    auto before = deps.manager.get(ctx.param("name"));
    if (!before) co_return std::unexpected(before.error());
    if (before->status == "running") co_return http::Response::json(200, model_json(*before, true));
    auto m = deps.manager.start(ctx.param("name"));
    if (!m) co_return std::unexpected(m.error());
    co_return http::Response::json(202, model_json(*m, true));
  }

  net::awaitable<Result<http::Response>> stop(http::RequestContext& ctx) {
    const Result<void> allowed = co_await deps.hooks->require_admin(ctx);
    if (!allowed) co_return std::unexpected(allowed.error());
    auto m = deps.manager.stop(ctx.param("name"));
    if (!m) co_return std::unexpected(m.error());
    co_return http::Response::json(202, model_json(*m, true));
  }

  net::awaitable<Result<http::Response>> openai_models(http::RequestContext& ctx) {
    const Result<void> allowed = co_await deps.hooks->require_user(ctx);
    if (!allowed) co_return std::unexpected(allowed.error());
    json data = json::array();
    for (const auto& m : deps.manager.list()) {
      if (m.status == "error") continue;
      data.push_back({{"id", m.name},
                      {"object", "model"},
                      {"created", 0},
                      {"owned_by", "llmd"},
                      {"capabilities", capabilities_json(m)}});
    }
    co_return http::Response::json(200, {{"object", "list"}, {"data", data}});
  }

  // Validates an OpenAI request body, resolves its model (an alias becomes
  // the model's name, in the body too) and applies the model's configured
  // request settings. Returns the model's name.
  Result<std::string> prepare(ApiKind kind, json& body, const std::string& default_model) {
    const bool client_limit = has_generation_limit(body);
    auto model = validate_openai_request(kind, body, deps.limits, default_model);
    if (!model) return model;
    const Result<ModelStatus> status = deps.manager.get(*model);
    if (!status) {  // unknown: the call itself says so
      body["model"] = *model;
      return model;
    }
    apply_request_settings(body, kind, status->defaults, status->forced, client_limit, deps.limits.max_tokens);
    body["model"] = status->name;
    return status->name;
  }

  // The admission lowered the completion limit to what the balance pays:
  // the worker gets that limit (every spelling of it), the client a header.
  static void limit_completion(http::RequestContext& ctx, json& body, CallInfo& call, std::int64_t max_tokens) {
    call.max_tokens = max_tokens;
    body["max_tokens"] = max_tokens;
    for (const char* k : {"max_completion_tokens", "n_predict"}) {
      if (body.contains(k)) body[k] = max_tokens;
    }
    ctx.response_headers.set("X-Llmd-Max-Tokens-Clamped", std::to_string(max_tokens));
  }

  // What admit() and settle() learn of a validated OpenAI body for the
  // worker's `path`, called on `route`.
  static CallInfo call_info(const http::RequestContext& ctx, ApiKind kind, const std::string& route,
                            const std::string& model, const std::string& path, const json& body) {
    CallInfo call;
    call.route = route;
    call.model = model;
    if (generates(kind)) {
      call.max_tokens = body.value("max_tokens", std::int64_t{0});
      call.choices = std::max(body.value("n", std::int64_t{1}), body.value("best_of", std::int64_t{1}));
      call.stream = body.value("stream", false);
    }
    call.prompt_bytes = ctx.request.body.size();
    call.worker_path = path;
    call.request = &body;
    return call;
  }

  net::awaitable<ProxyResult> forward(http::RequestContext& ctx, bool stream, const std::string& model,
                                      const std::string& path, const std::string& body, bool wants_usage,
                                      bool wants_timings) {
    if (stream) co_return co_await proxy().stream_through(ctx, model, path, body, wants_usage, wants_timings);
    co_return co_await proxy().call(ctx, model, path, body);
  }

  // POST /v1/chat/completions, /v1/completions, /v1/embeddings.
  net::awaitable<Result<http::Response>> openai_call(http::RequestContext& ctx, ApiKind kind, std::string path) {
    json body = json::parse(ctx.request.body, nullptr, false);
    if (body.is_discarded()) {
      co_return std::unexpected(Error(ErrorCode::kInvalidArgument, "the body is not valid JSON", "invalid_json"));
    }
    auto model = prepare(kind, body, deps.manager.default_model());
    if (!model) co_return std::unexpected(model.error());
    CallInfo call = call_info(ctx, kind, path, *model, path, body);
    // Not an if-init: g++ 12 mis-handles a co_await in an if-statement initializer.
    const Result<Admission> admitted = co_await deps.hooks->admit(ctx, call);
    if (!admitted) co_return std::unexpected(admitted.error());
    if (admitted->clamped) limit_completion(ctx, body, call, admitted->max_tokens);

    const auto started = std::chrono::steady_clock::now();
    // Ask a streaming worker for the usage chunk; pass it on only if the client asked.
    const bool client_wants_usage = call.stream && body.contains("stream_options") &&
                                    body["stream_options"].is_object() &&
                                    body["stream_options"].value("include_usage", false);
    // And for the usage so far in every chunk, so a stream cut short is
    // billed for its whole prompt and every token generated.
    const bool client_wants_timings = call.stream && body.value("timings_per_token", false);
    if (call.stream) {
      body["stream_options"]["include_usage"] = true;
      body["timings_per_token"] = true;
    }
    const std::string upstream_body = body.dump();
    // Initialised from one co_await (not assigned later): g++ 12 lost members
    // of a ProxyResult assigned from a co_await into an existing variable.
    ProxyResult r =
        co_await forward(ctx, call.stream, *model, path, upstream_body, client_wants_usage, client_wants_timings);
    http::Response resp = r.response;
    CallOutcome outcome{
        *model,  r.instance,
        r.usage, r.status_for_usage(),
        r.ok,    std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started)};
    const Settlement settled = co_await deps.hooks->settle(ctx, call, outcome);
    if (!call.stream) cost_headers(resp, settled);
    co_return resp;
  }

  // The cost of a call and what is left, on every model reply that is not
  // streamed (a stream's headers are sent before the cost is known).
  static void cost_headers(http::Response& resp, const Settlement& s) {
    resp.headers.set("X-Llmd-Tokens-Consumed", std::to_string(s.tokens_consumed));
    if (s.remaining_tokens) resp.headers.set("X-Llmd-Remaining-Tokens", std::to_string(*s.remaining_tokens));
  }

  // --- Other dialects, served as the OpenAI call they translate to -------

  // A dialect's call admitted: what admit() allowed, for settle().
  struct Admitted {
    CallInfo call;
    std::string path;  // the worker's endpoint
    std::chrono::steady_clock::time_point started;
  };

  // Validates `body` (an OpenAI request for `path`) as /v1/* does, reserves
  // for it (the balance may lower max_tokens in `body`) and notes the start.
  net::awaitable<Result<Admitted>> admit_translated(http::RequestContext& ctx, const std::string& route, ApiKind kind,
                                                    const std::string& path, json& body) {
    auto model = prepare(kind, body, deps.manager.default_model());
    if (!model) co_return std::unexpected(model.error());
    Admitted a;
    a.path = path;
    a.call = call_info(ctx, kind, route, *model, path, body);
    const Result<Admission> admitted = co_await deps.hooks->admit(ctx, a.call);
    a.call.request = nullptr;
    if (!admitted) co_return std::unexpected(admitted.error());
    if (admitted->clamped) limit_completion(ctx, body, a.call, admitted->max_tokens);
    a.started = std::chrono::steady_clock::now();
    co_return a;
  }

  std::chrono::milliseconds elapsed(const Admitted& a) const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - a.started);
  }

  // The admitted call, whole; settled whatever happened.
  net::awaitable<std::pair<ProxyResult, Settlement>> call_settled(http::RequestContext& ctx, const Admitted& a,
                                                                  const json& body) {
    ProxyResult r = co_await proxy().call(ctx, a.call.model, a.path, body.dump());
    const CallOutcome outcome{a.call.model, r.instance, r.usage, r.response.status, r.ok, elapsed(a)};
    const Settlement s = co_await deps.hooks->settle(ctx, a.call, outcome);
    co_return std::make_pair(std::move(r), s);
  }

  // The admitted call streamed, each worker chunk to `on_event`; settled
  // whatever happened (a stream cut short pays what was generated).
  net::awaitable<std::pair<ProxyResult, Settlement>> stream_settled(http::RequestContext& ctx, const Admitted& a,
                                                                    json& body, Proxy::OnEvent on_event) {
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
    body["timings_per_token"] = true;  // the usage so far, should the stream be cut short
    ProxyResult r = co_await proxy().stream_events(ctx, a.call.model, a.path, body.dump(), std::move(on_event));
    const CallOutcome outcome{a.call.model, r.instance, r.usage, r.ok ? 200 : r.status_for_usage(), r.ok, elapsed(a)};
    const Settlement s = co_await deps.hooks->settle(ctx, a.call, outcome);
    co_return std::make_pair(std::move(r), s);
  }

  // A dialect's whole reply: the worker's reply translated (`translate`
  // gets it and its usage), with the cost headers; a worker's error as it came.
  template <class Translate>
  net::awaitable<Result<http::Response>> reply_translated(http::RequestContext& ctx, const Admitted& admitted,
                                                          const json& body, Translate translate) {
    auto done = co_await call_settled(ctx, admitted, body);
    const ProxyResult& r = done.first;
    if (!r.ok || r.response.status != 200) co_return r.response;
    const json reply = json::parse(r.response.body, nullptr, false);
    http::Response out = http::Response::json(200, translate(reply, r.usage));
    cost_headers(out, done.second);
    co_return out;
  }

  // A dialect's stream: the worker's chunks become the dialect's events
  // (`opening` first, once the stream opens), closed with the usage, or
  // with `failure` when the worker fails mid-reply. Before anything was
  // sent, a failure is an ordinary error reply.
  template <class Translator>
  net::awaitable<Result<http::Response>> stream_translated(http::RequestContext& ctx, const Admitted& admitted,
                                                           json& body, Translator& translator,
                                                           std::vector<SseEvent> opening, SseEvent failure) {
    http::SseWriter sse(ctx);
    bool opened = false;
    const auto send_all = [&](const std::vector<SseEvent>& events) -> net::awaitable<bool> {
      if (!opened) {
        opened = true;
        if (!co_await sse.open(200)) co_return false;
        for (const auto& e : opening) {
          if (!co_await sse.send(e.data, e.event)) co_return false;
        }
      }
      for (const auto& e : events) {
        if (!co_await sse.send(e.data, e.event)) co_return false;
      }
      co_return true;
    };
    auto done = co_await stream_settled(ctx, admitted, body, [&](const json& chunk) -> net::awaitable<bool> {
      const auto events = translator.feed(chunk);
      if (events.empty()) co_return true;
      co_return co_await send_all(events);
    });
    const ProxyResult& r = done.first;
    if (!opened && !r.ok) co_return r.response;
    if (r.ok) {
      co_await send_all(translator.finish(r.usage.prompt_tokens, r.usage.completion_tokens));
    } else if (sse.alive()) {
      co_await sse.send(failure.data, failure.event);
    }
    co_await sse.close();
    co_return http::Response::already_streamed(200);
  }

  // POST /v1/messages (Anthropic Messages): translated to a chat completion
  // and served like /v1/chat/completions; errors are reshaped by
  // dialect_error_middleware.
  net::awaitable<Result<http::Response>> anthropic_messages(http::RequestContext& ctx) {
    const json in = json::parse(ctx.request.body, nullptr, false);
    if (in.is_discarded())
      co_return std::unexpected(Error(ErrorCode::kInvalidArgument, "the body is not valid JSON", "invalid_json"));
    auto translated = anthropic::to_chat(in);
    if (!translated) co_return std::unexpected(translated.error());
    json body = std::move(*translated);
    auto admitted = co_await admit_translated(ctx, "/v1/messages", ApiKind::kChat, "/v1/chat/completions", body);
    if (!admitted) co_return std::unexpected(admitted.error());
    const std::string id = "msg_" + ctx.request_id;
    const std::string shown_model = in["model"];

    if (!admitted->call.stream) {
      co_return co_await reply_translated(ctx, *admitted, body, [&](const json& reply, const CallUsage&) {
        return anthropic::from_chat(reply, id, shown_model);
      });
    }

    anthropic::StreamTranslator translator(id, shown_model);
    // Named, not temporaries in the co_await: g++ 12 destroys those twice.
    std::vector<SseEvent> opening;
    SseEvent failure{"error", anthropic::error_body(502, "the model worker failed mid-reply").dump()};
    co_return co_await stream_translated(ctx, *admitted, body, translator, std::move(opening), std::move(failure));
  }

  // POST /v1/responses (OpenAI Responses, stateless): translated to a chat
  // completion and served like /v1/chat/completions.
  net::awaitable<Result<http::Response>> responses_create(http::RequestContext& ctx) {
    const json in = json::parse(ctx.request.body, nullptr, false);
    if (in.is_discarded())
      co_return std::unexpected(Error(ErrorCode::kInvalidArgument, "the body is not valid JSON", "invalid_json"));
    auto translated = responses::to_chat(in);
    if (!translated) co_return std::unexpected(translated.error());
    json body = std::move(*translated);
    auto admitted = co_await admit_translated(ctx, "/v1/responses", ApiKind::kChat, "/v1/chat/completions", body);
    if (!admitted) co_return std::unexpected(admitted.error());
    const responses::Ids ids{"resp_" + ctx.request_id, static_cast<std::int64_t>(std::time(nullptr))};

    if (!admitted->call.stream) {
      co_return co_await reply_translated(ctx, *admitted, body, [&](const json& reply, const CallUsage&) {
        return responses::from_chat(reply, ids, in);
      });
    }

    responses::StreamTranslator translator(ids, in);
    // The opening events first: their sequence numbers come before the rest.
    std::vector<SseEvent> opening = translator.start();
    const json failed = {
        {"type", "error"}, {"code", "upstream_error"}, {"message", "the model worker failed mid-reply"}};
    SseEvent failure{"error", failed.dump()};
    co_return co_await stream_translated(ctx, *admitted, body, translator, std::move(opening), std::move(failure));
  }

  // POST /api/chat, /api/generate (Ollama): NDJSON lines unless
  // "stream": false; served like /v1/chat/completions (a raw generate like
  // /v1/completions).
  net::awaitable<Result<http::Response>> ollama_generation(http::RequestContext& ctx, ollama::Kind kind) {
    const json in = json::parse(ctx.request.body, nullptr, false);
    if (in.is_discarded())
      co_return std::unexpected(Error(ErrorCode::kInvalidArgument, "the body is not valid JSON", "invalid_json"));
    const auto keep = ollama::keep_alive(in);
    if (!keep) co_return std::unexpected(keep.error());
    const bool admin = (co_await deps.hooks->require_admin(ctx)).has_value();
    if (kind == ollama::Kind::kGenerate && admin && in.is_object() && in.value("prompt", "").empty() &&
        in.contains("model") && in["model"].is_string()) {
      co_return co_await ollama_load(in["model"], *keep);
    }
    bool raw = false;
    auto translated = kind == ollama::Kind::kChat ? ollama::chat_request(in) : ollama::generate_request(in, raw);
    if (!translated) co_return std::unexpected(translated.error());
    json body = std::move(*translated);
    const std::string route = kind == ollama::Kind::kChat ? "/api/chat" : "/api/generate";
    const ApiKind api = raw ? ApiKind::kCompletion : ApiKind::kChat;
    const std::string path = raw ? "/v1/completions" : "/v1/chat/completions";
    auto admitted = co_await admit_translated(ctx, route, api, path, body);
    if (!admitted) co_return std::unexpected(admitted.error());
    const std::string shown_model = in["model"];
    const auto timing = [&](const CallUsage& u) {
      return ollama::Timing{u.prompt_tokens, u.completion_tokens, elapsed(*admitted).count() * 1'000'000};
    };

    // An administrator's keep_alive sets how long the model stays loaded
    // (others' is ignored: one user must not unload or pin a shared model).
    const auto keep_model_alive = [&] {
      if (admin && *keep) (void)deps.manager.set_keep_alive(admitted->call.model, *keep);
    };
    if (!admitted->call.stream) {
      Result<http::Response> out = co_await reply_translated(
          ctx, *admitted, body,
          [&](const json& reply, const CallUsage& u) { return ollama::reply(kind, reply, shown_model, timing(u)); });
      keep_model_alive();
      co_return out;
    }

    ollama::StreamTranslator translator(kind, shown_model);
    bool opened = false;
    bool alive = true;
    const auto send_lines = [&](const std::vector<json>& lines) -> net::awaitable<bool> {
      if (!opened) {
        opened = true;
        http::Headers h;
        h.set("Content-Type", "application/x-ndjson");
        h.set("Cache-Control", "no-cache");
        h.set("X-Accel-Buffering", "no");
        alive = co_await ctx.stream.begin(200, h);
      }
      std::string out;
      for (const auto& l : lines) out += l.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
      if (alive && !out.empty()) alive = co_await ctx.stream.write(out);
      co_return alive;
    };
    auto done = co_await stream_settled(ctx, *admitted, body, [&](const json& chunk) -> net::awaitable<bool> {
      const auto lines = translator.feed(chunk);
      if (lines.empty()) co_return true;
      co_return co_await send_lines(lines);
    });
    keep_model_alive();
    const ProxyResult& r = done.first;
    if (!opened && !r.ok) co_return r.response;  // nothing sent yet: a normal error reply
    if (r.ok) {
      co_await send_lines(translator.finish(timing(r.usage)));
    } else {
      std::vector<json> failed(1, json::object());
      failed[0]["error"] = "the model worker failed mid-reply";
      co_await send_lines(failed);
    }
    if (alive) co_await ctx.stream.end();
    co_return http::Response::already_streamed(200);
  }

  // POST /api/generate without a prompt (an administrator's): Ollama's way
  // to load a model, or with keep_alive 0 to unload it.
  net::awaitable<Result<http::Response>> ollama_load(const std::string& model,
                                                     std::optional<std::chrono::seconds> keep) {
    const bool unload = keep && keep->count() == 0;
    auto status = unload ? deps.manager.stop(model) : deps.manager.start(model);
    if (!status) co_return std::unexpected(status.error());
    if (keep && !unload) (void)deps.manager.set_keep_alive(model, *keep);
    co_return http::Response::json(200, {{"model", model},
                                         {"created_at", ollama::now_rfc3339()},
                                         {"response", ""},
                                         {"done", true},
                                         {"done_reason", unload ? "unload" : "load"}});
  }

  // POST /api/embed (Ollama): served like /v1/embeddings.
  net::awaitable<Result<http::Response>> ollama_embed(http::RequestContext& ctx) {
    const json in = json::parse(ctx.request.body, nullptr, false);
    if (in.is_discarded())
      co_return std::unexpected(Error(ErrorCode::kInvalidArgument, "the body is not valid JSON", "invalid_json"));
    auto translated = ollama::embed_request(in);
    if (!translated) co_return std::unexpected(translated.error());
    json body = std::move(*translated);
    auto admitted = co_await admit_translated(ctx, "/api/embed", ApiKind::kEmbedding, "/v1/embeddings", body);
    if (!admitted) co_return std::unexpected(admitted.error());
    co_return co_await reply_translated(ctx, *admitted, body, [&](const json& reply, const CallUsage& u) {
      const ollama::Timing timing{u.prompt_tokens, 0, elapsed(*admitted).count() * 1'000'000};
      return ollama::embed_reply(reply, in["model"], timing);
    });
  }

  // POST /v1/rerank (and /v1/reranking): Jina's shape, or TEI's ("texts",
  // answered as a bare array). The worker is always asked in Jina's shape,
  // whose usage the call is billed by.
  net::awaitable<Result<http::Response>> rerank(http::RequestContext& ctx) {
    json body = json::parse(ctx.request.body, nullptr, false);
    if (body.is_discarded()) {
      co_return std::unexpected(Error(ErrorCode::kInvalidArgument, "the body is not valid JSON", "invalid_json"));
    }
    auto admitted = co_await admit_translated(ctx, "/v1/rerank", ApiKind::kRerank, "/v1/rerank", body);
    if (!admitted) co_return std::unexpected(admitted.error());
    const bool tei = body.contains("texts");
    const bool return_text = tei && body.value("return_text", false);
    json documents = tei ? body["texts"] : body["documents"];
    if (tei) {
      body["documents"] = body["texts"];
      body.erase("texts");
      body.erase("return_text");
    }
    co_return co_await reply_translated(ctx, *admitted, body, [&](const json& reply, const CallUsage&) {
      if (!tei) return reply;
      json out = json::array();
      for (const auto& r : reply.value("results", json::array())) {
        json item{{"index", r.value("index", 0)}, {"score", r.value("relevance_score", 0.0)}};
        const auto i = item["index"].get<std::size_t>();
        if (return_text && i < documents.size()) item["text"] = documents[i];
        out.push_back(std::move(item));
      }
      return out;
    });
  }

  // Ollama's description of a model ("details").
  static json ollama_details(const ModelStatus& m) {
    return {{"format", "gguf"},
            {"family", m.arch},
            {"families", json::array({m.arch})},
            {"parameter_size", m.parameter_count > 0 ? std::to_string(m.parameter_count) : ""},
            {"quantization_level", m.quantization}};
  }
  static json ollama_model(const ModelStatus& m) {
    return {{"name", m.name}, {"model", m.name}, {"modified_at", "1970-01-01T00:00:00Z"},
            {"size", m.size}, {"digest", ""},    {"details", ollama_details(m)}};
  }

  // GET /api/tags, /api/ps (the running ones), POST /api/show, GET /api/version.
  net::awaitable<Result<http::Response>> ollama_tags(http::RequestContext& ctx, bool running_only) {
    const Result<void> allowed = co_await deps.hooks->require_user(ctx);
    if (!allowed) co_return std::unexpected(allowed.error());
    json models = json::array();
    for (const auto& m : deps.manager.list()) {
      if (m.status == "error" || (running_only && m.status != "running")) continue;
      json entry = ollama_model(m);
      if (running_only) {
        entry["expires_at"] = "0001-01-01T00:00:00Z";
        entry["size_vram"] = 0;
      }
      models.push_back(std::move(entry));
    }
    co_return http::Response::json(200, {{"models", models}});
  }

  net::awaitable<Result<http::Response>> ollama_show(http::RequestContext& ctx) {
    const Result<void> allowed = co_await deps.hooks->require_user(ctx);
    if (!allowed) co_return std::unexpected(allowed.error());
    const json in = json::parse(ctx.request.body, nullptr, false);
    std::string name;
    if (in.is_object()) name = in.value("model", in.value("name", ""));
    if (name.empty())
      co_return std::unexpected(Error(ErrorCode::kInvalidArgument, "model is required", "invalid_request"));
    auto m = deps.manager.get(name);
    if (!m) co_return std::unexpected(m.error());
    json capabilities = json::array({"completion"});
    if (m->has_chat_template) capabilities.push_back("tools");
    co_return http::Response::json(200, {{"modelfile", ""},
                                         {"parameters", ""},
                                         {"template", ""},
                                         {"details", ollama_details(*m)},
                                         {"model_info",
                                          {{"general.architecture", m->arch},
                                           {"general.parameter_count", m->parameter_count},
                                           {m->arch + ".context_length", m->context_length}}},
                                         {"capabilities", capabilities}});
  }

  // POST /v1/messages/count_tokens: the prompt's tokens as the model's worker
  // counts them (its /apply-template); free of charge.
  net::awaitable<Result<http::Response>> anthropic_count_tokens(http::RequestContext& ctx) {
    const json in = json::parse(ctx.request.body, nullptr, false);
    if (in.is_discarded())
      co_return std::unexpected(Error(ErrorCode::kInvalidArgument, "the body is not valid JSON", "invalid_json"));
    auto translated = anthropic::to_chat(in, false);
    if (!translated) co_return std::unexpected(translated.error());
    json body = std::move(*translated);
    body.erase("stream");
    body["max_tokens"] = 1;  // nothing is generated: the context need not hold a reply
    auto model = prepare(ApiKind::kChat, body, deps.manager.default_model());
    if (!model) co_return std::unexpected(model.error());
    CallInfo call;
    call.route = "/v1/messages/count_tokens";
    call.model = *model;
    call.max_tokens = 1;
    const Result<void> allowed = co_await deps.hooks->require_funds(ctx, call);
    if (!allowed) co_return std::unexpected(allowed.error());
    auto r = co_await proxy().call(ctx, *model, "/apply-template", body.dump());
    if (!r.ok || r.response.status != 200) co_return r.response;
    const json reply = json::parse(r.response.body, nullptr, false);
    if (!reply.is_object() || !reply.contains("prompt_tokens") || !reply["prompt_tokens"].is_number_unsigned()) {
      co_return std::unexpected(
          Error(ErrorCode::kUnprocessable, "model " + *model + " cannot count tokens", "not_supported"));
    }
    co_return http::Response::json(200, {{"input_tokens", reply["prompt_tokens"]}});
  }

  // POST /api/v1/models/{name}/chat (models/chat_input.h): one reply, or a
  // turn of a conversation kept on the server (deps.memory).
  net::awaitable<Result<http::Response>> chat(http::RequestContext& ctx) {
    std::string name = ctx.param("name");
    auto input = parse_chat_input(json::parse(ctx.request.body, nullptr, false));
    if (!input) co_return std::unexpected(input.error());
    json messages = input->messages;
    if (input->turn) {
      if (!deps.memory) {
        co_return fail(ErrorCode::kNotImplemented, "this server keeps no conversations", "not_implemented");
      }
      const Result<ChatContext> context = co_await deps.memory->plan(ctx, *input->turn);
      if (!context) co_return std::unexpected(context.error());
      messages = chat_messages(*context);
    }
    json body = {{"model", name}, {"messages", std::move(messages)}};
    body.update(input->options);
    const bool stream = input->stream;
    if (stream) body["stream"] = true;
    if (auto m = deps.manager.get(name); !m) co_return std::unexpected(m.error());
    auto valid = prepare(ApiKind::kChat, body, name);
    if (!valid) co_return std::unexpected(valid.error());
    name = *valid;

    CallInfo call;
    call.route = "/api/v1/models/{name}/chat";
    call.model = name;
    call.max_tokens = body["max_tokens"].get<std::int64_t>();
    call.prompt_bytes = body["messages"].dump().size();
    call.stream = stream;
    call.worker_path = "/v1/chat/completions";
    call.request = &body;
    // Not an if-init: g++ 12 mis-handles a co_await in an if-statement initializer.
    const Result<Admission> admitted = co_await deps.hooks->admit(ctx, call);
    if (!admitted) co_return std::unexpected(admitted.error());
    const bool clamped = admitted->clamped;
    if (clamped) limit_completion(ctx, body, call, admitted->max_tokens);
    std::optional<StoredTurn> stored;
    if (input->turn) {
      // Stored only now that the call is admitted: a refusal leaves the
      // conversation as it was.
      Result<StoredTurn> opened = co_await deps.memory->open(ctx, name);
      if (!opened) {
        const CallOutcome nothing{name, "", {}, http::status_for(opened.error().code), false, {}};
        co_await deps.hooks->settle(ctx, call, nothing);
        co_return std::unexpected(opened.error());
      }
      stored = std::move(*opened);
    }
    if (!stream) co_return co_await chat_reply(ctx, call, body, clamped, stored);
    co_return co_await chat_stream(ctx, call, body, clamped, stored);
  }

  net::awaitable<Result<http::Response>> chat_reply(http::RequestContext& ctx, const CallInfo& call, const json& body,
                                                    bool clamped, const std::optional<StoredTurn>& stored) {
    const auto started = std::chrono::steady_clock::now();
    auto r = co_await proxy().call(ctx, call.model, "/v1/chat/completions", body.dump());
    CallOutcome outcome{call.model, r.instance, r.usage, r.response.status, r.ok, since(started)};
    const Settlement s = co_await deps.hooks->settle(ctx, call, outcome);
    TurnEnding ending{"", "", r.usage, s.tokens_consumed, "error"};
    const bool ok = r.ok && r.response.status == 200;
    if (ok) {
      const json reply = json::parse(r.response.body, nullptr, false);
      if (!reply.is_discarded() && reply.contains("choices") && reply["choices"].is_array() &&
          !reply["choices"].empty()) {
        const json& choice = reply["choices"][0];
        ending.content = choice["message"].value("content", "");
        ending.reasoning_content = choice["message"].value("reasoning_content", "");
        ending.finish_reason = choice.value("finish_reason", "stop");
      }
    }
    if (stored) co_await deps.memory->close(ctx, *stored, ending);
    if (!ok) co_return r.response;
    json out = {{"reply", ending.content},
                {"usage", {{"prompt_tokens", r.usage.prompt_tokens}, {"completion_tokens", r.usage.completion_tokens}}},
                {"tokens_consumed", s.tokens_consumed},
                {"remaining_tokens", s.remaining_tokens ? json(*s.remaining_tokens) : json(nullptr)}};
    if (!ending.reasoning_content.empty()) out["reasoning_content"] = ending.reasoning_content;
    if (clamped) out["max_tokens_clamped"] = true;
    if (stored) out.update(turn_json(*stored));
    http::Response reply_response = http::Response::json(200, out);
    cost_headers(reply_response, s);
    co_return reply_response;
  }

  // The stream: {delta} and {reasoning_delta} events, then {done, usage,
  // tokens_consumed, ...} or an "error" event.
  net::awaitable<Result<http::Response>> chat_stream(http::RequestContext& ctx, const CallInfo& call, json body,
                                                     bool clamped, const std::optional<StoredTurn>& stored) {
    const auto started = std::chrono::steady_clock::now();
    body["stream_options"] = {{"include_usage", true}};
    body["timings_per_token"] = true;  // the usage so far, should the stream be cut short
    http::SseWriter sse(ctx);
    bool opened = false;
    bool client_gone = false;
    TurnEnding ending{"", "", {}, 0, "stop"};
    auto r = co_await proxy().stream_events(
        ctx, call.model, "/v1/chat/completions", body.dump(), [&](const json& chunk) -> net::awaitable<bool> {
          if (!opened) {
            opened = true;
            client_gone = !co_await sse.open(200);
            if (client_gone) co_return false;
          }
          if (!chunk.contains("choices") || !chunk["choices"].is_array() || chunk["choices"].empty()) {
            co_return true;
          }
          const json& choice = chunk["choices"][0];
          if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
            ending.finish_reason = choice["finish_reason"].get<std::string>();
          }
          const json& delta = choice["delta"];
          const std::string thought = text_field(delta, "reasoning_content");
          const std::string piece = text_field(delta, "content");
          ending.reasoning_content += thought;
          ending.content += piece;
          if (!thought.empty()) client_gone = !co_await sse.send(one_field("reasoning_delta", thought));
          if (!piece.empty() && !client_gone) client_gone = !co_await sse.send(one_field("delta", piece));
          co_return !client_gone;
        });
    CallOutcome outcome{call.model, r.instance, r.usage, r.ok ? 200 : r.status_for_usage(), r.ok, since(started)};
    const Settlement s = co_await deps.hooks->settle(ctx, call, outcome);
    if (stored) {
      ending.usage = r.usage;
      ending.tokens_consumed = s.tokens_consumed;
      if (!r.ok) ending.finish_reason = client_gone ? "stopped" : "error";
      co_await deps.memory->close(ctx, *stored, ending);
    }
    if (!opened) co_return r.response;  // nothing sent yet: a normal error reply
    json last = stored ? turn_json(*stored) : json::object();
    if (r.ok) {
      last["done"] = true;
      last["usage"] = usage_json(r.usage);
      last["tokens_consumed"] = s.tokens_consumed;
      last["remaining_tokens"] = s.remaining_tokens ? json(*s.remaining_tokens) : json(nullptr);
      if (clamped) last["max_tokens_clamped"] = true;
      co_await sse.send(last.dump());
    } else {
      last["error"] = json::object();
      last["error"]["code"] = "upstream_error";
      last["error"]["message"] = "the model worker failed mid-reply";
      co_await sse.send(last.dump(), "error");
    }
    co_await sse.close();
    co_return http::Response::already_streamed(200);
  }

  // {"key": "text"} (built outside the coroutine: g++ 12 miscompiles a
  // braced json in a co_await expression).
  static std::string one_field(const char* key, const std::string& text) {
    json j = json::object();
    j[key] = text;
    return j.dump();
  }

  static std::string text_field(const json& object, const char* key) {
    if (!object.is_object() || !object.contains(key) || !object[key].is_string()) return {};
    return object[key].get<std::string>();
  }

  static std::chrono::milliseconds since(std::chrono::steady_clock::time_point started) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  }

  static json turn_json(const StoredTurn& t) {
    return {{"conversation_id", t.conversation_id},
            {"user_message_id", t.user_message_id},
            {"message_id", t.reply_message_id},
            {"title", t.title}};
  }
};

}  // namespace

std::shared_ptr<CallHooks> open_call_hooks() { return std::make_shared<OpenHooks>(); }

void add_model_routes(http::Router& router, ModelRoutesDeps deps) {
  auto r = std::make_shared<Routes>(std::move(deps));
  router.get("/api/v1/models", [r](http::RequestContext& c) { return r->list(c); });
  router.get("/api/v1/models/{name}", [r](http::RequestContext& c) { return r->detail(c); });
  router.post("/api/v1/models/{name}/start", [r](http::RequestContext& c) { return r->start(c); });
  router.post("/api/v1/models/{name}/stop", [r](http::RequestContext& c) { return r->stop(c); });
  router.post("/api/v1/models/{name}/chat", [r](http::RequestContext& c) { return r->chat(c); });
  router.get("/v1/models", [r](http::RequestContext& c) { return r->openai_models(c); });
  router.post("/v1/chat/completions",
              [r](http::RequestContext& c) { return r->openai_call(c, ApiKind::kChat, "/v1/chat/completions"); });
  router.post("/v1/completions",
              [r](http::RequestContext& c) { return r->openai_call(c, ApiKind::kCompletion, "/v1/completions"); });
  for (const char* path : {"/v1/rerank", "/v1/reranking"}) {
    router.post(path, [r](http::RequestContext& c) { return r->rerank(c); });
  }
  router.post("/v1/embeddings",
              [r](http::RequestContext& c) { return r->openai_call(c, ApiKind::kEmbedding, "/v1/embeddings"); });
  router.post("/v1/responses", [r](http::RequestContext& c) { return r->responses_create(c); });
  router.post("/v1/messages", [r](http::RequestContext& c) { return r->anthropic_messages(c); });
  router.post("/v1/messages/count_tokens", [r](http::RequestContext& c) { return r->anthropic_count_tokens(c); });
  router.post("/api/chat", [r](http::RequestContext& c) { return r->ollama_generation(c, ollama::Kind::kChat); });
  router.post("/api/generate",
              [r](http::RequestContext& c) { return r->ollama_generation(c, ollama::Kind::kGenerate); });
  router.post("/api/embed", [r](http::RequestContext& c) { return r->ollama_embed(c); });
  router.get("/api/tags", [r](http::RequestContext& c) { return r->ollama_tags(c, false); });
  router.get("/api/ps", [r](http::RequestContext& c) { return r->ollama_tags(c, true); });
  router.post("/api/show", [r](http::RequestContext& c) { return r->ollama_show(c); });
  router.get("/api/version", [](http::RequestContext&) -> net::awaitable<Result<http::Response>> {
    co_return http::Response::json(200, {{"version", kOllamaVersion}});
  });
}

http::Middleware dialect_error_middleware() {
  return [](http::RequestContext& ctx, const http::Next& next) -> net::awaitable<http::Response> {
    http::Response resp = co_await next(ctx);
    const std::string& path = ctx.request.path;
    const bool anthropic_path = path.starts_with("/v1/messages");
    static constexpr std::string_view kOllamaPaths[] = {"/api/chat", "/api/generate", "/api/embed",  "/api/tags",
                                                        "/api/ps",   "/api/show",     "/api/version"};
    const bool ollama_path = std::ranges::find(kOllamaPaths, std::string_view(path)) != std::end(kOllamaPaths);
    if ((!anthropic_path && !ollama_path) || resp.status < 400 || resp.body.empty()) co_return resp;
    const json body = json::parse(resp.body, nullptr, false);
    if (!body.is_object() || !body.contains("error") || !body["error"].is_object()) co_return resp;
    std::string message = "request failed (" + std::to_string(resp.status) + ")";
    if (body["error"].contains("message") && body["error"]["message"].is_string()) message = body["error"]["message"];
    if (ollama_path) {
      resp.body = json{{"error", message}}.dump();  // Ollama's shape: the message alone
      co_return resp;
    }
    json shaped = anthropic::error_body(resp.status, message);
    if (body.contains("error") && body["error"].is_object()) {
      for (const char* k : {"needed", "available"}) {  // llmd's balance details stay
        if (body["error"].contains(k)) shaped["error"][k] = body["error"][k];
      }
    }
    resp.body = shaped.dump();
    resp.headers.set("Content-Type", "application/json");
    co_return resp;
  };
}

}  // namespace llmd::models
