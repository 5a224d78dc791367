// Per-request sampling parameters and the llama.cpp sampler chain built from them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "runner/llama_handles.h"
#include "runner/model.h"

namespace llmd::runner {

// Defaults follow llama-server. A temperature <= 0 means greedy decoding.
struct SamplingParams {
  float temperature = 0.8f;
  float top_p = 0.95f;  // 1 disables
  int top_k = 40;       // 0 disables
  float min_p = 0.05f;  // 0 disables
  std::optional<uint32_t> seed;  // none: a random seed
  // GBNF grammar text (root rule "root"); empty = unconstrained.
  std::string grammar;
};

// Checks ranges: temperature in [0, 100], top_p and min_p in [0, 1],
// top_k in [0, 1'000'000]; NaN/inf rejected. Errors: kInvalidArgument
// naming the field.
Result<void> validate(const SamplingParams& params);

// Builds the sampler chain: grammar (if any) → top_k → top_p → min_p →
// temperature → seeded distribution, or grammar → greedy when temperature <= 0.
// Errors: kInvalidArgument "invalid grammar" when the GBNF does not parse.
// Thread-safe (touches only the immutable model).
Result<LlamaSamplerPtr> make_sampler(const Model& model, const SamplingParams& params);

// A request's sampler: the chain of make_sampler, with the grammar (if any)
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
  // Errors: as make_sampler.
  static Result<Sampler> create(const Model& model, const SamplingParams& params);

  // Samples the next token from row `idx` of the context's logits and
  // advances the grammar and chain state with it.
  llama_token sample(llama_context* ctx, int32_t idx);

 private:
  Sampler() = default;
  LlamaSamplerPtr chain_;    // top_k → ... → dist, or greedy; no grammar
  LlamaSamplerPtr grammar_;  // null when unconstrained
  std::size_t need_ = 1;     // valid candidates the chain can use at most
  llama_token fallback_ = 0; // end of generation, when the grammar allows nothing
  int n_vocab_ = 0;
  std::vector<llama_token_data> candidates_;  // scratch, reused per token
};

}  // namespace llmd::runner
