#include "http/request_head.h"

#include <gtest/gtest.h>

namespace llmd::http {
namespace {

bhttp::request_header<> head(std::initializer_list<std::pair<std::string, std::string>> fields, unsigned version = 11) {
  bhttp::request_header<> h;
  h.method(bhttp::verb::post);
  h.target("/x");
  h.version(version);
  for (const auto& [name, value] : fields) h.insert(name, value);
  return h;
}

TEST(RequestHead, BodyFramingFollowsRfc9112) {
  EXPECT_FALSE(framing_error(head({{"Content-Length", "3"}})));
  EXPECT_FALSE(framing_error(head({{"Transfer-Encoding", " chunked "}})));
  const auto status_of = [](const bhttp::request_header<>& h) {
    return framing_error(h).value_or(ProtocolError{}).status;
  };
  EXPECT_EQ(status_of(head({{"Transfer-Encoding", "xchunked"}})), 400);
  EXPECT_EQ(status_of(head({{"Transfer-Encoding", "chunked, chunked"}})), 400);
  EXPECT_EQ(status_of(head({{"Transfer-Encoding", "gzip, chunked"}})), 501);
  EXPECT_EQ(status_of(head({{"Transfer-Encoding", "chunked"}, {"Content-Length", "3"}})), 400);
  EXPECT_EQ(status_of(head({{"Transfer-Encoding", "chunked"}}, 10)), 400);
  EXPECT_EQ(status_of(head({{"Host", "a"}, {"Host", "b"}})), 400);
}

TEST(RequestHead, TargetsInOriginAndAbsoluteFormAreRoutedOthersRefused) {
  EXPECT_EQ(parse_target("/v1/models?x=1")->origin, "/v1/models?x=1");
  const auto absolute = parse_target("HTTP://example.org:8080/a?b");
  ASSERT_TRUE(absolute);
  EXPECT_EQ(absolute->origin, "/a?b");
  EXPECT_EQ(absolute->authority, "example.org:8080");
  EXPECT_EQ(parse_target("https://example.org")->origin, "/");
  EXPECT_EQ(parse_target("http://example.org?q")->origin, "/?q");
  EXPECT_FALSE(parse_target("http://user@example.org/"));
  EXPECT_FALSE(parse_target("http:///path"));
  EXPECT_FALSE(parse_target("example.org:443"));
  EXPECT_FALSE(parse_target("*"));
}

TEST(RequestHead, TheRequestTakesItsPathDecodedAndAnAbsoluteTargetsHost) {
  auto h = head({{"Host", "ignored"}, {"X-Forwarded-For", "1.2.3.4"}, {"x-forwarded-for", "5.6.7.8"}});
  const auto target = parse_target("http://real.host/a%20b?c=%20");
  const auto ip = parse_ip("10.0.0.1").value();
  const Request r = request_head(h, *target, true, ip, ip);
  EXPECT_EQ(r.path, "/a b");
  EXPECT_EQ(r.query, "c=%20");
  EXPECT_EQ(r.headers.get("Host").value_or(""), "real.host");
  EXPECT_EQ(r.remote_ip, "10.0.0.1");
  EXPECT_EQ(forwarded_for(h), (std::vector<std::string_view>{"1.2.3.4", "5.6.7.8"}));
}

}  // namespace
}  // namespace llmd::http
