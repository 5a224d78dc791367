// The HTTP face of `llmd runner`: llama-server's dialect (/health, /props,
// /completion, /infill, /tokenize, /detokenize, /apply-template, /metrics) and the
// OpenAI one (/v1/models, /v1/chat/completions, /v1/completions,
// /v1/embeddings) over one Engine. Handlers are thin: parsing and shaping
// live in openai.h, inference in engine.h.
//
// Lifecycle: the server listens before the model is loaded; until
// RunnerService::load() succeeded every route but /health and /metrics
// answers 503 loading_model (and /health 503 {"status":"loading model"}).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/error.h"
#include "http/context.h"
#include "http/router.h"
#include "http/worker_pool.h"
#include "observe/log.h"
#include "observe/metrics.h"
#include "runner/chat.h"
#include "runner/engine.h"
#include "runner/model.h"

namespace llmd::runner {

struct RunnerConfig {
  std::string model_path;
  std::string alias;  // name in /v1/models and responses; default: the file's stem
  // Override: a llama.cpp built-in name (chatml, llama3, ...) or Jinja
  // template text; empty: the model's own.
  std::string chat_template;
  std::string build_info;  // e.g. "llmd 0.1.0", shown in /props
  // Tokens a request generates at most, and when it names no limit (-1:
  // none; llama-server's --n-predict).
  int n_predict = -1;
  // GET /slots answers (otherwise 501, as llama-server's --no-slots).
  bool slots_endpoint = true;
  // Whether a chat thinks when the request does not say (enable_thinking):
  // none leaves it to the template (llama-server's --reasoning auto).
  std::optional<bool> reasoning;
  // Every whole reply carries "__verbose": the prompt as rendered and
  // llama-server's /completion fields (llama-server's --verbose; a request's
  // own "verbose": true asks the same).
  bool verbose = false;
  // Devices and GPU layers (--device, --gpu-layers, ...): planned at load.
  PlacementOptions placement;
  ModelOptions model;
  EngineOptions engine;
};

// Owns the model and engine once loaded. load() runs on one background
// thread; everything else is thread-safe and may run on I/O threads.
class RunnerService {
 public:
  RunnerService(RunnerConfig config, observe::Registry& metrics, observe::Logger log);
  ~RunnerService();
  RunnerService(const RunnerService&) = delete;
  RunnerService& operator=(const RunnerService&) = delete;

  // Validates and loads the GGUF, creates the engine, then marks the service
  // ready. Blocking (seconds); call once. Errors: those of Model::load and
  // Engine::create (a corrupt file is kUnprocessable with a clear message).
  Result<void> load();

  // True once load() succeeded (acquire: model() and engine() are then set).
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  // Preconditions: ready().
  const Model& model() const { return *model_; }
  Engine& engine() const { return *engine_; }
  // The chat template layer (the model's template, or the configured override).
  const ChatTemplates& templates() const { return *templates_; }
  const RunnerConfig& config() const { return config_; }
  const std::string& alias() const { return config_.alias; }
  int64_t loaded_at() const { return loaded_at_; }  // Unix seconds
  // Where the model went (preconditions: ready()): the GPU devices and
  // layers, and what each device (and the host, last) holds for it.
  const Placement& placement() const { return config_.model.placement; }
  const std::vector<DeviceUse>& device_use() const { return device_use_; }
  // OpenAI's system_fingerprint, as llama-server writes it: the engine's
  // build number and commit ("b1234-abcdef0").
  std::string fingerprint() const;

  // Records a finished generation in the metrics (tokens/s, time to first token).
  void observe_completion(const Completion& c);

  // Stops the engine (requests in flight complete with kUnavailable). Call
  // after the HTTP server stopped; idempotent.
  void shutdown();

 private:
  RunnerConfig config_;
  observe::Registry& metrics_;
  observe::Logger log_;
  std::shared_ptr<Model> model_;            // set by load() before ready_
  std::unique_ptr<Engine> engine_;          // set by load() before ready_
  std::optional<ChatTemplates> templates_;  // set by load() before ready_
  std::atomic<bool> ready_{false};
  int64_t loaded_at_ = 0;
  std::vector<DeviceUse> device_use_;  // set by load() before ready_
  observe::Gauge* tokens_per_second_ = nullptr;
  observe::Histogram* first_token_seconds_ = nullptr;
  std::mutex stats_mu_;
  EngineStats last_stats_;  // GUARDED_BY(stats_mu_): for counter deltas
};

// Where the model went, for /props and the log: {"devices": [{name,
// description, type, memory_total, memory_free, model_bytes, context_bytes,
// compute_bytes}], "gpu_layers", "n_layer", "split_mode"}; the host is the
// last device, named "CPU". Preconditions: service.ready().
nlohmann::ordered_json placement_json(const RunnerService& service);

// Registers every runner route on `router`. `service` and `pool` must
// outlive the router's use (the server).
void add_runner_routes(http::Router& router, RunnerService& service, http::WorkerPool& pool);

// 503 loading_model for every path but /health and /metrics until the
// service is ready.
http::Middleware loading_middleware(const RunnerService& service);

// Requires `Authorization: Bearer <key>` on every path but /health; 401
// invalid_api_key otherwise. Constant-time comparison.
http::Middleware api_key_middleware(std::string key);

}  // namespace llmd::runner
