// Process-wide llama.cpp initialisation.
#pragma once

#include <filesystem>

namespace llmd::runner {

// Loads the ggml backends once per process: the best libggml-cpu-<level>.so
// for this CPU and any GPU backend placed there (libggml-vulkan.so,
// libggml-cuda.so, or cuda12/libggml-cuda.so when the CUDA 13 build cannot
// load) from the directory that
// holds the loaded libggml (normally beside the `llmd` binary), falling back
// to the executable's directory. Also routes llama.cpp's log output: only
// warnings and errors reach stderr unless LLMD_LLAMA_LOG=1 is set.
// Thread-safe; later calls are no-ops.
void init_backends();

// The directory init_backends() loaded backends from (empty before the call).
// Thread-safe after init_backends() returned.
std::filesystem::path backend_dir();

// Number of compute devices registered (at least 1 — the CPU — after a
// successful init_backends()). Thread-safe.
std::size_t backend_device_count();

}  // namespace llmd::runner
