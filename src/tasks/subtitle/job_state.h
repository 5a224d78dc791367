// What a subtitle job keeps in the database: what to produce and the
// source document (jobs.input), and where it stands between batches
// (jobs.state), which a resumed job continues from. Reading is tolerant of
// fields an older row lacks; a document that cannot be read is kInternal
// ("job_damaged").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "billing/accounts.h"
#include "core/error.h"
#include "tasks/subtitle/subtitle.h"
#include "tasks/subtitle/translate.h"

namespace llmd::subtitle {

// What to produce from a source document (stored with the job).
struct SubtitleJobSpec {
  std::string source_lang = "auto";
  std::string target_lang;
  Format output_format = Format::kSrt;
  bool bilingual = false;
  bool target_first = true;
  int max_line_chars = 0;   // 0 = the target language's default
  std::string source;       // "content" | "upload" | "video" | "speech": where the cues came from
  std::string source_name;  // original file name, for the download name (may be empty)
};

nlohmann::json spec_to_json(const SubtitleJobSpec& spec);
SubtitleJobSpec spec_from_json(const nlohmann::json& j);

// The cues with their timings and format extras, and the ASS header.
nlohmann::json document_to_json(const Document& doc);
Result<Document> document_from_json(const nlohmann::json& j);

// Where a job stands between batches (jobs.state).
struct JobProgress {
  std::size_t next_batch = 0;
  std::vector<std::string> lines;         // translations of the cues of batches [0, next_batch)
  std::vector<std::int64_t> kept_source;  // cue indices left in the source language
  Context context;
  std::int64_t prompt_tokens = 0;  // billed: the cue texts of the finished batches
  std::int64_t completion_tokens = 0;
  std::int64_t model_calls = 0;
  std::int64_t started_at = 0;
  std::int64_t base() const { return prompt_tokens + completion_tokens; }
};

// `now` (unix seconds) is the start time of a job whose state has none.
JobProgress progress_from_state(const nlohmann::json& state, std::int64_t now);
// Writes the progress into `state`, leaving its other fields.
void progress_to_state(const JobProgress& progress, nlohmann::json& state);

// The reservation a job holds, as recorded in its state ({id, amount}).
billing::Reservation reservation_from_state(const nlohmann::json& state, std::int64_t user_id,
                                            const std::string& job_id);
nlohmann::json reservation_json(const billing::Reservation& r);

}  // namespace llmd::subtitle
