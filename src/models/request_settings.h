// A configured model's request settings (models.list[].defaults / .forced)
// applied to an OpenAI request body on its way to the worker.
//
//   const bool client_limit = has_generation_limit(body);   // before validation fills the default
//   validate_openai_request(kind, body, limits, default_model);
//   apply_request_settings(body, kind, entry.defaults, entry.forced, client_limit, limits.max_tokens);
//
// Defaults fill what the request leaves out (max_tokens only when the client
// gave no limit of its own); forced values replace the request's (max_tokens:
// a ceiling, a smaller request keeps its own). Chat requests also get the
// system message (default: when they have none; forced: instead of theirs),
// reasoning_effort and chat_template_kwargs (per key). Embeddings take none.
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "models/validate.h"

namespace llmd::models {

// Whether the request names a generation limit (max_tokens,
// max_completion_tokens or n_predict).
bool has_generation_limit(const nlohmann::json& body);

// The parameters that are set, as a JSON object (for the model listing).
nlohmann::json params_json(const config::RequestParams& params);

void apply_request_settings(nlohmann::json& body, ApiKind kind, const config::RequestParams& defaults,
                            const config::RequestParams& forced, bool client_limit, std::int64_t max_tokens_limit);

}  // namespace llmd::models
