// llmd.yaml: the whole configuration, its defaults, and how it is loaded.
//
// Every key is optional (defaults below are the "embedded defaults" of SPEC §2).
// Loading order: defaults <- YAML file (if any) <- environment variables
// LLMD_<SECTION>_<KEY> (e.g. LLMD_SERVER_PORT=9000, LLMD_DATABASE=..., list
// values comma-separated) <- LOG_LEVEL. Unknown keys are reported as warnings;
// a wrong type or out-of-range value is an error naming the key.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace llmd::config {

// HTTPS served by llmd itself (see http/tls.h for the protocol policy).
struct TlsConfig {
  std::string cert;                   // PEM chain file (server certificate first); TLS is on when cert and key are set
  std::string key;                    // PEM private key file, unencrypted
  std::string plain_http = "refuse";  // plain HTTP on the HTTPS port: refuse (400) | redirect (308 for GET/HEAD)
  int hsts_max_age_seconds = 31536000;  // Strict-Transport-Security max-age; 0 = no header
  int reload_check_seconds = 5;         // how often at most new connections look for changed cert/key files
};

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8080;
  int threads = 0;         // I/O threads; 0 = number of cores
  int worker_threads = 0;  // blocking-work pool; 0 = max(4, 2 x cores)
  int task_threads = 0;    // CPU-heavy task work (conversions), apart from it; 0 = number of cores
  std::vector<std::string> cors_origins;
  std::vector<std::string> allowed_hosts;  // Host header allow-list; empty = any
  std::uint64_t max_body_bytes = 10 * 1024 * 1024;
  int header_timeout_seconds = 10;  // time allowed to send the request head
  int idle_timeout_seconds = 60;    // keep-alive idle limit and body read limit
  int shutdown_grace_seconds = 10;  // in-flight requests may finish this long
  std::string data_dir = "data";    // JWT secret and other generated state
  std::string web_dir;              // built web UI; empty = <exe>/../share/llmd/web, the build tree, ./web/dist
  TlsConfig tls;
  // Client addresses and connection limits (issue 13; see http::ServerOptions).
  std::vector<std::string> trusted_proxies;   // CIDRs whose X-Forwarded-For is believed; empty = none
  std::vector<std::string> allowed_networks;  // CIDRs of clients served; empty = all
  int max_connections = 0;                    // open connections in all; 0 = from the descriptor limit
  int max_connections_per_ip = 0;             // per client address; 0 = max_connections / 8 (4..64)
  int min_body_rate_bytes = 1024;             // average request-body rate after the grace; 0 = off
  int body_grace_seconds = 10;
};

struct AuthConfig {
  std::string jwt_secret;  // empty = generate once into data_dir
  int jwt_ttl = 86400;
  bool register_open = true;
  std::int64_t initial_tokens = 1000;
  int bcrypt_cost = 12;
  // issue 13 (auth hardening)
  std::int64_t register_initial_tokens = -1;  // balance of a self-registered account; unset (-1) = initial_tokens
  int register_per_ip_per_hour = 20;          // registration attempts per client address per hour; 0 = unlimited
  int password_threads = 0;                   // bcrypt's own pool; 0 = max(2, cores / 2)
};

struct LimitsConfig {
  int user_rpm = 120;       // requests per minute per user / API key
  int ip_rpm = 300;         // requests per minute per client IP
  int login_attempts = 10;  // failed logins per window before 429
  int login_window_seconds = 300;
  // issue 13 (auth hardening)
  int login_account_attempts = 50;    // failed logins on one account (all addresses) per window before it slows
  int auth_failures_per_minute = 30;  // 401s (bad keys / tokens) per client address per minute before 429; 0 = off
  // issue 13 (task hardening)
  int convert_concurrent_per_user = 2;  // large conversions one user may run at once; more -> 429
};

// Request parameters a model's settings give (models.list[].defaults: where
// a request leaves one out) or impose (.forced: replacing the request's own;
// max_tokens a ceiling). Unset fields leave the request as it is.
struct RequestParams {
  std::optional<double> temperature, top_p, min_p, presence_penalty, frequency_penalty, repeat_penalty;
  std::optional<std::int64_t> top_k, max_tokens, seed;
  std::optional<std::string> system;                        // chat: the system message
  std::optional<std::string> reasoning_effort;              // chat: low | medium | high
  std::map<std::string, std::string> chat_template_kwargs;  // chat: name -> a JSON value, as JSON text
};

// models.list[].gpu_layers: "auto" (as many layers as fit the GPUs' free
// memory; none without a GPU), "all" (or -1), or a count (0: the CPU only).
inline constexpr int kGpuLayersAll = -1;
inline constexpr int kGpuLayersAuto = -2;

struct ModelEntry {
  std::string name;
  std::string file;
  std::string description;
  int ctx = 4096;
  int threads = 0;  // 0 = auto ("threads: auto"): a share of the cores, see models/manager.h
  int parallel = 4;
  int gpu_layers = kGpuLayersAuto;  // a count, kGpuLayersAll or kGpuLayersAuto
  int replicas = 1;
  int weight = 1;
  std::string chat_template;
  std::string command;               // optional command template instead of `llmd runner`
  double price_multiplier = 1.0;     // tokens charged per token of this model (x task pricing)
  std::vector<std::string> aliases;  // more names requests may use for this model
  RequestParams defaults;            // API requests' parameters where they give none
  RequestParams forced;              // API requests' parameters whatever they give
  bool preload = false;              // started when serve starts
  bool pin = false;                  // preloaded, never unloaded for idleness nor evicted for another model
  // What the worker serves: "chat" (generation), "embeddings" (/v1/embeddings)
  // or "rerank" (/v1/rerank); `pooling` (mean|cls|last|none) overrides the
  // model's own for embeddings.
  std::string mode = "chat";
  std::string pooling;
};

