#include "models/manager.h"

#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <openssl/rand.h>
#include <nlohmann/json.hpp>

#include "http/client.h"
#include "models/balancer.h"
#include "models/model_state.h"
#include "models/resources.h"

namespace llmd::models {

namespace net = boost::asio;
using detail::Clock;
using detail::Instance;
using detail::ModelState;
using detail::State;

namespace {

// A fresh key for one worker spawn (192 random bits, hex).
Result<std::string> random_worker_key() {
  unsigned char bytes[24];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    return fail(ErrorCode::kInternal, "no randomness available for a worker key", "spawn_failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string key = "llmd-worker-";
  for (unsigned char b : bytes) {
    key += kHex[b >> 4];
    key += kHex[b & 0xf];
  }
  return key;
}

std::string join_lines(const std::vector<std::string>& lines, std::size_t last) {
  std::string out;
  const std::size_t from = lines.size() > last ? lines.size() - last : 0;
  for (std::size_t i = from; i < lines.size(); ++i) {
    if (!out.empty()) out += " | ";
    out += lines[i].substr(0, 300);
  }
  return out;
}

}  // namespace

struct Lease::Core : std::enable_shared_from_this<Lease::Core> {
  ManagerOptions options;
  ManagerDeps deps;
  Strategy strategy = Strategy::kLeastConnections;
  HealthPolicy policy;
  std::chrono::milliseconds health_interval{5000};

  int cpu_cores = 1;  // shared by `threads: auto` workers (models.cpu_cores or the physical cores)

  net::io_context io;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::thread thread;
  std::unique_ptr<http::HttpClient> client;  // used on `io` only (default prober)

  mutable std::mutex mutex;  // guards models, shutting_down, serial, probe_jobs
  std::map<std::string, std::unique_ptr<ModelState>> models;
  std::map<std::string, std::string> aliases;  // alias -> model name (models.list[].aliases); set at create

  // The model `name` means: the model of that name, else the one it is an
  // alias of; null when none (`mutex` held).
  ModelState* find_locked(const std::string& name) const {
    if (auto it = models.find(name); it != models.end()) return it->second.get();
    if (auto a = aliases.find(name); a != aliases.end()) {
      if (auto it = models.find(a->second); it != models.end()) return it->second.get();
    }
    return nullptr;
  }
  bool shutting_down = false;
  std::uint64_t serial = 0;
  std::atomic<std::uint64_t> spawns{0};
  struct ProbeJob {
    std::string model, id;
    std::uint64_t serial;
    std::string url, api_key;
  };
  std::vector<ProbeJob> probe_jobs;  // guarded by mutex; launched by reconcile()
  std::vector<ProbeJob> props_jobs;  // the same, for reading an instance's /props (template caps, placement)

  observe::Family<observe::Counter>* requests = nullptr;
  observe::Family<observe::Counter>* errors = nullptr;
  observe::Family<observe::Histogram>* latency = nullptr;
  observe::Family<observe::Gauge>* tokens_per_s = nullptr;
  observe::Family<observe::Gauge>* load_seconds = nullptr;
  observe::Family<observe::Gauge>* in_flight_gauge = nullptr;
  observe::Family<observe::Gauge>* healthy_gauge = nullptr;
  observe::Family<observe::Gauge>* queue_gauge = nullptr;
  observe::Family<observe::Histogram>* queue_wait = nullptr;

  // --- supervisor (runs on `io`) ---------------------------------------

  // A weak reference: a handler still queued when the I/O thread stops must
  // not keep the core (which owns the I/O context) alive — that cycle leaked.
  void poke() {
    net::post(io, [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->reconcile();
    });
  }

  // Adds models whose files appeared in models.dir (e.g. `llmd models pull`
  // renaming a finished download into place) without a restart. Runs on the
  // manager's own thread: the scan reads GGUF headers from disk.
  std::filesystem::file_time_type dir_mtime{};

  void rescan_if_changed() {
    std::error_code ec;
    const auto mtime = std::filesystem::last_write_time(options.models.dir, ec);
    if (ec || mtime == dir_mtime) return;
    dir_mtime = mtime;
    rescan();
  }

  void rescan() {
    auto found = scan_catalog(options.models);
    std::lock_guard lock(mutex);
    for (auto& c : found) {
      if (models.contains(c.name)) continue;
      const std::string name = c.name;
      models.emplace(name, std::make_unique<ModelState>(std::move(c), strategy, policy));
    }
  }

  net::awaitable<void> supervise() {
    net::steady_timer timer(io);
    for (;;) {
      rescan_if_changed();
      reconcile();
      timer.expires_after(options.tick);
      auto [ec] = co_await timer.async_wait(net::as_tuple(net::use_awaitable));
      if (ec) co_return;
      std::lock_guard lock(mutex);
      if (shutting_down) co_return;
    }
  }

