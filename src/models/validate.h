// Gateway-side validation of OpenAI-style request bodies, before anything
// reaches a worker: types and ranges of sampling values, bounded max_tokens,
// shape of messages/prompt/input. Errors are kInvalidArgument with a message
// naming the field (reason "invalid_request").
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace llmd::models {

struct GatewayLimits {
  std::int64_t max_tokens = 4096;          // upper bound for max_tokens
  std::int64_t default_max_tokens = 1024;  // used when the client sends none
  std::size_t max_messages = 1000;
  std::size_t max_stop = 4;
};

enum class ApiKind { kChat, kCompletion, kEmbedding, kRerank };

// Chat and completions generate tokens (max_tokens, sampling, choices);
// embeddings and reranking only read their input.
inline bool generates(ApiKind kind) { return kind == ApiKind::kChat || kind == ApiKind::kCompletion; }

// The most replies one call may ask for (n, best_of); a worker may allow
// fewer (its parallel slots).
inline constexpr std::int64_t kMaxChoices = 16;
// The most documents one rerank call may score (the runner's bound too).
inline constexpr std::size_t kMaxRerankDocuments = 256;

// The one generation limit the gateway reserves by and the worker obeys:
// max_tokens, max_completion_tokens and n_predict (-1: none of its own) are
// checked, the smallest given becomes `max_tokens` (the default when none is
// given) and the aliases are removed from `body`. Errors: kInvalidArgument.
Result<void> normalise_generation_limit(nlohmann::json& body, const GatewayLimits& limits);

// Checks `body` in place and fills defaults (max_tokens, see above). Returns the
// resolved model name (body "model", or `default_model` when absent/empty).
Result<std::string> validate_openai_request(ApiKind kind, nlohmann::json& body, const GatewayLimits& limits,
                                            const std::string& default_model);

}  // namespace llmd::models
