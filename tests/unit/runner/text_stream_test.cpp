#include "runner/text_stream.h"

#include <gtest/gtest.h>

namespace llmd::runner {
namespace {

TEST(Utf8, CompletePrefixStopsBeforeAnUnfinishedSequence) {
  const std::string ni = "你";  // E4 BD A0
  EXPECT_EQ(utf8_complete_prefix("abc"), 3u);
  EXPECT_EQ(utf8_complete_prefix("ab" + ni), 5u);
  EXPECT_EQ(utf8_complete_prefix("ab" + ni.substr(0, 1)), 2u);
  EXPECT_EQ(utf8_complete_prefix("ab" + ni.substr(0, 2)), 2u);
  EXPECT_EQ(utf8_complete_prefix(""), 0u);
  const std::string rocket = "🚀";  // 4 bytes
  EXPECT_EQ(utf8_complete_prefix(rocket.substr(0, 3)), 0u);
  EXPECT_EQ(utf8_complete_prefix(rocket), 4u);
}

TEST(TextStream, ReleasesOnlyWholeUtf8Characters) {
  TextStream s;
  const std::string ni = "你";
  EXPECT_EQ(s.push(ni.substr(0, 1)), "");
  EXPECT_EQ(s.push(ni.substr(1, 1)), "");
  EXPECT_EQ(s.push(ni.substr(2) + "a"), "你a");
  EXPECT_EQ(s.text(), "你a");
}

TEST(TextStream, HoldsBackAPossibleStopStringAndCutsAtIt) {
  TextStream s({"STOP"});
  EXPECT_EQ(s.push("hello S"), "hello ");
  EXPECT_EQ(s.push("T"), "");
  EXPECT_EQ(s.push("x"), "STx");  // not a stop string after all
  EXPECT_EQ(s.push(" and ST"), " and ");
  EXPECT_EQ(s.push("OP tail"), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.text(), "hello STx and ");
  EXPECT_EQ(s.push("more"), "");
}

TEST(TextStream, StopInsideOnePieceAndEarliestOfSeveral) {
  TextStream s({"\n\n", "END"});
  EXPECT_EQ(s.push("abcEND x\n\n"), "abc");
  EXPECT_TRUE(s.stopped());
}

TEST(TextStream, FlushReleasesHeldTextButDropsBrokenTail) {
  TextStream s({"STOP"});
  EXPECT_EQ(s.push("ab ST"), "ab ");
  EXPECT_EQ(s.flush(), "ST");
  TextStream t;
  EXPECT_EQ(t.push(std::string("x") + "\xE4\xBD"), "x");
  EXPECT_EQ(t.flush(), "");
  EXPECT_EQ(t.text(), "x");
}

}  // namespace
}  // namespace llmd::runner