  void reconcile() {
    std::vector<ProbeJob> jobs, caps;
    {
      std::lock_guard lock(mutex);
      if (shutting_down) return;
      const auto now = Clock::now();
      for (auto& [name, m] : models) reconcile_model(*m, now);
      jobs.swap(probe_jobs);
      caps.swap(props_jobs);
    }
    // Started outside the lock: a probe may complete inline and call on_probe.
    for (auto& j : jobs) {
      net::co_spawn(
          io,
          [self = shared_from_this(), j = std::move(j)]() -> net::awaitable<void> {
            const bool ok = co_await self->probe(j.url, j.api_key);
            self->on_probe(j.model, j.id, j.serial, ok);
          },
          net::detached);
    }
    for (auto& j : caps) {
      net::co_spawn(
          io, [self = shared_from_this(), j = std::move(j)]() -> net::awaitable<void> { co_await self->read_props(j); },
          net::detached);
    }
  }

  // GET /props of an instance that became ready (llmd runner and
  // llama-server answer chat_template_caps there): what the model's template
  // can do, and (llmd runner) where the instance put the model.
  net::awaitable<void> read_props(const ProbeJob& job) {
    http::ClientRequest req;
    req.url = job.url + "/props";
    req.connect_timeout = std::chrono::milliseconds(1000);
    req.timeout = std::chrono::milliseconds(3000);
    if (!job.api_key.empty()) req.headers.set("Authorization", "Bearer " + job.api_key);
    auto r = co_await client->request(req);
    if (!r || r->status != 200) co_return;
    const auto props = nlohmann::json::parse(r->body, nullptr, false);
    if (!props.is_object()) co_return;
    std::map<std::string, bool> caps;
    if (const auto it = props.find("chat_template_caps"); it != props.end() && it->is_object()) {
      for (const auto& [name, value] : it->items()) {
        if (value.is_boolean()) caps[name] = value.get<bool>();
      }
    }
    Placement placement = parse_placement(props.value("placement", nlohmann::json()));
    std::lock_guard lock(mutex);
    auto it = models.find(job.model);
    if (it == models.end()) co_return;
    if (!caps.empty()) it->second->template_caps = std::move(caps);
    for (auto& inst : it->second->instances) {
      if (inst.id == job.id && inst.serial == job.serial) inst.placement = std::move(placement);
    }
  }

  // Reads /props of each instance that becomes ready (not with a test
  // prober: there is no HTTP worker then).
  void ask_props(ModelState& m, const Instance& inst) {
    if (deps.prober) return;
    m.caps_asked = true;
    props_jobs.push_back({m.cat.name, inst.id, inst.serial, inst.url, inst.api_key});
  }

  void reconcile_model(ModelState& m, Clock::time_point now) {
    for (auto& inst : m.instances) {
      if (inst.remote) {
        if (!inst.probing && now >= inst.next_health) launch_probe(m, inst, now);
        continue;
      }
      if (inst.worker && inst.worker->exit_code()) {
        handle_exit(m, inst, now);
        continue;
      }
      switch (inst.state) {
        case State::kPending: spawn(m, inst, now); break;
        case State::kStarting:
          if (now >= inst.deadline) {
            const auto lines = inst.worker ? inst.worker->last_lines() : std::vector<std::string>{};
            inst.worker.reset();  // kills and reaps
            inst.state = State::kFailed;
            // The worker's output stays in the operator's log: it can hold
            // other users' request ids, so no API answer repeats it.
            inst.error = "worker did not become ready within " + std::to_string(options.ready_timeout.count() / 1000) +
                         " s (see the server log)";
            m.last_error = inst.error;
            deps.log.error("worker not ready", {{"model", m.cat.name},
                                                {"instance", inst.id},
                                                {"reason", inst.error},
                                                {"last_output", join_lines(lines, 5)}});
          } else if (!inst.probing) {
            launch_probe(m, inst, now);
          }
          break;
        case State::kRunning:
          if (!inst.probing && now >= inst.next_health) launch_probe(m, inst, now);
          break;
        case State::kStopping:
          if (now >= inst.deadline && inst.worker) inst.worker->kill();
          break;
        case State::kBackoff:
          if (now >= inst.deadline) spawn(m, inst, now);
          break;
        case State::kFailed: break;
      }
    }
    std::erase_if(m.instances, [](const Instance& i) { return !i.remote && i.state == State::kStopping && !i.worker; });
    // Unused for its keep-alive (negative: kept for ever).
    const int idle_s = options.models.idle_unload_seconds;
    const std::chrono::seconds keep = m.keep_alive.value_or(std::chrono::seconds(idle_s > 0 ? idle_s : -1));
    if (m.wanted && m.has_local() && m.in_flight == 0 && m.queue.empty() && !m.cat.entry.pin && keep.count() >= 0 &&
        now - m.last_used >= keep) {
      deps.log.info("unloading idle model", {{"model", m.cat.name}, {"idle_seconds", keep.count()}});
      stop_locked(m, now);
    }
  }

