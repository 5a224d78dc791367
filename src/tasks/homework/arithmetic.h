// The exact arithmetic check of homework grading (SPEC §6 Homework): finds
// the expression in a question (`计算 2+3×4 的结果`, `2+3*4=?`, `２＋３×４`),
// evaluates it with exact rational arithmetic, reads the student's answer in
// the usual notations (`14`, `=14`, `28/2`, `十四`, `三分之二`, `50%`, `答：14个`)
// and compares the two values. No floating point anywhere; every input is
// bounded (length, nesting depth, size of powers), so nothing hangs or crashes.
// Pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace llmd::homework {

enum class Verdict {
  kMatch,              // the answer's value equals the expression's value
  kMismatch,           // the answer names a different value
  kUnparseableAnswer,  // the question is arithmetic but no value could be read from the answer
  kDivisionByZero,     // the question's expression divides by zero: nothing to compare
  kNotArithmetic,      // no expression found (or too large to check): the model grades alone
};

// "match", "mismatch", "unparseable_answer", "division_by_zero", "not_arithmetic".
std::string_view verdict_name(Verdict v);

// One exact check, reported to the client in `checks[]`.
struct Check {
  std::string kind = "arithmetic";
  std::string expression;  // the expression evaluated, ASCII (`2+3*4`); empty when none found
  std::string expected;    // its exact value (`14`, `0.75`, `5/6`); empty when not evaluated
  std::string student;     // the value read from the answer; empty when none
  Verdict verdict = Verdict::kNotArithmetic;
  std::string detail;  // one English sentence saying what happened
};

struct ArithmeticLimits {
  std::size_t max_question_bytes = 4000;  // longer questions are not checked
  std::size_t max_answer_bytes = 4000;    // longer answers have no readable value
  int max_depth = 64;                     // nesting of parentheses and unary signs (each counts)
  std::size_t max_result_bits = 4096;     // numerator + denominator size a power may produce
};

// The arithmetic expression a question asks for, normalised to ASCII
// (`+ - * / ^ % ( ) .` and digits), or nullopt when the question is not a
// bare calculation (word problems, algebra, several expressions, text that
// is not a known instruction word such as 计算/等于多少/calculate).
std::optional<std::string> extract_expression(std::string_view question, const ArithmeticLimits& limits = {});

// Evaluates an ASCII expression from extract_expression exactly and returns
// its value formatted as by format (`14`, `0.75`, `5/6`). Errors:
// kInvalidArgument with reason "division_by_zero", "too_large" or
// "not_arithmetic" (syntax, depth, irrational powers).
Result<std::string> evaluate_expression(std::string_view expression, const ArithmeticLimits& limits = {});

// The numeric value of a student's answer, formatted like
// evaluate_expression's results, or nullopt when none can be read. Accepts
// Arabic, full-width and Chinese numerals (`十四`, `一百零五`, `负三`,
// `三分之二`, `百分之五十`, `三点五`), fractions, decimals, percentages,
// prefixes (`答：`, `=`, `结果是`) and unit suffixes (`14个`); in a longer
// answer, the value after the last `=` or else the number it starts with.
std::optional<std::string> answer_value(std::string_view answer, const ArithmeticLimits& limits = {});

// The whole check: extract, evaluate, read the answer, compare.
Check check_arithmetic(std::string_view question, std::string_view answer, const ArithmeticLimits& limits = {});

}  // namespace llmd::homework
