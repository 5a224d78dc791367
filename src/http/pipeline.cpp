#include "http/pipeline.h"

#include <algorithm>
#include <random>

#include <nlohmann/json.hpp>

#include "core/text.h"
#include "http/errors.h"

namespace llmd::http {
namespace {

bool is_safe_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::ranges::all_of(id, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-';
  });
}

// "example.org:8080" -> "example.org"; "[::1]:8080" -> "[::1]".
std::string_view host_without_port(std::string_view host) {
  if (host.starts_with('[')) {
    const auto end = host.find(']');
    return end == std::string_view::npos ? host : host.substr(0, end + 1);
  }
  return host.substr(0, host.find(':'));
}

}  // namespace

std::string_view method_label(std::string_view method) {
  static constexpr std::string_view kKnown[] = {"GET",    "HEAD",    "POST",  "PUT",    "PATCH",
                                                "DELETE", "OPTIONS", "TRACE", "CONNECT"};
  for (const auto known : kKnown) {
    if (method == known) return known;
  }
  return "other";
}

std::string status_label(int status) {
  return status >= 100 && status <= 599 ? std::to_string(status) : std::string("other");
}

Handler make_pipeline(std::shared_ptr<const Router> router, std::vector<Middleware> middlewares) {
  // The innermost step: the route's handler or a routing error.
  Next terminal = [](RequestContext& ctx) -> boost::asio::awaitable<Response> {
    if (ctx.handler != nullptr) co_return co_await (*ctx.handler)(ctx);
    if (!ctx.allowed_methods.empty()) {
      const std::string& allow = ctx.allowed_methods;
      Response r = error_response(
          Error(ErrorCode::kMethodNotAllowed, "method " + ctx.request.method + " is not allowed here; use " + allow),
          ctx.request_id);
      r.headers.set("Allow", allow);
      co_return r;
    }
    co_return error_response(Error(ErrorCode::kNotFound, "no such endpoint"), ctx.request_id);
  };
  // Compose from the inside out so middlewares[0] runs first.
  Next chain = terminal;
  for (auto it = middlewares.rbegin(); it != middlewares.rend(); ++it) {
    chain = [mw = *it, next = chain](RequestContext& ctx) -> boost::asio::awaitable<Response> {
      co_return co_await mw(ctx, next);
    };
  }
  return [router, chain](RequestContext& ctx) -> boost::asio::awaitable<Response> {
    const auto match = router->match(ctx.request.method, ctx.request.path);
    if (match.kind == RouteMatch::Kind::kFound) {
      ctx.route = match.pattern;
      ctx.params = match.params;
      ctx.handler = match.handler;
    } else if (match.kind == RouteMatch::Kind::kMethodNotAllowed) {
      for (const auto& m : match.allowed) ctx.allowed_methods += (ctx.allowed_methods.empty() ? "" : ", ") + m;
    }
    try {
      co_return co_await chain(ctx);
    } catch (const std::exception&) {
      // Logged by the access log as a 500; the message never leaks details.
    }
    co_return error_response(Error(ErrorCode::kInternal, "internal error"), ctx.request_id);
  };
}

Middleware request_id_middleware() {
  return [](RequestContext& ctx, const Next& next) -> boost::asio::awaitable<Response> {
    const auto sent = ctx.request.headers.get("X-Request-ID");
    ctx.request_id = sent && is_safe_request_id(*sent) ? std::string(*sent) : new_request_id();
    ctx.response_headers.set("X-Request-ID", ctx.request_id);
    co_return co_await next(ctx);
  };
}

Middleware access_log_middleware(observe::Logger log) {
  return [log](RequestContext& ctx, const Next& next) -> boost::asio::awaitable<Response> {
    Response r = co_await next(ctx);
    if (log.enabled(observe::LogLevel::kInfo)) {
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - ctx.started).count();
      log.info("request", {{"request_id", ctx.request_id},
                           {"method", ctx.request.method},
                           {"path", ctx.request.path},
                           {"route", ctx.route},
                           {"status", r.status},
                           {"latency_ms", std::round(ms * 1000) / 1000},
                           {"bytes", r.body.size()},
                           {"streamed", r.streamed},
                           {"remote", ctx.request.remote_ip}});
    }
    co_return r;
  };
}

Middleware metrics_middleware(observe::Registry& registry) {
  auto& requests = registry.counter("llmd_http_requests_total", "HTTP requests by route, method and status",
                                    {"route", "method", "status"});
  auto& duration =
      registry.histogram("llmd_http_request_duration_seconds", "HTTP request latency", {"route", "method"});
  auto& in_flight = registry.gauge("llmd_http_in_flight", "HTTP requests being served").with({});
  return [&requests, &duration, &in_flight](RequestContext& ctx, const Next& next) -> boost::asio::awaitable<Response> {
    in_flight.inc();
    struct Done {
      observe::Gauge& g;
      ~Done() { g.dec(); }
    } done{in_flight};
    Response r = co_await next(ctx);
    // Every label comes from a bounded set: route patterns (never raw
    // paths), known methods (anything else is "other") and status codes.
    const std::string route = ctx.route.empty() ? "unmatched" : ctx.route;
    const std::string method(method_label(ctx.request.method));
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - ctx.started).count();
    requests.with({route, method, status_label(r.status)}).inc();
    duration.with({route, method}).observe(secs);
    co_return r;
  };
}

Middleware cors_middleware(std::vector<std::string> allowed_origins) {
  return [origins = std::move(allowed_origins)](RequestContext& ctx,
                                                const Next& next) -> boost::asio::awaitable<Response> {
    const auto origin = ctx.request.headers.get("Origin");
    const bool allowed =
        origin && std::ranges::any_of(origins, [&](const std::string& o) { return o == "*" || o == *origin; });
    if (allowed) {
      ctx.response_headers.set("Access-Control-Allow-Origin", std::string(*origin));
      ctx.response_headers.set("Vary", "Origin");
      if (ctx.request.method == "OPTIONS" && ctx.request.headers.has("Access-Control-Request-Method")) {
        Response r;
        r.status = 204;
        r.headers.set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS");
        r.headers.set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-ID");
        r.headers.set("Access-Control-Max-Age", "600");
        co_return r;
      }
    }
    co_return co_await next(ctx);
  };
}

Middleware security_headers_middleware() {
  return [](RequestContext& ctx, const Next& next) -> boost::asio::awaitable<Response> {
    ctx.response_headers.set("X-Content-Type-Options", "nosniff");
    ctx.response_headers.set("X-Frame-Options", "DENY");
    ctx.response_headers.set("Referrer-Policy", "no-referrer");
    if (ctx.request.path.starts_with("/api/") || ctx.request.path.starts_with("/v1/")) {
      ctx.response_headers.set("Cache-Control", "no-store");
    }
    co_return co_await next(ctx);
  };
}

Result<void> check_host(const std::vector<std::string>& allowed, const Headers& headers) {
  if (allowed.empty()) return {};
  const std::string host = text::to_lower(host_without_port(headers.get("Host").value_or("")));
  if (std::ranges::find(allowed, host) == allowed.end()) {
    return fail(ErrorCode::kPermissionDenied, "host not allowed", "host_not_allowed");
  }
  return {};
}

Middleware host_check_middleware(std::vector<std::string> allowed) {
  return [allowed = std::move(allowed)](RequestContext& ctx, const Next& next) -> boost::asio::awaitable<Response> {
    if (auto host = check_host(allowed, ctx.request.headers); !host) {
      co_return error_response(host.error(), ctx.request_id);
    }
    co_return co_await next(ctx);
  };
}

}  // namespace llmd::http