  void handle_exit(ModelState& m, Instance& inst, Clock::time_point now) {
    const int code = *inst.worker->exit_code();
    const auto lines = inst.worker->last_lines();
    inst.worker.reset();
    m.balancer.remove(inst.id);
    if (inst.state == State::kStopping) return;  // expected; erased by reconcile_model
    // The last output goes to the log only (see kStarting above).
    const std::string why = "worker exited with code " + std::to_string(code) + " (see the server log)";
    const std::string last_output = join_lines(lines, 5);
    m.last_error = why;
    if (m.wanted && inst.restarts < options.max_restarts) {
      const auto delay = options.restart_backoff * (1 << std::min(inst.restarts, 10));
      ++inst.restarts;
      inst.state = State::kBackoff;
      inst.deadline = now + delay;
      inst.error = why;
      deps.log.warn("worker crashed; restarting", {{"model", m.cat.name},
                                                   {"instance", inst.id},
                                                   {"exit_code", code},
                                                   {"attempt", inst.restarts},
                                                   {"delay_ms", delay.count()},
                                                   {"last_output", last_output}});
    } else {
      inst.state = State::kFailed;
      inst.error = why;
      deps.log.error("worker crashed; giving up", {{"model", m.cat.name},
                                                   {"instance", inst.id},
                                                   {"exit_code", code},
                                                   {"reason", why},
                                                   {"last_output", last_output}});
    }
  }

  int pick_port(const std::string& host) {
    for (int p = options.models.port_min; p <= options.models.port_max; ++p) {
      bool ours = false;
      for (const auto& [n, m] : models) {
        for (const auto& i : m->instances) ours = ours || (!i.remote && i.worker && i.port == p);
      }
      if (!ours && port_is_free(host, p)) return p;
    }
    return 0;
  }

  // CPU workers that may run at once: the replicas of the max_loaded
  // startable CPU models with the most replicas. Mutex held.
  int cpu_worker_slots() const {
    std::vector<int> replicas;
    for (const auto& [n, m] : models) {
      if (m->startable() && !fully_offloaded(m->cat, gpu_free()))
        replicas.push_back(std::max(1, m->cat.entry.replicas));
    }
    std::sort(replicas.begin(), replicas.end(), std::greater<>());
    const std::size_t loaded = options.models.max_loaded > 0
                                   ? std::min(replicas.size(), static_cast<std::size_t>(options.models.max_loaded))
                                   : replicas.size();
    int slots = 0;
    for (std::size_t i = 0; i < loaded; ++i) slots += replicas[i];
    return std::max(1, slots);
  }

  // Bytes the live local workers report holding on `device`. Mutex held.
  std::uint64_t held_on(const std::string& device) const {
    std::uint64_t held = 0;
    for (const auto& [n, m] : models) {
      for (const auto& inst : m->instances) {
        if (inst.remote || !inst.worker || inst.worker->exit_code()) continue;  // gone: holds nothing
        for (const Device& d : inst.placement.devices) {
          if (d.name == device) held += d.used_bytes;
        }
      }
    }
    return held;
  }

  // The host's devices with what the live local workers hold on each GPU
  // taken from its free memory (as found at startup). Mutex held.
  std::vector<Device> devices_now() const {
    std::vector<Device> out = deps.host_devices;
    for (Device& d : out) {
      if (d.gpu()) d.memory_free -= std::min(d.memory_free, held_on(d.name));
    }
    return out;
  }

  // GPU memory free for another worker. Mutex held.
  std::uint64_t gpu_free() const { return gpu_free_bytes(devices_now()); }

  // The threads of a new worker of `m`: the configured count, else auto.
  int worker_threads(const ModelState& m) const {
    if (m.cat.entry.threads > 0) return m.cat.entry.threads;
    if (fully_offloaded(m.cat, gpu_free())) return 1;
    return auto_threads(cpu_cores, cpu_worker_slots());
  }

  void spawn(ModelState& m, Instance& inst, Clock::time_point now) {
    inst.placement = Placement{};  // the new worker reports its own once ready
    inst.port = pick_port(options.host);
    if (inst.port == 0) {
      inst.state = State::kFailed;
      inst.error = "no free port in models.port_range";
      m.last_error = inst.error;
      deps.log.error("cannot start worker", {{"model", m.cat.name}, {"reason", inst.error}});
      return;
    }
    WorkerSpec spec;
    spec.model = m.cat.name;
    spec.instance_id = inst.id;
    spec.file = m.cat.path;
    spec.entry = m.cat.entry;
    spec.host = options.host;
    spec.port = inst.port;
    spec.entry.threads = worker_threads(m);
    auto key = random_worker_key();
    if (!key) {
      inst.state = State::kFailed;
      inst.error = key.error().message;
      m.last_error = inst.error;
      deps.log.error("cannot start worker", {{"model", m.cat.name}, {"reason", inst.error}});
      return;
    }
    spec.api_key = std::move(*key);
    auto w = deps.factory->spawn(spec);
    if (!w) {
      inst.state = State::kFailed;
      inst.error = w.error().message;
      m.last_error = inst.error;
      deps.log.error("cannot start worker", {{"model", m.cat.name}, {"reason", inst.error}});
      return;
    }
    spawns.fetch_add(1);
    inst.worker = std::move(*w);
    inst.api_key = std::move(spec.api_key);
    inst.threads = spec.entry.threads;
    inst.url = "http://" + options.host + ":" + std::to_string(inst.port);
    inst.state = State::kStarting;
    inst.serial = ++serial;
    inst.spawned_at = now;
    inst.deadline = now + options.ready_timeout;
    inst.probe_failures = 0;
    deps.log.info("worker started", {{"model", m.cat.name},
                                     {"instance", inst.id},
                                     {"port", inst.port},
                                     {"pid", inst.worker->pid()},
                                     {"threads", inst.threads}});
  }

