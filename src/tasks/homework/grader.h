// The grade: the model's reply (forced by grade_schema), parsed and
// clamped, combined with the exact arithmetic check, which wins: a
// mismatch (or an answer with no readable value) caps the score and sets
// correct=false, a match sets correct=true and lifts the score to a floor.
// With several samples (self-consistency) the median score is taken and
// `confidence` says how much the samples agreed. Pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tasks/homework/arithmetic.h"
#include "tasks/homework/prompt.h"

namespace llmd::homework {

inline constexpr int kMaxSamples = 5;
inline constexpr std::size_t kMaxFeedbackChars = 500;   // code points
inline constexpr std::size_t kMaxSuggestionChars = 60;  // code points
inline constexpr std::size_t kMaxSuggestions = 5;

// The JSON schema the model's reply is forced to (response_format
// json_schema): {score: integer 0..100, correct: boolean, feedback: string
// 1..500, suggestions: 1..5 strings of 1..60}, all required, nothing else.
// `brief` asks for the same shape with short texts (feedback <= 80,
// suggestions 1..2 of <= 24): quick previews, and a random-weight test
// model, which fills every string to its maximum length, stays fast.
nlohmann::json grade_schema(bool brief = false);

struct ModelGrade {
  int score = 0;
  bool correct = false;
  std::string feedback;
  std::vector<std::string> suggestions;
};

// Reads the model's reply text. Out-of-range scores are clamped to 0..100
// (fractional ones rounded), texts trimmed and cut to their maximum length,
// empty suggestions dropped. Errors: kUnprocessable (reason
// model_reply_invalid) when it is not such a JSON object.
Result<ModelGrade> parse_model_grade(std::string_view content);

struct GradePolicy {
  int mismatch_cap = 40;  // highest score when the exact check says the value is wrong
  int match_floor = 60;   // lowest score when the exact check says the value is right
};

struct Grade {
  int score = 0;
  bool correct = false;
  std::string feedback;
  std::vector<std::string> suggestions;
  std::vector<Check> checks;
  std::vector<int> sample_scores;    // one per model sample (empty: no model call)
  std::optional<double> confidence;  // with more than one sample: 0..1
};

// True when the check decides `correct` on its own (match, mismatch or an
// answer without a readable value); false when the model grades alone.
bool decisive(const Check& check);

// Combines 1..kMaxSamples model grades with the exact check. Score: the
// median (mean of the middle two for an even count, rounded up). Correct:
// the majority (a tie goes to score >= 60), then overridden by a decisive
// check. Feedback and suggestions: from the sample nearest the median, with
// the exact check's finding put first when it is decisive. Confidence (two
// or more samples): (1 - (max - min) / 100) x the share of samples agreeing
// with the majority's `correct`, rounded to two decimals.
Grade combine(const std::vector<ModelGrade>& samples, const Check& check, Language language,
              const GradePolicy& policy = {});

// An answer that is empty (or only whitespace): score 0, no model call.
Grade grade_empty_answer(const Check& check, Language language);

// A grade from a decisive check alone (no model configured): 100 for a
// match, 0 otherwise. nullopt when the check is not decisive.
std::optional<Grade> grade_by_check(const Check& check, Language language);

// The check as reported in `checks[]`.
nlohmann::json check_json(const Check& check);

}  // namespace llmd::homework
