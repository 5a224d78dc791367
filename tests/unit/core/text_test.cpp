#include "core/text.h"

#include <gtest/gtest.h>

namespace llmd::text {
namespace {

TEST(Utf8, AcceptsAsciiChineseAndEmoji) {
  EXPECT_TRUE(is_valid_utf8("hello"));
  EXPECT_TRUE(is_valid_utf8("你好，世界"));
  EXPECT_TRUE(is_valid_utf8("\xF0\x9F\x98\x80"));  // U+1F600
}

TEST(Utf8, RejectsBrokenSequences) {
  EXPECT_EQ(first_invalid_utf8("ab\xC3"), 2u);            // truncated
  EXPECT_EQ(first_invalid_utf8("\xC0\xAF"), 0u);          // overlong '/'
  EXPECT_EQ(first_invalid_utf8("x\xED\xA0\x80"), 1u);     // surrogate U+D800
  EXPECT_EQ(first_invalid_utf8("\xF4\x90\x80\x80"), 0u);  // > U+10FFFF
  EXPECT_EQ(first_invalid_utf8("ok\xFF"), 2u);
}

TEST(Text, ParseIntRejectsJunkAndOverflow) {
  EXPECT_EQ(parse_int("8080"), 8080);
  EXPECT_EQ(parse_int("-3"), -3);
  EXPECT_FALSE(parse_int("80x"));
  EXPECT_FALSE(parse_int(""));
  EXPECT_FALSE(parse_int("99999999999999999999"));
}

TEST(Text, SplitKeepsEmptyParts) {
  const auto parts = split("a,,b", ',');
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[1], "");
  EXPECT_EQ(trim("  x y \n"), "x y");
}

}  // namespace
}  // namespace llmd::text
