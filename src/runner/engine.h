// The inference engine: one model, one llama_context, N parallel slots,
// continuous batching. No HTTP here; the runner's endpoints sit on top.
//
//   auto model = Model::load("m.gguf");
//   auto engine = Engine::create(*model, {.n_ctx = 4096, .n_parallel = 4});
//   GenerateRequest req{.prompt = "Hello"};
//   req.max_tokens = 32;
//   auto out = (*engine)->generate(std::move(req));   // blocking
//
// Threading: one engine thread owns the llama_context and every slot; all
// public members may be called from any thread. Requests enter a bounded
// queue; each decode step batches the next token of every generating slot
// with pending prompt chunks (chunked prefill), so a long prompt never stalls
// running streams.
#pragma once

#include <llama.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "runner/model.h"
#include "runner/sampling.h"

namespace llmd::runner {

// A LoRA adapter to load with the model, and its scale until changed
// (0: loaded but off).
struct LoraAdapterSpec {
  std::string path;
  float scale = 1.0f;
};

struct EngineOptions {
  int n_ctx = 4096;         // context per slot (max prompt + completion tokens); 0 = model's n_ctx_train
  int n_parallel = 1;       // slots decoding concurrently
  int n_threads = 0;        // generation threads; 0 = hardware concurrency
  int n_threads_batch = 0;  // prompt-processing threads; 0 = n_threads
  int n_batch = 512;        // tokens per decode step (all slots together)
  int queue_max = 64;       // requests waiting for a slot beyond which submit() fails
  // Serve embeddings instead of completions (context created with pooling).
  bool embeddings = false;
  // Pooling for embeddings: UNSPECIFIED = the model's own (generative models
  // have none, so embeddings then fail with kUnprocessable); MEAN/LAST/CLS force
  // one; NONE asks for one vector per token (embed_tokens); RANK makes the
  // engine a reranker (rank()).
  enum llama_pooling_type pooling = LLAMA_POOLING_TYPE_UNSPECIFIED;
  // LoRA adapters of the model (llama-server's --lora / --lora-scaled), by id = index.
  std::vector<LoraAdapterSpec> lora_adapters;
};

// The context an engine with these options creates, for fitting the model's
// placement to it (plan_placement). n_ctx 0 stays 0: the model's training
// context per slot.
FitContext fit_context(const EngineOptions& options);

// A loaded LoRA adapter and its current default scale.
struct LoraAdapterInfo {
  int id = 0;
  std::string path;
  float scale = 0;
};

// A LoRA scale a request or POST /lora-adapters sets: adapter id, scale.
struct LoraScale {
  int id = 0;
  float scale = 0;
};

enum class FinishReason { kStop, kLength, kCancelled };

// "stop", "length", "cancelled".
std::string_view to_string(FinishReason reason);

struct GenerateRequest {
  // The prompt: `prompt_tokens` if non-empty, else `prompt` tokenized with
  // control-token parsing (so chat-templated text maps to special tokens).
  std::string prompt;
  std::vector<llama_token> prompt_tokens;
  bool add_special = true;  // add BOS etc. when tokenizing `prompt`
  SamplingParams sampling;
  int max_tokens = -1;            // -1: until end-of-generation or the context is full
  std::vector<std::string> stop;  // stop strings; not included in the output
  bool cache_prompt = true;       // reuse a slot's cached prefix of this prompt
  bool ignore_eos = false;        // keep generating past end-of-generation (benchmarks)
  // Special tokens written into the text (tool-call and thinking markers a
  // chat parser reads back); other special tokens are not rendered.
  std::vector<llama_token> preserved_tokens;
  // The LoRA adapters this request runs with (llama-server's per-request
  // "lora"): adapters not listed are off. Unset: the engine's default scales.
  std::optional<std::vector<LoraScale>> lora;
  // -1: no probabilities. N >= 0: every sampled token's log-probability (the
  // model's own distribution, before sampling settings) and the N likeliest
  // alternatives (OpenAI's logprobs/top_logprobs, llama-server's n_probs).
  int n_probs = -1;
};

// One sampled token's log-probability and its likeliest alternatives.
struct TokenProb {
  llama_token token = 0;
  float logprob = 0;
  std::vector<std::pair<llama_token, float>> top;  // most likely first
};

struct Usage {
  int prompt_tokens = 0;         // tokens in the prompt
  int cached_prompt_tokens = 0;  // of which reused from the slot's cache
  int completion_tokens = 0;     // tokens sampled (end-of-generation token included)
};

struct Timings {
  double queue_ms = 0;        // waiting for a slot
  double prompt_ms = 0;       // slot assigned → first token sampled
  double generation_ms = 0;   // first token → finish
  double first_token_ms = 0;  // submit → first token sampled
};

struct Completion {
  std::string text;
  FinishReason finish = FinishReason::kStop;
  Usage usage;
  Timings timings;
  int slot = -1;                    // slot that served the request
  std::vector<TokenProb> probs;     // one per sampled token when n_probs >= 0 (end of generation excluded)
  std::vector<llama_token> tokens;  // the sampled tokens (end of generation excluded)
};

struct GenerateCallbacks {
  // Receives each new piece of text as soon as it is safe to send (whole
  // UTF-8 sequences, never part of a stop string; never empty). Return false
  // to cancel the request. Runs on the engine thread: must not block.
  std::function<bool(std::string_view)> on_text;
  // Receives the usage so far (prompt size, cached part, tokens sampled)
  // after every sampled token, the first time right after the prompt is
  // evaluated, whether or not text could be sent yet. Optional. Runs on the
  // engine thread: must not block.
  std::function<void(const Usage&)> on_progress;
  // Receives each sampled token's probabilities (n_probs >= 0), before the
  // token's text. Optional. Runs on the engine thread: must not block.
  std::function<void(const TokenProb&)> on_token_prob;
  // Called exactly once with the final result (text = everything sent
  // through on_text), or with an error (e.g. kUnavailable when the engine
  // shuts down first). Runs on the engine thread: must not block.
  std::function<void(Result<Completion>)> on_done;
};

// What one slot is doing, for monitoring (llama-server's /slots): no
// prompt or generated text, which belong to the caller alone.
struct SlotState {
  int id = 0;
  bool busy = false;
  uint64_t request = 0;     // the engine's number of the request it serves or served last; 0: none yet
  int n_prompt_tokens = 0;  // of that request
  int n_prompt_cached = 0;  // of which reused from the cache
  int n_decoded = 0;        // tokens sampled for it so far (0 once idle)
  int n_remain = -1;        // tokens it may still sample; -1: no limit, or idle
};

struct EngineStats {
  int slots_total = 0;
  int slots_busy = 0;
  int queue_length = 0;
  uint64_t requests_total = 0;
  uint64_t prompt_tokens_total = 0;      // prompt tokens decoded (cache hits excluded)
  uint64_t completion_tokens_total = 0;  // tokens sampled
  double decode_seconds_total = 0;       // wall time inside llama_decode
};

class Engine;
struct EngineShared;
struct Task;

// A submitted request. Destroying the handle (or calling cancel()) cancels
// the request: its slot is freed at the next decode step and on_done is
// called with FinishReason::kCancelled. Thread-safe; movable, not copyable.
class RequestHandle {
 public:
  RequestHandle() = default;
  RequestHandle(RequestHandle&&) noexcept = default;
  RequestHandle& operator=(RequestHandle&& other) noexcept;
  RequestHandle(const RequestHandle&) = delete;
  RequestHandle& operator=(const RequestHandle&) = delete;
  ~RequestHandle();

