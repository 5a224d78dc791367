// Compute devices and where a model's layers go: llama-server's --device,
// --gpu-layers, --split-mode, --main-gpu and --tensor-split, with `auto`
// fitted to free device memory by llama.cpp's own fitting code (common/fit).
//
//   auto plan = plan_placement(path, placement_options, {.n_ctx = 4096 * 4, .n_seq_max = 4});
//   llama_model_params mp = llama_model_default_params();
//   plan->apply(mp);                       // keep `plan` alive until the model is loaded
//   ... after the load: plan->report(...)  // devices, layers, memory per device
#pragma once

#include <llama.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace llmd::runner {

// One compute device ggml registered (call init_backends() first).
struct DeviceInfo {
  std::string name;         // "CPU", "Vulkan0", "CUDA0"
  std::string description;  // "NVIDIA H100 80GB HBM3", "llvmpipe (LLVM 15.0.6, 256 bits)"
  std::string type;         // "cpu", "gpu", "igpu" or "accel"
  std::uint64_t memory_free = 0;
  std::uint64_t memory_total = 0;
};

// Every registered device, GPUs first as ggml lists them. Thread-safe.
std::vector<DeviceInfo> list_devices();

// `device` with its free and total memory read again now. Thread-safe.
DeviceInfo device_now(const DeviceInfo& device);

// --gpu-layers: a count, `all` (every layer and the output) or `auto` (as
// many as fit in the chosen devices' free memory).
struct GpuLayers {
  enum class Mode { kCount, kAll, kAuto };
  Mode mode = Mode::kAuto;
  int count = 0;  // kCount only
};

// "auto", "all", "-1" (all) or a count 0..100000. kInvalidArgument otherwise.
Result<GpuLayers> parse_gpu_layers(std::string_view text);

struct PlacementOptions {
  GpuLayers gpu_layers;
  // Device names (--device); empty: llama.cpp's default (every GPU);
  // {"none"}: the CPU only. 0 layers also means the CPU only.
  std::vector<std::string> devices;
  std::string split_mode = "layer";                            // none | layer | row
  int main_gpu = 0;                                            // index into the chosen devices (split mode none/row)
  std::vector<float> tensor_split;                             // proportions per chosen device; empty: by free memory
  std::uint64_t fit_margin_bytes = std::uint64_t{1024} << 20;  // left free per device by `auto`
};

// "a,b,c" → names, "none" → {"none"}, "auto" or "" → {}.
std::vector<std::string> parse_device_list(std::string_view text);
// "3,1" → {3, 1}; kInvalidArgument for a non-number or a negative one.
Result<std::vector<float>> parse_tensor_split(std::string_view text);

// The context a placement is fitted for (the engine's llama_context_params).
struct FitContext {
  std::uint32_t n_ctx = 0;  // all slots together; 0: the model's training context per slot
  std::uint32_t n_seq_max = 1;
  std::uint32_t n_batch = 512;
  std::uint32_t n_ubatch = 512;
  bool embeddings = false;
};

// Memory one device holds for the loaded model, as llama.cpp projects it.
struct DeviceUse {
  DeviceInfo device;  // memory_free/total: when the plan was made
  std::uint64_t model_bytes = 0;
  std::uint64_t context_bytes = 0;
  std::uint64_t compute_bytes = 0;
};

// Where a model goes: the llama_model_params fields it sets and the
// buffers they point into (so the plan must outlive the model load).
// Default-constructed: the CPU only.
class Placement {
 public:
  void apply(llama_model_params& mp) const;

  // Layers given to GPU devices, for a model of `n_layer` repeating layers
  // (0: the CPU only; n_layer + 1: every layer and the output).
  int gpu_layers(int n_layer) const;
  // The GPU devices used, by name (empty: the CPU only).
  const std::vector<std::string>& device_names() const { return names_; }
  const std::string& split_mode() const { return split_mode_; }
  // How `auto` came out, for the log ("fitted: 20 of 25 layers", "no GPU device", ...).
  const std::string& note() const { return note_; }

  // The memory each used device and the host hold for this placement and
  // context (llama.cpp's projection, from the file's metadata; no weights
  // read). The host comes last, named "CPU". Empty when it cannot be told.
  std::vector<DeviceUse> memory_use(const std::filesystem::path& model, const FitContext& ctx) const;

 private:
  friend Result<Placement> plan_placement(const std::filesystem::path&, const PlacementOptions&, const FitContext&);

  std::vector<ggml_backend_dev_t> devices_{nullptr};         // null-terminated; {nullptr}: none
  std::vector<float> tensor_split_;                          // llama_max_devices() entries, or empty
  std::vector<llama_model_tensor_buft_override> overrides_;  // fit's, null-terminated, or empty
  int n_gpu_layers_param_ = 0;
  llama_split_mode split_ = LLAMA_SPLIT_MODE_LAYER;
  int main_gpu_ = 0;
  std::vector<std::string> names_;
  std::string split_mode_ = "layer";
  std::string note_;
};

// Resolves the options against the registered devices (init_backends() must
// have run) and, for `auto`, fits layers to their free memory with
// common_fit_params. Errors: kInvalidArgument for an unknown device name (the
// message lists the available ones), a bad split mode, main GPU or tensor
// split; kUnprocessable when llama.cpp cannot read the model to fit it.
// Not thread-safe (the fitting swaps llama.cpp's log callback): call it
// while loading, before any engine runs.
Result<Placement> plan_placement(const std::filesystem::path& model, const PlacementOptions& options,
                                 const FitContext& ctx);

}  // namespace llmd::runner
