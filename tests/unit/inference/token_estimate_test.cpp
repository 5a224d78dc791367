#include <gtest/gtest.h>

#include "inference/token_estimate.h"

namespace llmd::inference {
namespace {

TEST(TokenEstimate, FourAsciiBytesPerTokenRoundedUpPerRun) {
  EXPECT_EQ(estimated_tokens(""), 0);
  EXPECT_EQ(estimated_tokens("a"), 1);
  EXPECT_EQ(estimated_tokens("14"), 1);
  EXPECT_EQ(estimated_tokens("abcd"), 1);
  EXPECT_EQ(estimated_tokens("abcde"), 2);
  EXPECT_EQ(estimated_tokens("The quick brown fox jumps over the lazy dog."), 11);  // 44 bytes
}

TEST(TokenEstimate, EveryOtherCodePointIsOneToken) {
  EXPECT_EQ(estimated_tokens("计算"), 2);                               // 6 bytes, 2 code points
  EXPECT_EQ(estimated_tokens("计算 2+3×4 的结果"), 2 + 1 + 1 + 1 + 3);  // "计算" " 2+3" "×" "4 " "的结果"
  EXPECT_EQ(estimated_tokens("café"), 2);                               // "caf" + "é"
  EXPECT_EQ(estimated_tokens("😀"), 1);                                  // 4 bytes, 1 code point
}

}  // namespace
}  // namespace llmd::inference
