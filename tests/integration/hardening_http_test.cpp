// Black-box hardening tests of the HTTP layer of `llmd serve` (issue 13): a
// hostile client on raw sockets against the real binary on loopback.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "support/http.h"
#include "support/llmd_serve.h"

namespace llmd::testing {
namespace {

constexpr const char* kBinary = LLMD_BINARY;

std::optional<HttpReply> raw_request(int port, const std::string& bytes) {
  RawConnection c(port);
  if (!c.ok() || !c.send(bytes)) return std::nullopt;
  return c.read_reply(std::chrono::seconds(10));
}

std::string error_code_of(const HttpReply& r) {
  const auto j = nlohmann::json::parse(r.body, nullptr, false);
  return j.is_object() && j.contains("error") ? j["error"].value("code", "") : "";
}

// ---- item 5: /metrics labels come only from bounded sets ----

TEST(HardeningHttp, MetricsStayBoundedWhateverMethodsAndPathsClientsSend) {
  LlmdServe serve(kBinary, "limits: { ip_rpm: 0, user_rpm: 0 }\n");
  ASSERT_TRUE(serve.started()) << serve.log();
  ASSERT_EQ(http_request(serve.port(), "GET", "/health")->status, 200);
  const auto before = http_request(serve.port(), "GET", "/metrics");
  ASSERT_TRUE(before);
  ASSERT_EQ(before->status, 200);

  // 40 requests with distinct 20 KB method names and 40 with distinct raw
  // paths: on the unfixed server each method added a labelled counter and a
  // 17-line histogram (about 20 KB x 19 per request, 15 MB in all).
  for (int i = 0; i < 40; ++i) {
    const std::string method = "X" + std::to_string(i) + std::string(20 * 1024, 'M');
    auto r = raw_request(serve.port(), method + " /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    ASSERT_TRUE(r) << "request " << i;
    EXPECT_GE(r->status, 400);
    auto p = http_request(serve.port(), "GET", "/nowhere/" + std::to_string(i) + std::string(1000, 'p'));
    ASSERT_TRUE(p);
    EXPECT_EQ(p->status, 404);
  }
  const auto after = http_request(serve.port(), "GET", "/metrics");
  ASSERT_TRUE(after);
  ASSERT_EQ(after->status, 200);
  // A handful of new series (route "unmatched", method "other", 404/405)
  // may appear; nothing that grows with the number of requests.
  EXPECT_LT(after->body.size(), before->body.size() + 16 * 1024)
      << "before " << before->body.size() << " bytes, after " << after->body.size();
  EXPECT_EQ(after->body.find("MMMMMMMM"), std::string::npos);
  EXPECT_EQ(after->body.find("pppppppp"), std::string::npos);
  EXPECT_NE(after->body.find("method=\"other\""), std::string::npos) << after->body;
}

// ---- item 13: the text log format escapes control characters ----

TEST(HardeningHttp, TextLogCannotBeForgedThroughTheRequestPath) {
  LlmdServe serve(kBinary, "limits: { ip_rpm: 0, user_rpm: 0 }\n", "", {{"LLMD_LOGGING_FORMAT", "text"}});
  ASSERT_TRUE(serve.started()) << serve.log();
  // %0a ends a line, %1b starts an ANSI sequence, %00 is NUL.
  const std::string forged = "2026-01-01T00:00:00.000Z error FORGED-LINE user=admin";
  auto r = http_request(serve.port(), "GET",
                        "/nowhere%0a2026-01-01T00:00:00.000Z%20error%20FORGED-LINE%20user=admin%0d%1b[31mred%00end");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  ASSERT_EQ(http_request(serve.port(), "GET", "/health")->status, 200);  // its log line follows ours
  const std::string log = serve.log();
  ASSERT_NE(log.find("FORGED-LINE"), std::string::npos) << log;
  std::size_t start = 0;
  bool saw_request_line = false;
  while (start < log.size()) {
    const auto end = log.find('\n', start);
    const std::string line = log.substr(start, end == std::string::npos ? std::string::npos : end - start);
    start = end == std::string::npos ? log.size() : end + 1;
    EXPECT_FALSE(line.starts_with(forged)) << "forged line: " << line;
    if (line.find("FORGED-LINE") != std::string::npos) {
      saw_request_line = true;
      EXPECT_NE(line.find(" info request "), std::string::npos) << line;
      EXPECT_NE(line.find("\\n2026-01-01T00:00:00.000Z error FORGED-LINE"), std::string::npos) << line;
      EXPECT_NE(line.find("\\r\\x1b[31mred\\x00end"), std::string::npos) << line;
    }
  }
  EXPECT_TRUE(saw_request_line) << log;
  EXPECT_EQ(log.find('\x1b'), std::string::npos);
  EXPECT_EQ(log.find('\r'), std::string::npos);
  EXPECT_EQ(log.find(std::string(1, '\0')), std::string::npos);
}

// ---- item 16: HTTP framing ----

class HardeningFraming : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    serve_ = new LlmdServe(kBinary, "limits: { ip_rpm: 0, user_rpm: 0 }\n",
                           "  allowed_hosts: [127.0.0.1, localhost]\n  header_timeout_seconds: 5\n");
  }
  static void TearDownTestSuite() {
    delete serve_;
    serve_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(serve_->started()) << serve_->log(); }
  static int port() { return serve_->port(); }

