// Manager with an injected fake worker factory and prober: no processes.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "models/manager.h"
#include "models/resources.h"

namespace llmd::models {
namespace {

using namespace std::chrono_literals;
namespace net = boost::asio;

// Shared state of one fake worker, visible to the test and the prober.
struct FakeState {
  std::atomic<bool> ready{false};
  std::atomic<int> exit_code{-1};  // -1 = running
};

class FakeWorker final : public Worker {
 public:
  explicit FakeWorker(std::shared_ptr<FakeState> s) : s_(std::move(s)) {}
  ~FakeWorker() override { kill(); }
  std::optional<int> exit_code() const override {
    const int c = s_->exit_code.load();
    return c < 0 ? std::nullopt : std::optional<int>(c);
  }
  void terminate() override { s_->exit_code = 143; }
  void kill() override {
    int running = -1;
    s_->exit_code.compare_exchange_strong(running, 137);
  }
  int pid() const override { return 1; }
  std::vector<std::string> last_lines() const override { return {"fake line 1", "fake: loading failed"}; }

 private:
  std::shared_ptr<FakeState> s_;
};

// Spawns fake workers; `behaviour` decides what each new one does.
class FakeFactory final : public WorkerFactory {
 public:
  enum class Behaviour { kReady, kNeverReady, kCrash };
  Result<std::unique_ptr<Worker>> spawn(const WorkerSpec& spec) override {
    std::lock_guard lock(mutex);
    auto s = std::make_shared<FakeState>();
    if (behaviour == Behaviour::kReady) s->ready = true;
    if (behaviour == Behaviour::kCrash) s->exit_code = 1;
    by_port[spec.port] = s;
    specs.push_back(spec);
    return std::unique_ptr<Worker>(new FakeWorker(s));
  }
  std::shared_ptr<FakeState> at(int port) {
    std::lock_guard lock(mutex);
    return by_port.count(port) ? by_port[port] : nullptr;
  }
  std::mutex mutex;
  Behaviour behaviour = Behaviour::kReady;
  std::map<int, std::shared_ptr<FakeState>> by_port;
  std::vector<WorkerSpec> specs;
};

CatalogModel model(const std::string& name, std::uint64_t size = 1000) {
  CatalogModel m;
  m.name = name;
  m.path = "/models/" + name + ".gguf";
  m.entry.name = name;
  m.size = size;
  return m;
}

class ManagerTest : public ::testing::Test {
 protected:
  std::unique_ptr<Manager> make(std::vector<CatalogModel> catalog, ManagerOptions o = {}) {
    o.models.port_min = 20000;
    o.models.port_max = 20100;
    o.tick = 10ms;
    o.restart_backoff = 20ms;
    o.stop_grace = 200ms;
    if (o.ready_timeout == 120000ms) o.ready_timeout = 2s;
    o.balancer.strategy = o.balancer.strategy.empty() ? "round_robin" : o.balancer.strategy;
    ManagerDeps d;
    d.factory = factory;
    d.mem_available = [this] { return mem.load() == 0 ? std::nullopt : std::optional<std::uint64_t>(mem.load()); };
    d.host_devices = host_devices;
    d.prober = [this](const std::string& url, const std::string&) -> net::awaitable<bool> {
      if (auto it = upstream_up.find(url); it != upstream_up.end()) co_return it->second->load();
      const int port = std::stoi(url.substr(url.rfind(':') + 1));
      auto s = factory->at(port);
      co_return s && s->ready && s->exit_code < 0;
    };
    auto m = Manager::create(std::move(o), std::move(d), std::move(catalog));
    EXPECT_TRUE(m) << m.error().message;
    return std::move(*m);
  }

  Result<Lease> acquire(Manager& m, const std::string& name, std::chrono::milliseconds timeout = 3s,
                        std::vector<std::string> exclude = {}) {
    auto f = net::co_spawn(io_, wrap(m, name, timeout, exclude), net::use_future);
    io_.restart();
    io_.run();
    return std::move(*f.get());
  }

  // co_spawn's future needs a default-constructible result.
  static net::awaitable<std::optional<Result<Lease>>> wrap(Manager& m, std::string name,
                                                           std::chrono::milliseconds timeout,
                                                           std::vector<std::string> exclude = {}) {
    co_return co_await m.acquire(std::move(name), timeout, std::move(exclude));
  }

