#include "models/validate.h"

#include <limits>
#include <optional>
#include <string_view>

namespace llmd::models {
namespace {

std::unexpected<Error> bad(const std::string& msg) { return fail(ErrorCode::kInvalidArgument, msg, "invalid_request"); }

Result<void> number_in(const nlohmann::json& body, const char* key, double lo, double hi) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return {};
  if (!it->is_number()) return bad(std::string(key) + " must be a number");
  const double v = it->get<double>();
  if (!(v >= lo && v <= hi)) {
    return bad(std::string(key) + " must be between " + std::to_string(lo).substr(0, 4) + " and " +
               std::to_string(hi).substr(0, 6));
  }
  return {};
}

Result<void> integer_in(const nlohmann::json& body, const char* key, std::int64_t lo, std::int64_t hi) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return {};
  if (!it->is_number_integer()) return bad(std::string(key) + " must be an integer");
  const auto v = it->get<std::int64_t>();
  if (v < lo || v > hi)
    return bad(std::string(key) + " must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return {};
}

Result<void> text_or_list(const nlohmann::json& v, const char* key, bool allow_tokens) {
  if (v.is_string()) return {};
  if (!v.is_array() || v.empty()) return bad(std::string(key) + " must be a string or a non-empty array");
  for (const auto& e : v) {
    if (e.is_string()) continue;
    if (allow_tokens && (e.is_number_integer() || e.is_array())) continue;
    return bad(std::string(key) + " has an element of the wrong type");
  }
  return {};
}

}  // namespace

Result<void> normalise_generation_limit(nlohmann::json& body, const GatewayLimits& limits) {
  // max_completion_tokens is OpenAI's newer name, n_predict llama-server's
  // (-1 there: no limit of its own). The smallest one given is the limit.
  std::optional<std::int64_t> limit;
  for (const char* key : {"max_tokens", "max_completion_tokens", "n_predict"}) {
    const bool is_n_predict = std::string_view(key) == "n_predict";
    LLMD_TRY(integer_in(body, key, is_n_predict ? -1 : 1, limits.max_tokens));
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) continue;
    const auto n = it->get<std::int64_t>();
    if (n == 0) return bad(std::string(key) + " must not be 0");
    if (n > 0) limit = limit ? std::min(*limit, n) : n;
  }
  body.erase("max_completion_tokens");
  body.erase("n_predict");
  body["max_tokens"] = limit.value_or(limits.default_max_tokens);
  return {};
}

Result<std::string> validate_openai_request(ApiKind kind, nlohmann::json& body, const GatewayLimits& limits,
                                            const std::string& default_model) {
  if (!body.is_object()) return bad("the body must be a JSON object");
  std::string model = default_model;
  if (auto it = body.find("model"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) return bad("model must be a string");
    if (!it->get<std::string>().empty()) model = it->get<std::string>();
  }
  if (model.empty()) return bad("model is required (no default model is configured)");
  if (model.size() > 256) return bad("model name too long");

  if (kind == ApiKind::kEmbedding) {
    auto it = body.find("input");
    if (it == body.end()) return bad("input is required");
    LLMD_TRY(text_or_list(*it, "input", true));
    return model;
  }
  if (kind == ApiKind::kRerank) {
    // Jina's "documents" or TEI's "texts": non-empty strings, as the worker reads them.
    if (!body.contains("query") || !body["query"].is_string()) return bad("query must be a string");
    const char* key = body.contains("texts") ? "texts" : "documents";
    const auto it = body.find(key);
    if (it == body.end() || !it->is_array() || it->empty() || it->size() > kMaxRerankDocuments) {
      return bad(std::string(key) + " must be an array of 1.." + std::to_string(kMaxRerankDocuments) + " strings");
    }
    for (const auto& d : *it) {
      if (!d.is_string() || d.get_ref<const std::string&>().empty()) {
        return bad(std::string(key) + " must be an array of non-empty strings");
      }
    }
    LLMD_TRY(integer_in(body, "top_n", 0, std::numeric_limits<std::int32_t>::max()));
    return model;
  }

  if (kind == ApiKind::kChat) {
    auto it = body.find("messages");
    if (it == body.end() || !it->is_array() || it->empty()) return bad("messages must be a non-empty array");
    if (it->size() > limits.max_messages) return bad("too many messages");
    for (const auto& m : *it) {
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
        return bad("each message needs a string role");
      }
      if (m.contains("content") && !m["content"].is_string() && !m["content"].is_array() && !m["content"].is_null()) {
        return bad("message content must be a string, an array of parts or null");
      }
    }
  } else {
    auto it = body.find("prompt");
    if (it == body.end()) return bad("prompt is required");
    LLMD_TRY(text_or_list(*it, "prompt", true));
  }

  LLMD_TRY(normalise_generation_limit(body, limits));
  LLMD_TRY(number_in(body, "temperature", 0.0, 2.0));
  LLMD_TRY(number_in(body, "top_p", 0.0, 1.0));
  LLMD_TRY(number_in(body, "min_p", 0.0, 1.0));
  LLMD_TRY(number_in(body, "presence_penalty", -2.0, 2.0));
  LLMD_TRY(number_in(body, "frequency_penalty", -2.0, 2.0));
  LLMD_TRY(number_in(body, "repeat_penalty", 0.0, 10.0));
  LLMD_TRY(integer_in(body, "top_k", 0, 1000));
  // Several choices are generated side by side, each up to max_tokens, and billed together.
  for (const char* key : {"n", "best_of"}) {
    if (body.contains(key) && body[key].is_null()) body.erase(key);  // null = absent
  }
  LLMD_TRY(integer_in(body, "n", 1, kMaxChoices));
  LLMD_TRY(integer_in(body, "best_of", 1, kMaxChoices));
  if (body.contains("best_of") && kind != ApiKind::kCompletion) return bad("best_of applies to /v1/completions only");
  if (body.contains("best_of") && body["best_of"].get<std::int64_t>() < body.value("n", std::int64_t{1})) {
    return bad("best_of must be at least n");
  }
  if (body.contains("seed") && !body["seed"].is_null() && !body["seed"].is_number_integer()) {
    return bad("seed must be an integer");
  }
  for (const char* key : {"stream", "timings_per_token"}) {
    if (body.contains(key) && !body[key].is_boolean() && !body[key].is_null()) {
      return bad(std::string(key) + " must be a boolean");
    }
    if (body.contains(key) && body[key].is_null()) body.erase(key);  // null = absent
  }
  if (auto it = body.find("stop"); it != body.end() && !it->is_null()) {
    if (it->is_array()) {
      if (it->size() > limits.max_stop) return bad("at most " + std::to_string(limits.max_stop) + " stop sequences");
      for (const auto& s : *it) {
        if (!s.is_string()) return bad("stop must be a string or an array of strings");
      }
    } else if (!it->is_string()) {
      return bad("stop must be a string or an array of strings");
    }
  }
  if (auto it = body.find("response_format"); it != body.end() && !it->is_null()) {
    if (!it->is_object() || !(*it)["type"].is_string()) return bad("response_format must be an object with a type");
    const auto type = (*it)["type"].get<std::string>();
    if (type != "text" && type != "json_object" && type != "json_schema") {
      return bad("response_format.type must be text, json_object or json_schema");
    }
  }
  return model;
}

}  // namespace llmd::models
