#include "tasks/homework/grader.h"

#include <algorithm>
#include <cmath>

#include "core/text.h"

namespace llmd::homework {
namespace {

// `s` cut to at most `max` code points (never inside a UTF-8 sequence).
std::string cut(std::string_view s, std::size_t max) {
  std::size_t points = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (points == max) return std::string(s.substr(0, i));
      ++points;
    }
  }
  return std::string(s);
}

std::string clean(std::string_view s, std::size_t max) { return cut(text::trim(s), max); }

// What the exact check found, as the first sentence of the feedback.
std::string check_sentence(const Check& c, Language lang) {
  const bool zh = lang == Language::kZh;
  switch (c.verdict) {
    case Verdict::kMatch:
      return zh ? "精确验算：" + c.expression + " = " + c.expected + "，你的答案正确。"
                : "Exact check: " + c.expression + " = " + c.expected + "; your answer is right.";
    case Verdict::kMismatch:
      return zh ? "精确验算：" + c.expression + " = " + c.expected + "，你的答案 " + c.student + " 不正确。"
                : "Exact check: " + c.expression + " = " + c.expected + "; your answer " + c.student + " is wrong.";
    case Verdict::kUnparseableAnswer:
      return zh ? "精确验算：" + c.expression + " = " + c.expected + "，但没能从你的答案中读出一个数值。"
                : "Exact check: " + c.expression + " = " + c.expected +
                      ", but no number could be read from your answer.";
    default: return {};
  }
}

std::string join_feedback(const std::string& first, const std::string& rest) {
  if (first.empty()) return cut(rest, kMaxFeedbackChars);
  if (rest.empty()) return cut(first, kMaxFeedbackChars);
  return cut(first + " " + rest, kMaxFeedbackChars);
}

}  // namespace

nlohmann::json grade_schema(bool brief) {
  using nlohmann::json;
  const std::size_t feedback_chars = brief ? 80 : kMaxFeedbackChars;
  const std::size_t suggestions = brief ? 2 : kMaxSuggestions;
  const std::size_t suggestion_chars = brief ? 24 : kMaxSuggestionChars;
  return json{{"type", "object"},
              {"properties",
               {{"score", {{"type", "integer"}, {"minimum", 0}, {"maximum", 100}}},
                {"correct", {{"type", "boolean"}}},
                {"feedback", {{"type", "string"}, {"minLength", 1}, {"maxLength", feedback_chars}}},
                {"suggestions",
                 {{"type", "array"},
                  {"minItems", 1},
                  {"maxItems", suggestions},
                  {"items", {{"type", "string"}, {"minLength", 1}, {"maxLength", suggestion_chars}}}}}}},
              {"required", {"score", "correct", "feedback", "suggestions"}},
              {"additionalProperties", false}};
}