  void launch_probe(ModelState& m, Instance& inst, Clock::time_point now) {
    inst.probing = true;
    inst.next_health = now + health_interval;
    probe_jobs.push_back({m.cat.name, inst.id, inst.serial, inst.url, inst.api_key});
  }

  net::awaitable<bool> probe(const std::string& url, const std::string& key) {
    if (deps.prober) co_return co_await deps.prober(url, key);
    http::ClientRequest req;
    req.url = url + "/health";
    req.connect_timeout = std::chrono::milliseconds(1000);
    req.timeout = std::chrono::milliseconds(3000);
    if (!key.empty()) req.headers.set("Authorization", "Bearer " + key);
    auto r = co_await client->request(req);
    if (r && r->status == 404) {  // an OpenAI-compatible endpoint without /health
      req.url = url + "/v1/models";
      auto models_reply = co_await client->request(req);  // a new variable: see routes.cpp on g++ 12
      co_return models_reply && models_reply->status == 200;
    }
    co_return r && r->status == 200;
  }

  void on_probe(const std::string& model, const std::string& id, std::uint64_t probe_serial, bool ok) {
    std::lock_guard lock(mutex);
    auto it = models.find(model);
    if (it == models.end()) return;
    ModelState& m = *it->second;
    for (auto& inst : m.instances) {
      if (inst.id != id || inst.serial != probe_serial) continue;
      inst.probing = false;
      const auto now = Clock::now();
      if (inst.remote) {
        m.balancer.set_probe_result(id, ok);
        if (ok && !m.caps_asked) ask_props(m, inst);  // once: an upstream is probed every few seconds
      } else if (inst.state == State::kStarting && ok) {
        ask_props(m, inst);
        inst.state = State::kRunning;
        inst.restarts = 0;
        inst.error.clear();
        inst.next_health = now + health_interval;
        m.balancer.add(id, m.cat.entry.weight, m.cat.entry.parallel);
        m.balancer.set_probe_result(id, true);
        const double secs = std::chrono::duration<double>(now - inst.spawned_at).count();
        if (load_seconds) load_seconds->with({m.cat.name}).set(secs);
        deps.log.info("worker ready", {{"model", m.cat.name}, {"instance", id}, {"load_seconds", secs}});
      } else if (inst.state == State::kStarting) {
        inst.next_health = now;  // keep polling each tick until ready
      } else if (inst.state == State::kRunning) {
        m.balancer.set_probe_result(id, ok);
        inst.probe_failures = ok ? 0 : inst.probe_failures + 1;
        if (inst.probe_failures >= policy.fail_threshold && inst.worker) {
          deps.log.warn("worker failed health checks; killing it", {{"model", m.cat.name}, {"instance", id}});
          inst.worker->kill();  // the exit is handled as a crash -> restart
        }
      }
      return;
    }
  }

  // --- operations (any thread, `mutex` held) -------------------------------

  void stop_locked(ModelState& m, Clock::time_point now) {
    m.wanted = false;
    for (auto& inst : m.instances) {
      if (inst.remote) continue;
      m.balancer.remove(inst.id);
      if (inst.worker) {
        inst.worker->terminate();
        inst.state = State::kStopping;
        inst.deadline = now + options.stop_grace;
      } else {
        inst.state = State::kStopping;  // nothing running: erased on the next tick
      }
    }
  }

