#include "runner/devices.h"

#include <fit.h>
#include <ggml-backend.h>
#include <gguf.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <memory>

namespace llmd::runner {
namespace {

std::string_view type_name(enum ggml_backend_dev_type type) {
  switch (type) {
    case GGML_BACKEND_DEVICE_TYPE_CPU: return "cpu";
    case GGML_BACKEND_DEVICE_TYPE_GPU: return "gpu";
    case GGML_BACKEND_DEVICE_TYPE_IGPU: return "igpu";
    default: return "accel";
  }
}

DeviceInfo describe(ggml_backend_dev_t dev) {
  DeviceInfo d;
  d.name = ggml_backend_dev_name(dev);
  d.description = ggml_backend_dev_description(dev);
  d.type = type_name(ggml_backend_dev_type(dev));
  size_t free = 0, total = 0;
  ggml_backend_dev_memory(dev, &free, &total);
  d.memory_free = free;
  d.memory_total = total;
  return d;
}

bool is_gpu(ggml_backend_dev_t dev) {
  const auto t = ggml_backend_dev_type(dev);
  return t == GGML_BACKEND_DEVICE_TYPE_GPU || t == GGML_BACKEND_DEVICE_TYPE_IGPU;
}

// The devices llama.cpp uses when none are named: every GPU, or the
// integrated ones when there is no discrete GPU.
std::vector<ggml_backend_dev_t> default_gpu_devices() {
  std::vector<ggml_backend_dev_t> gpus, igpus;
  for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
    ggml_backend_dev_t dev = ggml_backend_dev_get(i);
    if (ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_GPU) gpus.push_back(dev);
    if (ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_IGPU) igpus.push_back(dev);
  }
  return gpus.empty() ? igpus : gpus;
}

std::string available_devices() {
  std::string names;
  for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
    ggml_backend_dev_t dev = ggml_backend_dev_get(i);
    if (!is_gpu(dev)) continue;
    names += (names.empty() ? "" : ", ") + std::string(ggml_backend_dev_name(dev));
  }
  return names.empty() ? "none (no GPU backend found)" : names;
}

// <arch>.context_length from the file's metadata (0 when absent).
std::uint32_t training_context(const std::filesystem::path& model) {
  gguf_init_params params{/*no_alloc=*/true, /*ctx=*/nullptr};
  std::unique_ptr<gguf_context, decltype(&gguf_free)> g(gguf_init_from_file(model.c_str(), params), &gguf_free);
  if (!g) return 0;
  const int64_t arch_key = gguf_find_key(g.get(), "general.architecture");
  if (arch_key < 0 || gguf_get_kv_type(g.get(), arch_key) != GGUF_TYPE_STRING) return 0;
  const std::string key = std::string(gguf_get_val_str(g.get(), arch_key)) + ".context_length";
  const int64_t id = gguf_find_key(g.get(), key.c_str());
  if (id < 0) return 0;
  switch (gguf_get_kv_type(g.get(), id)) {
    case GGUF_TYPE_UINT32: return gguf_get_val_u32(g.get(), id);
    case GGUF_TYPE_INT32: return static_cast<std::uint32_t>(std::max(0, gguf_get_val_i32(g.get(), id)));
    case GGUF_TYPE_UINT64:
      return static_cast<std::uint32_t>(std::min<uint64_t>(gguf_get_val_u64(g.get(), id), UINT32_MAX));
    default: return 0;
  }
}

llama_context_params context_params(const std::filesystem::path& model, const FitContext& ctx) {
  llama_context_params cp = llama_context_default_params();
  cp.n_seq_max = std::max<std::uint32_t>(1, ctx.n_seq_max);
  // The engine gives every slot the whole context: fit exactly that, never
  // a smaller one (a fitted context is only asked for with n_ctx 0).
  cp.n_ctx = ctx.n_ctx != 0 ? ctx.n_ctx : std::max<std::uint32_t>(16, training_context(model)) * cp.n_seq_max;
  cp.n_batch = ctx.n_batch;
  cp.n_ubatch = ctx.n_ubatch;
  cp.embeddings = ctx.embeddings;
  cp.kv_unified = false;
  return cp;
}

}  // namespace

std::vector<DeviceInfo> list_devices() {
  std::vector<DeviceInfo> out;
  for (size_t i = 0; i < ggml_backend_dev_count(); ++i) out.push_back(describe(ggml_backend_dev_get(i)));
  return out;
}

