// A configured model as the Manager supervises it: its local worker
// processes and remote upstreams (instances), whether it is wanted, its
// balancer, and the ModelStatus the API shows for it. Internal to
// models/manager.cpp; guarded by the Manager's mutex.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "models/balancer.h"
#include "models/catalog.h"
#include "models/fair_queue.h"
#include "models/manager.h"
#include "models/worker.h"

namespace llmd::models::detail {

using Clock = std::chrono::steady_clock;

enum class State { kPending, kStarting, kRunning, kStopping, kBackoff, kFailed };

// "starting", "running", "stopping", "restarting", "error" (the API's words).
std::string_view state_name(State s);

struct Instance {
  std::string id;
  bool remote = false;
  std::string url;
  std::string api_key;
  int weight = 1;
  int port = 0;
  State state = State::kPending;
  std::unique_ptr<Worker> worker;
  std::uint64_t serial = 0;      // identifies one spawn / probe target
  Clock::time_point deadline{};  // ready deadline, stop deadline or restart time
  Clock::time_point spawned_at{};
  Clock::time_point next_health{};
  int restarts = 0;
  int probe_failures = 0;
  bool probing = false;
  int threads = 0;      // of the running local worker
  Placement placement;  // what its /props said; gpu_layers -1 until then
  std::string error;
};

struct ModelState {
  ModelState(CatalogModel c, Strategy s, HealthPolicy p) : cat(std::move(c)), balancer(s, p) {}
  CatalogModel cat;
  bool wanted = false;  // the operator or a request wants it running
  std::vector<Instance> instances;
  Balancer balancer;
  Clock::time_point last_used{};
  std::string last_error;
  int in_flight = 0;
  FairQueue queue;                                 // requests waiting for a free slot (or for the model to start)
  std::optional<std::chrono::seconds> keep_alive;  // a request's (Ollama's keep_alive); else the configured idle time
  // What its chat template can do (the worker's /props chat_template_caps),
  // read once an instance first answers; empty until then.
  std::map<std::string, bool> template_caps;
  bool caps_asked = false;  // /props asked of an instance at least once

  bool startable() const { return cat.error.empty() && (!cat.path.empty() || !cat.entry.command.empty()); }
  bool has_local() const {
    return std::any_of(instances.begin(), instances.end(), [](const Instance& i) { return !i.remote; });
  }
};

// What GET /api/v1/models shows for `m` at `now`.
ModelStatus status_of(const ModelState& m, Clock::time_point now);

}  // namespace llmd::models::detail