  Result<void> start_locked(ModelState& m, Clock::time_point now) {
    if (!m.cat.error.empty()) {
      return fail(
          Error(ErrorCode::kUnavailable, "model " + m.cat.name + " cannot be used: " + m.cat.error, "model_error")
              .with_retry_after(60));
    }
    if (!m.startable()) return {};  // remote-only: nothing to start
    const bool running_locally = m.wanted && std::any_of(m.instances.begin(), m.instances.end(), [](const Instance& i) {
                                   return !i.remote && i.state != State::kFailed;
                                 });
    if (running_locally) return {};

    const std::uint64_t need =
        estimate_model_memory(m.cat) * static_cast<std::uint64_t>(std::max(1, m.cat.entry.replicas));
    const auto available = deps.mem_available ? deps.mem_available() : read_mem_available();
    // What goes to a GPU needs no RAM: a model fits in the RAM and the GPU
    // memory its placement may use together.
    const std::uint64_t gpu = m.cat.entry.gpu_layers == 0 ? 0 : gpu_free();
    if (need > 0 && available && need > *available + gpu) {
      std::string where = std::to_string(*available >> 20) + " MiB of memory available";
      if (gpu > 0) where += " and " + std::to_string(gpu >> 20) + " MiB free on the GPUs";
      return fail(Error(ErrorCode::kUnavailable,
                        "not enough memory to load " + m.cat.name + ": needs about " + std::to_string(need >> 20) +
                            " MiB, " + where,
                        "insufficient_memory")
                      .with_retry_after(30));
    }

    if (options.models.max_loaded > 0) {
      int loaded = 0;
      int pinned = 0;
      ModelState* victim = nullptr;
      for (auto& [n, other] : models) {
        if (other.get() == &m || !other->wanted || !other->has_local()) continue;
        ++loaded;
        if (other->cat.entry.pin) {
          ++pinned;
          continue;  // never evicted
        }
        const bool idle = other->in_flight == 0 && other->queue.empty();
        if (idle && (!victim || other->last_used < victim->last_used)) victim = other.get();
      }
      if (loaded >= options.models.max_loaded) {
        if (pinned >= options.models.max_loaded) {
          return fail(Error(ErrorCode::kUnavailable,
                            "cannot load " + m.cat.name + ": the " + std::to_string(pinned) +
                                " pinned models fill max_loaded (models.max_loaded)",
                            "max_loaded_pinned")
                          .with_retry_after(60));
        }
        if (!victim) {
          return fail(Error(ErrorCode::kUnavailable,
                            "max_loaded models are running and all are busy; try again shortly", "max_loaded")
                          .with_retry_after(5));
        }
        deps.log.info("evicting least recently used model", {{"model", victim->cat.name}, {"for", m.cat.name}});
        stop_locked(*victim, now);
      }
    }

    // Replace failed/stale local instances by fresh ones.
    std::erase_if(m.instances, [](const Instance& i) { return !i.remote && !i.worker; });
    for (auto& i : m.instances) {
      if (!i.remote && i.state == State::kStopping) i.id += "~old" + std::to_string(i.serial);
    }
    for (int r = 0; r < std::max(1, m.cat.entry.replicas); ++r) {
      Instance inst;
      inst.id = m.cat.name + "#" + std::to_string(r);
      inst.weight = m.cat.entry.weight;
      inst.state = State::kPending;
      m.instances.push_back(std::move(inst));
    }
    m.wanted = true;
    m.last_used = now;
    m.last_error.clear();
    return {};
  }

  ModelStatus status_locked(const ModelState& m, Clock::time_point now) const { return status_of(m, now); }

  // Starts the models marked pin (first: they get the room) and preload.
  void preload() {
    {
      std::lock_guard lock(mutex);
      for (const bool pinned : {true, false}) {
        for (auto& [name, m] : models) {
          if (m->cat.entry.pin != pinned || !(m->cat.entry.pin || m->cat.entry.preload) || !m->startable()) continue;
          if (auto r = start_locked(*m, Clock::now()); !r) {
            deps.log.warn("could not preload a model", {{"model", name}, {"reason", r.error().message}});
          } else {
            deps.log.info("preloading model", {{"model", name}, {"pinned", pinned}});
          }
        }
      }
    }
    poke();
  }

  void release(const std::string& model, const std::string& id, bool ok, double seconds, std::int64_t tokens) {
    std::lock_guard lock(mutex);
    auto it = models.find(model);
    if (it == models.end()) return;
    ModelState& m = *it->second;
    const auto now = Clock::now();
    if (m.in_flight > 0) --m.in_flight;
    m.last_used = now;
    m.balancer.release(id, ok, now);
    if (requests) requests->with({model, id}).inc();
    if (!ok && errors) errors->with({model, id}).inc();
    if (latency) latency->with({model, id}).observe(seconds);
    if (tokens > 0 && seconds > 0 && tokens_per_s)
      tokens_per_s->with({model, id}).set(static_cast<double>(tokens) / seconds);
  }

