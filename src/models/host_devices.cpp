#include "models/host_devices.h"

#include <condition_variable>
#include <mutex>

#include <nlohmann/json.hpp>

#include "models/child_process.h"

namespace llmd::models {
namespace {

std::uint64_t bytes(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

std::string text(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Device device_of(const nlohmann::json& j) {
  Device d;
  d.name = text(j, "name");
  d.description = text(j, "description");
  d.type = text(j, "type");
  d.memory_total = bytes(j, "memory_total");
  d.memory_free = bytes(j, "memory_free");
  d.used_bytes = bytes(j, "model_bytes") + bytes(j, "context_bytes") + bytes(j, "compute_bytes");
  return d;
}

}  // namespace

std::vector<Device> parse_device_list(std::string_view json_line) {
  const auto j = nlohmann::json::parse(json_line, nullptr, false);
  std::vector<Device> out;
  if (!j.is_array()) return out;
  for (const auto& d : j) {
    if (d.is_object() && !text(d, "name").empty()) out.push_back(device_of(d));
  }
  return out;
}

Placement parse_placement(const nlohmann::json& placement) {
  Placement p;
  if (!placement.is_object()) return p;
  if (const auto it = placement.find("devices"); it != placement.end() && it->is_array()) {
    for (const auto& d : *it) {
      if (d.is_object() && !text(d, "name").empty()) p.devices.push_back(device_of(d));
    }
  }
  if (const auto it = placement.find("gpu_layers"); it != placement.end() && it->is_number_integer()) {
    p.gpu_layers = it->get<int>();
  }
  if (const auto it = placement.find("n_layer"); it != placement.end() && it->is_number_integer()) {
    p.n_layer = it->get<int>();
  }
  return p;
}

std::vector<Device> probe_host_devices(const std::string& llmd_binary, std::chrono::milliseconds timeout) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Device> found;
  bool done = false;
  auto child = ChildProcess::spawn({llmd_binary, "runner", "--list-devices"}, [&](std::string_view line) {
    if (line.empty() || line.front() != '[') return;
    auto devices = parse_device_list(line);
    std::lock_guard lock(mu);
    found = std::move(devices);
    done = true;
    cv.notify_all();
  });
  if (!child) return {};
  std::unique_lock lock(mu);
  cv.wait_for(lock, timeout, [&] { return done; });
  return found;  // the child is reaped (or killed) as it goes out of scope
}

nlohmann::json devices_json(const std::vector<Device>& devices) {
  auto out = nlohmann::json::array();
  for (const Device& d : devices) {
    nlohmann::json j = {{"name", d.name},
                        {"description", d.description},
                        {"type", d.type},
                        {"memory_total", d.memory_total},
                        {"memory_free", d.memory_free}};
    if (d.used_bytes > 0) j["used_bytes"] = d.used_bytes;
    out.push_back(std::move(j));
  }
  return out;
}

std::uint64_t gpu_free_bytes(const std::vector<Device>& devices) {
  std::uint64_t free = 0;
  for (const Device& d : devices) {
    if (d.gpu()) free += d.memory_free;
  }
  return free;
}

}  // namespace llmd::models
