// The compute devices of this host and what a worker's model holds on
// them. The host's are found once at startup by `llmd runner
// --list-devices` (the same backends a worker loads); a worker reports its
// own in /props "placement".
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace llmd::models {

struct Device {
  std::string name;         // "CPU", "Vulkan0", "CUDA0"
  std::string description;  // "NVIDIA H100 80GB HBM3"
  std::string type;         // cpu | gpu | igpu | accel
  std::uint64_t memory_total = 0;
  std::uint64_t memory_free = 0;  // when it was read
  // What a worker's model, context and compute buffers hold there (0 for
  // the host's own list).
  std::uint64_t used_bytes = 0;

  bool gpu() const { return type == "gpu" || type == "igpu"; }
};

// Where one worker's model went: its /props "placement".
struct Placement {
  std::vector<Device> devices;  // the GPUs used, then the host ("CPU")
  int gpu_layers = -1;          // -1: not reported (yet)
  int n_layer = 0;
};

// Runs `llmd_binary runner --list-devices` (extra environment: none) and
// reads its JSON line; empty when it fails or takes longer than `timeout`.
std::vector<Device> probe_host_devices(const std::string& llmd_binary, std::chrono::milliseconds timeout);

// The devices of --list-devices' JSON line; empty when it is not one.
std::vector<Device> parse_device_list(std::string_view json_line);

// A worker's /props "placement" object (gpu_layers -1 when it has none:
// llama-server and older runners).
Placement parse_placement(const nlohmann::json& placement);

nlohmann::json devices_json(const std::vector<Device>& devices);

// Bytes the GPUs among `devices` have free (what was free at startup).
std::uint64_t gpu_free_bytes(const std::vector<Device>& devices);

}  // namespace llmd::models
