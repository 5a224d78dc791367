#include "tasks/homework/prompt.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/language.h"
#include "core/text.h"
#include "tasks/homework/prompts_embedded.h"

namespace llmd::homework {
namespace {

constexpr std::string_view kPlaceholders[] = {"subject",          "grade_level", "language",      "rubric",
                                              "reference_answer", "question",    "student_answer"};

bool known_placeholder(std::string_view name) {
  for (auto p : kPlaceholders) {
    if (p == name) return true;
  }
  return false;
}

std::string_view embedded_template(SubjectFamily f) {
  switch (f) {
    case SubjectFamily::kMath: return embedded::kPrompt_math_v1;
    case SubjectFamily::kChinese: return embedded::kPrompt_chinese_v1;
    case SubjectFamily::kEnglish: return embedded::kPrompt_english_v1;
    case SubjectFamily::kScience: return embedded::kPrompt_science_v1;
    case SubjectFamily::kGeneral: return embedded::kPrompt_general_v1;
  }
  return embedded::kPrompt_general_v1;
}

// Caller text made safe to quote: no ASCII angle brackets (so no delimiter
// can be formed), no control characters but newline and tab.
std::string neutralise(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '<') {
      out += "\xEF\xBC\x9C";  // U+FF1C FULLWIDTH LESS-THAN SIGN
    } else if (c == '>') {
      out += "\xEF\xBC\x9E";  // U+FF1E FULLWIDTH GREATER-THAN SIGN
    } else if (c == '\r') {
      if (i + 1 >= text.size() || text[i + 1] != '\n') out += '\n';
    } else if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

// A short single-line caller text (the subject): neutralised, newlines folded.
std::string inline_text(std::string_view text) {
  std::string out = neutralise(text::trim(text));
  for (auto& c : out) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  return out;
}

std::string grade_text(GradeLevel g) {
  switch (g) {
    case GradeLevel::kPrimary: return "小学 (primary school)";
    case GradeLevel::kMiddle: return "初中 (middle school)";
    case GradeLevel::kHigh: return "高中 (high school)";
    case GradeLevel::kUniversity: return "大学 (university)";
  }
  return "小学 (primary school)";
}

std::string language_text(Language l) { return l == Language::kEn ? "English" : "简体中文 (Simplified Chinese)"; }

bool any_of_words(std::string_view text, std::initializer_list<std::string_view> words) {
  for (auto w : words) {
    if (text == w) return true;
  }
  return false;
}

Result<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return fail(ErrorCode::kInvalidArgument, "cannot read prompt template " + path.filename().string(), "bad_config");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::string_view family_name(SubjectFamily f) {
  switch (f) {
    case SubjectFamily::kMath: return "math";
    case SubjectFamily::kChinese: return "chinese";
    case SubjectFamily::kEnglish: return "english";
    case SubjectFamily::kScience: return "science";
    case SubjectFamily::kGeneral: return "general";
  }
  return "general";
}

SubjectFamily subject_family(std::string_view subject) {
  const std::string s = text::to_lower(text::trim(subject));
  if (any_of_words(s, {"数学", "算术", "奥数", "math", "maths", "mathematics", "arithmetic", "algebra"})) {
    return SubjectFamily::kMath;
  }
  if (any_of_words(s, {"语文", "中文", "汉语", "作文", "chinese"})) return SubjectFamily::kChinese;
  if (any_of_words(s, {"英语", "英文", "english"})) return SubjectFamily::kEnglish;
  if (any_of_words(s, {"科学", "物理", "化学", "生物", "science", "physics", "chemistry", "biology"})) {
    return SubjectFamily::kScience;
  }
  return SubjectFamily::kGeneral;
}

std::optional<GradeLevel> parse_grade_level(std::string_view text) {
  const std::string s = text::to_lower(text::trim(text));
  if (any_of_words(s, {"小学", "primary", "primary school", "elementary", "elementary school"})) {
    return GradeLevel::kPrimary;
  }
  if (any_of_words(s, {"初中", "middle", "middle school", "junior high", "junior high school"})) {
    return GradeLevel::kMiddle;
  }
  if (any_of_words(s, {"高中", "high", "high school", "senior high", "senior high school"})) return GradeLevel::kHigh;
  if (any_of_words(s, {"大学", "university", "college"})) return GradeLevel::kUniversity;
  return std::nullopt;
}

std::optional<Language> parse_language(std::string_view text) {
  if (text::trim(text).empty()) return Language::kZh;
  auto lang = language::resolve(text);
  if (!lang) return std::nullopt;
  const std::string primary = language::primary_subtag(lang->tag);
  if (primary == "zh") return Language::kZh;
  if (primary == "en") return Language::kEn;
  return std::nullopt;
}

std::string default_rubric(SubjectFamily family, Language language) {
  const bool zh = language == Language::kZh;
  switch (family) {
    case SubjectFamily::kMath:
      return zh ? "正确性 60 分：最终结果是否正确。\n方法与步骤 30 分：思路和计算过程是否合理、完整。\n表达 10 "
                  "分：书写、符号和单位是否规范。"
                : "Correctness 60: is the final result right.\nMethod and steps 30: is the reasoning and working sound "
                  "and complete.\nExpression 10: notation, symbols and units.";
    case SubjectFamily::kChinese:
      return zh ? "正确性 60 分：内容是否正确、完整地回答了问题。\n方法与理解 25 分：理解和依据是否合理。\n表达 15 "
                  "分：错别字、语法和标点。"
                : "Correctness 60: does the answer answer the question rightly and completely.\nUnderstanding 25: "
                  "reasoning and evidence.\nExpression 15: wrong characters, grammar and punctuation.";
    case SubjectFamily::kEnglish:
      return zh ? "正确性 60 分：意思、用词、时态和词形是否正确。\n拼写与语法 30 分。\n表达 10 分：大小写和标点。"
                : "Correctness 60: meaning, word choice, tense and form.\nSpelling and grammar 30.\nExpression 10: "
                  "capitalisation and punctuation.";
    case SubjectFamily::kScience:
      return zh ? "正确性 60 分：事实、概念和结果（含单位）是否正确。\n方法与推理 30 分：推理或步骤是否合理。\n表达 10 "
                  "分：术语和表述是否准确清楚。"
                : "Correctness 60: facts, concepts and results (with units).\nMethod and reasoning 30.\nExpression "
                  "10: terms and clarity.";
    case SubjectFamily::kGeneral: break;
  }
  return zh ? "正确性 60 分：答案是否正确、完整。\n方法与思路 30 分。\n表达 10 分：是否清楚、规范。"
            : "Correctness 60: is the answer right and complete.\nMethod and reasoning 30.\nExpression 10: clarity.";
}

std::string quote_data(std::string_view name, std::string_view text) {
  std::string block = "<<<" + std::string(name) + "\n" + neutralise(text);
  if (block.back() != '\n') block += '\n';
  return block + std::string(name) + ">>>";
}

Result<std::pair<std::string, std::string>> parse_template(std::string_view text, std::string_view source) {
  const auto bad = [&](const std::string& what) {
    return fail(ErrorCode::kInvalidArgument, "prompt template " + std::string(source) + ": " + what, "bad_config");
  };
  const auto sys = text.find("[system]\n");
  const auto user = text.find("\n[user]\n");
  if (sys == std::string_view::npos || user == std::string_view::npos || user < sys) {
    return bad("needs a line [system] followed later by a line [user]");
  }
  // Lines before [system] are comments for the operator.
  std::string system(text.substr(sys + 9, user + 1 - (sys + 9)));
  std::string user_part(text.substr(user + 8));
  while (!system.empty() && system.back() == '\n') system.pop_back();
  while (!user_part.empty() && user_part.back() == '\n') user_part.pop_back();
  for (const std::string* part : {&system, &user_part}) {
    for (auto open = part->find("{{"); open != std::string::npos; open = part->find("{{", open + 2)) {
      const auto close = part->find("}}", open);
      if (close == std::string::npos) return bad("unclosed {{");
      const std::string name = part->substr(open + 2, close - open - 2);
      if (!known_placeholder(name)) return bad("unknown placeholder {{" + name + "}}");
    }
  }
  if (user_part.find("{{question}}") == std::string::npos ||
      user_part.find("{{student_answer}}") == std::string::npos) {
    return bad("the [user] section must contain {{question}} and {{student_answer}}");
  }
  return std::pair{std::move(system), std::move(user_part)};
}

Result<PromptSet> PromptSet::load(const std::string& dir) {
  namespace fs = std::filesystem;
  PromptSet set;
  std::error_code ec;
  if (!dir.empty() && !fs::is_directory(dir, ec)) {
    return fail(ErrorCode::kInvalidArgument, "tasks.homework.prompts_dir: not a directory", "bad_config");
  }
  for (SubjectFamily f : kSubjectFamilies) {
    Template& t = set.templates_[static_cast<std::size_t>(f)];
    const std::string file = std::string(family_name(f)) + ".v1.txt";
    std::string text(embedded_template(f));
    t.source = "embedded";
    if (!dir.empty() && fs::is_regular_file(fs::path(dir) / file, ec)) {
      auto read = read_file(fs::path(dir) / file);
      if (!read) return std::unexpected(read.error());
      text = std::move(*read);
      t.source = (fs::path(dir) / file).string();
    }
    auto parts = parse_template(text, t.source == "embedded" ? "(built-in) " + file : file);
    if (!parts) return std::unexpected(parts.error());
    t.system = std::move(parts->first);
    t.user = std::move(parts->second);
  }
  return set;
}

RenderedPrompt PromptSet::render(const PromptInput& in) const {
  const Template& t = templates_[static_cast<std::size_t>(in.family)];
  const auto value = [&](std::string_view name) -> std::string {
    if (name == "subject") return inline_text(in.subject);
    if (name == "grade_level") return grade_text(in.grade);
    if (name == "language") return language_text(in.language);
    if (name == "rubric")
      return quote_data("RUBRIC", in.rubric.empty() ? default_rubric(in.family, in.language) : in.rubric);
    if (name == "reference_answer") {
      return in.reference_answer.empty() ? std::string("(none given)")
                                         : quote_data("REFERENCE_ANSWER", in.reference_answer);
    }
    if (name == "question") return quote_data("QUESTION", in.question);
    if (name == "student_answer") return quote_data("STUDENT_ANSWER", in.answer);
    return {};
  };
  // One pass over the template: substituted text is never scanned again.
  const auto fill = [&](const std::string& tpl) {
    std::string out;
    std::size_t at = 0;
    for (auto open = tpl.find("{{"); open != std::string::npos; open = tpl.find("{{", at)) {
      const auto close = tpl.find("}}", open);
      if (close == std::string::npos) break;
      out.append(tpl, at, open - at);
      out += value(std::string_view(tpl).substr(open + 2, close - open - 2));
      at = close + 2;
    }
    out.append(tpl, at);
    return out;
  };
  return {fill(t.system), fill(t.user), std::string(family_name(in.family)) + ".v1"};
}

}  // namespace llmd::homework