Result<ModelGrade> parse_model_grade(std::string_view content) {
  const auto invalid = [](const char* what) {
    return fail(ErrorCode::kUnprocessable, std::string("the model's grade is unusable: ") + what,
                "model_reply_invalid");
  };
  const auto j = nlohmann::json::parse(content, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid("not a JSON object (cut short?)");
  ModelGrade g;
  const auto score = j.find("score");
  if (score == j.end() || !score->is_number()) return invalid("no numeric score");
  const double raw = score->get<double>();
  g.score = std::isfinite(raw) ? static_cast<int>(std::lround(std::clamp(raw, 0.0, 100.0))) : 0;
  const auto correct = j.find("correct");
  if (correct == j.end() || !correct->is_boolean()) return invalid("no boolean correct");
  g.correct = correct->get<bool>();
  const auto feedback = j.find("feedback");
  if (feedback == j.end() || !feedback->is_string()) return invalid("no feedback text");
  g.feedback = clean(feedback->get<std::string>(), kMaxFeedbackChars);
  if (const auto s = j.find("suggestions"); s != j.end() && s->is_array()) {
    for (const auto& item : *s) {
      if (!item.is_string()) continue;
      std::string text = clean(item.get<std::string>(), kMaxSuggestionChars);
      if (!text.empty() && g.suggestions.size() < kMaxSuggestions) g.suggestions.push_back(std::move(text));
    }
  }
  return g;
}

bool decisive(const Check& c) {
  return c.verdict == Verdict::kMatch || c.verdict == Verdict::kMismatch || c.verdict == Verdict::kUnparseableAnswer;
}

Grade combine(const std::vector<ModelGrade>& samples, const Check& check, Language language,
              const GradePolicy& policy) {
  Grade g;
  g.checks.push_back(check);
  if (samples.empty()) return g;
  std::vector<int> scores;
  int correct_votes = 0;
  for (const auto& s : samples) {
    scores.push_back(s.score);
    correct_votes += s.correct ? 1 : 0;
  }
  g.sample_scores = scores;
  std::sort(scores.begin(), scores.end());
  const std::size_t n = scores.size();
  const int median = n % 2 == 1 ? scores[n / 2] : (scores[n / 2 - 1] + scores[n / 2] + 1) / 2;
  const int wrong_votes = static_cast<int>(n) - correct_votes;
  const bool majority = correct_votes != wrong_votes ? correct_votes > wrong_votes : median >= 60;
  if (n > 1) {
    const double spread = (scores.back() - scores.front()) / 100.0;
    const double agreement = static_cast<double>(majority ? correct_votes : wrong_votes) / static_cast<double>(n);
    g.confidence = std::round((1.0 - spread) * agreement * 100.0) / 100.0;
  }
  // The sample nearest the median speaks for the others.
  const ModelGrade* voice = &samples.front();
  for (const auto& s : samples) {
    if (std::abs(s.score - median) < std::abs(voice->score - median)) voice = &s;
  }
  g.score = median;
  g.correct = majority;
  g.suggestions = voice->suggestions;
  std::string first;
  if (decisive(check)) {
    first = check_sentence(check, language);
    if (check.verdict == Verdict::kMatch) {
      g.correct = true;
      g.score = std::max(g.score, policy.match_floor);
    } else {
      g.correct = false;
      g.score = std::min(g.score, policy.mismatch_cap);
    }
  }
  g.feedback = join_feedback(first, voice->feedback);
  if (g.suggestions.empty()) {
    g.suggestions.push_back(language == Language::kZh ? "对照题目再检查一遍答案。"
                                                      : "Check your answer against the question again.");
  }
  return g;
}

Grade grade_empty_answer(const Check& check, Language language) {
  Grade g;
  g.checks.push_back(check);
  g.feedback = language == Language::kZh ? "没有作答：答案为空，得 0 分。" : "No answer was given, so the score is 0.";
  g.suggestions = {language == Language::kZh ? "请写出你的答案，并写出主要步骤。"
                                             : "Write your answer and the main steps."};
  return g;
}

std::optional<Grade> grade_by_check(const Check& check, Language language) {
  if (!decisive(check)) return std::nullopt;
  Grade g;
  g.checks.push_back(check);
  g.correct = check.verdict == Verdict::kMatch;
  g.score = g.correct ? 100 : 0;
  g.feedback = check_sentence(check, language);
  const bool zh = language == Language::kZh;
  if (g.correct) {
    g.suggestions = {zh ? "继续保持，注意写出计算步骤。" : "Well done; keep showing your working."};
  } else if (check.verdict == Verdict::kMismatch) {
    g.suggestions = {zh ? "注意运算顺序（先乘除后加减，先算括号），再验算一遍。"
                        : "Mind the order of operations (brackets, then x and /, then + and -) and check again."};
  } else {
    g.suggestions = {zh ? "把最后的结果写成一个数，例如 14 或 3/4。"
                        : "Write the final result as a number, e.g. 14 or 3/4."};
  }
  return g;
}

nlohmann::json check_json(const Check& c) {
  return {{"kind", c.kind},
          {"expression", c.expression},
          {"expected", c.expected},
          {"student", c.student},
          {"verdict", std::string(verdict_name(c.verdict))},
          {"detail", c.detail}};
}

}  // namespace llmd::homework
