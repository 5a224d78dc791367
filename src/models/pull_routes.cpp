#include "models/pull_routes.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include "http/json_body.h"
#include "http/sse.h"

namespace llmd::models {
namespace {

namespace net = boost::asio;
using json = nlohmann::json;
using http::RequestContext;
using http::Response;

json pull_json(const PullJob& p) {
  json j{{"id", p.id},
         {"source", p.spec.source},
         {"state", pull_state_name(p.state)},
         {"files", p.files},
         {"model", p.model},
         {"done", p.done},
         {"total", p.total},
         {"resumed_from", p.resumed_from},
         {"bytes_per_second", p.bytes_per_second},
         {"eta_seconds", p.eta_seconds ? json(*p.eta_seconds) : json(nullptr)},
         {"created_at", p.created_at}};
  if (!p.spec.name.empty()) j["name"] = p.spec.name;
  if (!p.error.empty()) j["error"] = {{"message", p.error}, {"reason", p.error_reason}};
  return j;
}

// The repository's GGUF quantisations, each with what it would download.
json hub_listing(const HubRef& ref, const json& info) {
  json quants = json::array();
  for (const auto& q : quantisations(info)) {
    HubRef one = ref;
    one.quantisation = q;
    one.file.clear();
    json entry{{"name", q}};
    if (auto files = choose_files(info, one)) {
      std::uint64_t size = 0;
      json names = json::array();
      for (const auto& f : *files) {
        size += f.size;
        names.push_back(f.path);
      }
      entry["size"] = size;
      entry["files"] = names;
      entry["source"] = "hf:" + ref.repo + ":" + q;
    } else {
      entry["error"] = files.error().message;  // e.g. two models share it: pick the file
    }
    quants.push_back(std::move(entry));
  }
  return {{"repo", ref.repo},
          {"revision", ref.revision},
          {"default_quantisation", kDefaultQuantisation},
          {"quantisations", quants}};
}

struct Handlers {
  PullRoutesDeps d;

  net::awaitable<Result<void>> admin(RequestContext& ctx) { co_return co_await d.hooks->require_admin(ctx); }

  net::awaitable<Result<Response>> start(RequestContext& ctx) {
    const Result<void> allowed = co_await admin(ctx);
    if (!allowed) co_return std::unexpected(allowed.error());
    auto body = http::parse_json_object(ctx.request.body);
    if (!body) co_return std::unexpected(body.error());
    auto source = http::string_field(*body, "source", true);
    if (!source) co_return std::unexpected(source.error());
    auto name = http::string_field(*body, "name", false);
    if (!name) co_return std::unexpected(name.error());
    auto sha256 = http::string_field(*body, "sha256", false);
    if (!sha256) co_return std::unexpected(sha256.error());
    auto job = d.jobs.start(PullSpec{*source, *name, *sha256});
    if (!job) co_return std::unexpected(job.error());
    d.log.info("model pull asked", {{"id", job->id}, {"source", job->spec.source}});
    co_return Response::json(202, {{"pull", pull_json(*job)}});
  }

  net::awaitable<Result<Response>> list(RequestContext& ctx) {
    const Result<void> allowed = co_await admin(ctx);
    if (!allowed) co_return std::unexpected(allowed.error());
    json out = json::array();
    for (const auto& p : d.jobs.list()) out.push_back(pull_json(p));
    co_return Response::json(200, {{"pulls", out}});
  }

  net::awaitable<Result<Response>> get(RequestContext& ctx) {
    const Result<void> allowed = co_await admin(ctx);
    if (!allowed) co_return std::unexpected(allowed.error());
    auto job = d.jobs.get(ctx.param("id"));
    if (!job) co_return std::unexpected(job.error());
    co_return Response::json(200, {{"pull", pull_json(*job)}});
  }

  net::awaitable<Result<Response>> cancel(RequestContext& ctx) {
    const Result<void> allowed = co_await admin(ctx);
    if (!allowed) co_return std::unexpected(allowed.error());
    auto job = d.jobs.cancel(ctx.param("id"));
    if (!job) co_return std::unexpected(job.error());
    co_return Response::json(200, {{"pull", pull_json(*job)}});
  }

