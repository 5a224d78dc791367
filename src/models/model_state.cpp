#include "models/model_state.h"

#include <algorithm>

namespace llmd::models::detail {

std::string_view state_name(State s) {
  switch (s) {
    case State::kPending:
    case State::kStarting: return "starting";
    case State::kRunning: return "running";
    case State::kStopping: return "stopping";
    case State::kBackoff: return "restarting";
    case State::kFailed: return "error";
  }
  return "error";
}

ModelStatus status_of(const ModelState& m, Clock::time_point now) {
  ModelStatus s;
  s.name = m.cat.name;
  s.description = m.cat.description;
  s.file = m.cat.path.filename().string();
  s.size = m.cat.size;
  if (m.cat.gguf) {
    s.arch = m.cat.gguf->architecture;
    s.quantization = m.cat.gguf->quantization;
    s.context_length = m.cat.gguf->context_length;
    s.parameter_count = m.cat.gguf->parameter_count;
    s.has_chat_template = m.cat.gguf->has_chat_template;
  }
  s.error = !m.cat.error.empty() ? m.cat.error : m.last_error;
  s.waiting = m.queue.size();
  s.aliases = m.cat.entry.aliases;
  s.defaults = m.cat.entry.defaults;
  s.forced = m.cat.entry.forced;
  s.pinned = m.cat.entry.pin;
  s.mode = m.cat.entry.mode;
  s.preload = m.cat.entry.preload || m.cat.entry.pin;
  s.deletable = !m.cat.configured && !m.cat.path.empty();
  s.template_caps = m.template_caps;
  const auto views = m.balancer.snapshot(now);
  bool any_running = false, any_starting = false, any_stopping = false, any_local = false;
  for (const auto& inst : m.instances) {
    InstanceStatus is;
    is.id = inst.id;
    is.url = inst.url;
    is.port = inst.port;
    is.remote = inst.remote;
    is.restarts = inst.restarts;
    is.error = inst.error;
    is.threads = inst.remote ? 0 : inst.threads;
    is.gpu_layers = inst.placement.gpu_layers;
    is.devices = inst.placement.devices;
    is.health = inst.state == State::kRunning || inst.remote ? "healthy" : "down";
    for (const auto& v : views) {
      if (v.id != inst.id) continue;
      is.in_flight = v.in_flight;
      is.health = std::string(health_name(v.health));
    }
    if (inst.remote) {
      is.status = is.health == "healthy" ? "running" : "error";
      any_running = any_running || is.health == "healthy";
    } else {
      any_local = true;
      is.status = std::string(state_name(inst.state));
      any_running = any_running || inst.state == State::kRunning;
      any_starting = any_starting || inst.state == State::kPending || inst.state == State::kStarting ||
                     inst.state == State::kBackoff;
      any_stopping = any_stopping || inst.state == State::kStopping;
    }
    s.instances.push_back(std::move(is));
  }
  if (!m.cat.error.empty())
    s.status = "error";
  else if (any_running)
    s.status = "running";
  else if (any_starting && m.wanted)
    s.status = "starting";
  else if (any_stopping)
    s.status = "stopping";
  else if (m.wanted && any_local)
    s.status = "error";
  else if (!m.startable())
    s.status = "error";
  else
    s.status = "available";
  if (s.status == "error" && s.error.empty()) s.error = "no healthy instance";
  return s;
}

}  // namespace llmd::models::detail