  static bool wait_status(Manager& m, const std::string& name, const std::string& status,
                          std::chrono::milliseconds timeout = 3s) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (m.get(name)->status == status) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }

  std::shared_ptr<FakeFactory> factory = std::make_shared<FakeFactory>();
  std::atomic<std::uint64_t> mem{0};
  std::vector<Device> host_devices;  // ManagerDeps::host_devices of the next make()
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> upstream_up;
  net::io_context io_;
};

TEST_F(ManagerTest, StartRunsTheModelAndStopEndsIt) {
  auto m = make({model("a")});
  EXPECT_EQ(m->get("a")->status, "available");
  auto s = m->start("a");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->status, "starting");
  ASSERT_TRUE(wait_status(*m, "a", "running"));
  EXPECT_EQ(m->get("a")->instances.size(), 1u);
  EXPECT_EQ(m->get("a")->instances[0].port, 20000);
  ASSERT_TRUE(m->start("a"));  // no-op
  EXPECT_EQ(m->spawn_count(), 1u);
  ASSERT_TRUE(m->stop("a"));
  ASSERT_TRUE(wait_status(*m, "a", "available"));
  EXPECT_TRUE(m->get("a")->instances.empty());
}

TEST_F(ManagerTest, UnknownModelIsNotFound) {
  auto m = make({model("a")});
  EXPECT_EQ(m->get("zz").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(m->start("zz").error().reason, "model_not_found");
  EXPECT_EQ(acquire(*m, "zz").error().code, ErrorCode::kNotFound);
}

TEST_F(ManagerTest, FiftyConcurrentRequestsCauseExactlyOneSpawn) {
  CatalogModel a = model("a");
  a.entry.parallel = 50;  // every lease is held until all are granted
  auto m = make({a});
  std::vector<std::future<std::optional<Result<Lease>>>> futures;
  for (int i = 0; i < 50; ++i) futures.push_back(net::co_spawn(io_, wrap(*m, "a", 3s), net::use_future));
  std::thread t1([&] { io_.run(); });
  io_.run();
  t1.join();
  for (auto& f : futures) {
    auto r = std::move(*f.get());
    EXPECT_TRUE(r) << r.error().message;
  }
  EXPECT_EQ(m->spawn_count(), 1u);
}

TEST_F(ManagerTest, CrashingWorkerIsRestartedThenMarkedError) {
  ManagerOptions o;
  o.max_restarts = 2;
  factory->behaviour = FakeFactory::Behaviour::kCrash;
  auto m = make({model("a")}, o);
  ASSERT_TRUE(m->start("a"));
  ASSERT_TRUE(wait_status(*m, "a", "error"));
  EXPECT_EQ(m->spawn_count(), 3u);  // first start + 2 restarts
  const auto s = m->get("a");
  EXPECT_NE(s->error.find("exited with code 1"), std::string::npos) << s->error;
  // The worker's own output may name other users' requests: log only.
  EXPECT_NE(s->error.find("see the server log"), std::string::npos) << s->error;
  EXPECT_EQ(s->error.find("loading failed"), std::string::npos) << s->error;
  auto r = acquire(*m, "a");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
}

TEST_F(ManagerTest, CrashAfterReadyRestartsAndServesAgain) {
  auto m = make({model("a")});
  ASSERT_TRUE(m->start("a"));
  ASSERT_TRUE(wait_status(*m, "a", "running"));
  factory->at(m->get("a")->instances[0].port)->exit_code = 137;
  ASSERT_TRUE(wait_status(*m, "a", "starting", 1s));
  ASSERT_TRUE(wait_status(*m, "a", "running"));
  EXPECT_EQ(m->spawn_count(), 2u);
  EXPECT_TRUE(acquire(*m, "a"));
}

TEST_F(ManagerTest, NotReadyInTimeIsAnErrorThatPointsAtTheLog) {
  ManagerOptions o;
  o.ready_timeout = 150ms;
  factory->behaviour = FakeFactory::Behaviour::kNeverReady;
  auto m = make({model("a")}, o);
  ASSERT_TRUE(m->start("a"));
  ASSERT_TRUE(wait_status(*m, "a", "error"));
  const auto s = m->get("a");
  EXPECT_NE(s->error.find("did not become ready"), std::string::npos) << s->error;
  EXPECT_NE(s->error.find("see the server log"), std::string::npos) << s->error;
  EXPECT_EQ(s->error.find("loading failed"), std::string::npos) << s->error;
}

TEST_F(ManagerTest, AcquireTimesOutWith503AndRetryAfter) {
  factory->behaviour = FakeFactory::Behaviour::kNeverReady;
  auto m = make({model("a")});
  auto r = acquire(*m, "a", 100ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(r.error().reason, "model_starting");
  EXPECT_TRUE(r.error().retry_after_s);
}

TEST_F(ManagerTest, IdleModelIsUnloaded) {
  ManagerOptions o;
  o.models.idle_unload_seconds = 1;
  auto m = make({model("a")}, o);
  { ASSERT_TRUE(acquire(*m, "a")); }
  EXPECT_EQ(m->get("a")->status, "running");
  ASSERT_TRUE(wait_status(*m, "a", "available", 3s));
}

TEST_F(ManagerTest, MaxLoadedEvictsLeastRecentlyUsed) {
  ManagerOptions o;
  o.models.max_loaded = 2;
  auto m = make({model("a"), model("b"), model("c")}, o);
  { ASSERT_TRUE(acquire(*m, "a")); }
  std::this_thread::sleep_for(5ms);
  { ASSERT_TRUE(acquire(*m, "b")); }
  std::this_thread::sleep_for(5ms);
  { ASSERT_TRUE(acquire(*m, "a")); }  // b is now the least recently used
  { ASSERT_TRUE(acquire(*m, "c")); }
  EXPECT_EQ(m->get("a")->status, "running");
  EXPECT_EQ(m->get("c")->status, "running");
  ASSERT_TRUE(wait_status(*m, "b", "available"));
}

// Acquisitions run on their own threads; each records when it got its lease
// (or its error) and holds the lease until the test lets it go.
class Acquisitions {
 public:
  explicit Acquisitions(Manager& m) : m_(m), work_(io_.get_executor()), thread_([this] { io_.run(); }) {}
  ~Acquisitions() {
    release_all();
    work_.reset();
    thread_.join();
  }

  void start(const std::string& label, const std::string& model, const std::string& caller,
             std::chrono::milliseconds timeout = 5s) {
    net::co_spawn(io_, run(label, model, caller, timeout), net::detached);
  }
  // Labels in the order they got a lease; errors as "label!reason".
  std::vector<std::string> order() {
    std::lock_guard lock(mutex_);
    return order_;
  }
  std::size_t position(const std::string& label) {
    std::lock_guard lock(mutex_);
    return positions_.at(label);
  }
  bool wait_count(std::size_t n, std::chrono::milliseconds timeout = 3s) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (order().size() >= n) return true;
      std::this_thread::sleep_for(2ms);
    }
    return false;
  }
  // Ends the lease of `label`.
  void release(const std::string& label) {
    std::lock_guard lock(mutex_);
    leases_.erase(label);
  }
  void release_all() {
    std::lock_guard lock(mutex_);
    leases_.clear();
  }

 private:
  net::awaitable<void> run(std::string label, std::string model, std::string caller,
                           std::chrono::milliseconds timeout) {
    std::vector<std::string> exclude;
    auto lease = co_await m_.acquire(model, timeout, exclude, LeaseKind::kRequest, caller);
    std::lock_guard lock(mutex_);
    if (!lease) {
      order_.push_back(label + "!" + lease.error().reason);
      co_return;
    }
    order_.push_back(label);
    positions_[label] = lease->queue_position();
    leases_.emplace(label, std::move(*lease));
  }

  Manager& m_;
  net::io_context io_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::mutex mutex_;
  std::vector<std::string> order_;
  std::map<std::string, std::size_t> positions_;
  std::map<std::string, Lease> leases_;
  std::thread thread_;
};

