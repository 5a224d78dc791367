// bare_decode: the ceiling for the runner benchmark. A plain in-process
// llama_decode loop on one sequence with the same libraries the runner uses:
// prompt processing in one batch, then greedy single-token decode steps.
//
//   bare_decode --model m.gguf --threads 2 [--prompt 128] [--gen 128] [--ctx 2048] [--reps 1]
//               [--gpu-layers N|all]
//
// --gpu-layers: layers offloaded to the GPU devices ggml loaded (all: every layer and the
// output); 0, the default, uses no device at all, like `llmd runner --gpu-layers 0`.
// Prints one JSON line: {"model":..., "threads":..., "gpu_layers":..., "prompt_tokens":...,
// "pp_tps":..., "gen_tokens":..., "tg_tps":...}. Exit code 1 on any failure.
#include <llama.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "runner/backend.h"
#include "runner/llama_handles.h"

namespace {

using Clock = std::chrono::steady_clock;

int usage() {
  std::fprintf(stderr,
               "usage: bare_decode --model FILE [--threads N] [--prompt N] [--gen N] [--ctx N] [--reps N] "
               "[--gpu-layers N|all]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_path;
  int threads = 2, n_prompt = 128, n_gen = 128, n_ctx = 2048, reps = 1;
  int gpu_layers = 0;  // -1: all
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = next();
    if (v == nullptr) return usage();
    if (a == "--model")
      model_path = v;
    else if (a == "--threads")
      threads = std::atoi(v);
    else if (a == "--prompt")
      n_prompt = std::atoi(v);
    else if (a == "--gen")
      n_gen = std::atoi(v);
    else if (a == "--ctx")
      n_ctx = std::atoi(v);
    else if (a == "--reps")
      reps = std::atoi(v);
    else if (a == "--gpu-layers")
      gpu_layers = std::strcmp(v, "all") == 0 ? -1 : std::atoi(v);
    else
      return usage();
  }
  if (model_path.empty() || threads < 1 || n_prompt < 1 || n_gen < 1 || reps < 1 || n_prompt + n_gen > n_ctx ||
      gpu_layers < -1) {
    return usage();
  }

  llmd::runner::init_backends();
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = gpu_layers;
  // No layers: no device either, or llama.cpp would still hand large batches to a GPU.
  ggml_backend_dev_t no_devices[] = {nullptr};
  if (gpu_layers == 0) mp.devices = no_devices;
  llmd::runner::LlamaModelPtr model{llama_model_load_from_file(model_path.c_str(), mp)};
  if (!model) {
    std::fprintf(stderr, "bare_decode: cannot load %s\n", model_path.c_str());
    return 1;
  }
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = static_cast<uint32_t>(n_ctx);
  cp.n_batch = static_cast<uint32_t>(std::max(n_prompt, 1));
  cp.n_ubatch = std::min<uint32_t>(cp.n_batch, 512);
  cp.n_threads = threads;
  cp.n_threads_batch = threads;
  cp.no_perf = true;
  llmd::runner::LlamaContextPtr ctx{llama_init_from_model(model.get(), cp)};
  if (!ctx) {
    std::fprintf(stderr, "bare_decode: cannot create context\n");
    return 1;
  }
  const llama_vocab* vocab = llama_model_get_vocab(model.get());
  const int n_vocab = llama_vocab_n_tokens(vocab);

  // Deterministic pseudo-random prompt of ordinary tokens.
  std::vector<llama_token> prompt(static_cast<size_t>(n_prompt));
  uint32_t x = 12345;
  for (auto& t : prompt) {
    x = x * 1664525u + 1013904223u;
    t = static_cast<llama_token>(100 + x % static_cast<uint32_t>(std::min(n_vocab - 100, 30000)));
  }

  double pp_s = 0, tg_s = 0;
  llmd::runner::LlamaBatch batch(std::max(n_prompt, 1), 1);
  for (int rep = 0; rep < reps + 1; ++rep) {  // rep 0 warms up and is not counted
    llama_memory_clear(llama_get_memory(ctx.get()), true);
    batch.clear();
    for (int i = 0; i < n_prompt; ++i) batch.add(prompt[static_cast<size_t>(i)], i, 0, i == n_prompt - 1);
    const auto t0 = Clock::now();
    if (llama_decode(ctx.get(), batch.get()) != 0) {
      std::fprintf(stderr, "bare_decode: prompt decode failed\n");
      return 1;
    }
    const auto t1 = Clock::now();
    int idx = n_prompt - 1;
    llama_pos pos = n_prompt;
    const int gen = rep == 0 ? 4 : n_gen;
    for (int g = 0; g < gen; ++g) {
      // Greedy: argmax of the last logits.
      const float* logits = llama_get_logits_ith(ctx.get(), idx);
      llama_token best = 0;
      for (llama_token t = 1; t < n_vocab; ++t) {
        if (logits[t] > logits[best]) best = t;
      }
      batch.clear();
      batch.add(best, pos++, 0, true);
      idx = 0;
      if (llama_decode(ctx.get(), batch.get()) != 0) {
        std::fprintf(stderr, "bare_decode: decode failed at token %d\n", g);
        return 1;
      }
    }
    const auto t2 = Clock::now();
    if (rep > 0) {
      pp_s += std::chrono::duration<double>(t1 - t0).count();
      tg_s += std::chrono::duration<double>(t2 - t1).count();
    }
  }
  std::printf(
      "{\"bench\":\"bare_decode\",\"model\":\"%s\",\"threads\":%d,\"gpu_layers\":%d,\"prompt_tokens\":%d,"
      "\"pp_tps\":%.2f,\"gen_tokens\":%d,\"tg_tps\":%.2f,\"reps\":%d,\"llama\":\"%s\"}\n",
      model_path.c_str(), threads, gpu_layers, n_prompt, n_prompt * reps / pp_s, n_gen, n_gen * reps / tg_s, reps,
      llama_print_system_info());
  return 0;
}
