#include "app/backend.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <limits>
#include <thread>

#include <nlohmann/json.hpp>

#include "api/account_routes.h"
#include "api/conversation_routes.h"
#include "api/convert_routes.h"
#include "api/group_routes.h"
#include "api/homework_routes.h"
#include "api/model_billing.h"
#include "api/ops_routes.h"
#include "api/static_routes.h"
#include "api/subtitle_routes.h"
#include "api/upload_routes.h"
#include "api/usage_routes.h"
#include "app/state_files.h"
#include "auth/jwt.h"
#include "auth/limiter.h"
#include "auth/redis_limiter.h"
#include "auth/service.h"
#include "auth/users.h"
#include "billing/accounts.h"
#include "billing/allowances.h"
#include "billing/calendar.h"
#include "billing/groups.h"
#include "conversations/conversation_store.h"
#include "conversations/retention.h"
#include "core/version.h"
#include "http/client.h"
#include "http/pipeline.h"
#include "http/server.h"
#include "http/tls.h"
#include "http/worker_pool.h"
#include "inference/gateway_client.h"
#include "models/pull_jobs.h"
#include "models/pull_routes.h"
#include "models/routes.h"
#include "models/setup.h"
#include "observe/metrics.h"
#include "store/database.h"
#include "tasks/subtitle/subtitle_jobs.h"

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
  const bool generated = !(from_env && *from_env);
  const std::string password = generated ? auth::generate_secret().substr(0, 20) : from_env;
  // A generated password is to be replaced at the first login (the web UI asks).
  auto user = auth.create_user("admin", password, "admin@localhost.localdomain", "admin", initial_tokens, generated);
  if (!user) {
    if (user.error().code == ErrorCode::kConflict) {
      log.warn("a user named admin exists but is not an administrator; use `llmd admin set-role`");
      return {};
    }
    return fail(user.error().code, "cannot create the admin account: " + user.error().message);
  }
  if (!generated) {
    log.info("created admin account from LLMD_ADMIN_PASSWORD", {{"username", "admin"}});
  } else {
    std::fprintf(stderr,
                 "\n  llmd: created the administrator account\n    username: admin\n    password: %s\n"
                 "  (shown only this once; you will be asked to change it at the first login)\n\n",
                 password.c_str());
    log.info("created admin account with a generated password (printed on stderr once)", {{"username", "admin"}});
  }
  return {};
}

}  // namespace