DeviceInfo device_now(const DeviceInfo& device) {
  ggml_backend_dev_t dev = ggml_backend_dev_by_name(device.name.c_str());
  if (dev == nullptr) return device;
  DeviceInfo now = device;
  size_t free = 0, total = 0;
  ggml_backend_dev_memory(dev, &free, &total);
  now.memory_free = free;
  now.memory_total = total;
  return now;
}

Result<GpuLayers> parse_gpu_layers(std::string_view text) {
  if (text == "auto") return GpuLayers{GpuLayers::Mode::kAuto, 0};
  if (text == "all" || text == "-1") return GpuLayers{GpuLayers::Mode::kAll, 0};
  int n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || end != text.data() + text.size() || n < 0 || n > 100000) {
    return fail(ErrorCode::kInvalidArgument,
                "gpu layers must be auto, all or a count 0..100000, not '" + std::string(text) + "'");
  }
  return GpuLayers{GpuLayers::Mode::kCount, n};
}

std::vector<std::string> parse_device_list(std::string_view text) {
  std::vector<std::string> out;
  if (text.empty() || text == "auto") return out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    std::string_view item = text.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    start = comma + 1;
  }
  return out;
}

Result<std::vector<float>> parse_tensor_split(std::string_view text) {
  std::vector<float> out;
  for (const std::string& item : parse_device_list(text)) {
    float v = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (ec != std::errc{} || end != item.data() + item.size() || !std::isfinite(v) || v < 0) {
      return fail(ErrorCode::kInvalidArgument, "tensor split must be non-negative numbers, as 3,1; not '" + item + "'");
    }
    out.push_back(v);
  }
  return out;
}

int Placement::gpu_layers(int n_layer) const {
  const int all = n_layer + 1;  // the repeating layers and the output
  return n_gpu_layers_param_ < 0 ? all : std::min(n_gpu_layers_param_, all);
}

void Placement::apply(llama_model_params& mp) const {
  mp.devices = const_cast<ggml_backend_dev_t*>(devices_.data());
  mp.n_gpu_layers = n_gpu_layers_param_;
  mp.split_mode = split_;
  mp.main_gpu = main_gpu_;
  if (!tensor_split_.empty()) mp.tensor_split = tensor_split_.data();
  if (!overrides_.empty()) mp.tensor_buft_overrides = overrides_.data();
}

std::vector<DeviceUse> Placement::memory_use(const std::filesystem::path& model, const FitContext& ctx) const {
  llama_model_params mp = llama_model_default_params();
  apply(mp);
  llama_context_params cp = context_params(model, ctx);
  std::vector<ggml_backend_dev_t> devs;
  uint32_t n_layer = 0, n_ctx_train = 0, n_expert = 0;
  common_device_memory_data_vec data;
  try {
    data = common_get_device_memory_data(model.c_str(), &mp, &cp, devs, n_layer, n_ctx_train, n_expert,
                                         GGML_LOG_LEVEL_ERROR);
  } catch (const std::exception&) {
    return {};
  }
  std::vector<DeviceUse> out;
  for (size_t i = 0; i < data.size(); ++i) {
    DeviceUse u;
    if (i < devs.size()) {
      u.device = describe(devs[i]);
    } else {
      u.device.name = "CPU";
      u.device.description = "host memory";
      u.device.type = "cpu";
    }
    u.device.memory_free = static_cast<std::uint64_t>(std::max<int64_t>(0, data[i].free));
    u.device.memory_total = static_cast<std::uint64_t>(std::max<int64_t>(0, data[i].total));
    u.model_bytes = data[i].model;
    u.context_bytes = data[i].context;
    u.compute_bytes = data[i].compute;
    out.push_back(std::move(u));
  }
  return out;
}

