// What the host offers a model worker and what a worker needs: CPU cores
// and thread shares, available memory, a model's expected memory, free
// ports. Reads /proc and /sys; no state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "models/catalog.h"

namespace llmd::models {

// The physical cores this process may use: distinct (package, core) pairs
// among the CPUs of its affinity mask, capped by a cgroup v2 CPU quota
// (/sys/fs/cgroup/cpu.max); std::thread::hardware_concurrency() when the
// topology is unreadable. At least 1.
int physical_cpu_cores();

// The thread count of a `threads: auto` CPU worker: the cores divided evenly
// among the CPU workers that may run at once (`cpu_workers`: the replicas of
// the max_loaded CPU models with the most replicas), at least 1. A worker's
// thread count cannot change while it runs, so the share is fixed by what
// *may* run rather than what runs now: the workers' threads never add up to
// more than the cores (ggml's spinning threads collapse when they do).
// Workers with every layer on a GPU get 1 thread and do not count.
int auto_threads(int cores, int cpu_workers);

// Reads MemAvailable from /proc/meminfo (bytes); nullopt when unreadable.
std::optional<std::uint64_t> read_mem_available();

// Bytes a worker of this model is expected to need: file size + f16 KV cache
// for entry.ctx tokens (from the GGUF shape). 0 when unknown.
std::uint64_t estimate_model_memory(const CatalogModel& model);

// Every layer on a GPU: the worker's CPU threads only feed it. `auto`
// counts when the host's GPUs have the model's expected memory free
// (`gpu_free_bytes`; 0 without a GPU).
bool fully_offloaded(const CatalogModel& model, std::uint64_t gpu_free_bytes);

// Whether a TCP port can be bound on `host` (an IPv4 address; loopback
// when it is not one) right now.
bool port_is_free(const std::string& host, int port);

}  // namespace llmd::models
