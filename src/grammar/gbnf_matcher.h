// GBNF recognizer: parses a grammar the way llama.cpp's grammar
// parser does (same syntax, same expansion of repetitions into helper rules,
// same limits and left-recursion refusal) and tells whether a whole string is
// a sentence of it, by the same stack-set simulation llama.cpp samples with.
// Lets tests check generated grammars without linking llama.cpp, and the
// runner vet client-supplied grammars before llama.cpp sees them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace llmd::grammar {

class GbnfMatcher {
 public:
  // Parses `gbnf`. Errors (kInvalidArgument, llama.cpp's reason in the
  // message): syntax errors, unknown escapes, undefined rules, a missing
  // `root_rule`, repetition counts llama.cpp refuses, left recursion.
  static Result<GbnfMatcher> parse(std::string_view gbnf, std::string_view root_rule = "root");

  // True when the UTF-8 text `text` is a complete sentence of the grammar.
  bool accepts(std::string_view text) const;

  // True when `text` can be continued into a sentence (what a sampler needs).
  bool accepts_prefix(std::string_view text) const;

  // Number of rules after expansion (llama.cpp's count, helpers included).
  std::size_t rule_count() const { return rules_.size(); }

  enum class Kind : std::uint8_t { kEnd, kAlt, kRuleRef, kChar, kCharNot, kCharRangeUpper, kCharAlt, kCharAny };
  struct Element {
    Kind kind;
    std::uint32_t value;
  };
  using Stack = std::vector<const Element*>;

 private:
  GbnfMatcher() = default;
  std::vector<Stack> initial_stacks() const;
  std::vector<Stack> step(const std::vector<Stack>& stacks, std::uint32_t code_point) const;
  // The parse stacks after `text` (invalid UTF-8 or a rejected character: none).
  std::vector<Stack> consume(std::string_view text) const;
  void advance(const Stack& stack, std::vector<Stack>& out) const;

  std::vector<std::vector<Element>> rules_;
  std::uint32_t root_ = 0;
};

// Vets a client-supplied GBNF grammar before it reaches llama.cpp, whose
// parser can hang (left recursion through a nullable rule) or recurse deeply.
// Accepts what GbnfMatcher::parse accepts with root rule "root", at most
// `max_bytes` long, with parentheses nested at most 64 deep.
// Errors: kInvalidArgument with reason invalid_grammar and the parser's
// reason in the message. Thread-safe.
Result<void> check_gbnf(std::string_view gbnf, std::size_t max_bytes = 64 * 1024);

}  // namespace llmd::grammar
