// Request pipeline: route match -> middleware chain -> route handler, and the
// standard middleware (request id, access log, metrics, CORS). Auth and rate
// limiting plug in as further Middleware from their own modules.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "http/context.h"
#include "http/router.h"
#include "observe/log.h"
#include "observe/metrics.h"

namespace llmd::http {

// The handler for Server: matches the route (filling ctx.route/params), runs
// `middlewares` in order, then the route's handler — or a 404/405 JSON error
// (405 with Allow). Exceptions from handlers become a 500 JSON error.
Handler make_pipeline(std::shared_ptr<const Router> router, std::vector<Middleware> middlewares);

// Sets ctx.request_id: the client's X-Request-ID when it is 1-128 safe
// characters ([A-Za-z0-9._:-]), else a new random id; echoes it in the reply.
Middleware request_id_middleware();

// One log line per request: method, path, route, status, latency_ms, bytes,
// request_id, remote ip. Never logs bodies or Authorization.
Middleware access_log_middleware(observe::Logger log);

// llmd_http_requests_total{route,method,status}, llmd_http_request_duration_seconds{route,method},
// llmd_http_in_flight. Labels come only from bounded sets whatever the client
// sends: route patterns (unmatched paths are route="unmatched"), method_label()
// and status_label().
Middleware metrics_middleware(observe::Registry& registry);

// The metrics label of a request method: the method itself when it is one of
// the standard HTTP methods (GET HEAD POST PUT PATCH DELETE OPTIONS TRACE
// CONNECT, case-sensitive as methods are), else "other".
std::string_view method_label(std::string_view method);
// The metrics label of a status: "100".."599", else "other".
std::string status_label(int status);

// CORS for the listed origins ("*" allows any). Answers preflight OPTIONS
// requests itself with 204.
Middleware cors_middleware(std::vector<std::string> allowed_origins);

// Adds defensive headers to every response: X-Content-Type-Options nosniff,
// X-Frame-Options DENY, Referrer-Policy no-referrer, and Cache-Control
// no-store on /api/ and /v1/ replies (they carry balances and keys).
Middleware security_headers_middleware();

// Rejects requests whose Host header is not in `allowed` (DNS-rebinding
// defence); an empty list allows any host.
Middleware host_check_middleware(std::vector<std::string> allowed);
// The same rule for a request head alone (kPermissionDenied "host_not_allowed").
Result<void> check_host(const std::vector<std::string>& allowed, const Headers& headers);

}  // namespace llmd::http
