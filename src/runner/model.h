// One loaded GGUF model: metadata, tokenizer and chat template.
#pragma once

#include <llama.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "runner/devices.h"
#include "runner/llama_handles.h"

namespace llmd::runner {

struct ModelOptions {
  // Devices and GPU layers (plan_placement); the default: the CPU only.
  Placement placement;
  bool use_mmap = true;     // map the file instead of reading it
  bool vocab_only = false;  // tokenizer and metadata only, no weights (fast; for tools)
};

// Static facts about a loaded model, for /props and the model catalog.
struct ModelInfo {
  std::string path;
  std::string architecture;  // general.architecture, e.g. "qwen2"
  std::string name;          // general.name, may be empty
  std::string description;   // llama_model_desc, e.g. "qwen2 ?B F16"
  uint64_t size_bytes = 0;
  uint64_t n_params = 0;
  int n_ctx_train = 0;
  int n_embd = 0;
  int n_layer = 0;
  int n_vocab = 0;
  bool has_chat_template = false;
};

// Checks that `path` is a structurally sound GGUF file without loading
// weights: magic and version, metadata parseable, every tensor inside the
// file and of a sane size. Errors: kNotFound (no such file),
// kUnprocessable (not a GGUF / truncated / corrupt), with a message that
// names the problem but not the path. Thread-safe.
Result<void> validate_gguf_file(const std::filesystem::path& path);

// A loaded model. Immutable after load, so every const member is thread-safe
// (llama.cpp's tokenizer API is thread-safe); contexts are created from it by
// the Engine. Shared by the engine and its callers through shared_ptr.
class Model {
 public:
  // Validates then loads the model. Calls init_backends() first.
  // Errors: those of validate_gguf_file, plus kUnprocessable when llama.cpp
  // rejects the file (unknown architecture, missing tensors, ...).
  static Result<std::shared_ptr<Model>> load(const std::filesystem::path& path, const ModelOptions& options = {});

  const ModelInfo& info() const { return info_; }
  llama_model* raw() const { return model_.get(); }
  const llama_vocab* vocab() const { return vocab_; }

  // Text → tokens. `add_special` adds BOS/EOS as the model asks;
  // `parse_special` turns control-token text such as "<|im_start|>" into
  // the control token (use it for templated prompts, not for user data
  // embedded elsewhere). Errors: kInvalidArgument when the text is too long
  // to tokenize.
  Result<std::vector<llama_token>> tokenize(std::string_view text, bool add_special, bool parse_special) const;

  // Tokens → text. `render_special` renders control tokens as their text.
  // Invalid token ids yield kInvalidArgument.
  Result<std::string> detokenize(std::span<const llama_token> tokens, bool render_special = false) const;

  // One token's bytes (may be a partial UTF-8 sequence). Precondition: valid id.
  std::string token_to_piece(llama_token token, bool render_special = false) const;

  bool is_valid_token(llama_token token) const { return token >= 0 && token < info_.n_vocab; }
  // True for end-of-generation tokens (EOS, EOT, <|im_end|>, ...).
  bool is_eog(llama_token token) const { return llama_vocab_is_eog(vocab_, token); }
  // Every end-of-generation token of the vocabulary.
  const std::vector<llama_token>& eog_tokens() const { return eog_tokens_; }

  // The model's own chat template text (tokenizer.chat_template), empty if none.
  std::string chat_template() const;

  // The tokens a reranker scores for (query, document), as llama-server
  // builds them: the model's rerank template (tokenizer.chat_template.rerank,
  // {query} and {document} filled in) where it has one, else
  // [BOS] query [EOS] [SEP] document [EOS] as the vocabulary adds them.
  // Control-token text inside the query or document stays text, so a
  // document cannot close the prompt and answer for itself.
  Result<std::vector<llama_token>> rerank_prompt(std::string_view query, std::string_view document) const;

  // A metadata value by key (e.g. "general.name"), empty when absent.
  std::string meta(const std::string& key) const;

 private:
  Model() = default;
  LlamaModelPtr model_;
  const llama_vocab* vocab_ = nullptr;  // owned by model_
  std::vector<llama_token> eog_tokens_;
  ModelInfo info_;
};

}  // namespace llmd::runner