  void cancel();
  // Lets the request run to completion even if the handle is dropped.
  void detach() { task_.reset(); }

 private:
  friend class Engine;
  explicit RequestHandle(std::shared_ptr<Task> task) : task_(std::move(task)) {}
  std::shared_ptr<Task> task_;
};

class Engine {
 public:
  // Creates the context and starts the engine thread. Errors:
  // kInvalidArgument (bad options), kInternal (llama.cpp failed to create
  // the context, e.g. out of memory).
  static Result<std::unique_ptr<Engine>> create(std::shared_ptr<const Model> model, const EngineOptions& options);
  // Stops the engine thread; requests still running or queued get on_done
  // with kUnavailable. Must not be called from an engine callback.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates and queues a request. Errors (returned here, no callback):
  // kInvalidArgument (bad sampling params or grammar, empty prompt, prompt
  // longer than the slot context, max_tokens out of range, invalid token id),
  // kUnavailable with retry_after when the queue is full, kUnprocessable in
  // embeddings mode. Thread-safe.
  Result<RequestHandle> submit(GenerateRequest request, GenerateCallbacks callbacks);

  // Several choices of one prompt (OpenAI's `n`), one per callbacks entry:
  // the prompt is evaluated once, in the first choice's slot, and its KV
  // state copied into the others' slots, which then sample on their own.
  // With a seed, choice i samples with seed + i. The request waits until
  // it has as many free slots as choices. Errors as submit(), and
  // kInvalidArgument for no choices or more choices than slots. Handles
  // in choice order; each cancels its own choice.
  Result<std::vector<RequestHandle>> submit_choices(GenerateRequest request, std::vector<GenerateCallbacks> callbacks);