  void collect() {
    std::lock_guard lock(mutex);
    const auto now = Clock::now();
    for (const auto& [name, m] : models) {
      if (queue_gauge) queue_gauge->with({name}).set(static_cast<double>(m->queue.size()));
      for (const auto& v : m->balancer.snapshot(now)) {
        if (in_flight_gauge) in_flight_gauge->with({name, v.id}).set(v.in_flight);
        if (healthy_gauge) healthy_gauge->with({name, v.id}).set(v.health == Health::kHealthy ? 1 : 0);
      }
    }
  }
};

// --- Lease ---------------------------------------------------------------

Lease::Lease(Lease&& o) noexcept { *this = std::move(o); }
Lease& Lease::operator=(Lease&& o) noexcept {
  if (this != &o) {
    finish(true);
    core_ = std::move(o.core_);
    model_ = std::move(o.model_);
    instance_ = std::move(o.instance_);
    url_ = std::move(o.url_);
    api_key_ = std::move(o.api_key_);
    remote_ = o.remote_;
    done_ = o.done_;
    started_ = o.started_;
    queue_position_ = o.queue_position_;
    queue_wait_ = o.queue_wait_;
    o.done_ = true;
  }
  return *this;
}
Lease::~Lease() { finish(true); }

void Lease::finish(bool ok, std::int64_t completion_tokens) {
  if (done_) return;
  done_ = true;
  if (auto core = core_.lock()) {
    const double secs = std::chrono::duration<double>(Clock::now() - started_).count();
    core->release(model_, instance_, ok, secs, completion_tokens);
  }
}

// --- Manager -------------------------------------------------------------

Result<std::unique_ptr<Manager>> Manager::create(ManagerOptions options, ManagerDeps deps,
                                                 std::vector<CatalogModel> catalog) {
  auto strategy = parse_strategy(options.balancer.strategy);
  if (!strategy) {
    return fail(ErrorCode::kInvalidArgument,
                "balancer.strategy: unknown strategy \"" + options.balancer.strategy + "\"", "bad_config");
  }
  if (!deps.factory) return fail(ErrorCode::kInvalidArgument, "manager needs a worker factory", "bad_config");
  std::unique_ptr<Manager> mgr(new Manager());
  auto core = std::make_shared<Lease::Core>();
  core->strategy = *strategy;
  core->policy.fail_threshold = options.balancer.fail_threshold;
  core->policy.cooldown = std::chrono::seconds(options.balancer.cooldown);
  core->health_interval = options.health_interval.count() > 0
                              ? options.health_interval
                              : std::chrono::milliseconds(options.balancer.health_interval * 1000);
  core->cpu_cores = options.models.cpu_cores > 0 ? options.models.cpu_cores : physical_cpu_cores();
  core->options = std::move(options);
  core->deps = std::move(deps);
  core->client = std::make_unique<http::HttpClient>(core->io.get_executor());

  for (auto& c : catalog) {
    const std::string name = c.name;
    for (const auto& alias : c.entry.aliases) core->aliases.emplace(alias, name);
    core->models.emplace(name, std::make_unique<ModelState>(std::move(c), core->strategy, core->policy));
  }
  for (const auto& u : core->options.upstreams) {
    auto it = core->models.find(u.model);
    if (it == core->models.end()) {
      CatalogModel c;
      c.name = u.model;
      c.entry.name = u.model;
      c.description = "remote model";
      it =
          core->models.emplace(u.model, std::make_unique<ModelState>(std::move(c), core->strategy, core->policy)).first;
    }
    Instance inst;
    inst.id = "upstream:" + u.name;
    inst.remote = true;
    inst.url = u.url;
    while (!inst.url.empty() && inst.url.back() == '/') inst.url.pop_back();
    inst.api_key = u.api_key;
    inst.weight = u.weight;
    inst.state = State::kRunning;
    inst.serial = ++core->serial;
    it->second->balancer.add(inst.id, u.weight, u.parallel);
    it->second->instances.push_back(std::move(inst));
  }

  if (auto* reg = core->deps.metrics) {
    const std::vector<std::string> labels{"model", "instance"};
    core->requests = &reg->counter("llmd_instance_requests_total", "Requests sent to a model instance", labels);
    core->errors =
        &reg->counter("llmd_instance_errors_total", "Failed requests (connection errors, 5xx) per instance", labels);
    core->latency = &reg->histogram("llmd_instance_request_duration_seconds", "Request latency per instance", labels);
    core->tokens_per_s =
        &reg->gauge("llmd_instance_tokens_per_second", "Completion tokens/s of the last request", labels);
    core->in_flight_gauge = &reg->gauge("llmd_instance_in_flight", "Requests in flight per instance", labels);
    core->healthy_gauge = &reg->gauge("llmd_instance_healthy", "1 when the instance gets traffic", labels);
    core->load_seconds =
        &reg->gauge("llmd_model_load_seconds", "Time from spawn to ready of the last start", {"model"});
    core->queue_gauge = &reg->gauge("llmd_model_queue_length", "Requests waiting for a slot of the model", {"model"});
    core->queue_wait = &reg->histogram("llmd_model_queue_wait_seconds",
                                       "How long requests that had to wait waited for a slot", {"model"});
    reg->add_collector([weak = std::weak_ptr<Lease::Core>(core)] {
      if (auto c = weak.lock()) c->collect();
    });
  }

  core->work.emplace(core->io.get_executor());
  net::co_spawn(
      core->io, [c = core.get()] { return c->supervise(); }, net::detached);
  core->thread = std::thread([c = core.get()] { c->io.run(); });
  core->preload();
  mgr->core_ = std::move(core);
  return mgr;
}

Manager::~Manager() { shutdown(); }

void Manager::shutdown() {
  auto& c = *core_;
  {
    std::lock_guard lock(c.mutex);
    if (c.shutting_down) return;
    c.shutting_down = true;
    for (auto& [n, m] : c.models) {
      for (auto& i : m->instances) {
        if (i.worker) i.worker->terminate();
      }
    }
  }
  const auto deadline = Clock::now() + c.options.stop_grace;
  for (;;) {
    bool alive = false;
    {
      std::lock_guard lock(c.mutex);
      for (auto& [n, m] : c.models) {
        for (auto& i : m->instances) alive = alive || (i.worker && !i.worker->exit_code());
      }
    }
    if (!alive || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  {
    std::lock_guard lock(c.mutex);
    for (auto& [n, m] : c.models) {
      for (auto& i : m->instances) i.worker.reset();  // SIGKILL + reap whatever is left
    }
  }
  c.work.reset();
  c.io.stop();
  if (c.thread.joinable()) c.thread.join();
  // Handlers queued before the stop (e.g. a probe coroutine not started
  // yet) hold the core; run them once so they finish and let it go.
  c.io.restart();
  c.io.poll();
}

std::vector<ModelStatus> Manager::list() const {
  std::lock_guard lock(core_->mutex);
  std::vector<ModelStatus> out;
  const auto now = Clock::now();
  for (const auto& [n, m] : core_->models) out.push_back(core_->status_locked(*m, now));
  return out;
}

std::vector<Device> Manager::host_devices() const {
  std::lock_guard lock(core_->mutex);
  return core_->devices_now();
}

Result<ModelStatus> Manager::get(const std::string& name) const {
  std::lock_guard lock(core_->mutex);
  const ModelState* m = core_->find_locked(name);
  if (!m) return fail(ErrorCode::kNotFound, "no model named " + name, "model_not_found");
  return core_->status_locked(*m, Clock::now());
}

std::string Manager::resolve(const std::string& name) const {
  std::lock_guard lock(core_->mutex);
  const ModelState* m = core_->find_locked(name);
  return m ? m->cat.name : name;
}

Result<ModelStatus> Manager::start(const std::string& name) {
  Result<ModelStatus> out;
  {
    std::lock_guard lock(core_->mutex);
    ModelState* m = core_->find_locked(name);
    if (!m) return fail(ErrorCode::kNotFound, "no model named " + name, "model_not_found");
    if (core_->shutting_down)
      return fail(Error(ErrorCode::kUnavailable, "shutting down", "shutting_down").with_retry_after(5));
    const auto now = Clock::now();
    LLMD_TRY(core_->start_locked(*m, now));
    out = core_->status_locked(*m, now);
  }
  core_->poke();
  return out;
}

Result<ModelStatus> Manager::stop(const std::string& name) {
  std::lock_guard lock(core_->mutex);
  ModelState* m = core_->find_locked(name);
  if (!m) return fail(ErrorCode::kNotFound, "no model named " + name, "model_not_found");
  const auto now = Clock::now();
  core_->stop_locked(*m, now);
  return core_->status_locked(*m, now);
}

Result<void> Manager::remove(const std::string& name) {
  std::lock_guard lock(core_->mutex);
  ModelState* m = core_->find_locked(name);
  if (!m) return fail(ErrorCode::kNotFound, "no model named " + name, "model_not_found");
  if (m->cat.configured || m->cat.path.empty()) {
    return fail(ErrorCode::kConflict, m->cat.name + " is configured in models.list or upstreams; change the config",
                "model_configured");
  }
  if (m->wanted || !m->instances.empty() || m->in_flight > 0 || !m->queue.empty()) {
    return fail(ErrorCode::kConflict, m->cat.name + " is loaded or in use; stop it first", "model_in_use");
  }
  const std::vector<std::filesystem::path> files = model_files(m->cat.path);  // every part of a split model
  for (const auto& f : files) {
    std::error_code ec;
    std::filesystem::remove(f, ec);
    if (ec) return fail(ErrorCode::kUnavailable, "cannot delete " + f.string() + ": " + ec.message());
  }
  core_->deps.log.info("model deleted", {{"model", m->cat.name}, {"file", m->cat.path.string()}});
  core_->models.erase(m->cat.name);
  return {};
}

Result<void> Manager::set_keep_alive(const std::string& name, std::optional<std::chrono::seconds> keep) {
  std::lock_guard lock(core_->mutex);
  ModelState* m = core_->find_locked(name);
  if (!m) return fail(ErrorCode::kNotFound, "no model named " + name, "model_not_found");
  m->keep_alive = keep;
  return {};
}

namespace detail {

// A request's place in a model's queue, left when the request stops waiting
// however it does (served, timed out, refused).
class QueueTicket {
 public:
  explicit QueueTicket(std::shared_ptr<Lease::Core> core) : core_(std::move(core)) {}
  QueueTicket(const QueueTicket&) = delete;
  QueueTicket& operator=(const QueueTicket&) = delete;
  ~QueueTicket();

  // Joins `m`'s queue unless already in it (`mutex` held).
  void join(ModelState& m, const std::string& caller, Clock::time_point now);
  // Whether this request goes next: it waits and is first, or nobody waits.
  bool turn(const ModelState& m) const { return ticket_ ? m.queue.next() == ticket_ : m.queue.empty(); }
  // The slot was granted (`mutex` held): out of the queue, its wait recorded.
  void served(ModelState& m, Lease& lease, Clock::time_point now);

 private:
  std::shared_ptr<Lease::Core> core_;
  std::string model_;
  std::optional<FairQueue::Ticket> ticket_;
  std::size_t position_ = 0;
  Clock::time_point joined_{};
};

}  // namespace detail

using detail::QueueTicket;

net::awaitable<Result<Lease>> Manager::acquire(std::string name, std::chrono::milliseconds timeout,
                                               std::vector<std::string> exclude, LeaseKind kind, std::string caller) {
  auto core = core_;
  const auto deadline = Clock::now() + timeout;
  net::steady_timer timer(co_await net::this_coro::executor);
  const bool side_call = kind == LeaseKind::kSideCall;
  QueueTicket place(core);  // declared before the lock below: leaves the queue after it is released
  for (;;) {
    bool poke = false;
    bool queued = false;  // waiting for a slot or for max_loaded room, not for a start
    // A side call waits without a place in line: it takes no slot.
    auto wait_in_line = [&](ModelState& m, Clock::time_point now) {
      if (!side_call) place.join(m, caller, now);
    };
    {
      std::lock_guard lock(core->mutex);
      ModelState* found = core->find_locked(name);
      if (!found) co_return fail(ErrorCode::kNotFound, "no model named " + name, "model_not_found");
      if (core->shutting_down)
        co_return fail(Error(ErrorCode::kUnavailable, "shutting down", "shutting_down").with_retry_after(5));
      ModelState& m = *found;
      name = m.cat.name;  // an alias: the lease, the queue and the metrics go by the model's name
      const auto now = Clock::now();
      m.last_used = now;
      // A side call (counting a prompt) takes no slot and never waits in line.
      std::optional<std::string> id;
      if (side_call) {
        id = m.balancer.peek(now, exclude);
      } else if (place.turn(m)) {
        id = m.balancer.acquire(now, exclude);
      }
      if (id) {
        Lease lease;
        lease.core_ = core;
        lease.model_ = name;
        lease.instance_ = *id;
        for (const auto& i : m.instances) {
          if (i.id != *id) continue;
          lease.url_ = i.url;
          lease.api_key_ = i.api_key;
          lease.remote_ = i.remote;
        }
        lease.done_ = side_call;  // finish() reports nothing for a side call
        lease.started_ = now;
        if (!side_call) {
          ++m.in_flight;
          place.served(m, lease, now);
        }
        co_return lease;
      }
      if (m.balancer.has_eligible(now, exclude)) {
        // Running, every slot taken (or others are ahead): wait in line.
        wait_in_line(m, now);
        queued = true;
      } else if (!exclude.empty()) {
        co_return fail(Error(ErrorCode::kUnavailable, "no other healthy instance of " + name, "no_healthy_instance")
                           .with_retry_after(5));
      } else if (!m.wanted && m.startable()) {
        if (auto r = core->start_locked(m, now); r) {
          poke = true;
        } else if (r.error().reason == "max_loaded") {
          // Every loaded model is busy: wait for one to become idle (and be evicted).
          wait_in_line(m, now);
          queued = true;
        } else {
          co_return std::unexpected(r.error());
        }
      } else if (!m.cat.error.empty()) {
        co_return fail(
            Error(ErrorCode::kUnavailable, "model " + name + " cannot be used: " + m.cat.error, "model_error")
                .with_retry_after(60));
      } else {
        const bool pending = std::any_of(m.instances.begin(), m.instances.end(), [](const Instance& i) {
          return !i.remote && (i.state == State::kPending || i.state == State::kStarting || i.state == State::kBackoff);
        });
        if (!pending) {
          const std::string why = m.last_error.empty() ? "no healthy instance of " + name : m.last_error;
          co_return fail(Error(ErrorCode::kUnavailable, why, m.startable() ? "model_error" : "no_healthy_instance")
                             .with_retry_after(core->policy.cooldown.count() > 0 ? 5 : 1));
        }
        wait_in_line(m, now);  // starting: requests go in turn once it runs
      }
    }
    if (poke) core->poke();
    const auto now = Clock::now();
    if (now >= deadline) {
      if (queued) {
        co_return fail(Error(ErrorCode::kUnavailable,
                             "model " + name + " is busy: no slot became free within " +
                                 std::to_string(timeout.count() / 1000) + " s",
                             "queue_timeout")
                           .with_retry_after(10));
      }
      co_return fail(
          Error(ErrorCode::kUnavailable, "model " + name + " is still starting", "model_starting").with_retry_after(5));
    }
    // Polled: a lease ends on any thread, and an Asio timer cannot be woken
    // safely from another. 10 ms is noise next to a model reply.
    timer.expires_after(std::min<Clock::duration>(std::chrono::milliseconds(queued ? 10 : 50), deadline - now));
    co_await timer.async_wait(net::as_tuple(net::use_awaitable));
  }
}

namespace detail {

QueueTicket::~QueueTicket() {
  if (!ticket_) return;
  std::lock_guard lock(core_->mutex);
  if (auto it = core_->models.find(model_); it != core_->models.end()) it->second->queue.leave(*ticket_);
}

void QueueTicket::join(ModelState& m, const std::string& caller, Clock::time_point now) {
  if (ticket_) return;
  model_ = m.cat.name;
  ticket_ = m.queue.join(caller);
  position_ = m.queue.position(*ticket_);
  joined_ = now;
}

void QueueTicket::served(ModelState& m, Lease& lease, Clock::time_point now) {
  if (!ticket_) return;
  m.queue.served(*ticket_);
  ticket_.reset();
  lease.queue_position_ = position_;
  lease.queue_wait_ = std::chrono::duration_cast<std::chrono::milliseconds>(now - joined_);
  if (core_->queue_wait) {
    core_->queue_wait->with({m.cat.name}).observe(std::chrono::duration<double>(now - joined_).count());
  }
}

}  // namespace detail

const std::string& Manager::default_model() const { return core_->options.models.default_model; }
std::uint64_t Manager::spawn_count() const { return core_->spawns.load(); }

void Manager::rescan() { core_->rescan(); }

}  // namespace llmd::models
