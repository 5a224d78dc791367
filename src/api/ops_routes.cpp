#include "api/ops_routes.h"

#include <mutex>

#include <nlohmann/json.hpp>

#include "core/text.h"
#include "core/version.h"
#include "http/errors.h"

namespace llmd::api {
namespace {

struct DbStatus {
  bool reachable = false;
  int schema_version = 0;
  double latency_ms = 0;
  std::string error;
};

DbStatus check_database(store::Database& db) {
  DbStatus s;
  const auto t0 = std::chrono::steady_clock::now();
  auto ping = db.ping();
  s.latency_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!ping) {
    s.error = ping.error().message;
    return s;
  }
  s.reachable = true;
  if (auto v = db.schema_version()) s.schema_version = *v;
  return s;
}

// The database probe behind /health and /ready, cached briefly so that load
// balancers polling health many times a second do not each cost a query.
class CachedDbProbe {
 public:
  CachedDbProbe(store::Database& db, http::WorkerPool& pool, observe::Histogram& latency)
      : db_(db), pool_(pool), latency_(latency) {}

  boost::asio::awaitable<DbStatus> get() {
    {
      std::lock_guard lock(mutex_);
      if (probed_ && std::chrono::steady_clock::now() - probed_at_ < kMaxAge) co_return last_;
    }
    DbStatus fresh = co_await pool_.run([this] { return check_database(db_); });
    latency_.observe(fresh.latency_ms / 1000.0);
    std::lock_guard lock(mutex_);
    last_ = fresh;
    probed_ = true;
    probed_at_ = std::chrono::steady_clock::now();
    co_return fresh;
  }

 private:
  static constexpr std::chrono::milliseconds kMaxAge{1000};
  store::Database& db_;
  http::WorkerPool& pool_;
  observe::Histogram& latency_;
  std::mutex mutex_;
  DbStatus last_;                                    // guarded by mutex_
  bool probed_ = false;                              // guarded by mutex_
  std::chrono::steady_clock::time_point probed_at_;  // guarded by mutex_
};

}  // namespace

void add_ops_routes(http::Router& router, OpsDeps deps) {
  auto& db_latency =
      deps.metrics.histogram("llmd_db_ping_seconds", "Database round-trip time of health checks", {}).with({});
  auto probe = std::make_shared<CachedDbProbe>(deps.database, deps.pool, db_latency);
  const int latest_schema = store::all_migrations().empty() ? 0 : store::all_migrations().back().version;

  router.get("/health",
             [deps, probe, latest_schema](http::RequestContext&) -> boost::asio::awaitable<Result<http::Response>> {
               const DbStatus db = co_await probe->get();
               const auto uptime =
                   std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - deps.started);
               nlohmann::json body = {
                   {"status", db.reachable ? "ok" : "degraded"},
                   {"version", std::string(kVersion)},
                   {"uptime_seconds", uptime.count()},
                   {"database",
                    {{"reachable", db.reachable},
                     {"schema_version", db.schema_version},
                     {"schema_current", db.schema_version == latest_schema},
                     {"latency_ms", std::round(db.latency_ms * 1000) / 1000}}},
               };
               if (deps.hardware) body.update(deps.hardware());
               co_return http::Response::json(200, body);
             });

  router.get("/ready", [probe, latest_schema](http::RequestContext&) -> boost::asio::awaitable<Result<http::Response>> {
    const DbStatus db = co_await probe->get();
    if (!db.reachable) {
      co_return std::unexpected(Error(ErrorCode::kUnavailable, "database unreachable", "not_ready"));
    }
    if (db.schema_version != latest_schema) {
      co_return std::unexpected(Error(ErrorCode::kUnavailable, "database migrations not applied", "not_ready"));
    }
    co_return http::Response::json(200, {{"status", "ready"}});
  });

  router.get("/metrics", [deps](http::RequestContext&) -> boost::asio::awaitable<Result<http::Response>> {
    co_return http::Response::text(200, deps.metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
  });

  router.post("/api/v1/debug/echo", [](http::RequestContext& ctx) -> boost::asio::awaitable<Result<http::Response>> {
    if (!text::is_valid_utf8(ctx.request.body)) {
      co_return std::unexpected(Error(ErrorCode::kInvalidArgument, "body is not valid UTF-8", "invalid_utf8"));
    }
    auto parsed = nlohmann::json::parse(ctx.request.body, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
      co_return std::unexpected(Error(ErrorCode::kInvalidArgument, "body is not valid JSON", "invalid_json"));
    }
    co_return http::Response::json(200, {{"echo", parsed}});
  });
}

}  // namespace llmd::api
