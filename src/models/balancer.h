// Load balancing over the instances of one model: which instance gets the
// next request, and which instances are healthy enough to get any.
//
// Pure logic (no I/O, time passed in), thread-safe (one internal mutex).
//   Balancer b(Strategy::kWeightedRoundRobin, {.fail_threshold = 3, .cooldown = 30s});
//   b.add("a", 3); b.add("b", 1);
//   auto id = b.acquire(now);   // ... send the request ...
//   b.release(*id, ok, now);
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmd::models {

enum class Strategy { kRoundRobin, kWeightedRoundRobin, kLeastConnections };

// "round_robin" | "weighted_round_robin" | "least_connections"; nullopt otherwise.
std::optional<Strategy> parse_strategy(std::string_view s);

struct HealthPolicy {
  int fail_threshold = 3;                     // consecutive failures that trip an instance
  std::chrono::milliseconds cooldown{30000};  // how long a tripped instance gets no traffic
};

enum class Health {
  kHealthy,  // gets traffic
  kCooling,  // passively tripped (errors); traffic resumes when the cooldown ends
  kDown,     // the active health check failed; traffic resumes when it passes
};
std::string_view health_name(Health h);

struct InstanceView {
  std::string id;
  int weight = 1;
  int in_flight = 0;
  Health health = Health::kHealthy;
  int consecutive_failures = 0;
  std::uint64_t picks = 0;
};

class Balancer {
 public:
  using Clock = std::chrono::steady_clock;

  Balancer(Strategy strategy, HealthPolicy policy) : strategy_(strategy), policy_(policy) {}

  // Adds an instance (healthy; weight clamped to >= 1) that takes at most
  // `capacity` requests at once (its slots; 0 = no limit). Adding an existing
  // id updates its weight and capacity only.
  void add(const std::string& id, int weight, int capacity = 0);
  void remove(const std::string& id);

  // Picks an eligible instance not in `exclude` with a free slot and counts
  // it in flight. nullopt when none is eligible or every eligible one is full. A tripped instance becomes eligible
  // again once its cooldown has passed (one more failure trips it again).
  std::optional<std::string> acquire(Clock::time_point now, const std::vector<std::string>& exclude = {});
  // An eligible instance not in `exclude` for a side call that is not a
  // request of its own (counting a prompt's tokens): the one with the fewest
  // in flight, nothing counted, the rotation left as it is. nullopt when
  // none is eligible.
  std::optional<std::string> peek(Clock::time_point now, const std::vector<std::string>& exclude = {}) const;
  // Ends a request begun by acquire(). `ok=false` (connection error, 5xx)
  // counts toward fail_threshold; `ok=true` resets the count.
  void release(const std::string& id, bool ok, Clock::time_point now);
  // Records an active health check: false marks the instance down, true
  // brings it back (and clears its failure count).
  void set_probe_result(const std::string& id, bool healthy);

  // Whether an instance not in `exclude` is eligible (full or not).
  bool has_eligible(Clock::time_point now, const std::vector<std::string>& exclude = {}) const;
  std::vector<InstanceView> snapshot(Clock::time_point now) const;
  std::size_t size() const;

 private:
  struct Instance {
    std::string id;
    int weight = 1;
    int capacity = 0;  // 0 = no limit
    int in_flight = 0;
    int current = 0;  // smooth weighted round robin state
    int failures = 0;
    bool down = false;
    Clock::time_point cooling_until{};
    std::uint64_t picks = 0;
  };
  bool eligible(const Instance& i, Clock::time_point now) const;
  Health health(const Instance& i, Clock::time_point now) const;

  const Strategy strategy_;
  const HealthPolicy policy_;
  mutable std::mutex mutex_;
  std::vector<Instance> instances_;  // guarded by mutex_; insertion order
  std::size_t cursor_ = 0;           // guarded by mutex_; round robin position
};

}  // namespace llmd::models
