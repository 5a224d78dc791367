// Per-request sampling parameters and the llama.cpp sampler chain built from them.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "runner/llama_handles.h"
#include "runner/model.h"

namespace llmd::runner {

// Defaults follow llama-server. A temperature <= 0 means greedy decoding.
struct SamplingParams {
  float temperature = 0.8f;
  float top_p = 0.95f;           // 1 disables
  int top_k = 40;                // 0 disables
  float min_p = 0.05f;           // 0 disables
  float typical_p = 1.0f;        // 1 disables
  std::optional<uint32_t> seed;  // none: a random seed
  // Penalties over the last `repeat_last_n` tokens (prompt included; -1 = the
  // whole context): repeat (1 disables), frequency and presence (0 disable).
  float repeat_penalty = 1.0f;
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  int repeat_last_n = 64;
  // DRY ("don't repeat yourself"); multiplier 0 disables.
  float dry_multiplier = 0.0f;
  float dry_base = 1.75f;
  int dry_allowed_length = 2;
  int dry_penalty_last_n = -1;  // -1: the whole context
  std::vector<std::string> dry_sequence_breakers = {"\n", ":", "\"", "*"};
  // XTC ("exclude top choices"); probability 0 disables.
  float xtc_probability = 0.0f;
  float xtc_threshold = 0.1f;
  // Mirostat 1 or 2 replaces top-k/top-p/min-p/typical; 0 disables.
  int mirostat = 0;
  float mirostat_tau = 5.0f;
  float mirostat_eta = 0.1f;
  // Added to a token's logit before sampling; -inf bans it.
  std::vector<std::pair<llama_token, float>> logit_bias;
  // GBNF grammar text (root rule "root"); empty = unconstrained.
  std::string grammar;
  // A lazy grammar applies only once the generated text matches one of the
  // patterns (regexes) or one of the tokens is sampled (tool calls in "auto").
  bool grammar_lazy = false;
  std::vector<std::string> grammar_trigger_patterns;
  std::vector<llama_token> grammar_trigger_tokens;
  // Tokens the grammar accepts before the first sample: the chat template's
  // generation prompt, which its tool-call grammars start with.
  std::vector<llama_token> grammar_prefill;
  // A budget for thinking tokens (-1: none): once `reasoning_budget` tokens
  // followed `reasoning_start`, `reasoning_forced` (the end tag) is forced.
  // llama.cpp's reasoning-budget sampler. `reasoning_open`: the prompt
  // already opened the block (the template's generation prompt ends with the
  // start tag), so counting starts at the first sampled token.
  int reasoning_budget = -1;
  bool reasoning_open = false;
  std::vector<llama_token> reasoning_start;
  std::vector<std::vector<llama_token>> reasoning_end;
  std::vector<llama_token> reasoning_forced;
};

// Checks ranges: temperature in [0, 100], top_p, min_p, typical_p and
// xtc_probability in [0, 1], top_k in [0, 1'000'000], penalties, DRY and
// mirostat values; NaN/inf rejected. Errors: kInvalidArgument naming the field.
Result<void> validate(const SamplingParams& params);

// A request's sampler: logit adjustments, then the grammar (if any)
// kept apart and evaluated lazily. Checking a token against a grammar costs
// about a microsecond, and a 151k-token vocabulary made that ~90 ms per
// token; sample() checks candidates in descending logit order, in growing
// chunks, only until the rest of the chain provably cannot look further
// (1 valid token for greedy, top_k for top-k sampling) — or, once at least
// one valid token was found, until the first 16k candidates by logit were
// checked: a token ranked below that has no probability worth a scan of
// the whole vocabulary. Greedy picks exactly the token the full "grammar
// first" chain picks; top-k sampling can differ from it only in tokens
// ranked beyond 16k. Only a grammar that allows nothing among the first
// 16k candidates still costs a check of the whole vocabulary.
// Not thread-safe: owned by one slot on the engine thread.
class Sampler {
 public:
  // `n_ctx` is the context a window of -1 (penalties, DRY) stands for.
  // Errors: kInvalidArgument naming the field out of range, or
  // "invalid grammar" when the GBNF does not parse.
  static Result<Sampler> create(const Model& model, const SamplingParams& params, int n_ctx = 4096);

  // Samples the next token from row `idx` of the context's logits and
  // advances the grammar and chain state with it.
  llama_token sample(llama_context* ctx, int32_t idx);

  // Feeds tokens the model did not sample (the prompt) to the penalties.
  void accept_context(std::span<const llama_token> tokens);

 private:
  void accept_sampled(llama_token token);
  Sampler() = default;
  // logit bias → penalties → DRY: adjusts logits over the whole vocabulary,
  // before the grammar looks at them; null when none is set.
  LlamaSamplerPtr adjust_;
  LlamaSamplerPtr budget_;    // thinking budget; sees sampled tokens only
  LlamaSamplerPtr chain_;     // top_k → ... → dist, or greedy; no grammar
  LlamaSamplerPtr grammar_;   // null when unconstrained
  std::size_t need_ = 1;      // valid candidates the chain can use at most
  llama_token fallback_ = 0;  // end of generation, when the grammar allows nothing
  int n_vocab_ = 0;
  std::vector<llama_token_data> candidates_;  // scratch, reused per token
};

}  // namespace llmd::runner