  // Blocking convenience over submit(): waits for the result. `on_text` as in
  // GenerateCallbacks. Thread-safe; not from an engine callback.
  Result<Completion> generate(GenerateRequest request, std::function<bool(std::string_view)> on_text = {});

  // Embedding of `text` (pooled, L2-normalised). Requires options.embeddings
  // and a model/context with pooling; otherwise kUnprocessable. Blocking;
  // thread-safe; not from an engine callback.
  Result<std::vector<float>> embed(std::string_view text);

  // The embedding of a tokenized input: one vector, normalised by
  // `normalize` (llama-server's embd_normalize: -1 none, 0 max-abs scaled to
  // int16, 1 taxicab, 2 euclidean, >2 p-norm); with pooling NONE one raw
  // vector per token. Errors: kInvalidArgument for no tokens, an invalid id
  // or more than fit; otherwise as embed().
  Result<std::vector<std::vector<float>>> embed_tokens(std::vector<llama_token> tokens, int normalize = 2);

  // How relevant `document` is to `query` (the reranker's first output,
  // e.g. P("yes") for Qwen3-Reranker; higher is more relevant), and the
  // tokens it took. Requires a reranking engine (options.embeddings with
  // RANK pooling, or a model whose own pooling is RANK); otherwise
  // kNotImplemented. Errors as embed(). Blocking; thread-safe; not from an
  // engine callback.
  struct Rank {
    float score = 0;
    int n_tokens = 0;
  };
  Result<Rank> rank(std::string_view query, std::string_view document);
  // The LoRA adapters loaded with the model, with their default scales.
  std::vector<LoraAdapterInfo> lora_adapters() const;
  // Sets the default scales (POST /lora-adapters): adapters not listed are
  // off. Requests queued before keep the scales they were submitted with.
  // Errors: kInvalidArgument for an unknown id or a scale outside [-100, 100].
  Result<void> set_lora_scales(const std::vector<LoraScale>& scales);

  // The context's pooling (LLAMA_POOLING_TYPE_NONE when not in embeddings mode).
  enum llama_pooling_type pooling() const { return pooling_; }

  const Model& model() const { return *model_; }
  const EngineOptions& options() const { return options_; }
  // Tokens one slot can hold (prompt + completion).
  int n_ctx_slot() const { return n_ctx_slot_; }
  EngineStats stats() const;  // thread-safe snapshot
  // Every slot's state as of the last decode step. Thread-safe snapshot.
  std::vector<SlotState> slots() const;

 private:
  struct Impl;
  Engine(std::shared_ptr<const Model> model, const EngineOptions& options);
  // Validates and tokenizes a request and builds its sampler (submit's checks).
  Result<std::shared_ptr<Task>> prepare(GenerateRequest request, GenerateCallbacks callbacks) const;
  // Queues a prepared task (with its followers), or refuses it when the queue is full.
  Result<void> enqueue(std::shared_ptr<Task> task);
  // One scale per loaded adapter for `scales` (unlisted: 0), or an error for
  // an unknown id or a scale out of range.
  Result<std::vector<float>> resolve_lora(const std::vector<LoraScale>& scales) const;
  // The embeddings output for `tokens` (embed, embed_tokens and rank).
  Result<std::vector<std::vector<float>>> pool(std::vector<llama_token> tokens, int normalize);
  std::shared_ptr<const Model> model_;
  EngineOptions options_;
  int n_ctx_slot_ = 0;
  enum llama_pooling_type pooling_ = LLAMA_POOLING_TYPE_NONE;
  mutable std::mutex lora_mu_;
  std::vector<float> lora_scales_;  // GUARDED_BY(lora_mu_): default scale per adapter
  std::shared_ptr<EngineShared> shared_;
  std::unique_ptr<Impl> impl_;  // engine-thread state
};

}  // namespace llmd::runner