TEST_F(ManagerTest, AFullInstanceMakesRequestsWaitAndUsersTakeTurns) {
  CatalogModel a = model("a");
  a.entry.parallel = 1;
  auto m = make({a});
  Acquisitions runs(*m);
  runs.start("a1", "a", "user:1");
  ASSERT_TRUE(runs.wait_count(1));
  // Two more of user 1, then one of user 2, while a1 holds the only slot.
  for (const char* label : {"a2", "a3"}) {
    runs.start(label, "a", "user:1");
    std::this_thread::sleep_for(50ms);
  }
  runs.start("b1", "a", "user:2");
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(runs.order(), (std::vector<std::string>{"a1"})) << "a request went past a full slot";
  std::size_t granted = 1;
  for (const char* label : {"a1", "a2", "b1"}) {
    runs.release(label);
    ASSERT_TRUE(runs.wait_count(++granted)) << "nobody got the slot " << label << " freed";
  }
  EXPECT_EQ(runs.order(), (std::vector<std::string>{"a1", "a2", "b1", "a3"}));
  EXPECT_EQ(runs.position("a1"), 0u) << "a1 did not wait";
  EXPECT_EQ(runs.position("a2"), 1u);
  EXPECT_EQ(runs.position("a3"), 2u);
  EXPECT_EQ(runs.position("b1"), 2u) << "user 2 goes before user 1's third request";
}

