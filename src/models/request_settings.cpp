#include "models/request_settings.h"

#include <algorithm>
#include <optional>
#include <string>

namespace llmd::models {

using json = nlohmann::json;

namespace {

bool given(const json& body, const char* key) { return body.contains(key) && !body[key].is_null(); }

// `key` from forced, else from defaults where the body has none.
template <typename T>
void apply_value(json& body, const char* key, const std::optional<T>& fallback, const std::optional<T>& forced) {
  if (forced) {
    body[key] = *forced;
  } else if (fallback && !given(body, key)) {
    body[key] = *fallback;
  }
}

bool is_system(const json& message) {
  if (!message.is_object()) return false;
  const std::string role = message.value("role", "");
  return role == "system" || role == "developer";
}

void apply_system(json& body, const std::optional<std::string>& fallback, const std::optional<std::string>& forced) {
  if (!body.contains("messages") || !body["messages"].is_array()) return;
  json& messages = body["messages"];
  const bool has_own = std::any_of(messages.begin(), messages.end(), is_system);
  if (forced) {
    json kept = json::array();
    for (auto& m : messages) {
      if (!is_system(m)) kept.push_back(std::move(m));
    }
    kept.insert(kept.begin(), json{{"role", "system"}, {"content", *forced}});
    messages = std::move(kept);
  } else if (fallback && !has_own) {
    messages.insert(messages.begin(), json{{"role", "system"}, {"content", *fallback}});
  }
}

void apply_kwargs(json& body, const config::RequestParams& defaults, const config::RequestParams& forced) {
  if (defaults.chat_template_kwargs.empty() && forced.chat_template_kwargs.empty()) return;
  if (!body.contains("chat_template_kwargs") || !body["chat_template_kwargs"].is_object()) {
    body["chat_template_kwargs"] = json::object();
  }
  json& kwargs = body["chat_template_kwargs"];
  for (const auto& [name, value] : defaults.chat_template_kwargs) {
    if (!kwargs.contains(name)) kwargs[name] = json::parse(value, nullptr, false);
  }
  for (const auto& [name, value] : forced.chat_template_kwargs) kwargs[name] = json::parse(value, nullptr, false);
}

}  // namespace

json params_json(const config::RequestParams& p) {
  json out = json::object();
  auto put = [&](const char* key, const auto& value) {
    if (value) out[key] = *value;
  };
  put("temperature", p.temperature);
  put("top_p", p.top_p);
  put("min_p", p.min_p);
  put("top_k", p.top_k);
  put("presence_penalty", p.presence_penalty);
  put("frequency_penalty", p.frequency_penalty);
  put("repeat_penalty", p.repeat_penalty);
  put("max_tokens", p.max_tokens);
  put("seed", p.seed);
  put("system", p.system);
  put("reasoning_effort", p.reasoning_effort);
  for (const auto& [name, value] : p.chat_template_kwargs) {
    out["chat_template_kwargs"][name] = json::parse(value, nullptr, false);
  }
  return out;
}

bool has_generation_limit(const json& body) {
  if (!body.is_object()) return false;
  return given(body, "max_tokens") || given(body, "max_completion_tokens") || given(body, "n_predict");
}

void apply_request_settings(json& body, ApiKind kind, const config::RequestParams& defaults,
                            const config::RequestParams& forced, bool client_limit, std::int64_t max_tokens_limit) {
  if (!generates(kind) || !body.is_object()) return;
  apply_value(body, "temperature", defaults.temperature, forced.temperature);
  apply_value(body, "top_p", defaults.top_p, forced.top_p);
  apply_value(body, "min_p", defaults.min_p, forced.min_p);
  apply_value(body, "top_k", defaults.top_k, forced.top_k);
  apply_value(body, "presence_penalty", defaults.presence_penalty, forced.presence_penalty);
  apply_value(body, "frequency_penalty", defaults.frequency_penalty, forced.frequency_penalty);
  apply_value(body, "repeat_penalty", defaults.repeat_penalty, forced.repeat_penalty);
  apply_value(body, "seed", defaults.seed, forced.seed);

  // The limit (validation has made it max_tokens): the model's default where
  // the client set none, then the forced ceiling; never above the gateway's.
  std::int64_t limit = body.value("max_tokens", max_tokens_limit);
  if (defaults.max_tokens && !client_limit) limit = *defaults.max_tokens;
  if (forced.max_tokens) limit = std::min(limit, *forced.max_tokens);
  if (defaults.max_tokens || forced.max_tokens) body["max_tokens"] = std::min(limit, max_tokens_limit);

  if (kind != ApiKind::kChat) return;
  apply_system(body, defaults.system, forced.system);
  apply_value(body, "reasoning_effort", defaults.reasoning_effort, forced.reasoning_effort);
  apply_kwargs(body, defaults, forced);
}

}  // namespace llmd::models
