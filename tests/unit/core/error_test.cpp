#include "core/error.h"

#include <gtest/gtest.h>

namespace llmd {
namespace {

Result<int> half(int x) {
  if (x % 2 != 0) return fail(ErrorCode::kInvalidArgument, "odd number");
  return x / 2;
}

TEST(Error, ResultCarriesValueOrError) {
  EXPECT_EQ(half(4).value(), 2);
  const auto r = half(3);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().reason_or_default(), "invalid_argument");
}

TEST(Error, PaymentRequiredUsesSpecReason) {
  EXPECT_EQ(default_reason(ErrorCode::kPaymentRequired), "insufficient_tokens");
  EXPECT_TRUE(is_retryable(ErrorCode::kUnavailable));
  EXPECT_FALSE(is_retryable(ErrorCode::kInvalidArgument));
}

}  // namespace
}  // namespace llmd
