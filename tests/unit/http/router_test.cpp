#include "http/router.h"

#include <gtest/gtest.h>

namespace llmd::http {
namespace {

Handler noop() {
  return [](RequestContext&) -> boost::asio::awaitable<Response> { co_return Response{}; };
}

TEST(Router, MatchesLiteralAndParameterSegments) {
  Router r;
  r.post("/api/v1/models/{name}/start", noop());
  const auto m = r.match("POST", "/api/v1/models/qwen2-7b/start");
  ASSERT_EQ(m.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(m.params.at("name"), "qwen2-7b");
  EXPECT_EQ(m.pattern, "/api/v1/models/{name}/start");
}

TEST(Router, ParameterNeverSpansSegments) {
  Router r;
  r.get("/a/{x}", noop());
  EXPECT_EQ(r.match("GET", "/a/b/c").kind, RouteMatch::Kind::kNotFound);
  EXPECT_EQ(r.match("GET", "/a").kind, RouteMatch::Kind::kNotFound);
  EXPECT_EQ(r.match("GET", "/a/b").kind, RouteMatch::Kind::kFound);
}

TEST(Router, WrongMethodListsAllowedMethods) {
  Router r;
  r.get("/health", noop());
  r.del("/health", noop());
  const auto m = r.match("POST", "/health");
  ASSERT_EQ(m.kind, RouteMatch::Kind::kMethodNotAllowed);
  EXPECT_EQ(m.allowed, (std::vector<std::string>{"DELETE", "GET", "HEAD"}));
}

TEST(Router, HeadFallsBackToGet) {
  Router r;
  r.get("/health", noop());
  EXPECT_EQ(r.match("HEAD", "/health").kind, RouteMatch::Kind::kFound);
}

TEST(Router, LiteralRouteWinsOverParameter) {
  Router r;
  r.get("/jobs/{id}", noop());
  r.get("/jobs/active", noop());
  EXPECT_EQ(r.match("GET", "/jobs/active").pattern, "/jobs/active");
  EXPECT_EQ(r.match("GET", "/jobs/42").pattern, "/jobs/{id}");
}

TEST(Router, RestParameterCapturesRemainingPath) {
  Router r;
  r.get("/assets/{path...}", noop());
  const auto m = r.match("GET", "/assets/js/app.123.js");
  ASSERT_EQ(m.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(m.params.at("path"), "js/app.123.js");
}

TEST(Router, TrailingAndDoubleSlashesAreIgnored) {
  Router r;
  r.get("/v1/models", noop());
  EXPECT_EQ(r.match("GET", "/v1/models/").kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(r.match("GET", "//v1//models").kind, RouteMatch::Kind::kFound);
}

TEST(Router, UnknownPathIsNotFound) {
  Router r;
  r.get("/health", noop());
  EXPECT_EQ(r.match("GET", "/healthz").kind, RouteMatch::Kind::kNotFound);
}

TEST(Router, FallbackTakesUnmatchedPathsOnlyAndKeeps405) {
  Router r;
  r.get("/health", noop());
  r.post("/api/v1/auth/login", noop());
  r.fallback("static", noop());
  const auto unmatched = r.match("GET", "/chat/42");
  ASSERT_EQ(unmatched.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(unmatched.pattern, "static");
  EXPECT_EQ(r.match("POST", "/anything").pattern, "static");
  EXPECT_EQ(r.match("GET", "/health").pattern, "/health");
  // A path that exists for another method is still a 405, not the fallback.
  EXPECT_EQ(r.match("GET", "/api/v1/auth/login").kind, RouteMatch::Kind::kMethodNotAllowed);
}

TEST(Router, WithoutFallbackUnmatchedIsNotFound) {
  Router r;
  r.get("/health", noop());
  EXPECT_EQ(r.match("GET", "/chat").kind, RouteMatch::Kind::kNotFound);
}

}  // namespace
}  // namespace llmd::http
