#include "models/setup.h"

#include <chrono>
#include <filesystem>

#include <nlohmann/json.hpp>

namespace llmd::models {

Result<std::unique_ptr<Manager>> create_manager(const config::Config& config, observe::Logger log,
                                                observe::Registry& metrics) {
  ManagerOptions o;
  o.models = config.models;
  o.upstreams = config.upstreams;
  o.balancer = config.balancer;
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  ManagerDeps d;
  d.log = log;
  d.metrics = &metrics;
  const std::string binary = ec ? std::string("/proc/self/exe") : self.string();
  d.factory = make_process_worker_factory(binary, log);
  d.host_devices = probe_host_devices(binary, std::chrono::seconds(30));
  nlohmann::json gpus = nlohmann::json::array();
  for (const Device& dev : d.host_devices) {
    if (dev.gpu())
      gpus.push_back(dev.name + ": " + dev.description + " (" + std::to_string(dev.memory_total >> 20) + " MiB)");
  }
  log.info("compute devices", {{"gpus", gpus}, {"found", d.host_devices.size()}});
  auto catalog = scan_catalog(config.models);
  for (const auto& m : catalog) {
    if (!m.error.empty()) log.warn("model unusable", {{"model", m.name}, {"reason", m.error}});
  }
  log.info("model catalog",
           {{"models", catalog.size()}, {"upstreams", config.upstreams.size()}, {"dir", config.models.dir}});
  return Manager::create(std::move(o), std::move(d), std::move(catalog));
}

}  // namespace llmd::models
