#include "app/backend.h"

#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "app/ops_routes.h"
#include "app/version.h"
#include "http/pipeline.h"
#include "http/server.h"
#include "http/worker_pool.h"
#include "observe/metrics.h"
#include "store/database.h"

namespace llmd::app {
namespace {

int cores() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

}  // namespace

Result<observe::Logger> make_logger(const LoggingConfig& logging) {
  observe::LogLevel level;
  if (!observe::parse_log_level(logging.level, level)) {
    return fail(ErrorCode::kInvalidArgument, "logging.level: unknown level \"" + logging.level + "\"", "bad_config");
  }
  const auto format = logging.format == "text" ? observe::LogFormat::kText : observe::LogFormat::kJson;
  try {
    return observe::Logger(level, format, logging.file);
  } catch (const std::exception&) {
    return fail(ErrorCode::kInvalidArgument, "logging.file: cannot open log file", "bad_config");
  }
}

// Declaration order is destruction order in reverse: the server goes first,
// then the pool (joining its threads), then the database.
struct Backend::Impl {
  Config config;
  observe::Logger log;
  observe::Registry metrics;
  std::unique_ptr<store::Database> database;
  std::unique_ptr<http::WorkerPool> pool;
  std::shared_ptr<http::Router> router;
  std::unique_ptr<http::Server> server;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  Impl(Config c, observe::Logger l) : config(std::move(c)), log(std::move(l)) {}
};

Backend::Backend() = default;
Backend::~Backend() = default;

Result<std::unique_ptr<Backend>> Backend::create(Config config, observe::Logger log) {
  if (!config.server.tls.cert.empty()) {
    return fail(ErrorCode::kInvalidArgument,
                "server.tls: TLS termination is not built in yet; put a reverse proxy (nginx, caddy) in front",
                "bad_config");
  }
  std::unique_ptr<Backend> backend(new Backend());
  backend->impl_ = std::make_unique<Impl>(std::move(config), std::move(log));
  Impl& s = *backend->impl_;

  std::error_code ec;
  std::filesystem::create_directories(s.config.server.data_dir, ec);
  if (ec) {
    return fail(ErrorCode::kUnavailable, "server.data_dir: cannot create directory " + s.config.server.data_dir,
                "data_dir");
  }

  const int workers = s.config.server.worker_threads > 0 ? s.config.server.worker_threads : std::max(4, 2 * cores());
  s.pool = std::make_unique<http::WorkerPool>(static_cast<std::size_t>(workers));

  auto db = store::Database::open(s.config.database, std::min(workers, 8));
  if (!db) return fail(db.error().code, "database: " + db.error().message, db.error().reason);
  s.database = std::move(*db);
  auto version = s.database->migrate();
  if (!version) return fail(version.error().code, "database: " + version.error().message, version.error().reason);
  s.log.info("database ready", {{"schema_version", *version},
                                {"backend", s.database->dialect() == store::Dialect::kSqlite ? "sqlite" : "mysql"}});

  s.metrics.gauge("llmd_build_info", "Build information", {"version"}).with({std::string(kVersion)}).set(1);

  s.router = std::make_shared<http::Router>();
  add_ops_routes(*s.router, OpsDeps{*s.database, *s.pool, s.metrics, s.started});

  std::vector<http::Middleware> middlewares{
      http::request_id_middleware(),
      http::access_log_middleware(s.log),
      http::metrics_middleware(s.metrics),
      http::host_check_middleware(s.config.server.allowed_hosts),
      http::cors_middleware(s.config.server.cors_origins),
  };

  http::ServerOptions opts;
  opts.host = s.config.server.host;
  opts.port = s.config.server.port;
  opts.io_threads = s.config.server.threads > 0 ? s.config.server.threads : cores();
  opts.max_body_bytes = s.config.server.max_body_bytes;
  opts.header_timeout = std::chrono::seconds(s.config.server.header_timeout_seconds);
  opts.idle_timeout = std::chrono::seconds(s.config.server.idle_timeout_seconds);
  opts.shutdown_grace = std::chrono::seconds(s.config.server.shutdown_grace_seconds);
  s.server = std::make_unique<http::Server>(opts, http::make_pipeline(s.router, std::move(middlewares)), s.log);
  LLMD_TRY(s.server->listen());
  s.log.info("listening", {{"host", opts.host},
                           {"port", s.server->port()},
                           {"io_threads", opts.io_threads},
                           {"worker_threads", workers},
                           {"version", std::string(kVersion)}});
  return backend;
}

int Backend::port() const { return impl_->server->port(); }
void Backend::run() { impl_->server->run(); }
void Backend::stop() { impl_->server->stop(); }

}  // namespace llmd::app
