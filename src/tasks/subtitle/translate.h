// Translating subtitle cues in aligned batches (SPEC §6 Subtitle).
//
// Cues are grouped into batches split at the largest time gaps. Each batch
// goes to the model with the source/target language, the running context
// (summary and glossary carried from earlier batches) and the numbered cue
// texts as data; the reply is forced by a JSON schema to an array of exactly
// as many strings as the batch has cues, so line counts can never drift and
// timings are copied from the source. Empty or untranslated lines are
// retried once; a failing batch is split in half and retried; what still
// fails keeps the source text and is reported.
//
// The model call itself is injected (ModelCall), so this module knows
// nothing of HTTP or of which instance serves the call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tasks/subtitle/subtitle.h"

namespace llmd::subtitle {

struct Batch {
  std::size_t first = 0;  // index of the first cue
  std::size_t count = 0;
};

// Splits cues into consecutive batches of min_batch..max_batch cues (the
// last may be shorter), cutting at the largest time gap inside each window.
std::vector<Batch> plan_batches(const std::vector<Cue>& cues, int min_batch = 10, int max_batch = 30);

// Carried from batch to batch; stored with a job so a resumed job continues
// with the same context.
struct Context {
  std::string summary;                                        // <= 400 characters
  std::vector<std::pair<std::string, std::string>> glossary;  // source term -> chosen translation, <= 30
  nlohmann::json to_json() const;
  static Context from_json(const nlohmann::json& j);  // tolerant: bad input = empty context
};

struct TranslateOptions {
  std::string source_lang = "auto";
  std::string target_lang = "zh";
  int max_tokens_per_batch = 0;  // 0 = estimated from the batch's text
};

// The model's answer to one chat request (OpenAI chat-completion body built
// by this module, without "model"; the caller adds it and sends it).
struct ModelReply {
  std::string content;  // choices[0].message.content
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
};
using ModelCall = std::function<boost::asio::awaitable<Result<ModelReply>>(const nlohmann::json& chat_request)>;

struct BatchResult {
  std::vector<std::string> lines;        // exactly cues.size() entries
  std::vector<std::size_t> kept_source;  // indices (within the batch) left in the source language
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  int model_calls = 0;
  std::string error;  // why lines were kept, if any
};

// Translates one batch (retry / split / keep-source policy above) and
// updates `context`. Cues with blank text are not sent. A ModelCall error
// that retrying cannot fix is returned as the error and the job stops:
// kPaymentRequired, kUnauthenticated, kPermissionDenied, kNotFound, or any
// error whose reason is "cancelled" (there is no cancelled ErrorCode: a
// cancelling caller returns e.g. Error(kUnavailable, "...", "cancelled")).
// Other call errors and unusable replies count as a failed attempt: a
// failed attempt of several lines is split in half (first half first), a
// single line gets one more try. Lines that come back empty or identical to
// a source with 4+ letters (unless source and target language are the
// same) are retried once, together; what still fails keeps the source text,
// is listed in kept_source and explained in `error`. Lines never shift:
// every reply is matched to the indices it was asked for.
boost::asio::awaitable<Result<BatchResult>> translate_batch(std::span<const Cue> cues, Context& context,
                                                            const TranslateOptions& options, const ModelCall& call);

// The chat request for one batch (exposed for tests): response_format is a
// json_schema whose "lines" array has minItems = maxItems = cues.size()
// (strings of 1..L characters, L from the longest source line), plus
// "summary" (<= 400 chars) and "glossary" (<= 8 {source,target}); only
// keywords src/grammar compiles to GBNF. max_tokens is
// options.max_tokens_per_batch when set (set it to fit the model's
// context), else the sum of each line's bound (3 x its characters + 20)
// plus summary and glossary, at one token per character.
nlohmann::json batch_request(std::span<const Cue> cues, const Context& context, const TranslateOptions& options);

// The smallest completion allowance worth running a batch with (a balance
// that cannot pay the batch's full max_tokens lowers it, not below this):
// one token per source character of its lines plus JSON punctuation, where
// a real model's reply with a short summary and glossary fits.
std::int64_t completion_floor(std::span<const Cue> cues);

struct OutputOptions {
  Format format = Format::kSrt;
  bool bilingual = false;
  bool target_first = true;  // bilingual order: translation over source
  int max_line_chars = 0;    // 0 = default_line_chars(target language)
  std::string target_lang = "zh";
};

// The translated document: source timings, translated (or bilingual) text.
// Each translation is wrapped at max_line_chars (0 = default_line_chars of
// target_lang); in bilingual output the source keeps its own line breaks
// and markup. A missing or blank translation leaves the source cue as it
// was. The source's ASS header, styles and VTT ids/settings are kept.
std::string render_translation(const Document& source, const std::vector<std::string>& translated,
                               const OutputOptions& options);

}  // namespace llmd::subtitle
