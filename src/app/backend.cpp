#include "app/backend.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "app/account_routes.h"
#include "app/convert_routes.h"
#include "app/homework_routes.h"
#include "app/model_billing.h"
#include "app/ops_routes.h"
#include "app/state_files.h"
#include "app/static_routes.h"
#include "app/subtitle_jobs.h"
#include "app/subtitle_routes.h"
#include "app/upload_routes.h"
#include "app/usage_routes.h"
#include "app/version.h"
#include "auth/jwt.h"
#include "auth/limiter.h"
#include "auth/redis_limiter.h"
#include "auth/service.h"
#include "auth/users.h"
#include "billing/accounts.h"
#include "http/pipeline.h"
#include "models/routes.h"
#include "models/setup.h"
#include "http/server.h"
#include "http/tls.h"
#include "http/worker_pool.h"
#include "observe/metrics.h"
#include "store/database.h"

namespace llmd::app {
namespace {

int cores() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

// First start: an `admin` account, password from LLMD_ADMIN_PASSWORD or
// generated and printed once (never written to the log).
Result<void> ensure_admin(auth::AuthService& auth, std::int64_t initial_tokens, const observe::Logger& log) {
  auto any = auth.users().any_admin();
  if (!any) return std::unexpected(any.error());
  if (*any) return {};
  const char* from_env = std::getenv("LLMD_ADMIN_PASSWORD");
  const std::string password = from_env && *from_env ? from_env : auth::generate_secret().substr(0, 20);
  auto user = auth.create_user("admin", password, "admin@localhost.localdomain", "admin", initial_tokens);
  if (!user) {
    if (user.error().code == ErrorCode::kConflict) {
      log.warn("a user named admin exists but is not an administrator; use `llmd admin set-role`");
      return {};
    }
    return fail(user.error().code, "cannot create the admin account: " + user.error().message);
  }
  if (from_env && *from_env) {
    log.info("created admin account from LLMD_ADMIN_PASSWORD", {{"username", "admin"}});
  } else {
    std::fprintf(stderr, "\n  llmd: created the administrator account\n    username: admin\n    password: %s\n"
                         "  (shown only this once; change it after logging in)\n\n", password.c_str());
    log.info("created admin account with a generated password (printed on stderr once)", {{"username", "admin"}});
  }
  return {};
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
// then the database. The pools are stopped and destroyed before anything
// (stop_pools()): their jobs use the objects below and resume coroutines on
// the server's I/O context.
struct Backend::Impl {
  Config config;
  observe::Logger log;
  observe::Registry metrics;
  std::unique_ptr<store::Database> database;
  std::unique_ptr<http::WorkerPool> pool;
  std::unique_ptr<http::WorkerPool> password_pool;  // bcrypt only (login, registration)
  // CPU-heavy task work (conversions), apart from `pool` so that it never
  // delays the database calls of light requests; cancellable at shutdown.
  std::unique_ptr<http::WorkerPool> task_pool;
  std::unique_ptr<auth::UserStore> users;
  std::unique_ptr<auth::LoginThrottle> login_throttle;
  std::unique_ptr<auth::RateLimiter> rate_limiter;
  std::unique_ptr<auth::AuthService> auth;
  std::unique_ptr<billing::Accounts> accounts;
  std::unique_ptr<jobs::JobStore> job_store;
  std::unique_ptr<UploadStore> uploads;
  billing::Pricing pricing;
  // The server (and its I/O context) is declared before what talks through
  // it, so the model manager and the routes (with their pooled upstream
  // sockets) are destroyed while the I/O context still exists.
  std::unique_ptr<http::Server> server;
  std::unique_ptr<models::Manager> models;
  std::shared_ptr<http::Router> router;
  std::unique_ptr<SubtitleJobs> subtitle_jobs;  // its running jobs keep their own state alive
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  Impl(Config c, observe::Logger l) : config(std::move(c)), log(std::move(l)) {}
  ~Impl() { stop_pools(); }

  // Called once the server's run() has returned (its I/O threads are done,
  // its context still exists): cancels running conversions, drops queued
  // jobs, waits for the running ones (database calls are short; conversions
  // give up at their next value) and destroys the pools, so no job outlives
  // what it touches and no completion is posted to a destroyed context. A
  // request cut off here holds at most a reservation, which the next start
  // releases. Idempotent.
  void stop_pools() {
    const std::array<std::unique_ptr<http::WorkerPool>*, 3> pools = {&task_pool, &password_pool, &pool};
    for (auto* p : pools)
      if (*p) (*p)->stop();
    for (auto* p : pools)
      if (*p) (*p)->join();
    for (auto* p : pools) p->reset();
  }
};

Backend::Backend() = default;
Backend::~Backend() = default;

Result<std::unique_ptr<Backend>> Backend::create(Config config, observe::Logger log) {
  std::unique_ptr<Backend> backend(new Backend());
  backend->impl_ = std::make_unique<Impl>(std::move(config), std::move(log));
  Impl& s = *backend->impl_;

  // HTTPS first, before anything is created: a missing, unreadable or
  // mismatched cert/key is a config error at startup (later, a bad
  // replacement file only logs; see http/tls.h).
  std::shared_ptr<http::TlsCertificates> tls_certificates;
  if (const auto& tls = s.config.server.tls; !tls.cert.empty()) {
    auto certs = http::TlsCertificates::load(http::TlsFiles{tls.cert, tls.key},
                                             std::chrono::seconds(tls.reload_check_seconds), s.log);
    if (!certs) return std::unexpected(certs.error());
    tls_certificates = std::move(*certs);
  }

  std::error_code ec;
  std::filesystem::create_directories(s.config.server.data_dir, ec);
  if (ec) {
    return fail(ErrorCode::kUnavailable, "server.data_dir: cannot create directory " + s.config.server.data_dir,
                "data_dir");
  }

  const int workers = s.config.server.worker_threads > 0 ? s.config.server.worker_threads : std::max(4, 2 * cores());
  s.pool = std::make_unique<http::WorkerPool>(static_cast<std::size_t>(workers));
  const int task_threads = s.config.server.task_threads > 0 ? s.config.server.task_threads : cores();
  s.task_pool = std::make_unique<http::WorkerPool>(static_cast<std::size_t>(task_threads));

  auto db = store::Database::open(s.config.database, std::min(workers, 8));
  if (!db) return fail(db.error().code, "database: " + db.error().message, db.error().reason);
  s.database = std::move(*db);
  auto version = s.database->migrate();
  if (!version) return fail(version.error().code, "database: " + version.error().message, version.error().reason);
  s.log.info("database ready", {{"schema_version", *version},
                                {"backend", s.database->dialect() == store::Dialect::kSqlite ? "sqlite" : "mysql"}});

  s.metrics.gauge("llmd_build_info", "Build information", {"version"}).with({std::string(kVersion)}).set(1);

  // Accounts and billing.
  std::string secret = s.config.auth.jwt_secret;
  if (secret.empty()) {
    auto generated = load_or_create_jwt_secret(s.config.server.data_dir);
    if (!generated) return std::unexpected(generated.error());
    secret = *generated;
  }
  if (secret.size() < auth::kMinJwtSecretBytes) {
    return fail(ErrorCode::kInvalidArgument, "auth.jwt_secret: must be at least 32 bytes", "bad_config");
  }
  auto instance_id = load_or_create_instance_id(s.config.server.data_dir);
  if (!instance_id) return std::unexpected(instance_id.error());
  s.users = std::make_unique<auth::UserStore>(*s.database);
  s.login_throttle = std::make_unique<auth::LoginThrottle>(auth::LoginThrottleOptions{
      s.config.limits.login_attempts, s.config.limits.login_attempts * 5, s.config.limits.login_account_attempts,
      std::chrono::seconds(s.config.limits.login_window_seconds)});
  if (s.config.redis.empty()) {
    s.rate_limiter = std::make_unique<auth::MemoryRateLimiter>();
  } else {
    // Shared by all instances; while Redis is unreachable it falls back to
    // per-instance limits and warns, rather than failing requests.
    const observe::Logger* log = &s.log;
    auto redis = auth::RedisRateLimiter::open(s.config.redis, [log](const std::string& m) { log->warn(m); });
    if (!redis) return std::unexpected(redis.error());
    s.rate_limiter = std::move(*redis);
    s.log.info("rate limits shared through redis");
  }
  s.auth = std::make_unique<auth::AuthService>(
      *s.users,
      auth::AuthOptions{secret, s.config.auth.jwt_ttl, s.config.auth.register_open,
                        s.config.auth.register_initial_tokens >= 0 ? s.config.auth.register_initial_tokens
                                                                   : s.config.auth.initial_tokens,
                        s.config.auth.bcrypt_cost, s.config.auth.register_per_ip_per_hour},
      *s.login_throttle, *s.rate_limiter);
  s.accounts = std::make_unique<billing::Accounts>(*s.database, *instance_id);
  for (const auto& [task, t] : s.config.tasks) {
    billing::PriceRule rule = s.pricing.rule(task);
    if (t.multiplier) rule.multiplier = *t.multiplier;
    if (t.fixed) rule.fixed = *t.fixed;
    s.pricing.set(task, rule);
  }
  for (const auto& m : s.config.models.list) {
    if (m.price_multiplier != 1.0) s.pricing.set_model_multiplier(m.name, m.price_multiplier);
  }
  LLMD_TRY(ensure_admin(*s.auth, s.config.auth.initial_tokens, s.log));
  if (auto released = s.accounts->release_abandoned(); !released) {
    return std::unexpected(released.error());
  } else if (*released > 0) {
    s.log.warn("released token reservations left by a previous run", {{"count", *released}});
  }

  s.router = std::make_shared<http::Router>();
  add_ops_routes(*s.router, OpsDeps{*s.database, *s.pool, s.metrics, s.started});
  const int password_threads =
      s.config.auth.password_threads > 0 ? s.config.auth.password_threads : std::max(2, cores() / 2);
  s.password_pool = std::make_unique<http::WorkerPool>(static_cast<std::size_t>(password_threads));
  const AccountDeps account_deps{*s.auth, *s.accounts, *s.pool, s.log, s.password_pool.get()};
  add_account_routes(*s.router, account_deps);
  add_admin_routes(*s.router, account_deps);
  add_usage_routes(*s.router, account_deps);
  auto manager = models::create_manager(s.config, s.log, s.metrics);
  if (!manager) return fail(manager.error());
  s.models = std::move(*manager);
  models::ModelRoutesDeps model_deps(*s.models, s.log, [&s] { return s.server->executor(); });
  model_deps.hooks = make_billing_hooks(*s.accounts, s.pricing, *s.pool, s.log);
  models::add_model_routes(*s.router, std::move(model_deps));
  std::string repair_model = s.config.models.default_model;
  if (auto t = s.config.tasks.find("convert"); t != s.config.tasks.end() && !t->second.model.empty()) {
    repair_model = t->second.model;
  }
  add_convert_routes(*s.router, ConvertDeps{*s.accounts, s.pricing, *s.pool, *s.task_pool,
                                            static_cast<std::size_t>(s.config.limits.convert_concurrent_per_user),
                                            s.log, *s.models, repair_model, [&s] { return s.server->executor(); }});

  // Homework grading: tasks.homework.model, else the default model; the
  // prompt templates are built in, overridable from tasks.homework.prompts_dir.
  {
    std::string homework_model = s.config.models.default_model;
    std::string prompts_dir;
    if (auto t = s.config.tasks.find("homework"); t != s.config.tasks.end()) {
      if (!t->second.model.empty()) homework_model = t->second.model;
      prompts_dir = t->second.prompts_dir;
    }
    auto prompts = homework::PromptSet::load(prompts_dir);
    if (!prompts) return std::unexpected(prompts.error());
    add_homework_routes(*s.router, HomeworkDeps{*s.accounts, s.pricing, *s.pool, s.log, *s.models, homework_model,
                                                std::make_shared<const homework::PromptSet>(std::move(*prompts)),
                                                [&s] { return s.server->executor(); }});
  }

  // Uploads: bodies of POST /api/v1/uploads are spooled to disk by the
  // server (opts.body_policy below), then stored under uploads.dir.
  s.uploads = std::make_unique<UploadStore>(*s.database, s.config.uploads.dir, s.config.uploads.quota_bytes_per_user);
  if (const auto partial = s.uploads->remove_partial_files(); partial > 0) {
    s.log.warn("removed partial upload files left by a previous run", {{"count", static_cast<std::int64_t>(partial)}});
  }
  add_upload_routes(*s.router, UploadDeps{*s.uploads, *s.pool, s.log});

  // Subtitle jobs (runner, billing, resume) and their routes.
  std::string subtitle_model = s.config.models.default_model;
  if (auto t = s.config.tasks.find("subtitle"); t != s.config.tasks.end() && !t->second.model.empty()) {
    subtitle_model = t->second.model;
  }
  s.job_store = std::make_unique<jobs::JobStore>(*s.database);
  s.subtitle_jobs = std::make_unique<SubtitleJobs>(SubtitleJobsDeps{
      *s.job_store, *s.accounts, s.pricing, *s.pool, *s.models, s.log, subtitle_model, s.config.subtitle,
      (std::filesystem::path(s.config.server.data_dir) / "results").string(), *instance_id,
      [&s] { return s.server->executor(); }});
  add_subtitle_routes(*s.router, SubtitleRoutesDeps{*s.subtitle_jobs, *s.job_store, *s.pool, s.log,
                                                    s.config.uploads.media_roots,
                                                    [&s](const std::string& id, std::int64_t user_id)
                                                        -> Result<UploadedFile> {
                                                      auto rec = s.uploads->get(id, user_id);
                                                      if (!rec) return std::unexpected(rec.error());
                                                      return UploadedFile{rec->path, rec->original_name};
                                                    },
                                                    s.config.asr});

  // The web UI: the router's fallback, so every API route above wins.
  const auto web_dir = find_web_dir(s.config.server.web_dir);
  add_static_routes(*s.router, web_dir, *s.pool);
  if (web_dir) {
    s.log.info("serving the web UI", {{"web_dir", web_dir->string()}});
  } else {
    s.log.warn("web UI not found (build web/ or set server.web_dir); / shows a note");
  }

  std::vector<http::Middleware> middlewares{
      http::request_id_middleware(),
      http::access_log_middleware(s.log),
      http::metrics_middleware(s.metrics),
      http::security_headers_middleware(),
      http::host_check_middleware(s.config.server.allowed_hosts),
      http::cors_middleware(s.config.server.cors_origins),
      auth_middleware(*s.auth, *s.pool, *s.rate_limiter, s.config.limits),
      rate_limit_middleware(*s.rate_limiter, s.config.limits, *s.pool),
  };

  http::ServerOptions opts;
  opts.host = s.config.server.host;
  opts.port = s.config.server.port;
  opts.io_threads = s.config.server.threads > 0 ? s.config.server.threads : cores();
  opts.max_body_bytes = s.config.server.max_body_bytes;
  opts.header_timeout = std::chrono::seconds(s.config.server.header_timeout_seconds);
  opts.idle_timeout = std::chrono::seconds(s.config.server.idle_timeout_seconds);
  opts.shutdown_grace = std::chrono::seconds(s.config.server.shutdown_grace_seconds);
  opts.body_policy = upload_body_policy(UploadPolicyDeps{*s.uploads, *s.auth, *s.rate_limiter, s.config.limits, *s.pool,
                                                        s.config.server.allowed_hosts, s.config.uploads.max_bytes});
  // Client addresses and connection limits (validated when the config loaded).
  if (auto trusted = http::NetworkList::parse(s.config.server.trusted_proxies); trusted) {
    opts.trusted_proxies = std::move(*trusted);
  } else {
    return fail(ErrorCode::kInvalidArgument, "server.trusted_proxies: " + trusted.error().message, "bad_config");
  }
  if (auto allowed = http::NetworkList::parse(s.config.server.allowed_networks); allowed) {
    opts.allowed_networks = std::move(*allowed);
  } else {
    return fail(ErrorCode::kInvalidArgument, "server.allowed_networks: " + allowed.error().message, "bad_config");
  }
  opts.max_connections = static_cast<std::size_t>(s.config.server.max_connections);
  opts.max_connections_per_ip = static_cast<std::size_t>(s.config.server.max_connections_per_ip);
  opts.min_body_rate = static_cast<std::uint64_t>(s.config.server.min_body_rate_bytes);
  opts.body_grace = std::chrono::seconds(s.config.server.body_grace_seconds);
  if (const auto& tls = s.config.server.tls; tls_certificates) {
    opts.tls = std::move(tls_certificates);
    opts.plain_http = tls.plain_http == "redirect" ? http::PlainHttpOnTls::kRedirect : http::PlainHttpOnTls::kRefuse;
    opts.hsts_max_age = std::chrono::seconds(tls.hsts_max_age_seconds);
  }
  s.server = std::make_unique<http::Server>(opts, http::make_pipeline(s.router, std::move(middlewares)), s.log);
  s.server->on_shutdown([&s] {
    s.subtitle_jobs->stop();
    s.models->shutdown();
  });
  LLMD_TRY(s.server->listen());
  s.subtitle_jobs->start();  // resumes unfinished jobs; they run once the server runs
  s.log.info("listening", {{"host", opts.host},
                           {"port", s.server->port()},
                           {"scheme", opts.tls ? "https" : "http"},
                           {"io_threads", opts.io_threads},
                           {"worker_threads", workers},
                           {"task_threads", task_threads},
                           {"version", std::string(kVersion)}});
  return backend;
}

int Backend::port() const { return impl_->server->port(); }
void Backend::run() {
  impl_->server->run();
  impl_->stop_pools();
}
void Backend::stop() { impl_->server->stop(); }

}  // namespace llmd::app