Result<observe::Logger> make_logger(const config::LoggingConfig& logging) {
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

namespace {

// The model of a task: tasks.<task>.model, else models.default_model
// (empty: the task has no model).
std::string task_model(const config::Config& config, const std::string& task) {
  if (auto t = config.tasks.find(task); t != config.tasks.end() && !t->second.model.empty()) return t->second.model;
  return config.models.default_model;
}

}  // namespace

// Declaration order is destruction order in reverse: the server goes first,
// then the database. The pools are stopped and destroyed before anything
// (stop_pools()): their jobs use the objects below and resume coroutines on
// the server's I/O context.
//
// Built in stages, each using only what the ones before it made:
// storage -> accounts -> io (the server) -> clients -> routes and services.
struct Backend::Impl {
  config::Config config;
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
  std::unique_ptr<billing::Groups> groups;
  // Credits allowances at period starts, on its own thread; declared after
  // the database (destroyed before it).
  std::unique_ptr<billing::AllowanceSweeper> allowance_sweeper;
  std::unique_ptr<jobs::JobStore> job_store;
  std::unique_ptr<uploads::UploadStore> uploads;
  std::unique_ptr<conversations::ConversationStore> conversations;
  // Retention and stale pending replies, on its own thread; stopped (in
  // ~Impl, declared after the store) before the store and database go.
  std::unique_ptr<conversations::RetentionSweeper> conversation_sweeper;
  billing::Pricing pricing;
  std::string instance_id;  // this backend process (in reservations and jobs)
  // The server (and its I/O context) is declared before what talks through
  // it, so the model manager, the model client (with its pooled upstream
  // sockets) and the routes are destroyed while the I/O context still exists.
  std::unique_ptr<http::Server> server;
  std::unique_ptr<models::Manager> models;
  std::unique_ptr<models::PullJobs> pulls;               // downloads asked through the API, on its own thread
  std::unique_ptr<http::HttpClient> model_http;          // the tasks' upstream connections
  std::unique_ptr<inference::ModelClient> model_client;  // the tasks' model calls (homework, convert, subtitle)
  // The routes refer to everything above; the server holds it from
  // make_server() on and the later stages fill it before it runs.
  std::shared_ptr<http::Router> router = std::make_shared<http::Router>();
  std::unique_ptr<subtitle::SubtitleJobs> subtitle_jobs;  // its running jobs keep their own state alive
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  int workers = 0;
  int task_threads = 0;

  Impl(config::Config c, observe::Logger l) : config(std::move(c)), log(std::move(l)) {}
  ~Impl() { stop_pools(); }

  Result<void> open_storage();
  Result<void> open_accounts();
  Result<void> make_server(std::shared_ptr<http::TlsCertificates> tls_certificates);
  Result<void> make_clients();
  Result<void> add_routes();

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

// The data directory, the pools and the database (migrated).
Result<void> Backend::Impl::open_storage() {
  std::error_code ec;
  std::filesystem::create_directories(config.server.data_dir, ec);
  if (ec) {
    return fail(ErrorCode::kUnavailable, "server.data_dir: cannot create directory " + config.server.data_dir,
                "data_dir");
  }
  workers = config.server.worker_threads > 0 ? config.server.worker_threads : std::max(4, 2 * cores());
  pool = std::make_unique<http::WorkerPool>(static_cast<std::size_t>(workers));
  task_threads = config.server.task_threads > 0 ? config.server.task_threads : cores();
  task_pool = std::make_unique<http::WorkerPool>(static_cast<std::size_t>(task_threads));
  const int password_threads =
      config.auth.password_threads > 0 ? config.auth.password_threads : std::max(2, cores() / 2);
  password_pool = std::make_unique<http::WorkerPool>(static_cast<std::size_t>(password_threads));

  auto db = store::Database::open(config.database, std::min(workers, 8));
  if (!db) return fail(db.error().code, "database: " + db.error().message, db.error().reason);
  database = std::move(*db);
  auto version = database->migrate();
  if (!version) return fail(version.error().code, "database: " + version.error().message, version.error().reason);
  log.info("database ready", {{"schema_version", *version},
                              {"backend", database->dialect() == store::Dialect::kSqlite ? "sqlite" : "mysql"}});
  metrics.gauge("llmd_build_info", "Build information", {"version"}).with({std::string(kVersion)}).set(1);
  return {};
}

// Users, authentication, rate limits, billing and pricing; the bootstrap
// admin; reservations a previous run left behind released; uploads.
Result<void> Backend::Impl::open_accounts() {
  std::string secret = config.auth.jwt_secret;
  if (secret.empty()) {
    auto generated = load_or_create_jwt_secret(config.server.data_dir);
    if (!generated) return std::unexpected(generated.error());
    secret = *generated;
  }
  if (secret.size() < auth::kMinJwtSecretBytes) {
    return fail(ErrorCode::kInvalidArgument, "auth.jwt_secret: must be at least 32 bytes", "bad_config");
  }
  auto id = load_or_create_instance_id(config.server.data_dir);
  if (!id) return std::unexpected(id.error());
  instance_id = *id;
  users = std::make_unique<auth::UserStore>(*database);
  login_throttle = std::make_unique<auth::LoginThrottle>(auth::LoginThrottleOptions{
      config.limits.login_attempts, config.limits.login_attempts * 5, config.limits.login_account_attempts,
      std::chrono::seconds(config.limits.login_window_seconds)});
  if (config.redis.empty()) {
    rate_limiter = std::make_unique<auth::MemoryRateLimiter>();
  } else {
    // Shared by all instances; while Redis is unreachable it falls back to
    // per-instance limits and warns, rather than failing requests.
    const observe::Logger* logger = &log;
    auto redis = auth::RedisRateLimiter::open(config.redis, [logger](const std::string& m) { logger->warn(m); });
    if (!redis) return std::unexpected(redis.error());
    rate_limiter = std::move(*redis);
    log.info("rate limits shared through redis");
  }
  auth = std::make_unique<auth::AuthService>(
      *users,
      auth::AuthOptions{
          secret, config.auth.jwt_ttl, config.auth.register_open,
          config.auth.register_initial_tokens >= 0 ? config.auth.register_initial_tokens : config.auth.initial_tokens,
          config.auth.bcrypt_cost, config.auth.register_per_ip_per_hour},
      *login_throttle, *rate_limiter);
  if (!billing::valid_time_zone(config.groups.time_zone)) {
    return fail(ErrorCode::kInvalidArgument, "groups.time_zone: unknown time zone '" + config.groups.time_zone + "'",
                "bad_config");
  }
  accounts = std::make_unique<billing::Accounts>(*database, instance_id,
                                                 billing::AccountsOptions{config.groups.time_zone, {}});
  groups = std::make_unique<billing::Groups>(*accounts, billing::GroupsOptions{config.groups.max_teacher_allowance});
  {
    const observe::Logger* logger = &log;
    allowance_sweeper = std::make_unique<billing::AllowanceSweeper>(
        *database, [] { return static_cast<std::int64_t>(std::time(nullptr)); },
        std::chrono::seconds(config.groups.allowance_sweep_seconds),
        [logger](const Error& e) {
          logger->warn("crediting allowances failed", {{"error", e.message}});
        });
  }
  for (const auto& [task, t] : config.tasks) {
    billing::PriceRule rule = pricing.rule(task);
    if (t.multiplier) rule.multiplier = *t.multiplier;
    if (t.fixed) rule.fixed = *t.fixed;
    pricing.set(task, rule);
  }
  for (const auto& m : config.models.list) {
    if (m.price_multiplier != 1.0) pricing.set_model_multiplier(m.name, m.price_multiplier);
  }
  LLMD_TRY(ensure_admin(*auth, config.auth.initial_tokens, log));
  if (auto released = accounts->release_abandoned(); !released) {
    return std::unexpected(released.error());
  } else if (*released > 0) {
    log.warn("released token reservations left by a previous run", {{"count", *released}});
  }

  // Uploads: bodies of POST /api/v1/uploads are spooled to disk by the
  // server (opts.body_policy), then stored under uploads.dir.
  uploads = std::make_unique<uploads::UploadStore>(*database, config.uploads.dir, config.uploads.quota_bytes_per_user);
  if (const auto partial = uploads->remove_partial_files(); partial > 0) {
    log.warn("removed partial upload files left by a previous run", {{"count", static_cast<std::int64_t>(partial)}});
  }
  job_store = std::make_unique<jobs::JobStore>(*database);

  // The chat page's conversations; a single SQLite instance knows that a
  // reply still pending was cut off by its previous run.
  const auto& chat = config.chat;
  conversations = std::make_unique<conversations::ConversationStore>(
      *database, conversations::Limits{chat.max_conversations, chat.max_messages_per_conversation,
                                       static_cast<std::size_t>(chat.max_message_bytes)});
  if (database->dialect() == store::Dialect::kSqlite) {
    auto failed = conversations->fail_pending_replies(std::numeric_limits<std::int64_t>::max());
    if (!failed) return std::unexpected(failed.error());
    if (*failed > 0) log.warn("chat replies cut off by a previous run marked failed", {{"count", *failed}});
  }
  const conversations::RetentionOptions retention{chat.retention_days};
  const observe::Logger* logger = &log;
  conversation_sweeper = std::make_unique<conversations::RetentionSweeper>(
      *conversations, retention, [logger](const Result<conversations::SweepResult>& r) {
        if (!r) {
          logger->warn("conversation upkeep failed", {{"error", r.error().message}});
        } else if (r->conversations_removed > 0 || r->replies_failed > 0) {
          logger->info("conversation upkeep", {{"conversations_removed", r->conversations_removed},
                                               {"pending_replies_failed", r->replies_failed}});
        }
      });
  return {};
}

// The HTTP server and its I/O context (not yet listening), serving `router`,
// which the later stages fill.
Result<void> Backend::Impl::make_server(std::shared_ptr<http::TlsCertificates> tls_certificates) {
  std::vector<http::Middleware> middlewares{
      http::request_id_middleware(),
      http::access_log_middleware(log),
      http::metrics_middleware(metrics),
      http::security_headers_middleware(),
      http::host_check_middleware(config.server.allowed_hosts),
      http::cors_middleware(config.server.cors_origins),
      models::dialect_error_middleware(),
      api::auth_middleware(*auth, *pool, *rate_limiter, config.limits),
      api::rate_limit_middleware(*rate_limiter, config.limits, *pool),
  };

  http::ServerOptions opts;
  opts.host = config.server.host;
  opts.port = config.server.port;
  opts.io_threads = config.server.threads > 0 ? config.server.threads : cores();
  opts.max_body_bytes = config.server.max_body_bytes;
  opts.header_timeout = std::chrono::seconds(config.server.header_timeout_seconds);
  opts.idle_timeout = std::chrono::seconds(config.server.idle_timeout_seconds);
  opts.shutdown_grace = std::chrono::seconds(config.server.shutdown_grace_seconds);
  opts.body_policy = api::upload_body_policy(api::UploadPolicyDeps{
      *uploads, *auth, *rate_limiter, config.limits, *pool, config.server.allowed_hosts, config.uploads.max_bytes});
  // Client addresses and connection limits (validated when the config loaded).
  if (auto trusted = http::NetworkList::parse(config.server.trusted_proxies); trusted) {
    opts.trusted_proxies = std::move(*trusted);
  } else {
    return fail(ErrorCode::kInvalidArgument, "server.trusted_proxies: " + trusted.error().message, "bad_config");
  }
  if (auto allowed = http::NetworkList::parse(config.server.allowed_networks); allowed) {
    opts.allowed_networks = std::move(*allowed);
  } else {
    return fail(ErrorCode::kInvalidArgument, "server.allowed_networks: " + allowed.error().message, "bad_config");
  }
  opts.max_connections = static_cast<std::size_t>(config.server.max_connections);
  opts.max_connections_per_ip = static_cast<std::size_t>(config.server.max_connections_per_ip);
  opts.min_body_rate = static_cast<std::uint64_t>(config.server.min_body_rate_bytes);
  opts.body_grace = std::chrono::seconds(config.server.body_grace_seconds);
  if (const auto& tls = config.server.tls; tls_certificates) {
    opts.tls = std::move(tls_certificates);
    opts.plain_http = tls.plain_http == "redirect" ? http::PlainHttpOnTls::kRedirect : http::PlainHttpOnTls::kRefuse;
    opts.hsts_max_age = std::chrono::seconds(tls.hsts_max_age_seconds);
  }
  server = std::make_unique<http::Server>(opts, http::make_pipeline(router, std::move(middlewares)), log);
  return {};
}

// The model manager and the tasks' model client, created once here (never
// lazily from a request: two I/O threads would race to create it).
Result<void> Backend::Impl::make_clients() {
  auto manager = models::create_manager(config, log, metrics);
  if (!manager) return fail(manager.error());
  models = std::move(*manager);
  model_http = std::make_unique<http::HttpClient>(server->executor());
  inference::GatewayOptions gateway;
  gateway.acquire_timeout = std::chrono::seconds(config.models.queue_timeout_seconds);
  model_client = inference::make_gateway_client(*models, *model_http, log, gateway);
  auto pull_jobs = models::PullJobs::create(
      models::PullJobsOptions{config.models.dir, models::hub_access_from_env(config.models.hf_endpoint),
                              config.models.allow_private_redirects},
      log);
  if (!pull_jobs) return fail(pull_jobs.error());
  pulls = std::move(*pull_jobs);
  return {};
}

// Every route, and the services behind them; the web UI last (the fallback).
Result<void> Backend::Impl::add_routes() {
  // /health shows the compute devices and where each running instance put its model.
  auto hardware = [manager = models.get()] {
    nlohmann::json instances = nlohmann::json::array();
    for (const auto& m : manager->list()) {
      for (const auto& i : m.instances) {
        if (i.gpu_layers < 0) continue;
        instances.push_back({{"model", m.name},
                             {"instance", i.id},
                             {"gpu_layers", i.gpu_layers},
                             {"devices", models::devices_json(i.devices)}});
      }
    }
    return nlohmann::json{{"devices", models::devices_json(manager->host_devices())}, {"instances", instances}};
  };
  api::add_ops_routes(*router, api::OpsDeps{*database, *pool, metrics, started, hardware});
  const api::AccountDeps account_deps{*auth, *accounts, *pool, log, password_pool.get(), groups.get()};
  api::add_account_routes(*router, account_deps);
  api::add_group_routes(*router, api::GroupDeps{*groups, *auth, *pool, log, config.groups.time_zone,
                                                [this] { return accounts->options().now(); }});
  api::add_admin_routes(*router, account_deps);
  api::add_usage_routes(*router, account_deps);
  models::ModelRoutesDeps model_deps(*models, *model_http, log);
  model_deps.acquire_timeout = std::chrono::seconds(config.models.queue_timeout_seconds);
  model_deps.hooks = api::make_billing_hooks(*accounts, pricing, *pool, *model_client, log);
  const api::ConversationDeps conversation_deps{*conversations, *pool, log};
  model_deps.memory = api::make_chat_memory(conversation_deps);
  api::add_conversation_routes(*router, conversation_deps);
  models::add_model_pull_routes(*router,
                                models::PullRoutesDeps{*pulls, *models, *pool, model_deps.hooks,
                                                       models::hub_access_from_env(config.models.hf_endpoint), log});
  models::add_model_routes(*router, std::move(model_deps));
  api::add_convert_routes(*router, api::ConvertDeps{*accounts, pricing, *pool, *task_pool,
                                                    static_cast<std::size_t>(config.limits.convert_concurrent_per_user),
                                                    log, *model_client, task_model(config, "convert")});

  // Homework grading: the prompt templates are built in, overridable from
  // tasks.homework.prompts_dir.
  std::string prompts_dir;
  if (auto t = config.tasks.find("homework"); t != config.tasks.end()) prompts_dir = t->second.prompts_dir;
  auto prompts = homework::PromptSet::load(prompts_dir);
  if (!prompts) return std::unexpected(prompts.error());
  api::add_homework_routes(
      *router, api::HomeworkDeps{*accounts, pricing, *pool, log, *model_client, task_model(config, "homework"),
                                 std::make_shared<const homework::PromptSet>(std::move(*prompts))});

  api::add_upload_routes(*router, api::UploadDeps{*uploads, *pool, log});

  // Subtitle jobs (runner, billing, resume) and their routes.
  subtitle_jobs = std::make_unique<subtitle::SubtitleJobs>(subtitle::SubtitleJobsDeps{
      *job_store, *accounts, pricing, *pool, *model_client, log, task_model(config, "subtitle"), config.subtitle,
      (std::filesystem::path(config.server.data_dir) / "results").string(), instance_id,
      [this] { return server->executor(); }});
  api::add_subtitle_routes(
      *router,
      api::SubtitleRoutesDeps{*subtitle_jobs, *job_store, *pool, log, config.uploads.media_roots,
                              [this](const std::string& id, std::int64_t user_id) -> Result<api::UploadedFile> {
                                auto rec = uploads->get(id, user_id);
                                if (!rec) return std::unexpected(rec.error());
                                return api::UploadedFile{rec->path, rec->original_name};
                              },
                              config.asr});

  // The web UI: the router's fallback, so every API route above wins.
  const auto web_dir = api::find_web_dir(config.server.web_dir);
  api::add_static_routes(*router, web_dir, *pool);
  if (web_dir) {
    log.info("serving the web UI", {{"web_dir", web_dir->string()}});
  } else {
    log.warn("web UI not found (build web/ or set server.web_dir); / shows a note");
  }
  return {};
}

Backend::Backend() = default;
Backend::~Backend() = default;

Result<std::unique_ptr<Backend>> Backend::create(config::Config config, observe::Logger log) {
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
  LLMD_TRY(s.open_storage());
  LLMD_TRY(s.open_accounts());
  LLMD_TRY(s.make_server(std::move(tls_certificates)));
  LLMD_TRY(s.make_clients());
  LLMD_TRY(s.add_routes());

  s.server->on_shutdown([&s] {
    s.subtitle_jobs->stop();
    s.models->shutdown();
  });
  LLMD_TRY(s.server->listen());
  s.subtitle_jobs->start();  // resumes unfinished jobs; they run once the server runs
  s.log.info("listening", {{"host", s.config.server.host},
                           {"port", s.server->port()},
                           {"scheme", s.config.server.tls.cert.empty() ? "http" : "https"},
                           {"io_threads", s.config.server.threads > 0 ? s.config.server.threads : cores()},
                           {"worker_threads", s.workers},
                           {"task_threads", s.task_threads},
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
