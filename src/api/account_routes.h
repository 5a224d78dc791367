// HTTP glue for accounts (SPEC §4.1, §4.5): the auth and rate-limit
// middleware, /api/v1/auth/* and /api/v1/admin/* routes, and the helpers other
// route modules use to get the caller (require_user / require_admin).
#pragma once

#include "auth/limiter.h"
#include "auth/service.h"
#include "billing/accounts.h"
#include "billing/groups.h"
#include "config/config.h"
#include "http/context.h"
#include "http/router.h"
#include "http/worker_pool.h"
#include "observe/log.h"

namespace llmd::api {

struct AccountDeps {
  auth::AuthService& auth;
  billing::Accounts& accounts;
  http::WorkerPool& pool;
  observe::Logger log;
  // bcrypt's own pool (login, registration), so password hashing never
  // queues token checks and database calls; nullptr = `pool`.
  http::WorkerPool* password_pool = nullptr;
  // The profile's groups and allowances; nullptr = none shown.
  billing::Groups* groups = nullptr;
};

// Authenticates an Authorization header value (blocking: a database lookup
// for API keys; call it on the worker pool). A kUnauthenticated failure
// counts against `ip`: past limits.auth_failures_per_minute failures or its
// ip_rpm budget the answer becomes kRateLimited with a retry-after.
Result<auth::Principal> authenticate_counting_failures(auth::AuthService& auth, auth::RateLimiter& limiter,
                                                       const config::LimitsConfig& limits,
                                                       const std::string& credentials, const std::string& ip);

// On /api/ and /v1/ paths with an Authorization header: authenticates it
// (401 when invalid; 403 network_not_allowed for a key used from outside its
// subnets) and stores the Principal in the context (ctx.get<auth::Principal>()).
// Each failure counts against the client address: limits.auth_failures_per_minute
// failures and its ip_rpm budget; past either, the answer is 429 + Retry-After.
// Requests without credentials pass on; handlers decide with require_user().
http::Middleware auth_middleware(auth::AuthService& auth, http::WorkerPool& pool, auth::RateLimiter& limiter,
                                 config::LimitsConfig limits);

// Token buckets for /api/ and /v1/ routes: per principal (user or API key),
// per client IP, per key (its rpm) and per user (the lowest rpm of their
// groups). 429 + Retry-After when exceeded.
http::Middleware rate_limit_middleware(auth::RateLimiter& limiter, config::LimitsConfig limits, http::WorkerPool& pool);

// The authenticated caller, or kUnauthenticated / kPermissionDenied.
Result<auth::Principal> require_user(const http::RequestContext& ctx);
Result<auth::Principal> require_admin(const http::RequestContext& ctx);

// User as the API shows it: {id, username, email, role, tokens, disabled, created_at}.
nlohmann::json user_json(const auth::User& u);

void add_account_routes(http::Router& router, AccountDeps deps);
void add_admin_routes(http::Router& router, AccountDeps deps);

}  // namespace llmd::api
