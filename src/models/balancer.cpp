#include "models/balancer.h"

#include <algorithm>

namespace llmd::models {

std::optional<Strategy> parse_strategy(std::string_view s) {
  if (s == "round_robin") return Strategy::kRoundRobin;
  if (s == "weighted_round_robin") return Strategy::kWeightedRoundRobin;
  if (s == "least_connections") return Strategy::kLeastConnections;
  return std::nullopt;
}

std::string_view health_name(Health h) {
  switch (h) {
    case Health::kHealthy: return "healthy";
    case Health::kCooling: return "cooling";
    case Health::kDown: return "down";
  }
  return "down";
}

void Balancer::add(const std::string& id, int weight, int capacity) {
  std::lock_guard lock(mutex_);
  weight = std::max(1, weight);
  capacity = std::max(0, capacity);
  for (auto& i : instances_) {
    if (i.id == id) {
      i.weight = weight;
      i.capacity = capacity;
      return;
    }
  }
  Instance inst;
  inst.id = id;
  inst.weight = weight;
  inst.capacity = capacity;
  instances_.push_back(std::move(inst));
}

void Balancer::remove(const std::string& id) {
  std::lock_guard lock(mutex_);
  std::erase_if(instances_, [&](const Instance& i) { return i.id == id; });
}

bool Balancer::eligible(const Instance& i, Clock::time_point now) const {
  if (i.down) return false;
  return i.failures < policy_.fail_threshold || now >= i.cooling_until;
}

Health Balancer::health(const Instance& i, Clock::time_point now) const {
  if (i.down) return Health::kDown;
  if (i.failures >= policy_.fail_threshold && now < i.cooling_until) return Health::kCooling;
  return Health::kHealthy;
}

std::optional<std::string> Balancer::acquire(Clock::time_point now, const std::vector<std::string>& exclude) {
  std::lock_guard lock(mutex_);
  const std::size_t n = instances_.size();
  auto usable = [&](const Instance& i) {
    return eligible(i, now) && (i.capacity == 0 || i.in_flight < i.capacity) &&
           std::find(exclude.begin(), exclude.end(), i.id) == exclude.end();
  };
  Instance* chosen = nullptr;
  switch (strategy_) {
    case Strategy::kRoundRobin:
      for (std::size_t k = 0; k < n && !chosen; ++k) {
        Instance& i = instances_[(cursor_ + k) % n];
        if (usable(i)) {
          chosen = &i;
          cursor_ = (cursor_ + k + 1) % n;
        }
      }
      break;
    case Strategy::kWeightedRoundRobin: {
      // nginx smooth weighted round robin: every pick raises each candidate
      // by its weight and lowers the winner by the total, which interleaves
      // picks (a:3 b:1 -> a a b a, not a a a b).
      int total = 0;
      for (auto& i : instances_) {
        if (!usable(i)) continue;
        i.current += i.weight;
        total += i.weight;
        if (!chosen || i.current > chosen->current) chosen = &i;
      }
      if (chosen) chosen->current -= total;
      break;
    }
    case Strategy::kLeastConnections:
      // Fewest in flight; ties go to the larger weight, then rotate so equal
      // instances share the load.
      for (std::size_t k = 0; k < n; ++k) {
        Instance& i = instances_[(cursor_ + k) % n];
        if (!usable(i)) continue;
        if (!chosen || i.in_flight < chosen->in_flight ||
            (i.in_flight == chosen->in_flight && i.weight > chosen->weight)) {
          chosen = &i;
        }
      }
      if (n > 0) cursor_ = (cursor_ + 1) % n;
      break;
  }
  if (!chosen) return std::nullopt;
  ++chosen->in_flight;
  ++chosen->picks;
  return chosen->id;
}

std::optional<std::string> Balancer::peek(Clock::time_point now, const std::vector<std::string>& exclude) const {
  std::lock_guard lock(mutex_);
  const Instance* chosen = nullptr;
  for (const auto& i : instances_) {
    if (!eligible(i, now) || std::find(exclude.begin(), exclude.end(), i.id) != exclude.end()) continue;
    if (!chosen || i.in_flight < chosen->in_flight) chosen = &i;
  }
  if (!chosen) return std::nullopt;
  return chosen->id;
}

void Balancer::release(const std::string& id, bool ok, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  for (auto& i : instances_) {
    if (i.id != id) continue;
    if (i.in_flight > 0) --i.in_flight;
    if (ok) {
      i.failures = 0;
    } else if (++i.failures >= policy_.fail_threshold) {
      i.cooling_until = now + policy_.cooldown;
    }
    return;
  }
}

void Balancer::set_probe_result(const std::string& id, bool healthy) {
  std::lock_guard lock(mutex_);
  for (auto& i : instances_) {
    if (i.id != id) continue;
    if (healthy && i.down) i.failures = 0;
    i.down = !healthy;
    return;
  }
}

bool Balancer::has_eligible(Clock::time_point now, const std::vector<std::string>& exclude) const {
  std::lock_guard lock(mutex_);
  return std::any_of(instances_.begin(), instances_.end(), [&](const Instance& i) {
    return eligible(i, now) && std::find(exclude.begin(), exclude.end(), i.id) == exclude.end();
  });
}

std::vector<InstanceView> Balancer::snapshot(Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  std::vector<InstanceView> out;
  for (const auto& i : instances_) {
    out.push_back({i.id, i.weight, i.in_flight, health(i, now), i.failures, i.picks});
  }
  return out;
}

std::size_t Balancer::size() const {
  std::lock_guard lock(mutex_);
  return instances_.size();
}

}  // namespace llmd::models