  // Sends `head` (with a body `body`), expects one error reply with status
  // `status` and the JSON error body, then the connection closed: nothing
  // after the head may be taken for another request.
  static void expect_refused(const std::string& bytes, int status) {
    RawConnection c(port());
    ASSERT_TRUE(c.send(bytes));
    auto r = c.read_reply(std::chrono::seconds(10));
    ASSERT_TRUE(r) << bytes.substr(0, 200);
    EXPECT_EQ(r->status, status) << bytes.substr(0, 200) << "\n" << r->body;
    EXPECT_FALSE(error_code_of(*r).empty()) << r->body;
    EXPECT_EQ(r->header("connection"), "close");
    const auto rest = c.read_until_close(std::chrono::seconds(5));
    ASSERT_TRUE(rest) << "connection left open";
    EXPECT_EQ(rest->find("HTTP/1.1"), std::string::npos) << "a smuggled request was answered: " << *rest;
  }

  static LlmdServe* serve_;
};
LlmdServe* HardeningFraming::serve_ = nullptr;

// The body below would be a second request if the server ignored the
// Transfer-Encoding it does not understand.
const std::string kSmuggled = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

TEST_F(HardeningFraming, TransferEncodingOtherThanChunkedIs400) {
  for (const std::string te : {"xchunked", "gzip", "chunked, gzip", "chunked, chunked", "identity"}) {
    SCOPED_TRACE(te);
    expect_refused("POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: " + te +
                       "\r\nContent-Type: application/json\r\n\r\n" + kSmuggled,
                   400);
  }
}

TEST_F(HardeningFraming, UnknownCodingBeforeChunkedIs501) {
  expect_refused(
      "POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip, chunked\r\n"
      "Content-Type: application/json\r\n\r\n0\r\n\r\n",
      501);
}

TEST_F(HardeningFraming, PlainChunkedStillWorks) {
  RawConnection c(port());
  ASSERT_TRUE(
      c.send("POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: Chunked\r\n"
             "Content-Type: application/json\r\n\r\n2\r\n{}\r\n0\r\n\r\n"));
  auto r = c.read_reply(std::chrono::seconds(10));
  ASSERT_TRUE(r);
  EXPECT_NE(r->status, 501);
  EXPECT_GE(r->status, 400);  // an empty login is refused by the application, not by the framing
  EXPECT_LT(r->status, 500);
}

TEST_F(HardeningFraming, DuplicateHostIs400) {
  expect_refused("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n", 400);
  expect_refused("GET /health HTTP/1.1\r\nHost: evil.example\r\nHost: 127.0.0.1\r\n\r\n", 400);
}

TEST_F(HardeningFraming, OversizedHeadIs431) {
  expect_refused("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + std::string(80 * 1024, 'a') + "\r\n\r\n", 431);
}

TEST_F(HardeningFraming, AbsoluteFormTargetIsRoutedByItsPath) {
  auto r = raw_request(port(), "GET http://127.0.0.1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(nlohmann::json::parse(r->body)["status"], "ok");

  auto q =
      raw_request(port(), "GET HTTP://localhost:1234?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(q);
  EXPECT_NE(q->status, 400) << "an absolute-form URL with an empty path means /";

  // The URL's authority is the host (RFC 9112 §3.2.2): the Host allow-list
  // applies to it, not to a Host header that disagrees.
  auto evil = raw_request(port(),
                          "GET http://evil.example/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          "Connection: close\r\n\r\n");
  ASSERT_TRUE(evil);
  EXPECT_EQ(evil->status, 403);
  EXPECT_EQ(error_code_of(*evil), "host_not_allowed");
}

TEST_F(HardeningFraming, OtherTargetFormsAre400) {
  expect_refused("GET health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400);
  expect_refused("GET http://user@127.0.0.1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400);
  expect_refused("GET ftp://127.0.0.1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400);
}

TEST_F(HardeningFraming, Http10ClientGetsNoChunkedReply) {
  RawConnection c(port());
  ASSERT_TRUE(c.send("GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"));
  const auto all = c.read_until_close(std::chrono::seconds(10));
  ASSERT_TRUE(all);
  const auto head_end = all->find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos) << *all;
  const std::string head = all->substr(0, head_end);
  EXPECT_EQ(head.find("chunked"), std::string::npos) << head;
  EXPECT_NE(head.find("Content-Length:"), std::string::npos) << head;
  EXPECT_EQ(nlohmann::json::parse(all->substr(head_end + 4))["status"], "ok");
}

// ---- item 20: allowed networks and trusted proxies ----

// LlmdServe probes /health from 127.0.0.1, so that address stays allowed;
// the refused client connects from 127.0.0.2 (any 127/8 address is local).
TEST(HardeningHttp, AllowedNetworksRefuseOtherClientsBeforeTheBody) {
  LlmdServe serve(kBinary, "limits: { ip_rpm: 0, user_rpm: 0 }\n",
                  "  allowed_networks: [10.0.0.0/8, \"fd00::/8\", 127.0.0.1/32]\n");
  ASSERT_TRUE(serve.started()) << serve.log();
  {
    RawConnection c(serve.port(), "127.0.0.2");
    ASSERT_TRUE(c.ok());
    auto r = c.request("GET", "/health", "", {{"Connection", "close"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 403);
    EXPECT_EQ(error_code_of(*r), "client_not_allowed");
  }
  // A 50 MB body announced: the 403 comes from the head alone, and the
  // connection closes without the body ever being sent.
  RawConnection c(serve.port(), "127.0.0.2");
  ASSERT_TRUE(
      c.send("POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             "Content-Length: 52428800\r\n\r\n"));
  auto refused = c.read_reply(std::chrono::seconds(10));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403);
  EXPECT_TRUE(c.read_until_close(std::chrono::seconds(5)));
  // Nothing of theirs reached the application (no access-log line).
  EXPECT_EQ(serve.log().find("\"remote\":\"127.0.0.2\""), std::string::npos) << serve.log();
  // The allowed address is still served.
  EXPECT_EQ(http_request(serve.port(), "GET", "/health")->status, 200);
}

// The proxy is 127.0.0.2 (trusted); the allow-list names 203.0.113.0/24
// (and 127.0.0.1 for LlmdServe's probe), so a request through the proxy
// passes only when the client it names in X-Forwarded-For is allowed.
TEST(HardeningHttp, ForwardedForIsBelievedOnlyFromTrustedProxies) {
  LlmdServe serve(kBinary, "limits: { ip_rpm: 0, user_rpm: 0 }\n",
                  "  trusted_proxies: [127.0.0.2/32]\n  allowed_networks: [203.0.113.0/24, 127.0.0.1]\n");
  ASSERT_TRUE(serve.started()) << serve.log();
  auto status = [&](const std::string& source, const std::map<std::string, std::string>& headers) {
    RawConnection c(serve.port(), source);
    if (!c.ok()) return -1;
    auto h = headers;
    h["Connection"] = "close";
    auto r = c.request("GET", "/health", "", h);
    return r ? r->status : -1;
  };
  EXPECT_EQ(status("127.0.0.2", {}), 403) << "the proxy itself is not an allowed client";
  EXPECT_EQ(status("127.0.0.2", {{"X-Forwarded-For", "203.0.113.7"}}), 200);
  // Right-most untrusted hop: the client cannot hide behind a left entry.
  EXPECT_EQ(status("127.0.0.2", {{"X-Forwarded-For", "203.0.113.7, 198.51.100.1"}}), 403);
  EXPECT_EQ(status("127.0.0.2", {{"X-Forwarded-For", "198.51.100.1, 203.0.113.8"}}), 200);
  // From a peer that is not a trusted proxy the header means nothing, either way.
  EXPECT_EQ(status("127.0.0.3", {{"X-Forwarded-For", "203.0.113.7"}}), 403);
  EXPECT_EQ(status("127.0.0.1", {{"X-Forwarded-For", "198.51.100.1"}}), 200);
  // The access log names the real client.
  const std::string log = serve.log();
  EXPECT_NE(log.find("\"remote\":\"203.0.113.7\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"remote\":\"203.0.113.8\""), std::string::npos) << log;
  EXPECT_EQ(log.find("\"remote\":\"198.51.100.1\""), std::string::npos) << log;
}

TEST(HardeningHttp, RateLimitsKeyOnTheForwardedClient) {
  LlmdServe serve(kBinary, "limits: { ip_rpm: 3, user_rpm: 0 }\n", "  trusted_proxies: [127.0.0.0/8]\n");
  ASSERT_TRUE(serve.started()) << serve.log();
  auto login = [&](const std::string& client) {
    auto r = http_request(serve.port(), "POST", "/api/v1/auth/login", "{}", {{"X-Forwarded-For", client}});
    return r ? r->status : -1;
  };
  for (int i = 0; i < 3; ++i) EXPECT_NE(login("198.51.100.1"), 429) << i;
  EXPECT_EQ(login("198.51.100.1"), 429);
  EXPECT_NE(login("198.51.100.2"), 429) << "another client behind the same proxy has its own budget";
}

// ---- item 9: slow bodies, connection caps, running out of descriptors ----

using Clock = std::chrono::steady_clock;

// GET /health on a fresh connection from 127.0.0.1; the latency, or nullopt
// when it did not answer 200.
std::optional<std::chrono::milliseconds> health_latency(int port) {
  const auto t0 = Clock::now();
  auto r = http_request(port, "GET", "/health");
  if (!r || r->status != 200) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
}

// The bound stated for the victim: /health answers within 1 s (it takes a few
// ms; the margin is for the sanitizer build on a busy 2-core machine).
constexpr auto kHealthBound = std::chrono::milliseconds(1000);

// The attacker (127.0.0.2) opens 30 connections and trickles request bodies
// at a byte per 500 ms. At most max_connections_per_ip (8) are served, the
// rest refused at once; the 8 are cut once they fall below the minimum body
// rate after the grace (3 s); /health from 127.0.0.1 answers throughout.
TEST(HardeningHttp, SlowBodiesAreCutAndOneAddressCannotTakeEveryConnection) {
  LlmdServe serve(kBinary, "limits: { ip_rpm: 0, user_rpm: 0 }\n",
                  "  max_connections_per_ip: 8\n  min_body_rate_bytes: 1024\n  body_grace_seconds: 3\n"
                  "  idle_timeout_seconds: 60\n  header_timeout_seconds: 10\n");
  ASSERT_TRUE(serve.started()) << serve.log();
  const std::string head =
      "POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Content-Length: 100000\r\n\r\n{";
  std::vector<std::unique_ptr<RawConnection>> attackers;
  for (int i = 0; i < 30; ++i) {
    attackers.push_back(std::make_unique<RawConnection>(serve.port(), "127.0.0.2"));
    ASSERT_TRUE(attackers.back()->ok());
    attackers.back()->send(head);
  }
  const auto start = Clock::now();
  std::vector<bool> closed(attackers.size(), false);
  std::vector<Clock::duration> closed_after(attackers.size());
  std::chrono::milliseconds worst_health{0};
  int health_checks = 0;
  while (Clock::now() - start < std::chrono::seconds(12)) {
    for (std::size_t i = 0; i < attackers.size(); ++i) {
      if (closed[i]) continue;
      if (attackers[i]->closed_by_peer(std::chrono::milliseconds(1)) || !attackers[i]->send(" ")) {
        closed[i] = true;
        closed_after[i] = Clock::now() - start;
      }
    }
    const auto latency = health_latency(serve.port());
    ASSERT_TRUE(latency) << "/health did not answer during the attack\n" << serve.log();
    worst_health = std::max(worst_health, *latency);
    ++health_checks;
    if (std::all_of(closed.begin(), closed.end(), [](bool c) { return c; })) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  // Every attacking connection ended: refused over the cap (at once), or
  // cut for its rate after the 3 s grace, well before idle_timeout (60 s).
  std::size_t refused_at_once = 0;
  for (std::size_t i = 0; i < attackers.size(); ++i) {
    ASSERT_TRUE(closed[i]) << "connection " << i << " still open after 12 s";
    if (closed_after[i] < std::chrono::seconds(2)) ++refused_at_once;
    EXPECT_LT(closed_after[i], std::chrono::seconds(7)) << "connection " << i;
  }
  EXPECT_GE(refused_at_once, 22u) << "at most 8 connections per address may be served";
  EXPECT_LE(worst_health, kHealthBound) << health_checks << " checks";
  std::printf("[ metrics  ] /health worst %lld ms over %d checks during the attack; %zu of 30 refused at once\n",
              static_cast<long long>(worst_health.count()), health_checks, refused_at_once);
  // The attacker's slots are free again.
  RawConnection again(serve.port(), "127.0.0.2");
  auto r = again.request("GET", "/health", "", {{"Connection", "close"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST(HardeningHttp, GlobalConnectionCapRefusesWith503) {
  LlmdServe serve(kBinary, "limits: { ip_rpm: 0, user_rpm: 0 }\n",
                  "  max_connections: 6\n  max_connections_per_ip: 6\n  idle_timeout_seconds: 60\n");
  ASSERT_TRUE(serve.started()) << serve.log();
  // Six keep-alive connections, each proven served (so each is counted).
  std::vector<std::unique_ptr<RawConnection>> held;
  for (int i = 0; i < 6; ++i) {
    held.push_back(std::make_unique<RawConnection>(serve.port(), "127.0.0.2"));
    auto r = held.back()->request("GET", "/health");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
  }
  RawConnection extra(serve.port(), "127.0.0.3");
  ASSERT_TRUE(extra.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  const auto reply = extra.read_reply(std::chrono::seconds(5));
  if (reply) {
    EXPECT_EQ(reply->status, 503);
    EXPECT_EQ(error_code_of(*reply), "too_many_connections");
  }
  EXPECT_TRUE(extra.closed_by_peer(std::chrono::seconds(5))) << "the refused connection must be closed";
  held.pop_back();
  // Once one closes, a new client is served again.
  EXPECT_TRUE(wait_for_http(serve.port(), "/health", 200, std::chrono::seconds(5)));
}

// Descriptors run out (the process's limit lowered under it): accept fails
// with EMFILE. Serve must not spin (CPU time stays low), must not flood the
// log, and must answer again once descriptors free up.
long cpu_ticks(int pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const auto close_paren = stat.rfind(')');
  if (close_paren == std::string::npos) return -1;
  std::istringstream in(stat.substr(close_paren + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return utime + stime;
}

// UBSan's vptr check proves an object's type by writing its vtable through
// a pipe; with no descriptor left, pipe() fails and it reports "invalid
// vptr ... <memory cannot be printed>" on a sound object (reproduced in a
// ten-line program), and a suppression cannot match a type it could not
// read. So this serve does not halt on a report, and the test fails on any
// report except that one.
std::map<std::string, std::string> sanitizer_env_without_descriptors() {
  const char* inherited = std::getenv("UBSAN_OPTIONS");
  return {{"UBSAN_OPTIONS", std::string(inherited ? inherited : "print_stacktrace=1") + ":halt_on_error=0"}};
}

std::size_t count_of(const std::string& text, std::string_view needle) {
  std::size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
  return n;
}

TEST(HardeningHttp, AcceptBacksOffQuietlyWhenDescriptorsRunOut) {
  LlmdServe serve(kBinary, "limits: { ip_rpm: 0, user_rpm: 0 }\n",
                  "  max_connections: 5000\n  max_connections_per_ip: 5000\n  header_timeout_seconds: 30\n",
                  sanitizer_env_without_descriptors());
  ASSERT_TRUE(serve.started()) << serve.log();
  const int pid = serve.process().pid();
  std::size_t open_fds = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    ++open_fds;
  }
  rlimit old{};
  ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, nullptr, &old), 0);
  const rlimit low{open_fds + 8, old.rlim_max};  // soft only: raising it back needs no privilege
  ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &low, nullptr), 0);

  std::vector<std::unique_ptr<RawConnection>> flood;
  for (int i = 0; i < 40; ++i) flood.push_back(std::make_unique<RawConnection>(serve.port(), "127.0.0.2"));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let it reach EMFILE
  const long ticks_before = cpu_ticks(pid);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const long ticks_after = cpu_ticks(pid);
  const double cpu_seconds =
      static_cast<double>(ticks_after - ticks_before) / static_cast<double>(sysconf(_SC_CLK_TCK));
  EXPECT_LT(cpu_seconds, 0.5) << "serve spins while accept fails";
  std::printf("[ metrics  ] serve used %.2f s of CPU in 2 s of EMFILE\n", cpu_seconds);
  ASSERT_TRUE(serve.process().running()) << serve.log();
  const std::string log = serve.log();
  const std::size_t warnings = count_of(log, "accept failed");
  EXPECT_GE(warnings, 1u) << "the test did not reach EMFILE:\n" << log;
  // One warning per episode: a descriptor the server's own background work
  // frees and takes again (a health probe, a database file) may end one
  // and start the next, but a flood (one per failed accept) would be
  // hundreds.
  EXPECT_LE(warnings, 10u) << log;

  flood.clear();
  ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &old, nullptr), 0);
  EXPECT_TRUE(wait_for_http(serve.port(), "/health", 200, std::chrono::seconds(5))) << serve.log();
  const std::string final_log = serve.log();
  const std::size_t reports = count_of(final_log, "runtime error:");
  EXPECT_EQ(reports, count_of(final_log, "note: object has invalid vptr\n<memory cannot be printed>"))
      << "a sanitizer report other than the vptr check's blindness without descriptors:\n"
      << final_log;
}

}  // namespace
}  // namespace llmd::testing
