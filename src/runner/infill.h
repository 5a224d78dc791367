// Fill-in-the-middle prompts: the text around a gap laid out with the
// model's FIM tokens, as llama-server's /infill lays it out (the
// repository-level pattern of Qwen2.5-Coder, arXiv:2409.12186):
//
//   [FIM_REP]myproject\n [FIM_SEP]file\n text ... [FIM_SEP]filename\n
//   [BOS] [FIM_PRE]prefix+prompt [FIM_SUF]suffix [FIM_MID]
//
// The repository and file parts appear only when the model has those
// tokens; without separators the files are joined by a "--- snippet ---"
// line instead.
#pragma once

#include <llama.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "runner/model.h"

namespace llmd::runner {

// The model's fill-in-the-middle tokens; prefix, suffix and middle are
// required, repository and file separators optional (LLAMA_TOKEN_NULL).
struct FimTokens {
  llama_token prefix = LLAMA_TOKEN_NULL;
  llama_token suffix = LLAMA_TOKEN_NULL;
  llama_token middle = LLAMA_TOKEN_NULL;
  llama_token repository = LLAMA_TOKEN_NULL;
  llama_token file_separator = LLAMA_TOKEN_NULL;
};

// None when the model lacks a prefix, suffix or middle token.
std::optional<FimTokens> fim_tokens(const Model& model);

struct FimText {
  std::string prefix;
  std::string suffix;
  std::string prompt;                                      // written at the gap after the prefix
  std::vector<std::pair<std::string, std::string>> extra;  // (filename, text), most relevant last
};

// The prompt's tokens. Within `n_batch` tokens the prefix keeps its last
// three quarters and the suffix its first quarter (less the prompt);
// other files fill what the slot's context leaves after that batch and
// twice the reply (`max_tokens`, -1: none reserved), most relevant kept.
// Errors: kUnprocessable (reason infill_not_supported) for a model without
// FIM tokens, kInvalidArgument when the text cannot be tokenized.
Result<std::vector<llama_token>> fim_prompt(const Model& model, const FimText& text, int n_batch, int n_ctx_slot,
                                            int max_tokens);

}  // namespace llmd::runner