  // Progress every quarter second while it changes, a comment every 15 s
  // while it does not, then the final state as its own event.
  net::awaitable<Result<Response>> events(RequestContext& ctx) {
    const Result<void> allowed = co_await admin(ctx);
    if (!allowed) co_return std::unexpected(allowed.error());
    const std::string id = ctx.param("id");
    auto first = d.jobs.get(id);
    if (!first) co_return std::unexpected(first.error());
    http::SseWriter sse(ctx);
    if (!co_await sse.open()) co_return Response::already_streamed(200);
    net::steady_timer timer(co_await net::this_coro::executor);
    std::uint64_t sent_version = 0;
    bool sent_any = false;
    auto last_sent = std::chrono::steady_clock::now();
    while (sse.alive()) {
      auto job = d.jobs.get(id);
      if (!job) break;  // dropped from the list: nothing more to say
      if (is_finished(job->state)) {
        const std::string data = pull_json(*job).dump();
        const std::string event(pull_state_name(job->state));
        co_await sse.send(data, event);
        break;
      }
      if (!sent_any || job->version != sent_version) {
        const std::string data = pull_json(*job).dump();
        if (!co_await sse.send(data, "progress")) break;
        sent_any = true;
        sent_version = job->version;
        last_sent = std::chrono::steady_clock::now();
      } else if (std::chrono::steady_clock::now() - last_sent > std::chrono::seconds(15)) {
        if (!co_await sse.comment("keep-alive")) break;
        last_sent = std::chrono::steady_clock::now();
      }
      timer.expires_after(std::chrono::milliseconds(250));
      co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    }
    co_await sse.close();
    co_return Response::already_streamed(200);
  }

  net::awaitable<Result<Response>> hub(RequestContext& ctx) {
    const Result<void> allowed = co_await admin(ctx);
    if (!allowed) co_return std::unexpected(allowed.error());
    std::string spec = ctx.request.query_param("repo").value_or("");
    if (!spec.starts_with("hf:")) spec = "hf:" + spec;
    auto ref = parse_hub_ref(spec);
    if (!ref) co_return std::unexpected(ref.error());
    auto info = co_await d.pool.run([&] { return fetch_model_info(d.hub, *ref); });
    if (!info) co_return std::unexpected(info.error());
    co_return Response::json(200, hub_listing(*ref, *info));
  }

  net::awaitable<Result<Response>> remove(RequestContext& ctx) {
    const Result<void> allowed = co_await admin(ctx);
    if (!allowed) co_return std::unexpected(allowed.error());
    const std::string name = d.manager.resolve(ctx.param("name"));
    auto removed = co_await d.pool.run([&] { return d.manager.remove(name); });
    if (!removed) co_return std::unexpected(removed.error());
    d.log.info("model deleted by an admin", {{"model", name}});
    co_return Response::json(200, {{"deleted", true}, {"name", name}});
  }
};

}  // namespace

void add_model_pull_routes(http::Router& router, PullRoutesDeps deps) {
  auto h = std::make_shared<Handlers>(Handlers{std::move(deps)});
  const std::string base = "/api/v1/admin/models";
  router.post(base + "/pull", [h](RequestContext& c) { return h->start(c); });
  router.get(base + "/pulls", [h](RequestContext& c) { return h->list(c); });
  router.get(base + "/pulls/{id}", [h](RequestContext& c) { return h->get(c); });
  router.get(base + "/pulls/{id}/events", [h](RequestContext& c) { return h->events(c); });
  router.del(base + "/pulls/{id}", [h](RequestContext& c) { return h->cancel(c); });
  router.get(base + "/hub", [h](RequestContext& c) { return h->hub(c); });
  router.del(base + "/{name}", [h](RequestContext& c) { return h->remove(c); });
}

}  // namespace llmd::models
