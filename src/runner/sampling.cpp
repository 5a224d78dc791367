#include "runner/sampling.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace llmd::runner {
namespace {

Result<void> check_range(const char* name, double v, double lo, double hi) {
  if (!std::isfinite(v) || v < lo || v > hi) {
    return fail(ErrorCode::kInvalidArgument, std::string(name) + " must be a number in [" +
                                                 std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return {};
}

}  // namespace

Result<void> validate(const SamplingParams& p) {
  if (auto r = check_range("temperature", p.temperature, 0, 100); !r) return r;
  if (auto r = check_range("top_p", p.top_p, 0, 1); !r) return r;
  if (auto r = check_range("min_p", p.min_p, 0, 1); !r) return r;
  if (auto r = check_range("top_k", p.top_k, 0, 1'000'000); !r) return r;
  return {};
}

namespace {

LlamaSamplerPtr make_grammar(const Model& model, const std::string& gbnf) {
  return LlamaSamplerPtr{llama_sampler_init_grammar(model.vocab(), gbnf.c_str(), "root")};
}

// The chain after the grammar stage.
LlamaSamplerPtr make_chain(const SamplingParams& p) {
  llama_sampler_chain_params cp = llama_sampler_chain_default_params();
  cp.no_perf = true;
  LlamaSamplerPtr chain{llama_sampler_chain_init(cp)};
  if (p.temperature <= 0.0f) {
    llama_sampler_chain_add(chain.get(), llama_sampler_init_greedy());
    return chain;
  }
  if (p.top_k > 0) llama_sampler_chain_add(chain.get(), llama_sampler_init_top_k(p.top_k));
  if (p.top_p < 1.0f) llama_sampler_chain_add(chain.get(), llama_sampler_init_top_p(p.top_p, 1));
  if (p.min_p > 0.0f) llama_sampler_chain_add(chain.get(), llama_sampler_init_min_p(p.min_p, 1));
  llama_sampler_chain_add(chain.get(), llama_sampler_init_temp(p.temperature));
  llama_sampler_chain_add(chain.get(), llama_sampler_init_dist(p.seed.value_or(LLAMA_DEFAULT_SEED)));
  return chain;
}

}  // namespace

Result<Sampler> Sampler::create(const Model& model, const SamplingParams& p) {
  if (auto v = validate(p); !v) return fail(v.error());
  Sampler s;
  s.chain_ = make_chain(p);
  s.n_vocab_ = model.info().n_vocab;
  if (!p.grammar.empty()) {
    s.grammar_ = make_grammar(model, p.grammar);
    if (!s.grammar_) {
      return fail(ErrorCode::kInvalidArgument, "invalid grammar (GBNF does not parse)", "invalid_grammar");
    }
  }
  if (p.temperature <= 0.0f) {
    s.need_ = 1;
  } else {
    s.need_ = p.top_k > 0 ? static_cast<std::size_t>(p.top_k) : static_cast<std::size_t>(s.n_vocab_);
  }
  const llama_token eot = llama_vocab_eot(model.vocab());
  s.fallback_ = eot != LLAMA_TOKEN_NULL ? eot : llama_vocab_eos(model.vocab());
  return s;
}

constexpr std::size_t kRankHorizon = 16384;

llama_token Sampler::sample(llama_context* ctx, int32_t idx) {
  if (!grammar_) return llama_sampler_sample(chain_.get(), ctx, idx);

  const float* logits = llama_get_logits_ith(ctx, idx);
  const std::size_t n = static_cast<std::size_t>(n_vocab_);
  candidates_.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    candidates_[i] = llama_token_data{static_cast<llama_token>(i), logits[i], 0.0f};
  }
  const auto by_logit = [](const llama_token_data& a, const llama_token_data& b) { return a.logit > b.logit; };
  // Chunks of the candidates in descending logit order; the valid ones are
  // compacted to the front. Once `need_` are valid, no later (lower-logit)
  // candidate could pass the chain's top-k/greedy stage.
  // Past the rank horizon, once something valid was found, stop looking:
  // tokens ranked that low carry no probability worth the scan of a large
  // vocabulary (with a 151k vocabulary the full scan is most of the cost of
  // a constrained token wherever the grammar allows only a few tokens).
  std::size_t n_valid = 0;
  std::size_t done = 0;
  std::size_t chunk = 256;
  while (done < n && n_valid < need_ && !(n_valid > 0 && done >= kRankHorizon)) {
    const std::size_t end = std::min(n, done + chunk);
    if (end < n) {
      std::partial_sort(candidates_.begin() + static_cast<std::ptrdiff_t>(done),
                        candidates_.begin() + static_cast<std::ptrdiff_t>(end), candidates_.end(), by_logit);
    }
    llama_token_data_array part{candidates_.data() + done, end - done, -1, false};
    llama_sampler_apply(grammar_.get(), &part);
    for (std::size_t i = done; i < end; ++i) {
      if (std::isfinite(candidates_[i].logit)) candidates_[n_valid++] = candidates_[i];
    }
    done = end;
    chunk *= 8;
  }
  llama_token token = fallback_;
  if (n_valid > 0) {
    llama_token_data_array valid{candidates_.data(), n_valid, -1, false};
    llama_sampler_apply(chain_.get(), &valid);
    if (valid.selected >= 0 && static_cast<std::size_t>(valid.selected) < valid.size) {
      token = valid.data[valid.selected].id;
    }
  }
  llama_sampler_accept(grammar_.get(), token);
  llama_sampler_accept(chain_.get(), token);
  return token;
}

Result<LlamaSamplerPtr> make_sampler(const Model& model, const SamplingParams& p) {
  if (auto v = validate(p); !v) return fail(v.error());
  llama_sampler_chain_params cp = llama_sampler_chain_default_params();
  cp.no_perf = true;
  LlamaSamplerPtr chain{llama_sampler_chain_init(cp)};
  if (!p.grammar.empty()) {
    // The grammar masks invalid tokens first, so every later stage (and
    // greedy) only ever sees tokens the grammar allows.
    llama_sampler* g = llama_sampler_init_grammar(model.vocab(), p.grammar.c_str(), "root");
    if (g == nullptr) {
      return fail(ErrorCode::kInvalidArgument, "invalid grammar (GBNF does not parse)",
                  "invalid_grammar");
    }
    llama_sampler_chain_add(chain.get(), g);
  }
  if (p.temperature <= 0.0f) {
    llama_sampler_chain_add(chain.get(), llama_sampler_init_greedy());
    return chain;
  }
  if (p.top_k > 0) llama_sampler_chain_add(chain.get(), llama_sampler_init_top_k(p.top_k));
  if (p.top_p < 1.0f) llama_sampler_chain_add(chain.get(), llama_sampler_init_top_p(p.top_p, 1));
  if (p.min_p > 0.0f) llama_sampler_chain_add(chain.get(), llama_sampler_init_min_p(p.min_p, 1));
  llama_sampler_chain_add(chain.get(), llama_sampler_init_temp(p.temperature));
  llama_sampler_chain_add(chain.get(), llama_sampler_init_dist(p.seed.value_or(LLAMA_DEFAULT_SEED)));
  return chain;
}

}  // namespace llmd::runner