TEST_F(ManagerTest, AWaitingRequestGivesUpAtItsTimeout) {
  CatalogModel a = model("a");
  a.entry.parallel = 1;
  auto m = make({a});
  Acquisitions runs(*m);
  runs.start("first", "a", "user:1");
  ASSERT_TRUE(runs.wait_count(1));
  runs.start("second", "a", "user:2", 200ms);
  ASSERT_TRUE(runs.wait_count(2));
  EXPECT_EQ(runs.order()[1], "second!queue_timeout");
  runs.release("first");
  EXPECT_TRUE(acquire(*m, "a")) << "the one who gave up left the queue";
}

TEST_F(ManagerTest, MaxLoadedWithEveryModelBusyWaitsForOneToBeIdle) {
  ManagerOptions o;
  o.models.max_loaded = 1;
  auto m = make({model("a"), model("b")}, o);
  Acquisitions runs(*m);
  runs.start("a", "a", "user:1");
  ASSERT_TRUE(runs.wait_count(1));
  runs.start("b", "b", "user:2");
  std::this_thread::sleep_for(150ms);
  EXPECT_EQ(runs.order().size(), 1u) << "b was loaded beside a busy a";
  EXPECT_EQ(m->get("b")->status, "available");
  runs.release("a");  // a is idle now: evicted for b
  ASSERT_TRUE(runs.wait_count(2));
  EXPECT_EQ(runs.order()[1], "b");
  EXPECT_EQ(m->get("b")->status, "running");
  EXPECT_TRUE(wait_status(*m, "a", "available"));
}

