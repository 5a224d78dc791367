#include "http/errors.h"

#include <gtest/gtest.h>

#include "http/message.h"
#include "http/sse.h"

namespace llmd::http {
namespace {

TEST(ErrorBody, HasSpecShapeAndStatus) {
  const Response r = error_response(Error(ErrorCode::kNotFound, "no such model"), "req-1");
  EXPECT_EQ(r.status, 404);
  const auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["error"]["code"], "not_found");
  EXPECT_EQ(body["error"]["message"], "no such model");
  EXPECT_EQ(body["error"]["request_id"], "req-1");
  EXPECT_EQ(r.headers.get("Content-Type"), "application/json");
}

TEST(ErrorBody, InsufficientTokensCarriesDetailsAnd402) {
  const Response r = error_response(Error(ErrorCode::kPaymentRequired, "not enough tokens"), "r",
                                    {{"needed", 120}, {"available", 40}});
  EXPECT_EQ(r.status, 402);
  const auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["error"]["code"], "insufficient_tokens");
  EXPECT_EQ(body["error"]["needed"], 120);
  EXPECT_EQ(body["error"]["available"], 40);
}

TEST(ErrorBody, RateLimitAndUnavailableSetRetryAfter) {
  EXPECT_EQ(
      error_response(Error(ErrorCode::kRateLimited, "slow down").with_retry_after(7), "r").headers.get("Retry-After"),
      "7");
  EXPECT_EQ(error_response(Error(ErrorCode::kUnavailable, "loading"), "r").headers.get("Retry-After"), "1");
  EXPECT_FALSE(error_response(Error(ErrorCode::kInvalidArgument, "bad"), "r").headers.has("Retry-After"));
}

TEST(ErrorBody, EveryCodeMapsToItsStatus) {
  const std::pair<ErrorCode, int> table[] = {
      {ErrorCode::kInvalidArgument, 400},  {ErrorCode::kUnauthenticated, 401},  {ErrorCode::kPaymentRequired, 402},
      {ErrorCode::kPermissionDenied, 403}, {ErrorCode::kNotFound, 404},         {ErrorCode::kMethodNotAllowed, 405},
      {ErrorCode::kConflict, 409},         {ErrorCode::kTooLarge, 413},         {ErrorCode::kUnsupportedFormat, 415},
      {ErrorCode::kUnprocessable, 422},    {ErrorCode::kRateLimited, 429},      {ErrorCode::kInternal, 500},
      {ErrorCode::kUnavailable, 503},      {ErrorCode::kDeadlineExceeded, 504}, {ErrorCode::kNotImplemented, 501},
  };
  for (const auto& [code, status] : table) EXPECT_EQ(status_for(code), status);
}

TEST(Sse, MultiLinePayloadBecomesSeveralDataFields) {
  EXPECT_EQ(format_sse_event("a\nb"), "data: a\ndata: b\n\n");
  EXPECT_EQ(format_sse_event("x", "progress"), "event: progress\ndata: x\n\n");
}

TEST(Sse, CarriageReturnsCannotInjectFields) {
  EXPECT_EQ(format_sse_event("a\r\nevent: evil\rb"), "data: a\ndata: event: evil\ndata: b\n\n");
}

TEST(Message, PercentDecodeRejectsMalformedEscapes) {
  EXPECT_EQ(percent_decode("/a%20b"), "/a b");
  EXPECT_EQ(percent_decode("%E4%BD%A0"), "你");
  EXPECT_FALSE(percent_decode("%2"));
  EXPECT_FALSE(percent_decode("%zz"));
}

TEST(Message, QueryParamsAreDecoded) {
  Request r;
  r.query = "q=hello+world&user=a%26b&empty=";
  EXPECT_EQ(r.query_param("q"), "hello world");
  EXPECT_EQ(r.query_param("user"), "a&b");
  EXPECT_EQ(r.query_param("empty"), "");
  EXPECT_FALSE(r.query_param("missing"));
}

TEST(Message, HeaderLookupIsCaseInsensitive) {
  Headers h;
  h.add("Content-Type", "a");
  EXPECT_EQ(h.get("content-type"), "a");
  h.set("CONTENT-TYPE", "b");
  EXPECT_EQ(h.fields().size(), 1u);
  EXPECT_EQ(h.get("Content-Type"), "b");
}

}  // namespace
}  // namespace llmd::http
