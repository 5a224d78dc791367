// Black-box tests of the web UI's static files served by `llmd serve`, with a
// temporary web_dir standing in for web/dist.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "support/http.h"
#include "support/llmd_serve.h"

namespace llmd::testing {
namespace {

constexpr const char* kBinary = LLMD_BINARY;
constexpr const char* kIndex = "<!doctype html><title>llmd test ui</title><div id=app></div>";

bool is_json_not_found(const std::optional<HttpReply>& r) {
  if (!r || r->status != 404) return false;
  const auto j = nlohmann::json::parse(r->body, nullptr, false);
  return !j.is_discarded() && j["error"]["code"] == "not_found";
}

class StaticTest : public ::testing::Test {
 protected:
  void SetUp() override {
    namespace fs = std::filesystem;
    const fs::path web = site_.path() / "dist";
    fs::create_directories(web / "assets");
    write_file(web / "index.html", kIndex);
    write_file(web / "assets" / "index-AbC123.js", "console.log('hi');");
    write_file(web / "assets" / "index-AbC123.css", "body{}");
    write_file(web / "logo.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>");
    write_file(web / "favicon.ico", "ico");
    write_file(site_.path() / "secret.txt", "outside the web dir");
    fs::create_symlink(site_.path() / "secret.txt", web / "leak.txt");
    fs::create_directory_symlink(site_.path(), web / "up");
    server_ = std::make_unique<LlmdServe>(kBinary, "limits: { ip_rpm: 0, user_rpm: 0 }\n",
                                          "  web_dir: " + web.string() + "\n");
    ASSERT_TRUE(server_->started()) << server_->log();
  }
  std::optional<HttpReply> get(const std::string& path, const std::map<std::string, std::string>& h = {}) {
    return http_request(server_->port(), "GET", path, "", h);
  }
  TempDir site_;
  std::unique_ptr<LlmdServe> server_;
};

TEST_F(StaticTest, RootServesIndexHtmlWithoutCaching) {
  auto r = get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, kIndex);
  EXPECT_EQ(r->header("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(r->header("cache-control"), "no-cache");
  EXPECT_NE(r->header("content-security-policy").find("default-src 'self'"), std::string::npos);
}

TEST_F(StaticTest, HashedAssetsAreImmutableWithTheirContentType) {
  auto js = get("/assets/index-AbC123.js");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->status, 200);
  EXPECT_EQ(js->body, "console.log('hi');");
  EXPECT_EQ(js->header("content-type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(js->header("cache-control"), "public, max-age=31536000, immutable");
  auto css = get("/assets/index-AbC123.css");
  ASSERT_TRUE(css);
  EXPECT_EQ(css->header("content-type"), "text/css; charset=utf-8");
  auto svg = get("/logo.svg");
  ASSERT_TRUE(svg);
  EXPECT_EQ(svg->status, 200);
  EXPECT_EQ(svg->header("content-type"), "image/svg+xml");
  EXPECT_EQ(svg->header("cache-control"), "no-cache");
  EXPECT_EQ(get("/favicon.ico")->header("content-type"), "image/x-icon");
}

TEST_F(StaticTest, ClientRoutesFallBackToIndexHtml) {
  for (const char* path : {"/login", "/chat", "/admin/users", "/keys?tab=1"}) {
    auto r = get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_EQ(r->body, kIndex) << path;
    EXPECT_EQ(r->header("cache-control"), "no-cache") << path;
  }
}

TEST_F(StaticTest, MissingFilesWithAnExtensionOrUnderAssetsAre404) {
  EXPECT_TRUE(is_json_not_found(get("/assets/missing-123.js")));
  EXPECT_TRUE(is_json_not_found(get("/assets/nothing")));
  EXPECT_TRUE(is_json_not_found(get("/robots.txt")));
}

TEST_F(StaticTest, ApiPathsKeepTheirJsonNotFound) {
  for (const char* path : {"/api", "/api/v1/nowhere", "/v1", "/v1/nowhere", "/metrics/x", "/health/x", "/ready/x"}) {
    EXPECT_TRUE(is_json_not_found(get(path))) << path;
  }
  // Real API routes still win over the fallback.
  auto health = get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(nlohmann::json::parse(health->body)["status"], "ok");
  auto profile = get("/api/v1/auth/profile");
  ASSERT_TRUE(profile);
  EXPECT_EQ(profile->status, 401);
}

TEST_F(StaticTest, TraversalAttemptsAre404) {
  for (const char* path : {"/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt",
                           "/%2E%2E/%2e%2e/etc/passwd", "/assets/%2e%2e/%2e%2e/secret.txt", "/..%2fsecret.txt",
                           "/leak.txt", "/up/secret.txt", "/up/dist/index.html", "/%5c..%5csecret.txt"}) {
    auto r = get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_NE(r->body, "outside the web dir") << path;
    if (r->status == 200) {
      EXPECT_EQ(r->body, kIndex) << path;  // only ever the app itself
    } else {
      EXPECT_EQ(r->status, 404) << path;
    }
  }
  EXPECT_TRUE(is_json_not_found(get("/leak.txt")));
  EXPECT_TRUE(is_json_not_found(get("/%2e%2e/secret.txt")));
  EXPECT_TRUE(is_json_not_found(get("/up/secret.txt")));
}

TEST_F(StaticTest, EtagAnswers304WhenUnchanged) {
  auto first = get("/assets/index-AbC123.js");
  ASSERT_TRUE(first);
  const std::string etag = first->header("etag");
  ASSERT_FALSE(etag.empty());
  auto again = get("/assets/index-AbC123.js", {{"If-None-Match", etag}});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 304);
  EXPECT_TRUE(again->body.empty());
  auto other = get("/assets/index-AbC123.js", {{"If-None-Match", "\"stale\""}});
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 200);
}

// Sends a raw HEAD request and returns everything the server sent until it closed.
std::string raw_head(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string req = "HEAD " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    (void)::send(fd, req.data(), req.size(), 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

TEST_F(StaticTest, HeadHasNoBodyAndOtherMethodsAreRefused) {
  const std::string head = raw_head(server_->port(), "/chat");
  ASSERT_TRUE(head.starts_with("HTTP/1.1 200")) << head;
  const auto end = head.find("\r\n\r\n");
  ASSERT_NE(end, std::string::npos);
  EXPECT_EQ(end + 4, head.size()) << "HEAD reply carried a body";
  EXPECT_NE(head.find("Content-Length: " + std::to_string(std::string(kIndex).size())), std::string::npos) << head;
  auto post = http_request(server_->port(), "POST", "/chat", "{}", {{"Content-Type", "application/json"}});
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(post->header("allow"), "GET, HEAD");
  EXPECT_TRUE(is_json_not_found(http_request(server_->port(), "POST", "/api/v1/nowhere", "{}")));
}

TEST(StaticNotBuilt, RootExplainsTheUiIsNotBuiltAndOtherPathsStay404) {
  TempDir empty;
  LlmdServe server(kBinary, "", "  web_dir: " + (empty.path() / "missing").string() + "\n");
  ASSERT_TRUE(server.started()) << server.log();
  auto root = http_request(server.port(), "GET", "/");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->status, 200);
  EXPECT_NE(root->body.find("not built"), std::string::npos);
  EXPECT_TRUE(is_json_not_found(http_request(server.port(), "GET", "/chat")));
}

}  // namespace
}  // namespace llmd::testing