TEST_F(ManagerTest, MaxLoadedBusyUntilTheTimeoutIs503) {
  ManagerOptions o;
  o.models.max_loaded = 1;
  auto m = make({model("a"), model("b")}, o);
  auto busy = acquire(*m, "a");
  ASSERT_TRUE(busy);
  auto r = acquire(*m, "b", 200ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(r.error().reason, "queue_timeout");
  EXPECT_EQ(m->get("a")->status, "running");
}

TEST_F(ManagerTest, AnAliasReachesItsModelEverywhere) {
  CatalogModel a = model("qwen");
  a.entry.aliases = {"gpt-4o-mini"};
  auto m = make({a, model("other")});
  EXPECT_EQ(m->resolve("gpt-4o-mini"), "qwen");
  EXPECT_EQ(m->resolve("other"), "other");
  EXPECT_EQ(m->resolve("nothing"), "nothing");
  EXPECT_EQ(m->get("gpt-4o-mini")->name, "qwen");
  EXPECT_EQ(m->get("qwen")->aliases, (std::vector<std::string>{"gpt-4o-mini"}));
  auto lease = acquire(*m, "gpt-4o-mini");
  ASSERT_TRUE(lease) << lease.error().message;
  EXPECT_EQ(lease->model(), "qwen");
  EXPECT_EQ(m->get("qwen")->status, "running");
  EXPECT_EQ(m->spawn_count(), 1u);
  ASSERT_TRUE(m->stop("gpt-4o-mini"));
  EXPECT_TRUE(wait_status(*m, "qwen", "available"));
}

TEST_F(ManagerTest, PreloadAndPinnedModelsStartWithTheManager) {
  CatalogModel pre = model("pre");
  pre.entry.preload = true;
  CatalogModel pinned = model("pinned");
  pinned.entry.pin = true;
  auto m = make({pre, pinned, model("lazy")});
  EXPECT_TRUE(wait_status(*m, "pre", "running"));
  EXPECT_TRUE(wait_status(*m, "pinned", "running"));
  EXPECT_EQ(m->get("lazy")->status, "available");
  EXPECT_TRUE(m->get("pinned")->pinned);
  EXPECT_TRUE(m->get("pinned")->preload);
}

TEST_F(ManagerTest, APinnedModelIsNeverUnloadedForIdlenessNorEvicted) {
  ManagerOptions o;
  o.models.idle_unload_seconds = 1;
  o.models.max_loaded = 2;
  CatalogModel pinned = model("pinned");
  pinned.entry.pin = true;
  auto m = make({pinned, model("b"), model("c")}, o);
  ASSERT_TRUE(wait_status(*m, "pinned", "running"));
  { ASSERT_TRUE(acquire(*m, "b")); }
  { ASSERT_TRUE(acquire(*m, "c")); }  // max_loaded: b (not the older, idle, pinned model) makes room
  EXPECT_EQ(m->get("pinned")->status, "running");
  EXPECT_TRUE(wait_status(*m, "b", "available"));
  EXPECT_TRUE(wait_status(*m, "c", "available", 4s)) << "c, unpinned, is unloaded when idle";
  EXPECT_EQ(m->get("pinned")->status, "running");
}

TEST_F(ManagerTest, PinnedModelsFillingMaxLoadedRefuseAnotherAtOnce) {
  ManagerOptions o;
  o.models.max_loaded = 1;
  CatalogModel pinned = model("pinned");
  pinned.entry.pin = true;
  auto m = make({pinned, model("b")}, o);
  ASSERT_TRUE(wait_status(*m, "pinned", "running"));
  const auto started = std::chrono::steady_clock::now();
  auto r = acquire(*m, "b", 3s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, "max_loaded_pinned");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s) << "waited for room that never comes";
}

// A GPU's free memory makes room beside the RAM for models that may use it
// (gpu_layers auto, all or a count), not for those held to the CPU.
TEST_F(ManagerTest, MemoryCheckCountsTheGpusFreeMemoryForModelsThatUseThem) {
  mem = 500;
  host_devices = {{"Vulkan0", "a GPU", "gpu", 8000, 4000, 0}, {"CPU", "host", "cpu", 16000, 500, 0}};
  auto cpu_only = model("cpu", 4000);
  cpu_only.entry.gpu_layers = 0;
  auto m = make({model("auto", 4000), cpu_only});
  EXPECT_TRUE(m->start("auto")) << "4000 bytes fit in 500 of RAM and 4000 free on the GPU";
  auto r = m->start("cpu");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, "insufficient_memory");
  const auto devices = m->host_devices();
  ASSERT_EQ(devices.size(), 2u);
  EXPECT_EQ(devices[0].name, "Vulkan0");
  EXPECT_EQ(devices[0].memory_free, 4000u) << "no worker has reported a placement (the test prober reads no /props)";
}

TEST_F(ManagerTest, MemoryCheckRefusesModelThatCannotFit) {
  mem = 500;
  auto m = make({model("a", 4000)});
  auto r = m->start("a");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(r.error().reason, "insufficient_memory");
  EXPECT_EQ(m->spawn_count(), 0u);
}

TEST_F(ManagerTest, ReplicasStartOnDistinctPortsAndShareLoad) {
  auto c = model("a");
  c.entry.replicas = 2;
  auto m = make({c});
  ASSERT_TRUE(m->start("a"));
  ASSERT_TRUE(wait_status(*m, "a", "running"));
  const auto end = std::chrono::steady_clock::now() + 2s;
  while (std::chrono::steady_clock::now() < end && m->get("a")->instances[1].status != "running") {
    std::this_thread::sleep_for(5ms);
  }
  std::map<std::string, int> seen;
  for (int i = 0; i < 10; ++i) ++seen[acquire(*m, "a")->instance_id()];
  EXPECT_EQ(seen["a#0"], 5);
  EXPECT_EQ(seen["a#1"], 5);
  EXPECT_NE(factory->specs[0].port, factory->specs[1].port);
}

