#include "models/resources.h"

#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <thread>

namespace llmd::models {

bool port_is_free(const std::string& host, int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

bool fully_offloaded(const CatalogModel& m, std::uint64_t gpu_free_bytes) {
  const int layers = m.entry.gpu_layers;
  if (layers == config::kGpuLayersAuto) return gpu_free_bytes > 0 && estimate_model_memory(m) <= gpu_free_bytes;
  return layers == config::kGpuLayersAll || (layers > 0 && m.gguf && m.gguf->n_layer > 0 && layers >= m.gguf->n_layer);
}

int physical_cpu_cores() {
  std::set<std::pair<long, long>> cores;  // (package, core), or (-1, cpu) when unknown
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &set)) continue;
      const std::string topo = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
      long package = -1, core = -1;
      std::ifstream(topo + "physical_package_id") >> package;
      std::ifstream(topo + "core_id") >> core;
      if (package >= 0 && core >= 0)
        cores.emplace(package, core);
      else
        cores.emplace(-1, cpu);
    }
  }
  int n = !cores.empty() ? static_cast<int>(cores.size()) : static_cast<int>(std::thread::hardware_concurrency());
  // A container's CPU quota ("200000 100000" = 2 CPUs; "max 100000" = none).
  std::ifstream quota_file("/sys/fs/cgroup/cpu.max");
  std::string quota;
  long period = 0;
  if (quota_file >> quota >> period && quota != "max" && period > 0) {
    try {
      const long q = std::stol(quota);
      if (q > 0) n = std::min<long>(n, (q + period - 1) / period);
    } catch (const std::exception&) {
      // Unparsable: no cap.
    }
  }
  return std::max(1, n);
}

int auto_threads(int cores, int cpu_workers) { return std::max(1, cores / std::max(1, cpu_workers)); }

std::optional<std::uint64_t> read_mem_available() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit) {
    if (key == "MemAvailable:") return kb * 1024;
  }
  return std::nullopt;
}

std::uint64_t estimate_model_memory(const CatalogModel& m) {
  if (m.path.empty()) return 0;
  std::uint64_t bytes = m.size;
  if (m.gguf && m.gguf->n_layer > 0 && m.gguf->n_head > 0 && m.gguf->n_embd > 0) {
    const auto& g = *m.gguf;
    const std::uint64_t head_dim = static_cast<std::uint64_t>(g.n_embd / g.n_head);
    const std::uint64_t kv_dim = head_dim * static_cast<std::uint64_t>(g.n_head_kv);
    const std::uint64_t ctx = static_cast<std::uint64_t>(std::max(0, m.entry.ctx));
    bytes += 2 /* K and V */ * static_cast<std::uint64_t>(g.n_layer) * ctx * kv_dim * 2 /* f16 */;
  }
  return bytes;
}

}  // namespace llmd::models