Result<Placement> plan_placement(const std::filesystem::path& model, const PlacementOptions& options,
                                 const FitContext& ctx) {
  Placement p;
  if (options.split_mode == "none") {
    p.split_ = LLAMA_SPLIT_MODE_NONE;
  } else if (options.split_mode == "layer") {
    p.split_ = LLAMA_SPLIT_MODE_LAYER;
  } else if (options.split_mode == "row") {
    p.split_ = LLAMA_SPLIT_MODE_ROW;
  } else {
    return fail(ErrorCode::kInvalidArgument, "split mode must be none, layer or row, not '" + options.split_mode + "'");
  }
  p.split_mode_ = options.split_mode;

  // The GPU devices asked for.
  std::vector<ggml_backend_dev_t> chosen;
  const bool none = options.devices.size() == 1 && options.devices.front() == "none";
  if (!none && !options.devices.empty()) {
    for (const std::string& name : options.devices) {
      ggml_backend_dev_t dev = ggml_backend_dev_by_name(name.c_str());
      if (dev == nullptr || !is_gpu(dev)) {
        return fail(ErrorCode::kInvalidArgument,
                    "no GPU device named '" + name + "'; available: " + available_devices());
      }
      if (std::find(chosen.begin(), chosen.end(), dev) == chosen.end()) chosen.push_back(dev);
    }
  } else if (!none) {
    chosen = default_gpu_devices();
  }
  const bool cpu_only =
      chosen.empty() || (options.gpu_layers.mode == GpuLayers::Mode::kCount && options.gpu_layers.count == 0);
  if (cpu_only) {
    // No device at all, not even for offloading big batches' matrix products.
    p.n_gpu_layers_param_ = 0;
    p.note_ = chosen.empty() ? (none ? "CPU only (--device none)" : "CPU only: no GPU device found")
                             : "CPU only (0 GPU layers)";
    return p;
  }

  if (options.main_gpu < 0 || options.main_gpu >= static_cast<int>(chosen.size())) {
    return fail(ErrorCode::kInvalidArgument,
                "main GPU must be an index 0.." + std::to_string(chosen.size() - 1) + " of the devices used");
  }
  p.main_gpu_ = options.main_gpu;
  if (options.tensor_split.size() > chosen.size() ||
      options.tensor_split.size() > static_cast<size_t>(llama_max_devices())) {
    return fail(ErrorCode::kInvalidArgument, "tensor split names " + std::to_string(options.tensor_split.size()) +
                                                 " proportions for " + std::to_string(chosen.size()) + " devices");
  }
  if (!options.tensor_split.empty()) {
    p.tensor_split_.assign(llama_max_devices(), 0.0f);
    std::copy(options.tensor_split.begin(), options.tensor_split.end(), p.tensor_split_.begin());
  }
  p.devices_ = chosen;
  p.devices_.push_back(nullptr);
  for (ggml_backend_dev_t dev : chosen) p.names_.emplace_back(ggml_backend_dev_name(dev));

  switch (options.gpu_layers.mode) {
    case GpuLayers::Mode::kCount:
      p.n_gpu_layers_param_ = options.gpu_layers.count;
      p.note_ = std::to_string(options.gpu_layers.count) + " layers asked for";
      break;
    case GpuLayers::Mode::kAll:
      p.n_gpu_layers_param_ = -1;
      p.note_ = "every layer asked for";
      break;
    case GpuLayers::Mode::kAuto: {
      if (!options.tensor_split.empty() || p.split_ == LLAMA_SPLIT_MODE_ROW) {
        // The user split the model (a tensor split, or rows across the
        // GPUs): llama.cpp's fitting refuses to change that. Every layer.
        p.n_gpu_layers_param_ = -1;
        p.note_ = "every layer, split as asked";
        break;
      }
      // llama.cpp's fitting: layers (and, across several devices, the split)
      // chosen so each device keeps the margin free.
      llama_model_params mp = llama_model_default_params();
      p.apply(mp);
      mp.n_gpu_layers = llama_model_default_params().n_gpu_layers;
      llama_context_params cp = context_params(model, ctx);
      std::vector<float> split(llama_max_devices(), 0.0f);
      p.overrides_.assign(llama_max_tensor_buft_overrides(), llama_model_tensor_buft_override{nullptr, nullptr});
      std::vector<size_t> margins(llama_max_devices(), static_cast<size_t>(options.fit_margin_bytes));
      const auto status = common_fit_params(model.c_str(), &mp, &cp, split.data(), p.overrides_.data(), margins.data(),
                                            cp.n_ctx, nullptr, GGML_LOG_LEVEL_ERROR);
      if (status == COMMON_PARAMS_FIT_STATUS_ERROR) {
        return fail(ErrorCode::kUnprocessable, "llama.cpp could not read the model to fit it to the GPU memory",
                    "invalid_model_file");
      }
      if (status == COMMON_PARAMS_FIT_STATUS_FAILURE) {
        // No placement leaves the margin free: the CPU only.
        p.devices_ = {nullptr};
        p.names_.clear();
        p.overrides_.clear();
        p.n_gpu_layers_param_ = 0;
        p.note_ = "CPU only: no placement leaves --fit-target free on " + available_devices();
        return p;
      }
      p.n_gpu_layers_param_ = mp.n_gpu_layers;
      if (mp.tensor_split == split.data()) p.tensor_split_ = std::move(split);
      if (mp.tensor_buft_overrides == nullptr) p.overrides_.clear();
      p.note_ = "fitted to free memory";
      break;
    }
  }
  return p;
}

}  // namespace llmd::runner