TEST_F(ManagerTest, HostileFileIsListedAsErrorAndRefused) {
  auto bad = model("bad");
  bad.error = "malformed GGUF: not a GGUF file (wrong magic)";
  auto m = make({bad, model("a")});
  EXPECT_EQ(m->get("bad")->status, "error");
  auto r = acquire(*m, "bad");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, "model_error");
  EXPECT_EQ(m->list().size(), 2u);
}

TEST_F(ManagerTest, DeadUpstreamIsSkippedAndRejoins) {
  ManagerOptions o;
  o.health_interval = 20ms;
  o.upstreams = {{"up1", "http://10.0.0.1:1", "remote", 1, ""}, {"up2", "http://10.0.0.2:1", "remote", 1, "k"}};
  upstream_up["http://10.0.0.1:1"] = std::make_shared<std::atomic<bool>>(true);
  upstream_up["http://10.0.0.2:1"] = std::make_shared<std::atomic<bool>>(false);
  auto m = make({}, o);
  std::this_thread::sleep_for(100ms);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(acquire(*m, "remote")->instance_id(), "upstream:up1");
  *upstream_up["http://10.0.0.2:1"] = true;
  std::this_thread::sleep_for(100ms);
  std::map<std::string, int> seen;
  for (int i = 0; i < 6; ++i) {
    auto l = acquire(*m, "remote");
    ++seen[l->instance_id()];
    if (l->instance_id() == "upstream:up2") {
      EXPECT_EQ(l->api_key(), "k");
    }
  }
  EXPECT_EQ(seen["upstream:up2"], 3);
  EXPECT_EQ(m->spawn_count(), 0u);
}

TEST_F(ManagerTest, FailedRequestsTripAnInstanceForTheRetry) {
  ManagerOptions o;
  o.balancer.fail_threshold = 1;
  o.upstreams = {{"up1", "http://10.0.0.1:1", "remote", 1, ""}, {"up2", "http://10.0.0.2:1", "remote", 1, ""}};
  upstream_up["http://10.0.0.1:1"] = std::make_shared<std::atomic<bool>>(true);
  upstream_up["http://10.0.0.2:1"] = std::make_shared<std::atomic<bool>>(true);
  auto m = make({}, o);
  auto first = acquire(*m, "remote");
  const std::string bad = first->instance_id();
  first->finish(false);
  auto retry = acquire(*m, "remote", 1s, {bad});
  ASSERT_TRUE(retry);
  EXPECT_NE(retry->instance_id(), bad);
  EXPECT_FALSE(acquire(*m, "remote", 1s, {retry->instance_id()}));  // the other is cooling
}

TEST_F(ManagerTest, ShutdownStopsEveryWorker) {
  auto m = make({model("a"), model("b")});
  ASSERT_TRUE(acquire(*m, "a"));
  ASSERT_TRUE(acquire(*m, "b"));
  m->shutdown();
  for (auto& [port, s] : factory->by_port) EXPECT_GE(s->exit_code.load(), 0);
}

// --- threads: auto -------------------------------------------------------

// The thread count the factory was asked for by the last spawn of `name`.
int spawned_threads(FakeFactory& f, const std::string& name) {
  std::lock_guard lock(f.mutex);
  for (auto it = f.specs.rbegin(); it != f.specs.rend(); ++it) {
    if (it->model == name) return it->entry.threads;
  }
  return -1;
}

ManagerOptions cores_and_max_loaded(int cores, int max_loaded) {
  ManagerOptions o;
  o.models.cpu_cores = cores;
  o.models.max_loaded = max_loaded;
  return o;
}

TEST_F(ManagerTest, AutoThreadsSplitTheCoresAmongTheModelsThatMayRunAtOnce) {
  auto m = make({model("a"), model("b"), model("c")}, cores_and_max_loaded(8, 2));
  ASSERT_TRUE(acquire(*m, "a"));
  ASSERT_TRUE(acquire(*m, "b"));
  EXPECT_EQ(spawned_threads(*factory, "a"), 4);
  EXPECT_EQ(spawned_threads(*factory, "b"), 4);
  EXPECT_EQ(m->get("a")->instances[0].threads, 4);
}

