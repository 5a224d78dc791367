// The model manager: which models exist (catalog + upstreams), which run, on
// which instances, and which instance serves the next request.
//
// Local workers are child processes started through a WorkerFactory on a free
// port of models.port_range, each with a fresh random API key (so nobody on
// the host can call a worker around the gateway's billing), with `threads:
// auto` resolved by auto_threads(), probed until /health answers, restarted with
// exponential backoff when they die, stopped when idle, evicted (least
// recently used) when max_loaded is reached. Upstreams are remote instances
// checked every balancer.health_interval. Requests get an instance through
// acquire(), which starts a stopped model on demand and waits for it.
//
// Thread-safety: every public method may be called from any thread. All
// process spawning happens on the manager's own supervisor thread (so
// PR_SET_PDEATHSIG ties workers to a thread that lives as long as the manager).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "config/config.h"
#include "core/error.h"
#include "models/catalog.h"
#include "models/host_devices.h"
#include "models/worker.h"
#include "observe/log.h"
#include "observe/metrics.h"

namespace llmd::models {

struct ManagerOptions {
  config::ModelsConfig models;
  std::vector<config::UpstreamEntry> upstreams;
  config::BalancerConfig balancer;
  std::string host = "127.0.0.1";                   // where local workers listen
  std::chrono::milliseconds ready_timeout{120000};  // spawn -> /health 200
  std::chrono::milliseconds stop_grace{5000};       // SIGTERM -> SIGKILL
  int max_restarts = 3;                             // consecutive crashes before "error"
  std::chrono::milliseconds restart_backoff{1000};  // doubled per consecutive crash
  std::chrono::milliseconds tick{100};              // supervisor period
  std::chrono::milliseconds health_interval{0};     // 0 = balancer.health_interval seconds
};

struct ManagerDeps {
  observe::Logger log = observe::Logger::null();
  observe::Registry* metrics = nullptr;    // optional
  std::shared_ptr<WorkerFactory> factory;  // required
  Prober prober;                           // empty = HTTP GET /health
  // Bytes of MemAvailable; empty = read /proc/meminfo. nullopt = unknown (no check).
  std::function<std::optional<std::uint64_t>()> mem_available;
  // The host's compute devices (probe_host_devices at startup); GPUs among
  // them make room for models beside the RAM and fewer CPU threads.
  std::vector<Device> host_devices;
};

struct InstanceStatus {
  std::string id;
  std::string url;
  std::string status;  // starting | running | stopping | restarting | error
  std::string health;  // healthy | cooling | down
  int in_flight = 0;
  int port = 0;
  int restarts = 0;
  bool remote = false;
  std::string error;
  int threads = 0;  // generation threads the local worker was started with (0: remote)
  // Where its model went, as the worker reports it (/props "placement"):
  // layers on GPUs (-1: not reported) and the memory each device holds.
  int gpu_layers = -1;
  std::vector<Device> devices;
};

struct ModelStatus {
  std::string name;
  std::string description;
  std::string file;    // the GGUF's file name in models.dir or as configured ("" for upstreams)
  std::string status;  // available | starting | running | stopping | error
  std::uint64_t size = 0;
  std::string arch;
  std::string quantization;
  std::int64_t context_length = 0;
  std::uint64_t parameter_count = 0;
  bool has_chat_template = false;
  // The chat template's capabilities as its worker reports them
  // (supports_tools, supports_thinking, supports_system_role, ...): known
  // once the model has run since serve started.
  std::map<std::string, bool> template_caps;
  std::vector<InstanceStatus> instances;
  std::vector<std::string> aliases;
  config::RequestParams defaults, forced;  // what API requests get (models.list[].defaults / .forced)
  bool preload = false;                    // started at boot
  bool pinned = false;                     // never unloaded for idleness or evicted
  std::string mode = "chat";               // chat | embeddings | rerank (models.list[].mode)
  bool deletable = false;                  // a file found in models.dir (not configured): Manager::remove
  std::size_t waiting = 0;                 // requests in line for a free slot (or for room under max_loaded)
  std::string error;                       // the most recent error, if any
};

class Manager;
namespace detail {
class QueueTicket;
}

enum class LeaseKind { kRequest, kSideCall };

// One request's hold on an instance: counts it in flight until finish() or
// destruction. Movable; may outlive the Manager (then finishing is a no-op).
class Lease {
 public:
  Lease(Lease&&) noexcept;
  Lease& operator=(Lease&&) noexcept;
  ~Lease();

