// Request parsing and response shaping for the runner's HTTP dialects:
// OpenAI chat/legacy completions and embeddings, and llama-server's
// /completion. Pure functions over JSON: no HTTP, no model state, so the
// validation rules are testable on their own.
//
// Parsing validates every field it knows (type, range, NaN/inf) and refuses
// what a route does not implement (suffix outside /infill, best_of outside
// /v1/completions) with kInvalidArgument naming the field, instead of
// silently ignoring it.
// Unknown fields are ignored, as OpenAI clients send extras freely.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "runner/chat.h"
#include "runner/engine.h"

namespace llmd::runner {

// Request bodies are parsed keeping key order (a JSON schema's property order
// decides the order the model writes properties in).
using Json = nlohmann::ordered_json;

// The most choices (n, best_of) one request may ask for; the engine's
// parallel slots bound it further.
inline constexpr int kMaxChoices = 16;

// Which endpoint a parsed request came from; decides the response shape.
enum class ApiKind { kChat, kTextCompletion, kLlamaCompletion };

// A fill-in-the-middle request (llama-server's /infill, or OpenAI's suffix):
// the text before and after the gap, and other files for context.
struct InfillInput {
  std::string prefix;
  std::string suffix;
  std::string prompt;                                      // text already written at the gap, right after the prefix
  std::vector<std::pair<std::string, std::string>> extra;  // (filename, text), most relevant last
};

// One prompt in llama-server's forms: text, token ids, or both mixed
// ([12, "text", 34]), as pieces in order.
using PromptPiece = std::variant<std::string, llama_token>;
using PromptPieces = std::vector<PromptPiece>;

struct ParsedGenerate {
  ApiKind kind = ApiKind::kChat;
  // Prompt (text or tokens), sampling, max_tokens, stop. For kChat the prompt
  // is empty: the caller renders `chat` with the model's template.
  GenerateRequest request;
  ChatInput chat;       // kChat only: messages, tools, template switches, reply constraint
  ChatPrompt rendered;  // kChat only, once rendered: what the output parser needs
  // Reasoning-token budget (reasoning_budget_tokens / thinking_budget_tokens); none: unlimited.
  std::optional<int> reasoning_budget;
  // logit_bias entries given as text: every token of the text gets the bias.
  std::vector<std::pair<std::string, float>> logit_bias_text;
  int n = 1;        // choices of the prompt (OpenAI's n)
  int best_of = 1;  // /v1/completions: choices generated, of which the best n are returned (>= n)
  // Set for fill-in-the-middle: the prompt is built from it with the model's
  // FIM tokens (request.prompt then holds nothing the engine reads).
  std::optional<InfillInput> infill;
  bool stream = false;
  bool echo = false;           // /v1/completions: the reply's text starts with the prompt
  bool include_usage = false;  // stream_options.include_usage
  // llama-server's timings_per_token: every streamed chunk carries
  // "timings" {cache_n, prompt_n, predicted_n} (the usage so far), so a
  // gateway can bill a stream that is cut short exactly.
  bool timings_per_token = false;
  // A prompt of token ids mixed with text ([12, "text", 34]): tokenized
  // with the model (piece by piece, special text parsed) into request.prompt_tokens.
  std::optional<PromptPieces> mixed_prompt;
  std::string model;                         // the model name the client asked for (informational)
  std::vector<std::string> response_fields;  // /completion: reply with only these fields (empty: all)
  bool verbose = false;                      // llama-server's "verbose": the reply carries __verbose
  bool return_tokens = false;                // /completion: the reply lists the generated token ids
};

// Parses a request body: UTF-8 check, JSON parse, must be an object.
// Errors: kInvalidArgument with reason invalid_utf8 / invalid_json / invalid_request.
Result<Json> parse_json_body(std::string_view body);

// POST /v1/chat/completions. `n_ctx_slot` bounds max_tokens.
Result<ParsedGenerate> parse_chat_request(const Json& body, int n_ctx_slot);
// POST /v1/completions (OpenAI legacy completions).
Result<ParsedGenerate> parse_text_completion_request(const Json& body, int n_ctx_slot);
// POST /completion (llama-server): prompt (string or token ids), n_predict,
// grammar, json_schema, stream, cache_prompt, sampling fields.
Result<ParsedGenerate> parse_llama_completion_request(const Json& body, int n_ctx_slot);

// POST /infill (llama-server): input_prefix and input_suffix (required
// strings), prompt (optional), input_extra [{filename?, text}], and the
// fields of /completion. Replies are shaped like /completion's.
Result<ParsedGenerate> parse_infill_request(const Json& body, int n_ctx_slot);

// POST /tokenize: content, add_special (default false), parse_special
// (default true: special-token text is one token), with_pieces (default false).
struct TokenizeRequest {
  std::string content;
  bool add_special = false;
  bool parse_special = true;
  bool with_pieces = false;
};
Result<TokenizeRequest> parse_tokenize_request(const Json& body);
// POST /lora-adapters: the body, llama-server's LoRA list
// [{"id": N, "scale": X}, ...] (a request's "lora" field has the same shape).
Result<std::vector<LoraScale>> parse_lora_adapters_body(std::string_view body);
// GET /lora-adapters: [{id, path, scale}].
Json lora_adapters_json(const std::vector<LoraAdapterInfo>& adapters);
// POST /detokenize: tokens (array of integers).
Result<std::vector<llama_token>> parse_detokenize_request(const Json& body);

// POST /v1/embeddings, /embeddings, /embedding: "input" (or llama-server's
// "content") is one prompt (text, token ids, or mixed) or an array of up to
// 256 of them.
struct EmbeddingsRequest {
  std::vector<PromptPieces> inputs;
  bool base64 = false;  // encoding_format "base64" (float32 little-endian)
  // OpenAI's shape; false: llama-server's [{index, embedding: [[...]]}]
  // (the unprefixed routes, or a body with "content").
  bool oai = true;
  // embd_normalize: -1 none, 0 max-abs (int16 range), 1 taxicab, 2 euclidean (default), >2 p-norm.
  int normalize = 2;
  std::string model;
};
Result<EmbeddingsRequest> parse_embeddings_request(const Json& body, bool oai_route = true);

// POST /rerank (and /v1/rerank, /reranking): Jina's shape (query, documents,
// top_n) or TEI's (query, texts, return_text). At most 256 documents, each a
// non-empty string.
struct RerankRequest {
  std::string query;
  std::vector<std::string> documents;
  bool tei = false;  // "texts" given: answer TEI's bare array
  std::optional<std::size_t> top_n;
  bool return_text = false;  // TEI only
  std::string model;
};
Result<RerankRequest> parse_rerank_request(const Json& body);

// One document's score: its index in the request, how relevant, and the
// tokens its (query, document) prompt took.
struct RankedDocument {
  std::size_t index = 0;
  float score = 0;
  int n_tokens = 0;
};
// The reply, most relevant first, cut to top_n: Jina's {model, object, usage,
// results: [{index, relevance_score}]} or TEI's [{index, score, text?}].
Json rerank_json(const RerankRequest& request, const std::string& model, std::vector<RankedDocument> ranked);

// What every generated response carries: id, creation time, model name.
struct ResponseMeta {
  std::string id;       // "chatcmpl-..." / "cmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;
  // Identifies the engine build (OpenAI's system_fingerprint).
  std::string system_fingerprint;
};

// The error's type as llama-server (after OpenAI) names it in error.type:
// invalid_request_error, authentication_error, permission_error,
// not_found_error, exceed_context_size_error, not_supported_error,
// unavailable_error, server_error.
std::string_view openai_error_type(const Error& e);

// A fresh response id with `prefix` ("chatcmpl-"). Thread-safe.
std::string make_response_id(std::string_view prefix);

// "stop" or "length" (a cancelled request never gets a response body).
std::string_view openai_finish_reason(FinishReason reason);
// As above, "tool_calls" when the reply called a tool and was not cut short.
std::string_view openai_finish_reason(FinishReason reason, const ChatReply& reply);

Json usage_json(const Usage& usage);
// llama-server's timings object (prompt_n, prompt_ms, predicted_per_second, ...).
Json timings_json(const Completion& c);

// The timings of a stream still running (timings_per_token): what llama-server
// reports as cache_n, prompt_n (evaluated, cache excluded) and predicted_n.
Json progress_timings_json(const Usage& so_far);

// Token probabilities in each dialect's shape; `piece` gives a token's text.
using PieceOf = std::function<std::string(llama_token)>;
// Chat: {"content": [{token, logprob, bytes, top_logprobs: [...]}], "refusal": null}.
Json chat_logprobs_json(std::span<const TokenProb> probs, const PieceOf& piece);
// Legacy completions: {tokens, token_logprobs, top_logprobs: [{text: logprob}], text_offset}.
Json text_logprobs_json(std::span<const TokenProb> probs, const PieceOf& piece, std::size_t text_offset);
// llama-server: completion_probabilities [{id, token, logprob, bytes, top_logprobs}].
Json llama_probs_json(std::span<const TokenProb> probs, const PieceOf& piece);

// Non-streamed bodies (logprobs: null; the caller sets them when asked). A chat reply carries the parsed message
// (content, reasoning_content, tool_calls); finish_reason "tool_calls" when it called one.
Json chat_completion_json(const ResponseMeta& meta, const Completion& c, const ChatReply& reply);
Json text_completion_json(const ResponseMeta& meta, const Completion& c);
// llama-server's /completion reply; `settings` is its generation_settings.
Json llama_completion_json(const ResponseMeta& meta, const Completion& c, const Json& settings);
// The sampling settings a generation ran with (llama-server's
// generation_settings; a banned token's bias is null, for -inf).
Json generation_settings_json(const GenerateRequest& r);
// llama-server's response_fields: only these fields of `reply`, a nested
// one ("generation_settings/n_predict") under its path as the key.
Json select_fields(const Json& reply, const std::vector<std::string>& fields);

// Streamed chunks. `finish` set on the last content chunk; `usage_null` adds
// "usage": null as OpenAI does when include_usage is on.
Json chat_chunk_json(const ResponseMeta& meta, Json delta, std::optional<std::string_view> finish, bool usage_null);
Json text_chunk_json(const ResponseMeta& meta, std::string_view text, std::optional<FinishReason> finish,
                     bool usage_null);
// The final include_usage chunk: empty choices, usage filled.
Json usage_chunk_json(const ResponseMeta& meta, std::string_view object, const Usage& usage);
// llama-server stream pieces: {"content": text, "stop": false}; the last one is
// llama_completion_json with "stop": true and empty content (the text was streamed).
Json llama_chunk_json(std::string_view text);

Json embeddings_json(const std::string& model, const std::vector<std::vector<float>>& vectors, bool base64,
                     int prompt_tokens);
// llama-server's non-OpenAI shape: [{index, embedding: [[...], ...]}], one
// vector per input when pooled, one per token with pooling "none".
Json llama_embeddings_json(const std::vector<std::vector<std::vector<float>>>& per_input);

// Serializes for the wire; invalid UTF-8 in generated text becomes U+FFFD.
std::string dump(const Json& j);

}  // namespace llmd::runner