TEST_F(ManagerTest, AutoThreadsOnTwoCoresGiveTwoModelsOneEach) {
  // The machine: two cores, max_loaded 2 — not two threads each.
  auto m = make({model("a"), model("b")}, cores_and_max_loaded(2, 2));
  ASSERT_TRUE(acquire(*m, "a"));
  ASSERT_TRUE(acquire(*m, "b"));
  EXPECT_EQ(spawned_threads(*factory, "a") + spawned_threads(*factory, "b"), 2);
}

TEST_F(ManagerTest, AutoThreadsGiveTheOnlyModelEveryCore) {
  auto m = make({model("a")}, cores_and_max_loaded(8, 2));
  ASSERT_TRUE(acquire(*m, "a"));
  EXPECT_EQ(spawned_threads(*factory, "a"), 8);
}

TEST_F(ManagerTest, AutoThreadsNeverDropBelowOne) {
  auto m = make({model("a"), model("b"), model("c")}, cores_and_max_loaded(1, 3));
  ASSERT_TRUE(acquire(*m, "a"));
  EXPECT_EQ(spawned_threads(*factory, "a"), 1);
}

TEST_F(ManagerTest, AutoThreadsCountEachReplicaAsAWorker) {
  auto a = model("a");
  a.entry.replicas = 2;
  auto m = make({a, model("b"), model("c")}, cores_and_max_loaded(12, 2));
  ASSERT_TRUE(acquire(*m, "a"));
  ASSERT_TRUE(acquire(*m, "b"));
  // At most a's two replicas and one other worker run at once: 12 / 3.
  std::lock_guard lock(factory->mutex);
  ASSERT_EQ(factory->specs.size(), 3u);
  int total = 0;
  for (const auto& spec : factory->specs) {
    EXPECT_EQ(spec.entry.threads, 4) << spec.instance_id;
    total += spec.entry.threads;
  }
  EXPECT_LE(total, 12);
}

TEST_F(ManagerTest, ConfiguredThreadsAreKept) {
  auto a = model("a");
  a.entry.threads = 3;
  auto m = make({a, model("b")}, cores_and_max_loaded(8, 2));
  ASSERT_TRUE(acquire(*m, "a"));
  EXPECT_EQ(spawned_threads(*factory, "a"), 3);
}

TEST_F(ManagerTest, FullyOffloadedModelsGetOneThreadAndLeaveTheCoresToCpuModels) {
  auto gpu = model("gpu");
  gpu.entry.gpu_layers = -1;
  auto m = make({gpu, model("cpu")}, cores_and_max_loaded(8, 2));
  ASSERT_TRUE(acquire(*m, "gpu"));
  ASSERT_TRUE(acquire(*m, "cpu"));
  EXPECT_EQ(spawned_threads(*factory, "gpu"), 1);
  EXPECT_EQ(spawned_threads(*factory, "cpu"), 8);
}

TEST_F(ManagerTest, AutoLayersOnAGpuThatHoldsTheModelGetOneThread) {
  host_devices = {{"Vulkan0", "a GPU", "gpu", 1u << 30, 1u << 30, 0}};
  auto small = model("small", 1000);
  auto huge = model("huge", std::uint64_t{4} << 30);  // more than the GPU has free: mostly on the CPU
  auto m = make({small, huge}, cores_and_max_loaded(8, 2));
  ASSERT_TRUE(acquire(*m, "small"));
  ASSERT_TRUE(acquire(*m, "huge"));
  EXPECT_EQ(spawned_threads(*factory, "small"), 1);
  EXPECT_EQ(spawned_threads(*factory, "huge"), 8);
}

