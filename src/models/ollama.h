// Ollama's native API (/api/chat, /api/generate, /api/embed) translated to
// and from the OpenAI requests the workers speak, so the gateway serves it
// with the same admission, billing and balancer as /v1/*. Pure JSON work.
//
//   auto chat = ollama::chat_request(request);    // Ollama -> OpenAI chat body
//   ollama::StreamTranslator t(ollama::Kind::kChat, model);
//   for (auto& line : t.feed(chunk)) write(line.dump() + "\n");   // NDJSON
//   write(t.finish(usage, timings).dump() + "\n");
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace llmd::models::ollama {

enum class Kind { kChat, kGenerate };

// Whether the request streams: Ollama streams unless "stream": false.
bool streams(const nlohmann::json& request);

// POST /api/chat: messages (with tool_calls and tool results), tools,
// format ("json" or a JSON schema), options (temperature, top_p, top_k,
// min_p, seed, num_predict, stop, repeat/presence/frequency penalties),
// think. Images are refused: the workers read text.
Result<nlohmann::json> chat_request(const nlohmann::json& request);
// POST /api/generate: prompt and system as a chat (the model's template), or
// with "raw": true the prompt as it is (a text completion: `raw` is set).
Result<nlohmann::json> generate_request(const nlohmann::json& request, bool& raw);
// POST /api/embed: input (a string or strings).
Result<nlohmann::json> embed_request(const nlohmann::json& request);

// The request's keep_alive: seconds as a number, or a duration ("5m",
// "1h30m", "90s", "0"); negative = for ever; nullopt when absent.
// Errors: kInvalidArgument.
Result<std::optional<std::chrono::seconds>> keep_alive(const nlohmann::json& request);

// Call facts Ollama's replies report.
struct Timing {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t total_ns = 0;
};

// The whole reply of a chat / generate call from an OpenAI chat completion
// (or, for raw generate, a text completion) body.
nlohmann::json reply(Kind kind, const nlohmann::json& completion, const std::string& model, const Timing& timing);
// The reply of /api/embed from an OpenAI embeddings body.
nlohmann::json embed_reply(const nlohmann::json& embeddings, const std::string& model, const Timing& timing);

// "2026-12-06T21:58:19.123Z": Ollama's created_at, now.
std::string now_rfc3339();

// OpenAI stream chunks to Ollama's NDJSON lines: one line per chunk with
// text (message.content / response, thinking, tool calls), then the final
// "done" line with the counts.
class StreamTranslator {
 public:
  StreamTranslator(Kind kind, std::string model) : kind_(kind), model_(std::move(model)) {}
  std::vector<nlohmann::json> feed(const nlohmann::json& chunk);
  // The assembled tool calls (chat), then the "done" line.
  std::vector<nlohmann::json> finish(const Timing& timing) const;

 private:
  nlohmann::json line(nlohmann::json message_or_text) const;

  Kind kind_;
  std::string model_;
  std::string finish_reason_ = "stop";
  nlohmann::json tool_calls_ = nlohmann::json::array();  // assembled from deltas, sent when complete
};

}  // namespace llmd::models::ollama
