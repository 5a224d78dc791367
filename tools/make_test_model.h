// Writes small random-weight GGUF models for tests and benchmarks.
//
// The model borrows a real tokenizer (vocabulary, merges/scores, special
// tokens, chat template) from a vocab-only GGUF of the llama.cpp source
// bundle, so tokenization, chat templates and grammars behave as with a real
// model while the text it generates is noise. Output is a deterministic
// function of (shape, seed, vocab file).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "core/error.h"

namespace llmd::tools {

// Architecture and hyper-parameters of the generated model.
struct TestModelShape {
  // "qwen2" (Qwen2 BPE vocab, ChatML), "qwen3" (the same vocab; per-head
  // query/key norms, no biases) or "llama" (SentencePiece).
  std::string arch = "qwen2";
  int n_layer = 2;
  int n_embd = 64;
  int n_head = 4;
  int n_head_kv = 2;
  int n_ff = 128;
  int n_ctx_train = 4096;
};

// The shape of Qwen2.5-0.5B (embd 896, 24 layers, 14 heads, 2 KV heads,
// ff 4864, tied embeddings, ctx 32768): runs exactly as fast as the real model.
TestModelShape qwen2_5_0_5b_shape();

struct TestModelOptions {
  TestModelShape shape;
  uint64_t seed = 42;
  std::filesystem::path out;        // file to write (overwritten)
  std::filesystem::path vocab_dir;  // empty: default_vocab_dir()
  // Empty: weights stay F16 (norms and biases F32). Otherwise a llama.cpp
  // quantization name, e.g. "Q4_K_M", "Q8_0": the F16 file is written to a
  // temporary beside `out` and quantized with llama_model_quantize.
  std::string quantize;
  int threads = 0;  // quantization threads; 0 = hardware concurrency
  // tokenizer.chat_template to embed (Jinja text or a llama.cpp built-in
  // name); empty: the vocab file's own.
  std::string chat_template;
  // Appends Qwen2.5-Coder's fill-in-the-middle control tokens
  // (<|fim_prefix|>, <|fim_middle|>, <|fim_suffix|>, <|fim_pad|>,
  // <|repo_name|>, <|file_sep|>) to the vocabulary, as its GGUF has them.
  bool fim_tokens = false;
  // A Qwen3-Reranker-shaped model (arch qwen3 only): a two-label ("yes",
  // "no") classifier head, rank pooling and the rerank prompt template, so
  // llama.cpp scores (query, document) pairs as with the real model.
  bool reranker = false;
};

// Directory of ggml-vocab-*.gguf: $LLMD_VOCAB_DIR if set, else the
// engine/llama/vocab directory this build was configured with.
std::filesystem::path default_vocab_dir();

// Directory of the real model chat templates of the llama.cpp release
// (engine/llama/templates, *.jinja): $LLMD_TEMPLATES_DIR if set, else the
// directory beside default_vocab_dir().
std::filesystem::path default_templates_dir();

// Writes the model. Errors: kInvalidArgument (unknown arch, inconsistent
// shape, unknown quantization), kNotFound (vocab file missing), kInternal
// (write or quantization failure). Thread-safe (no shared state).
Result<void> make_test_model(const TestModelOptions& options);

// A random LoRA adapter for a (generated) model: low-rank updates of every
// attention and feed-forward matrix of `base`, in llama.cpp's adapter GGUF
// format, strong enough that greedy output changes with its scale.
struct TestLoraOptions {
  std::filesystem::path base;  // the model the adapter is for
  std::filesystem::path out;   // file to write (overwritten)
  int rank = 8;
  uint64_t seed = 42;
};

// Writes the adapter. Errors: kInvalidArgument (unreadable base, bad rank),
// kInternal (write failure). Thread-safe.
Result<void> make_test_lora(const TestLoraOptions& options);

}  // namespace llmd::tools