TEST_F(ManagerTest, AutoThreadsKeepTheShareAfterAnEviction) {
  // A worker cannot change its threads while it runs, so the share is the
  // same whichever models are loaded: restarting b after evicting it gives it
  // the same count, and the running ones never add up to more than the cores.
  auto m = make({model("a"), model("b"), model("c")}, cores_and_max_loaded(6, 2));
  ASSERT_TRUE(acquire(*m, "a"));
  ASSERT_TRUE(acquire(*m, "b"));
  std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(acquire(*m, "a"));  // b is now the least recently used
  ASSERT_TRUE(acquire(*m, "c"));  // evicts b
  ASSERT_TRUE(wait_status(*m, "b", "available"));
  int running = 0;
  for (const auto& s : m->list()) {
    for (const auto& i : s.instances) {
      if (i.status == "running") running += i.threads;
    }
  }
  EXPECT_EQ(running, 6);
  EXPECT_EQ(spawned_threads(*factory, "c"), 3);
}

TEST(AutoThreads, DividesEvenlyAndNeverBelowOne) {
  EXPECT_EQ(auto_threads(16, 2), 8);
  EXPECT_EQ(auto_threads(16, 3), 5);
  EXPECT_EQ(auto_threads(2, 2), 1);
  EXPECT_EQ(auto_threads(1, 4), 1);
  EXPECT_EQ(auto_threads(4, 0), 4);
  for (int cores = 1; cores <= 64; ++cores) {
    for (int workers = 1; workers <= cores; ++workers) EXPECT_LE(auto_threads(cores, workers) * workers, cores);
  }
}

TEST(AutoThreads, PhysicalCoresAreAtLeastOneAndAtMostTheLogicalOnes) {
  const int n = physical_cpu_cores();
  EXPECT_GE(n, 1);
  EXPECT_LE(static_cast<unsigned>(n), std::max(1u, std::thread::hardware_concurrency()));
}

// --- worker keys ----------------------------------------------------------

TEST_F(ManagerTest, EachSpawnGetsAFreshKeyAndLeasesCarryIt) {
  factory->behaviour = FakeFactory::Behaviour::kReady;
  auto m = make({model("a"), model("b")});
  auto la = acquire(*m, "a");
  ASSERT_TRUE(la);
  auto lb = acquire(*m, "b");
  ASSERT_TRUE(lb);
  std::string key_a, key_b;
  {
    std::lock_guard lock(factory->mutex);
    ASSERT_EQ(factory->specs.size(), 2u);
    key_a = factory->specs[0].api_key;
    key_b = factory->specs[1].api_key;
  }
  EXPECT_GE(key_a.size(), 32u);
  EXPECT_NE(key_a, key_b);
  EXPECT_EQ(la->api_key(), key_a);
  EXPECT_EQ(lb->api_key(), key_b);
}

TEST(CommandTemplate, SubstitutesPlaceholdersWithoutShell) {
  WorkerSpec spec;
  spec.model = "m";
  spec.file = "/x/m.gguf";
  spec.port = 8099;
  spec.entry.ctx = 512;
  auto argv = expand_command("/usr/bin/llama-server -m {model} --port {port} -c {ctx} --alias {name}", spec);
  ASSERT_TRUE(argv);
  EXPECT_EQ(*argv, (std::vector<std::string>{"/usr/bin/llama-server", "-m", "/x/m.gguf", "--port", "8099", "-c", "512",
                                             "--alias", "m"}));
  EXPECT_FALSE(expand_command("llama-server {model}", spec));
}

TEST(CommandTemplate, ApiKeyFileAndThreadsAreSubstituted) {
  WorkerSpec spec;
  spec.entry.threads = 3;
  auto argv = expand_command("/usr/bin/llama-server -t {threads} --api-key-file {api_key_file}", spec, "/k/w.key");
  ASSERT_TRUE(argv);
  EXPECT_EQ(*argv, (std::vector<std::string>{"/usr/bin/llama-server", "-t", "3", "--api-key-file", "/k/w.key"}));
}

TEST(MemoryEstimate, AddsKvCacheToFileSize) {
  CatalogModel m = model("a", 1000);
  m.entry.ctx = 1024;
  GgufInfo g;
  g.n_layer = 2;
  g.n_embd = 64;
  g.n_head = 4;
  g.n_head_kv = 2;
  m.gguf = g;
  EXPECT_EQ(estimate_model_memory(m), 1000u + 2u * 2 * 1024 * 32 * 2);
  EXPECT_TRUE(read_mem_available());
}

}  // namespace
}  // namespace llmd::models
