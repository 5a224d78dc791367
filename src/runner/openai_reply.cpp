// The reply side of the runner's OpenAI and llama-server dialects: ids,
// finish reasons, usage and timings, log-probabilities, and the reply and
// stream-chunk bodies (see openai.h).
#include "runner/openai.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <random>

namespace llmd::runner {
namespace {

Json timings_from(const Completion& c) {
  const double prompt_n = c.usage.prompt_tokens - c.usage.cached_prompt_tokens;
  const double predicted_n = c.usage.completion_tokens;
  auto per = [](double n, double ms) { return n > 0 && ms > 0 ? 1000.0 * n / ms : 0.0; };
  return Json{{"prompt_n", prompt_n},
              {"prompt_ms", c.timings.prompt_ms},
              {"prompt_per_token_ms", prompt_n > 0 ? c.timings.prompt_ms / prompt_n : 0.0},
              {"prompt_per_second", per(prompt_n, c.timings.prompt_ms)},
              {"predicted_n", predicted_n},
              {"predicted_ms", c.timings.generation_ms},
              {"predicted_per_token_ms", predicted_n > 1 ? c.timings.generation_ms / (predicted_n - 1) : 0.0},
              {"predicted_per_second", per(predicted_n - 1, c.timings.generation_ms)},
              {"queue_ms", c.timings.queue_ms},
              {"first_token_ms", c.timings.first_token_ms}};
}

std::string base64(const std::vector<float>& v) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes(v.size() * sizeof(float), '\0');
  std::memcpy(bytes.data(), v.data(), bytes.size());  // x86-64: little-endian already
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const uint32_t b0 = static_cast<unsigned char>(bytes[i]);
    const uint32_t b1 = i + 1 < bytes.size() ? static_cast<unsigned char>(bytes[i + 1]) : 0;
    const uint32_t b2 = i + 2 < bytes.size() ? static_cast<unsigned char>(bytes[i + 2]) : 0;
    const uint32_t n = (b0 << 16) | (b1 << 8) | b2;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

}  // namespace

std::string make_response_id(std::string_view prefix) {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string id(prefix);
  for (int i = 0; i < 20; ++i) id += kChars[rng() % (sizeof(kChars) - 1)];
  id += std::to_string(counter.fetch_add(1) % 1000);
  return id;
}

std::string_view openai_finish_reason(FinishReason reason) {
  return reason == FinishReason::kLength ? "length" : "stop";
}

std::string_view openai_finish_reason(FinishReason reason, const ChatReply& reply) {
  if (reason == FinishReason::kStop && !reply.tool_calls.empty()) return "tool_calls";
  return openai_finish_reason(reason);
}

Json usage_json(const Usage& u) {
  return Json{{"prompt_tokens", u.prompt_tokens},
              {"completion_tokens", u.completion_tokens},
              {"total_tokens", u.prompt_tokens + u.completion_tokens},
              {"prompt_tokens_details", {{"cached_tokens", u.cached_prompt_tokens}}}};
}

Json timings_json(const Completion& c) { return timings_from(c); }

Json progress_timings_json(const Usage& so_far) {
  return Json{{"cache_n", so_far.cached_prompt_tokens},
              {"prompt_n", so_far.prompt_tokens - so_far.cached_prompt_tokens},
              {"predicted_n", so_far.completion_tokens}};
}

namespace {

Json bytes_of(const std::string& piece) {
  Json bytes = Json::array();
  for (unsigned char ch : piece) bytes.push_back(static_cast<int>(ch));
  return bytes;
}

// One token's entry: {"id"? , token, logprob, bytes} (llama-server adds the id).
Json token_entry(const PieceOf& piece, llama_token id, float logprob, bool with_id) {
  const std::string text = piece(id);
  Json j = with_id ? Json{{"id", id}} : Json::object();
  j["token"] = text;
  j["logprob"] = logprob;
  j["bytes"] = bytes_of(text);
  return j;
}

// A sampled token's entry with its top_logprobs alternatives.
Json prob_entry(const PieceOf& piece, const TokenProb& p, bool with_id) {
  Json top = Json::array();
  for (const auto& [id, lp] : p.top) top.push_back(token_entry(piece, id, lp, with_id));
  Json j = token_entry(piece, p.token, p.logprob, with_id);
  j["top_logprobs"] = std::move(top);
  return j;
}

}  // namespace

Json chat_logprobs_json(std::span<const TokenProb> probs, const PieceOf& piece) {
  Json content = Json::array();
  for (const auto& p : probs) content.push_back(prob_entry(piece, p, /*with_id=*/false));
  return Json{{"content", std::move(content)}, {"refusal", nullptr}};
}

Json text_logprobs_json(std::span<const TokenProb> probs, const PieceOf& piece, std::size_t text_offset) {
  Json tokens = Json::array();
  Json token_logprobs = Json::array();
  Json top_logprobs = Json::array();
  Json offsets = Json::array();
  for (const auto& p : probs) {
    const std::string text = piece(p.token);
    tokens.push_back(text);
    token_logprobs.push_back(p.logprob);
    Json top = Json::object();
    for (const auto& [id, lp] : p.top) top[piece(id)] = lp;
    top_logprobs.push_back(std::move(top));
    offsets.push_back(text_offset);
    text_offset += text.size();
  }
  return Json{{"tokens", std::move(tokens)},
              {"token_logprobs", std::move(token_logprobs)},
              {"top_logprobs", std::move(top_logprobs)},
              {"text_offset", std::move(offsets)}};
}

Json llama_probs_json(std::span<const TokenProb> probs, const PieceOf& piece) {
  Json out = Json::array();
  for (const auto& p : probs) out.push_back(prob_entry(piece, p, /*with_id=*/true));
  return out;
}

Json chat_completion_json(const ResponseMeta& meta, const Completion& c, const ChatReply& reply) {
  return Json{{"id", meta.id},
              {"object", "chat.completion"},
              {"created", meta.created},
              {"model", meta.model},
              {"system_fingerprint", meta.system_fingerprint},
              {"choices", Json::array({Json{{"index", 0},
                                            {"message", reply_message_json(reply)},
                                            {"logprobs", nullptr},
                                            {"finish_reason", openai_finish_reason(c.finish, reply)}}})},
              {"usage", usage_json(c.usage)},
              {"timings", timings_from(c)}};
}

Json text_completion_json(const ResponseMeta& meta, const Completion& c) {
  return Json{
      {"id", meta.id},
      {"object", "text_completion"},
      {"created", meta.created},
      {"model", meta.model},
      {"choices",
       Json::array({Json{
           {"index", 0}, {"text", c.text}, {"logprobs", nullptr}, {"finish_reason", openai_finish_reason(c.finish)}}})},
      {"usage", usage_json(c.usage)},
      {"timings", timings_from(c)}};
}

Json lora_adapters_json(const std::vector<LoraAdapterInfo>& adapters) {
  Json out = Json::array();
  for (const auto& a : adapters) out.push_back(Json{{"id", a.id}, {"path", a.path}, {"scale", a.scale}});
  return out;
}

Json generation_settings_json(const GenerateRequest& r) {
  const SamplingParams& s = r.sampling;
  Json bias = Json::array();
  for (const auto& [token, value] : s.logit_bias) {
    bias.push_back(Json{{"token", token}, {"bias", std::isfinite(value) ? Json(value) : Json()}});
  }
  Json lora = Json::array();
  for (const auto& l : r.lora.value_or(std::vector<LoraScale>{})) {
    lora.push_back(Json{{"id", l.id}, {"scale", l.scale}});
  }
  return Json{{"n_predict", r.max_tokens},
              {"seed", s.seed ? static_cast<int64_t>(*s.seed) : int64_t{LLAMA_DEFAULT_SEED}},
              {"temperature", s.temperature},
              {"top_k", s.top_k},
              {"top_p", s.top_p},
              {"min_p", s.min_p},
              {"typical_p", s.typical_p},
              {"repeat_last_n", s.repeat_last_n},
              {"repeat_penalty", s.repeat_penalty},
              {"presence_penalty", s.presence_penalty},
              {"frequency_penalty", s.frequency_penalty},
              {"dry_multiplier", s.dry_multiplier},
              {"xtc_probability", s.xtc_probability},
              {"mirostat", s.mirostat},
              {"stop", r.stop},
              {"ignore_eos", r.ignore_eos},
              {"n_probs", std::max(r.n_probs, 0)},
              {"cache_prompt", r.cache_prompt},
              {"logit_bias", std::move(bias)},
              {"lora", std::move(lora)},
              {"grammar", s.grammar}};
}

Json select_fields(const Json& reply, const std::vector<std::string>& fields) {
  Json out = Json::object();
  for (const auto& field : fields) {
    const Json* at = &reply;
    std::size_t from = 0;
    while (at != nullptr && from <= field.size()) {
      const std::size_t slash = std::min(field.find('/', from), field.size());
      const std::string key = field.substr(from, slash - from);
      at = at->is_object() && at->contains(key) ? &(*at)[key] : nullptr;
      from = slash + 1;
    }
    if (at != nullptr) out[field] = *at;
  }
  return out;
}

Json llama_completion_json(const ResponseMeta& meta, const Completion& c, const Json& settings) {
  return Json{{"content", c.text},
              {"id_slot", c.slot},
              {"stop", true},
              {"model", meta.model},
              {"tokens_predicted", c.usage.completion_tokens},
              {"tokens_evaluated", c.usage.prompt_tokens},
              {"tokens_cached", c.usage.cached_prompt_tokens},
              {"stop_type", c.finish == FinishReason::kLength ? "limit" : "eos"},
              {"has_new_line", c.text.find('\n') != std::string::npos},
              {"tokens", Json::array()},  // the generated ids when the request says return_tokens
              {"truncated", false},
              {"generation_settings", settings},
              {"timings", timings_from(c)}};
}

Json chat_chunk_json(const ResponseMeta& meta, Json delta, std::optional<std::string_view> finish, bool usage_null) {
  Json j{{"id", meta.id},
         {"object", "chat.completion.chunk"},
         {"created", meta.created},
         {"model", meta.model},
         {"system_fingerprint", meta.system_fingerprint},
         {"choices", Json::array({Json{{"index", 0},
                                       {"delta", std::move(delta)},
                                       {"logprobs", nullptr},
                                       {"finish_reason", finish ? Json(std::string(*finish)) : Json()}}})}};
  if (usage_null) j["usage"] = nullptr;
  return j;
}

Json text_chunk_json(const ResponseMeta& meta, std::string_view text, std::optional<FinishReason> finish,
                     bool usage_null) {
  Json j{{"id", meta.id},
         {"object", "text_completion"},
         {"created", meta.created},
         {"model", meta.model},
         {"choices", Json::array({Json{{"index", 0},
                                       {"text", std::string(text)},
                                       {"logprobs", nullptr},
                                       {"finish_reason", finish ? Json(openai_finish_reason(*finish)) : Json()}}})}};
  if (usage_null) j["usage"] = nullptr;
  return j;
}

Json usage_chunk_json(const ResponseMeta& meta, std::string_view object, const Usage& usage) {
  return Json{{"id", meta.id},       {"object", std::string(object)}, {"created", meta.created},
              {"model", meta.model}, {"choices", Json::array()},      {"usage", usage_json(usage)}};
}

Json llama_chunk_json(std::string_view text) { return Json{{"content", std::string(text)}, {"stop", false}}; }

Json embeddings_json(const std::string& model, const std::vector<std::vector<float>>& vectors, bool b64,
                     int prompt_tokens) {
  Json data = Json::array();
  for (std::size_t i = 0; i < vectors.size(); ++i) {
    data.push_back(
        Json{{"object", "embedding"}, {"index", i}, {"embedding", b64 ? Json(base64(vectors[i])) : Json(vectors[i])}});
  }
  return Json{{"object", "list"},
              {"data", std::move(data)},
              {"model", model},
              {"usage", {{"prompt_tokens", prompt_tokens}, {"total_tokens", prompt_tokens}}}};
}

Json llama_embeddings_json(const std::vector<std::vector<std::vector<float>>>& per_input) {
  Json out = Json::array();
  for (std::size_t i = 0; i < per_input.size(); ++i) out.push_back(Json{{"index", i}, {"embedding", per_input[i]}});
  return out;
}

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

}  // namespace llmd::runner
