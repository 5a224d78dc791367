// Engine internals shared by engine.cpp's pieces: queued tasks, the state
// the submitting threads share with the engine thread, and slots.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "runner/engine.h"
#include "runner/llama_handles.h"
#include "runner/text_stream.h"

namespace llmd::runner {

using Clock = std::chrono::steady_clock;

// State shared between submitting threads, request handles and the engine
// thread. Lives as long as the longest of the engine and its handles.
struct EngineShared {
  std::mutex mu;
  std::condition_variable cv;               // signalled on new work, cancel, stop
  std::deque<std::shared_ptr<Task>> queue;  // GUARDED_BY(mu): waiting for a slot
  bool stopping = false;                    // GUARDED_BY(mu)

  // Statistics: written by the engine thread (and submit for queue/requests),
  // read by anyone.
  std::atomic<int> slots_busy{0};
  std::atomic<int> queue_length{0};
  std::atomic<uint64_t> requests_total{0};
  std::atomic<uint64_t> prompt_tokens_total{0};
  std::atomic<uint64_t> completion_tokens_total{0};
  std::atomic<uint64_t> decode_us_total{0};

  mutable std::mutex slots_mu;
  std::vector<SlotState> slot_states;  // GUARDED_BY(slots_mu): published by the engine thread

  void wake() {
    std::lock_guard lock(mu);
    cv.notify_all();
  }
};

// One request from submit() to on_done. Immutable after submit except the
// atomics; the engine thread alone touches `sampler` and calls the callbacks.
struct Task {
  enum class Kind { kGenerate, kEmbed };
  Kind kind = Kind::kGenerate;
  GenerateRequest request;  // prompt_tokens always filled
  GenerateCallbacks callbacks;
  // The other choices of the same prompt (Engine::submit_choices), queued
  // with this one and moved into slots of their own when it is assigned.
  std::vector<std::shared_ptr<Task>> followers;
  std::function<void(Result<std::vector<std::vector<float>>>)> on_embedding;  // kEmbed
  int normalize = 2;        // kEmbed: embd_normalize of a pooled vector (-1: as is, for a reranker's scores)
  std::vector<float> lora;  // the scale of each loaded LoRA adapter for this task
  std::unique_ptr<Sampler> sampler;
  std::shared_ptr<EngineShared> shared;
  Clock::time_point submitted = Clock::now();
  std::atomic<bool> cancelled{false};
  std::atomic<bool> done{false};
};

// A sequence in the shared context (seq_id == id). Engine thread only.
struct Slot {
  // kAwaitFork: holds a further choice of another slot's prompt until that
  // prompt is evaluated and its KV state copied here.
  enum class Phase { kIdle, kAwaitFork, kPrefill, kGenerate };

  int id = 0;
  Phase phase = Phase::kIdle;
  std::shared_ptr<Task> task;      // null when idle
  std::vector<llama_token> cache;  // exactly the tokens of this sequence in the KV cache
  std::vector<float> cache_lora;   // the LoRA scales those tokens were evaluated with
  uint64_t last_step = 0;          // the decode step that last included this slot
  std::size_t n_prompt_done = 0;   // prompt tokens already in the KV cache
  int n_cached = 0;                // of which reused from the previous request
  llama_token pending = -1;        // sampled, decoded in the next step
  int32_t i_batch = -1;            // index of this slot's logits in the current batch
  int n_decoded = 0;               // tokens sampled for the current request
  uint64_t last_used = 0;          // for least-recently-used slot choice
  uint64_t assignment = 0;         // counts the tasks this slot was given
  uint64_t request = 0;            // the engine's number of the current (or last) task
  // While this slot evaluates a prompt with further choices: the slots
  // (id, assignment) waiting in kAwaitFork for its KV state.
  std::vector<std::pair<int, uint64_t>> forks;
  std::optional<TextStream> stream;
  std::vector<TokenProb> probs;      // of the tokens sampled so far (n_probs >= 0)
  std::vector<llama_token> sampled;  // the tokens sampled so far (end of generation excluded)
  Clock::time_point t_assigned;
  std::optional<Clock::time_point> t_first_token;

  bool busy() const { return phase != Phase::kIdle; }
};

}  // namespace llmd::runner
