// The grading prompts: one versioned template per subject family
// (share/prompts/homework/<family>.v1.txt, built into the binary; an
// operator's directory of the same files overrides them). The caller's
// texts (question, answer, reference answer, rubric) go in as quoted data
// between a line `<<<NAME` and a line `NAME>>>`, with every `<` and `>`
// inside replaced by its full-width twin, so no student text can close a
// block or open a new one. Rendering is single-pass: a `{{placeholder}}`
// typed by the student stays literal text.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace llmd::homework {

enum class SubjectFamily { kMath, kChinese, kEnglish, kScience, kGeneral };
inline constexpr std::array<SubjectFamily, 5> kSubjectFamilies = {SubjectFamily::kMath, SubjectFamily::kChinese,
                                                                  SubjectFamily::kEnglish, SubjectFamily::kScience,
                                                                  SubjectFamily::kGeneral};

// "math", "chinese", "english", "science", "general" (the template file stems).
std::string_view family_name(SubjectFamily f);

// 数学/math/算术… → kMath, 语文/chinese → kChinese, 英语/english → kEnglish,
// 科学/物理/化学/生物/science… → kScience; any other text → kGeneral.
SubjectFamily subject_family(std::string_view subject);

enum class GradeLevel { kPrimary, kMiddle, kHigh, kUniversity };

// 小学/primary, 初中/middle, 高中/high, 大学/university (and a few common
// variants such as "primary school", "college"); nullopt for anything else.
std::optional<GradeLevel> parse_grade_level(std::string_view text);

enum class Language { kZh, kEn };

// Any spelling of Chinese or English language::resolve knows ("zh-CN",
// "中文", "English", "英文"); empty → kZh; another language → nullopt.
std::optional<Language> parse_language(std::string_view text);

struct PromptInput {
  std::string subject;  // as the caller wrote it (free text, shown to the model)
  SubjectFamily family = SubjectFamily::kGeneral;
  GradeLevel grade = GradeLevel::kPrimary;
  Language language = Language::kZh;
  std::string question;
  std::string answer;
  std::string reference_answer;  // empty = none
  std::string rubric;            // empty = the family's default rubric
};

struct RenderedPrompt {
  std::string system;
  std::string user;
  std::string version;  // e.g. "math.v1"
};

// The default rubric of a family: correctness, method/steps, expression,
// with weights, in the feedback language.
std::string default_rubric(SubjectFamily family, Language language);

// `text` as a quoted data block: "<<<NAME\n" + neutralised text + "\nNAME>>>".
std::string quote_data(std::string_view name, std::string_view text);

class PromptSet {
 public:
  // The built-in templates, each replaced by `<dir>/<family>.v1.txt` when
  // `dir` is not empty and that file exists. Errors (kInvalidArgument,
  // reason bad_config): `dir` is not a readable directory, or a template
  // lacks the [system]/[user] sections, {{question}} or {{student_answer}},
  // or names an unknown placeholder.
  static Result<PromptSet> load(const std::string& dir = {});

  RenderedPrompt render(const PromptInput& input) const;

  // "embedded" or the path of the file the family's template came from.
  const std::string& source(SubjectFamily f) const { return templates_[static_cast<std::size_t>(f)].source; }

 private:
  struct Template {
    std::string system, user, source;
  };
  std::array<Template, 5> templates_;
};

// Parses one template's text (exposed for tests). `source` names it in errors.
Result<std::pair<std::string, std::string>> parse_template(std::string_view text, std::string_view source);

}  // namespace llmd::homework