struct ModelsConfig {
  std::string dir = "models";
  int port_min = 8081;  // from port_range "8081-8085"
  int port_max = 8085;
  int idle_unload_seconds = 600;
  int max_loaded = 2;
  // How long a request waits for a busy model (every slot taken, or
  // max_loaded models busy) or for it to start before 503 queue_timeout.
  int queue_timeout_seconds = 120;
  std::string default_model;
  bool allow_private_redirects = false;                // `models pull`: may a redirect lead to a LAN/loopback address?
  std::string hf_endpoint = "https://huggingface.co";  // `models pull hf:...` (HF_ENDPOINT overrides: a mirror)
  // Cores that `threads: auto` workers share; 0 = this machine's physical
  // cores (affinity mask and cgroup quota respected).
  int cpu_cores = 0;
  std::vector<ModelEntry> list;
};

struct UpstreamEntry {
  std::string name;
  std::string url;
  std::string model;
  int weight = 1;
  std::string api_key;
  int parallel = 0;  // requests it takes at once (its slots); more wait at the gateway. 0 = no limit
};

struct BalancerConfig {
  std::string strategy = "least_connections";  // round_robin | weighted_round_robin | least_connections
  int health_interval = 5;
  int fail_threshold = 3;
  int cooldown = 30;
};

struct TaskConfig {
  std::string model;                 // empty = models.default_model
  std::optional<double> multiplier;  // pricing override: base x multiplier + fixed
  std::optional<std::int64_t> fixed;
  std::string prompts_dir;  // homework only: prompt template overrides (<family>.v1.txt); empty = built-in
};

// tasks.subtitle keys besides model/multiplier/fixed: the job runner.
struct SubtitleTaskConfig {
  int concurrency = 2;  // subtitle jobs translated at once by one instance
  int batch_min = 10;   // cues per model call (split at the largest time gaps)
  int batch_max = 30;
  int max_tokens_per_batch = 0;  // completion tokens per call; 0 = estimated from the batch's text
  int max_cues = 20000;          // larger inputs are refused (422)
};

struct LoggingConfig {
  std::string level = "info";
  std::string format = "json";  // json | text
  std::string file;             // empty = stderr
};

struct UploadsConfig {
  std::string dir = "data/uploads";
  std::uint64_t max_bytes = 2ULL * 1024 * 1024 * 1024;
  // What one user's uploads may take on disk together; 0 = no limit.
  std::uint64_t quota_bytes_per_user = 5ULL * 1024 * 1024 * 1024;
  std::vector<std::string> media_roots = {"data/uploads"};
};

struct AsrConfig {
  std::string url;  // whisper-compatible endpoint; empty = off
  std::string api_key;
};

// The chat page's conversations kept on the server (SPEC §4.5c).
struct ChatConfig {
  int max_conversations = 1000;             // per user; 0 = no limit
  int max_messages_per_conversation = 500;  // replies included; 0 = no limit
  std::uint64_t max_message_bytes = 64 * 1024;
  int retention_days = 0;  // conversations not updated for this long are deleted; 0 = keep
};

// Groups (classes), allowances and key budgets (SPEC §4.5b).
struct GroupsConfig {
  std::string time_zone = "UTC";               // key budget periods; a new group's default
  std::int64_t max_teacher_allowance = 10000;  // per member and period, set by a teacher
  int allowance_sweep_seconds = 60;            // how often every member's allowance is looked at
};

struct Config {
  ServerConfig server;
  std::string database = "sqlite:data/llmd.db";
  std::string redis;
  AuthConfig auth;
  LimitsConfig limits;
  ModelsConfig models;
  std::vector<UpstreamEntry> upstreams;
  BalancerConfig balancer;
  std::map<std::string, TaskConfig> tasks;  // chat, convert, homework, subtitle
  SubtitleTaskConfig subtitle;              // tasks.subtitle runner keys
  LoggingConfig logging;
  UploadsConfig uploads;
  AsrConfig asr;
  ChatConfig chat;
  GroupsConfig groups;
};

struct LoadedConfig {
  Config config;
  std::vector<std::string> warnings;  // unknown keys and similar, one line each
};

// Environment lookup, injectable for tests; returns nullopt when unset.
using EnvLookup = std::optional<std::string> (*)(const char* name);
std::optional<std::string> process_env(const char* name);

// Parses YAML text (may be empty) and applies environment overrides.
// Errors are kInvalidArgument with a message that starts with the key path,
// e.g. "server.port: expected an integer in 1..65535, got \"http\"".
Result<LoadedConfig> load_config_text(const std::string& yaml_text, EnvLookup env = process_env);

// Reads `path` (empty = no file, defaults only) then as load_config_text.
Result<LoadedConfig> load_config_file(const std::string& path, EnvLookup env = process_env);

}  // namespace llmd::config