  const std::string& model() const { return model_; }
  const std::string& instance_id() const { return instance_; }
  const std::string& base_url() const { return url_; }  // "http://host:port"
  // The key the instance requires as Authorization: Bearer: the upstream's
  // configured key, or the random key of this spawn of a local worker.
  const std::string& api_key() const { return api_key_; }
  bool remote() const { return remote_; }
  // Where the request joined the model's queue (1 = next), 0 when it did not
  // wait; and how long it waited.
  std::size_t queue_position() const { return queue_position_; }
  std::chrono::milliseconds queue_wait() const { return queue_wait_; }

  // Reports the outcome: ok=false for connection errors and 5xx (counts
  // toward the instance's fail_threshold). `completion_tokens` feeds the
  // tokens/s metric. Idempotent; the destructor calls finish(true).
  void finish(bool ok, std::int64_t completion_tokens = 0);

 private:
  friend class Manager;
  friend class detail::QueueTicket;
  struct Core;
  Lease() = default;
  std::weak_ptr<Core> core_;
  std::string model_, instance_, url_, api_key_;
  bool remote_ = false;
  bool done_ = true;
  std::size_t queue_position_ = 0;
  std::chrono::milliseconds queue_wait_{0};
  std::chrono::steady_clock::time_point started_;
};

class Manager {
 public:
  // Builds the model table from `catalog` and options.upstreams and starts the
  // supervisor thread. Errors: kInvalidArgument (unknown balancer strategy).
  static Result<std::unique_ptr<Manager>> create(ManagerOptions options, ManagerDeps deps,
                                                 std::vector<CatalogModel> catalog);
  // shutdown() then join.
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  std::vector<ModelStatus> list() const;
  // The host's compute devices as found at startup, with memory_free now
  // less what the running local workers hold on each GPU.
  std::vector<Device> host_devices() const;
  // A model by its name or one of its aliases (every method below takes
  // either). Errors: kNotFound "model_not_found".
  Result<ModelStatus> get(const std::string& name) const;
  // The name of the model `name` means (itself when it is no alias or unknown).
  std::string resolve(const std::string& name) const;
  // Marks the model wanted and starts its workers (asynchronously; the
  // returned status is usually "starting"). Already running: no-op.
  // Errors: kNotFound, kUnavailable (file error, not enough memory, every
  // loaded model busy at max_loaded) with a reason.
  Result<ModelStatus> start(const std::string& name);
  // Stops the model's local workers (SIGTERM, SIGKILL after stop_grace).
  Result<ModelStatus> stop(const std::string& name);
  // Deletes a model found in models.dir: its file (every part of a split
  // model) and its entry. Blocking (file I/O). Errors: kNotFound;
  // kConflict "model_in_use" while it is wanted, loaded or asked for (stop
  // it first), "model_configured" for a models.list entry or an upstream
  // (change the config instead); kUnavailable when a file cannot be deleted.
  Result<void> remove(const std::string& name);
  // How long the model stays loaded once unused (Ollama's keep_alive): a
  // duration (0 = unload as soon as no request is in flight), negative =
  // never unloaded for idleness, nullopt = the configured
  // idle_unload_seconds again. Errors: kNotFound.
  Result<void> set_keep_alive(const std::string& name, std::optional<std::chrono::seconds> keep);

  // An instance for one request to `name`. Starts the model on demand and
  // waits up to `timeout` for an instance; `exclude` skips instances (retry
  // elsewhere). A local instance takes as many requests at once as it has
  // slots (`parallel`); when every one is full, or the model cannot start yet
  // because max_loaded models are loaded and busy, the request waits in the
  // model's queue, where callers take turns (`caller`: whom the request is
  // for, e.g. "user:7"; see FairQueue) and the least recently used idle model
  // is evicted as soon as there is one. Errors: kNotFound, kUnavailable +
  // retry_after_s ("model_starting", "model_error", "no_healthy_instance",
  // "queue_timeout", ...).
  // A kSideCall lease (counting a prompt before the request itself) goes to
  // the least busy instance and is no request of its own: it leaves the
  // balancer's rotation, in-flight counts, failure counts and metrics as
  // they are.
  boost::asio::awaitable<Result<Lease>> acquire(std::string name, std::chrono::milliseconds timeout,
                                                std::vector<std::string> exclude = {},
                                                LeaseKind kind = LeaseKind::kRequest, std::string caller = {});

  // The configured default model ("" when none).
  const std::string& default_model() const;
  // Total processes spawned so far (tests, metrics).
  std::uint64_t spawn_count() const;
  // Re-reads models.dir and adds newly found files. Blocking (file I/O).
  // The supervisor also does this by itself whenever models.dir changes.
  void rescan();
  // Stops every worker (SIGTERM, then SIGKILL after stop_grace), stops the
  // supervisor. Idempotent; blocks until the workers are gone.
  void shutdown();

 private:
  Manager() = default;
  std::shared_ptr<Lease::Core> core_;
};

}  // namespace llmd::models
