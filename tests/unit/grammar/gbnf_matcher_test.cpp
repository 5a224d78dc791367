// The recognizer the grammar tests rely on must itself read GBNF as llama.cpp does.
#include "unit/grammar/gbnf_matcher.h"

#include <gtest/gtest.h>

namespace llmd::grammar::testing {
namespace {

GbnfMatcher must_parse(std::string_view gbnf) {
  auto m = GbnfMatcher::parse(gbnf);
  EXPECT_TRUE(m) << (m ? "" : m.error().message);
  return std::move(m).value();
}

TEST(GbnfMatcher, LiteralsSequencesAndAlternation) {
  const auto m = must_parse("root ::= \"ab\" ( \"c\" | \"de\" ) x\nx ::= \"!\"\n");
  EXPECT_TRUE(m.accepts("abc!"));
  EXPECT_TRUE(m.accepts("abde!"));
  EXPECT_FALSE(m.accepts("abd!"));
  EXPECT_FALSE(m.accepts("abc"));
  EXPECT_FALSE(m.accepts("abc!!"));
  EXPECT_TRUE(m.accepts_prefix("abd"));
  EXPECT_FALSE(m.accepts_prefix("ax"));
}

TEST(GbnfMatcher, CharacterClassesRangesAndNegation) {
  const auto m = must_parse("root ::= [a-cx] [^0-9\\x00-\\x1F] [\\-\\]]\n");
  EXPECT_TRUE(m.accepts("b中-"));
  EXPECT_TRUE(m.accepts("xz]"));
  EXPECT_FALSE(m.accepts("d!-"));
  EXPECT_FALSE(m.accepts("a5-"));
  EXPECT_FALSE(m.accepts("a\n-"));
}

TEST(GbnfMatcher, EscapesInLiterals) {
  const auto m = must_parse("root ::= \"\\\"\\\\\\n\\t\\x41\\u4E2D\\U0001F600\"\n");
  EXPECT_TRUE(m.accepts("\"\\\n\tA中😀"));
  EXPECT_FALSE(GbnfMatcher::parse("root ::= \"\\q\"\n"));
}

TEST(GbnfMatcher, RepetitionOperators) {
  const auto m = must_parse("root ::= \"a\"{3} \"b\"{1,2} \"c\"? \"d\"* \"e\"+ \"f\"{2,}\n");
  EXPECT_TRUE(m.accepts("aaabeff"));
  EXPECT_TRUE(m.accepts("aaabbcdddeeefff"));
  EXPECT_FALSE(m.accepts("aabeff"));
  EXPECT_FALSE(m.accepts("aaabbbeff"));
  EXPECT_FALSE(m.accepts("aaabef"));
  EXPECT_FALSE(m.accepts("aaabff"));
}

TEST(GbnfMatcher, GroupRepetitionAndComments) {
  const auto m = must_parse("# comment\nroot ::= ( \"x\" | \"yz\" ){2} # trailing\n");
  EXPECT_TRUE(m.accepts("xyz"));
  EXPECT_TRUE(m.accepts("yzyz"));
  EXPECT_FALSE(m.accepts("x"));
  EXPECT_FALSE(m.accepts("xxx"));
}

TEST(GbnfMatcher, RefusesWhatLlamaCppRefuses) {
  EXPECT_FALSE(GbnfMatcher::parse("root ::= missing\n"));
  EXPECT_FALSE(GbnfMatcher::parse("other ::= \"a\"\n"));
  EXPECT_FALSE(GbnfMatcher::parse("root ::= root \"a\" | \"b\"\n"));
  EXPECT_FALSE(GbnfMatcher::parse("root ::= e root \"a\" | \"b\"\ne ::= \"x\"?\n"));
  EXPECT_FALSE(GbnfMatcher::parse("root ::= \"a\"{2001}\n"));
  EXPECT_FALSE(GbnfMatcher::parse("root ::= \"a\"{0,2000}\n"));
  EXPECT_FALSE(GbnfMatcher::parse("root ::= (\"a\"{0,100}){0,20}\n"));
  EXPECT_FALSE(GbnfMatcher::parse("root ::= a_b\na_b ::= \"x\"\n"));
  EXPECT_FALSE(GbnfMatcher::parse("root ::= \"a\"\nroot ::= \"b\"\n"));
  EXPECT_TRUE(GbnfMatcher::parse("root ::= \"a\"{0,1999}\n"));
}

TEST(GbnfMatcher, AcceptsEmptyAlternatives) {
  const auto m = must_parse("root ::= \"a\" s \"b\"\ns ::= | \" \"\n");
  EXPECT_TRUE(m.accepts("ab"));
  EXPECT_TRUE(m.accepts("a b"));
  EXPECT_FALSE(m.accepts("a  b"));
}

}  // namespace
}  // namespace llmd::grammar::testing
