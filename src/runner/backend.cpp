#include "runner/backend.h"

#include <dlfcn.h>
#include <ggml-backend.h>
#include <llama.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <system_error>

namespace llmd::runner {
namespace {

std::once_flag g_init_once;
std::filesystem::path g_backend_dir;  // written once inside g_init_once

std::filesystem::path executable_dir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path{} : p.parent_path();
}

// The directory of the shared object that defines ggml_backend_load_all_from_path:
// the CPU variants were installed next to it (build tree bin/, install dir or
// the npm package directory).
std::filesystem::path ggml_library_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&ggml_backend_load_all_from_path), &info) == 0 || info.dli_fname == nullptr) {
    return {};
  }
  std::error_code ec;
  auto p = std::filesystem::canonical(info.dli_fname, ec);
  return ec ? std::filesystem::path{} : p.parent_path();
}

bool has_cpu_backend(const std::filesystem::path& dir) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const auto name = e.path().filename().string();
    if (name.starts_with("libggml-cpu") && name.ends_with(".so")) return true;
  }
  return false;
}

void log_callback(ggml_log_level level, const char* text, void* user_data) {
  const bool verbose = user_data != nullptr;
  if (verbose || level == GGML_LOG_LEVEL_WARN || level == GGML_LOG_LEVEL_ERROR) {
    std::fputs(text, stderr);
  }
}

}  // namespace

void init_backends() {
  std::call_once(g_init_once, [] {
    const char* env = std::getenv("LLMD_LLAMA_LOG");
    const bool verbose = env != nullptr && std::strcmp(env, "1") == 0;
    // A non-null user_data marks verbose mode; it is never dereferenced.
    void* mark = verbose ? reinterpret_cast<void*>(&g_backend_dir) : nullptr;
    llama_log_set(log_callback, mark);
    ggml_log_set(log_callback, mark);

    std::filesystem::path dir = ggml_library_dir();
    if (dir.empty() || !has_cpu_backend(dir)) dir = executable_dir();
    g_backend_dir = dir;
    ggml_backend_load_all_from_path(dir.empty() ? nullptr : dir.c_str());
    // The CUDA 12 build, for drivers older than CUDA 13's: only when the
    // CUDA 13 build registered nothing (its runtime libraries are missing).
    const std::filesystem::path cuda12 = dir / "cuda12" / "libggml-cuda.so";
    std::error_code ec;
    if (ggml_backend_reg_by_name("CUDA") == nullptr && std::filesystem::exists(cuda12, ec)) {
      ggml_backend_load(cuda12.c_str());
    }
    llama_backend_init();
  });
}

std::filesystem::path backend_dir() { return g_backend_dir; }

std::size_t backend_device_count() { return ggml_backend_dev_count(); }

}  // namespace llmd::runner
