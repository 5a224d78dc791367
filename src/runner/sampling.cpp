#include "runner/sampling.h"

#include <reasoning-budget.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <string>

namespace llmd::runner {
namespace {

Result<void> check_range(const char* name, double v, double lo, double hi) {
  if (!std::isfinite(v) || v < lo || v > hi) {
    return fail(ErrorCode::kInvalidArgument,
                std::string(name) + " must be a number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return {};
}

}  // namespace

Result<void> validate(const SamplingParams& p) {
  if (auto r = check_range("temperature", p.temperature, 0, 100); !r) return r;
  if (auto r = check_range("top_p", p.top_p, 0, 1); !r) return r;
  if (auto r = check_range("min_p", p.min_p, 0, 1); !r) return r;
  if (auto r = check_range("typical_p", p.typical_p, 0, 1); !r) return r;
  if (auto r = check_range("top_k", p.top_k, 0, 1'000'000); !r) return r;
  if (auto r = check_range("repeat_penalty", p.repeat_penalty, 0.01, 100); !r) return r;
  if (auto r = check_range("frequency_penalty", p.frequency_penalty, -2, 2); !r) return r;
  if (auto r = check_range("presence_penalty", p.presence_penalty, -2, 2); !r) return r;
  if (auto r = check_range("repeat_last_n", p.repeat_last_n, -1, 1 << 22); !r) return r;
  if (auto r = check_range("dry_multiplier", p.dry_multiplier, 0, 100); !r) return r;
  if (auto r = check_range("dry_base", p.dry_base, 1, 100); !r) return r;
  if (auto r = check_range("dry_allowed_length", p.dry_allowed_length, 0, 1 << 20); !r) return r;
  if (auto r = check_range("dry_penalty_last_n", p.dry_penalty_last_n, -1, 1 << 22); !r) return r;
  if (auto r = check_range("xtc_probability", p.xtc_probability, 0, 1); !r) return r;
  if (auto r = check_range("xtc_threshold", p.xtc_threshold, 0, 1); !r) return r;
  if (auto r = check_range("mirostat", p.mirostat, 0, 2); !r) return r;
  if (auto r = check_range("mirostat_tau", p.mirostat_tau, 0, 100); !r) return r;
  if (auto r = check_range("mirostat_eta", p.mirostat_eta, 0, 1); !r) return r;
  for (const auto& [token, bias] : p.logit_bias) {
    if (std::isnan(bias)) return fail(ErrorCode::kInvalidArgument, "logit_bias values must be numbers");
    if (token < 0) return fail(ErrorCode::kInvalidArgument, "logit_bias token ids must be >= 0");
  }
  return {};
}

namespace {

LlamaSamplerPtr make_grammar(const Model& model, const SamplingParams& p) {
  if (!p.grammar_lazy) return LlamaSamplerPtr{llama_sampler_init_grammar(model.vocab(), p.grammar.c_str(), "root")};
  std::vector<const char*> patterns;
  for (const auto& pattern : p.grammar_trigger_patterns) patterns.push_back(pattern.c_str());
  return LlamaSamplerPtr{llama_sampler_init_grammar_lazy_patterns(
      model.vocab(), p.grammar.c_str(), "root", patterns.data(), patterns.size(), p.grammar_trigger_tokens.data(),
      p.grammar_trigger_tokens.size())};
}

llama_sampler_chain_params chain_params() {
  llama_sampler_chain_params cp = llama_sampler_chain_default_params();
  cp.no_perf = true;
  return cp;
}

int32_t window(int last_n, int n_ctx) { return last_n < 0 ? n_ctx : last_n; }

// The thinking budget, or null.
LlamaSamplerPtr make_budget(const Model& model, const SamplingParams& p) {
  if (p.reasoning_budget < 0 || p.reasoning_start.empty() || p.reasoning_end.empty()) return nullptr;
  return LlamaSamplerPtr{common_reasoning_budget_init(
      model.vocab(), {p.reasoning_start}, p.reasoning_end, p.reasoning_forced, p.reasoning_budget,
      p.reasoning_open ? REASONING_BUDGET_COUNTING : REASONING_BUDGET_IDLE)};
}

// The logit adjustments: bias, penalties, DRY. Null when none is on.
LlamaSamplerPtr make_adjustments(const Model& model, const SamplingParams& p, int n_ctx) {
  LlamaSamplerPtr chain{llama_sampler_chain_init(chain_params())};
  const int32_t n_vocab = model.info().n_vocab;
  bool any = false;
  if (!p.logit_bias.empty()) {
    std::vector<llama_logit_bias> biases;
    for (const auto& [token, bias] : p.logit_bias) {
      if (token < n_vocab) biases.push_back({token, bias});
    }
    llama_sampler_chain_add(chain.get(),
                            llama_sampler_init_logit_bias(n_vocab, static_cast<int32_t>(biases.size()), biases.data()));
    any = true;
  }
  if (p.repeat_penalty != 1.0f || p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f) {
    llama_sampler_chain_add(chain.get(),
                            llama_sampler_init_penalties(n_vocab, window(p.repeat_last_n, n_ctx), p.repeat_penalty,
                                                         p.frequency_penalty, p.presence_penalty));
    any = true;
  }
  if (p.dry_multiplier > 0.0f) {
    std::vector<const char*> breakers;
    for (const auto& b : p.dry_sequence_breakers) breakers.push_back(b.c_str());
    llama_sampler_chain_add(
        chain.get(), llama_sampler_init_dry(model.vocab(), p.dry_multiplier, p.dry_base, p.dry_allowed_length,
                                            window(p.dry_penalty_last_n, n_ctx), breakers.data(), breakers.size()));
    any = true;
  }
  return any ? std::move(chain) : nullptr;
}

// The chain after the grammar stage.
LlamaSamplerPtr make_chain(const Model& model, const SamplingParams& p) {
  LlamaSamplerPtr chain{llama_sampler_chain_init(chain_params())};
  if (p.temperature <= 0.0f) {
    llama_sampler_chain_add(chain.get(), llama_sampler_init_greedy());
    return chain;
  }
  const uint32_t seed = p.seed.value_or(LLAMA_DEFAULT_SEED);
  if (p.mirostat != 0) {
    llama_sampler_chain_add(chain.get(), llama_sampler_init_temp(p.temperature));
    llama_sampler_chain_add(
        chain.get(), p.mirostat == 1
                         ? llama_sampler_init_mirostat(model.info().n_vocab, seed, p.mirostat_tau, p.mirostat_eta, 100)
                         : llama_sampler_init_mirostat_v2(seed, p.mirostat_tau, p.mirostat_eta));
    return chain;
  }
  if (p.top_k > 0) llama_sampler_chain_add(chain.get(), llama_sampler_init_top_k(p.top_k));
  if (p.typical_p < 1.0f) llama_sampler_chain_add(chain.get(), llama_sampler_init_typical(p.typical_p, 1));
  if (p.top_p < 1.0f) llama_sampler_chain_add(chain.get(), llama_sampler_init_top_p(p.top_p, 1));
  if (p.min_p > 0.0f) llama_sampler_chain_add(chain.get(), llama_sampler_init_min_p(p.min_p, 1));
  if (p.xtc_probability > 0.0f) {
    llama_sampler_chain_add(chain.get(), llama_sampler_init_xtc(p.xtc_probability, p.xtc_threshold, 1, seed));
  }
  llama_sampler_chain_add(chain.get(), llama_sampler_init_temp(p.temperature));
  llama_sampler_chain_add(chain.get(), llama_sampler_init_dist(seed));
  return chain;
}

}  // namespace

Result<Sampler> Sampler::create(const Model& model, const SamplingParams& p, int n_ctx) {
  if (auto v = validate(p); !v) return fail(v.error());
  Sampler s;
  s.adjust_ = make_adjustments(model, p, n_ctx);
  s.budget_ = make_budget(model, p);
  s.chain_ = make_chain(model, p);
  s.n_vocab_ = model.info().n_vocab;
  if (!p.grammar.empty()) {
    s.grammar_ = make_grammar(model, p);
    if (!s.grammar_) {
      return fail(ErrorCode::kInvalidArgument, "invalid grammar (GBNF does not parse)", "invalid_grammar");
    }
    try {
      for (const llama_token t : p.grammar_prefill) llama_sampler_accept(s.grammar_.get(), t);
    } catch (const std::exception& e) {
      return fail(ErrorCode::kInvalidArgument,
                  std::string("the grammar does not accept the template's generation prompt: ") + e.what(),
                  "invalid_grammar");
    }
  }
  if (p.temperature <= 0.0f) {
    s.need_ = 1;
  } else if (p.top_k > 0 && p.mirostat == 0) {
    s.need_ = static_cast<std::size_t>(p.top_k);
  } else {
    s.need_ = static_cast<std::size_t>(s.n_vocab_);
  }
  const llama_token eot = llama_vocab_eot(model.vocab());
  s.fallback_ = eot != LLAMA_TOKEN_NULL ? eot : llama_vocab_eos(model.vocab());
  return s;
}

void Sampler::accept_context(std::span<const llama_token> tokens) {
  if (!adjust_) return;
  for (const llama_token t : tokens) llama_sampler_accept(adjust_.get(), t);
}

constexpr std::size_t kRankHorizon = 16384;

llama_token Sampler::sample(llama_context* ctx, int32_t idx) {
  if (!grammar_ && !adjust_ && !budget_) return llama_sampler_sample(chain_.get(), ctx, idx);

  const float* logits = llama_get_logits_ith(ctx, idx);
  const std::size_t n = static_cast<std::size_t>(n_vocab_);
  candidates_.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    candidates_[i] = llama_token_data{static_cast<llama_token>(i), logits[i], 0.0f};
  }
  for (llama_sampler* stage : {budget_.get(), adjust_.get()}) {
    if (stage == nullptr) continue;
    llama_token_data_array all{candidates_.data(), n, -1, false};
    llama_sampler_apply(stage, &all);
  }
  if (!grammar_) {
    llama_token_data_array all{candidates_.data(), n, -1, false};
    llama_sampler_apply(chain_.get(), &all);
    const llama_token token = all.selected >= 0 ? all.data[all.selected].id : fallback_;
    accept_sampled(token);
    return token;
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
  accept_sampled(token);
  return token;
}

void Sampler::accept_sampled(llama_token token) {
  if (budget_) llama_sampler_accept(budget_.get(), token);
  if (adjust_) llama_sampler_accept(adjust_.get(), token);
  llama_sampler_accept(chain_.get(), token);
}

}  // namespace llmd::runner
