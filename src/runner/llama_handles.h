// Owning smart pointers for llama.cpp's C handles. Every llama object the
// runner creates is held by one of these; nothing is freed by hand.
#pragma once

#include <llama.h>

#include <memory>

namespace llmd::runner {

struct LlamaModelDeleter {
  void operator()(llama_model* m) const noexcept { llama_model_free(m); }
};
struct LlamaContextDeleter {
  void operator()(llama_context* c) const noexcept { llama_free(c); }
};
struct LlamaSamplerDeleter {
  void operator()(llama_sampler* s) const noexcept { llama_sampler_free(s); }
};

struct LlamaLoraDeleter {
  void operator()(llama_adapter_lora* a) const noexcept { llama_adapter_lora_free(a); }
};

using LlamaModelPtr = std::unique_ptr<llama_model, LlamaModelDeleter>;
using LlamaLoraPtr = std::unique_ptr<llama_adapter_lora, LlamaLoraDeleter>;
using LlamaContextPtr = std::unique_ptr<llama_context, LlamaContextDeleter>;
using LlamaSamplerPtr = std::unique_ptr<llama_sampler, LlamaSamplerDeleter>;

// A llama_batch allocated with llama_batch_init, freed on destruction.
// Not copyable; one owner (the engine thread).
class LlamaBatch {
 public:
  LlamaBatch(int32_t capacity, int32_t n_seq_max)
      : batch_(llama_batch_init(capacity, 0, n_seq_max)), capacity_(capacity) {}
  ~LlamaBatch() { llama_batch_free(batch_); }
  LlamaBatch(const LlamaBatch&) = delete;
  LlamaBatch& operator=(const LlamaBatch&) = delete;

  void clear() { batch_.n_tokens = 0; }
  int32_t size() const { return batch_.n_tokens; }
  int32_t capacity() const { return capacity_; }
  // Appends one token of sequence `seq` at position `pos`; returns its index.
  int32_t add(llama_token token, llama_pos pos, llama_seq_id seq, bool want_logits) {
    const int32_t i = batch_.n_tokens++;
    batch_.token[i] = token;
    batch_.pos[i] = pos;
    batch_.n_seq_id[i] = 1;
    batch_.seq_id[i][0] = seq;
    batch_.logits[i] = want_logits ? 1 : 0;
    return i;
  }
  const llama_batch& get() const { return batch_; }

 private:
  llama_batch batch_;
  int32_t capacity_;
};

}  // namespace llmd::runner
