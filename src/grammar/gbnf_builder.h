// Internal: assembles a GBNF grammar in llama.cpp's dialect — unique rule
// names, the shared JSON primitives, literal escaping, bounded repetition and
// digit-range expressions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace llmd::grammar::detail {

// Largest `{m,n}` bound written. llama.cpp turns each optional repetition into
// one synthesized rule and refuses (or silently unbounds) counts ≥ 2000, so
// larger counts are composed from chunk rules (`item-x64 ::= item{64}`).
inline constexpr std::uint64_t kRepeatChunk = 64;

// A GBNF string literal ("...") matching exactly the UTF-8 text `text`.
// Quotes, backslashes and control characters are escaped; other characters,
// Chinese included, are written as they are.
std::string gbnf_literal(std::string_view text);

// An expression matching the decimal integers in [lo, hi] (no leading zeros,
// "-" for negatives, no "-0"). Requires lo <= hi.
std::string integer_range_expr(std::int64_t lo, std::int64_t hi);

// An expression matching the JSON numbers (no exponent, at most
// kMaxFractionDigits fraction digits) whose value lies in [lo, hi].
std::string number_range_expr(std::int64_t lo, std::int64_t hi);

class GbnfBuilder {
 public:
  GbnfBuilder();

  // A fresh rule name derived from `hint` (sanitized to [a-zA-Z0-9-]).
  std::string fresh_name(std::string_view hint);

  // Defines rule `name` (from fresh_name) as `body`.
  void define(const std::string& name, std::string body);

  // Returns `expr` when it already is a single rule name, else defines a new
  // rule for it (name from `hint`) and returns that name.
  std::string as_rule(std::string expr, std::string_view hint);

  // Name of a shared primitive rule ("ws", "string", "char", "number",
  // "integer", "boolean", "null", "value", "object", "array"), marking it
  // (and what it refers to) for output.
  std::string primitive(std::string_view name);

  // An expression matching `item` (a rule name that cannot match the empty
  // string) repeated between `min` and `max` times (no upper bound when
  // `max` is empty). Stays linear in the number of digits of the counts.
  std::string repeat(const std::string& item, std::uint64_t min, std::optional<std::uint64_t> max);

  // The grammar text: `root ::= root_body`, then every defined rule, then the
  // primitives in use.
  std::string render(const std::string& root_body) const;

 private:
  std::string exact(const std::string& item, std::uint64_t n);
  std::string up_to(const std::string& item, std::uint64_t n);
  std::string chunk_of(const std::string& item);

  std::set<std::string> taken_;
  std::vector<std::pair<std::string, std::string>> rules_;
  std::set<std::string> primitives_used_;
  std::map<std::string, std::string> chunks_;  // item rule -> its chunk rule
};

// The primitive rules, in output order: {name, body}.
struct PrimitiveRule {
  std::string_view name;
  std::string_view body;
  std::vector<std::string_view> uses;
};
const std::vector<PrimitiveRule>& primitive_rules();

}  // namespace llmd::grammar::detail
