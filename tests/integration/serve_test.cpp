// Black-box tests of `llmd serve`: the real binary on a free port.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/http.h"
#include "support/llmd_serve.h"

namespace llmd::testing {
namespace {

constexpr const char* kBinary = LLMD_BINARY;

class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<LlmdServe>(kBinary, "limits: { ip_rpm: 0, user_rpm: 0 }\n",
                                          "  max_body_bytes: 4096\n  header_timeout_seconds: 2\n"
                                          "  shutdown_grace_seconds: 10\n");
    ASSERT_TRUE(server_->started()) << server_->log();
  }
  int port() const { return server_->port(); }
  std::unique_ptr<LlmdServe> server_;
};

TEST_F(ServeTest, HealthReportsDatabaseAndVersion) {
  auto r = http_request(port(), "GET", "/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  const auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["status"], "ok");
  EXPECT_EQ(j["database"]["reachable"], true);
  EXPECT_EQ(j["database"]["schema_current"], true);
  EXPECT_FALSE(j["version"].get<std::string>().empty());
}

TEST_F(ServeTest, ReadyWhenDatabaseMigrated) {
  auto r = http_request(port(), "GET", "/ready");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(ServeTest, MetricsCountRequestsByRouteAndStatus) {
  ASSERT_EQ(http_request(port(), "GET", "/health")->status, 200);
  ASSERT_EQ(http_request(port(), "GET", "/nowhere")->status, 404);
  auto r = http_request(port(), "GET", "/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->header("content-type").find("text/plain"), std::string::npos);
  EXPECT_NE(r->body.find("llmd_http_requests_total{route=\"/health\",method=\"GET\",status=\"200\"} "),
            std::string::npos)
      << r->body;
  EXPECT_NE(r->body.find("llmd_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1"),
            std::string::npos);
  EXPECT_NE(r->body.find("llmd_http_request_duration_seconds_bucket{route=\"/health\""), std::string::npos);
  EXPECT_NE(r->body.find("llmd_build_info{version="), std::string::npos);
}

TEST_F(ServeTest, UnknownPathIs404WithJsonError) {
  auto r = http_request(port(), "GET", "/api/v1/nothing");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  const auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["error"]["code"], "not_found");
  EXPECT_EQ(j["error"]["request_id"], r->header("x-request-id"));
}

TEST_F(ServeTest, WrongMethodIs405WithAllow) {
  auto r = http_request(port(), "DELETE", "/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->header("allow"), "GET, HEAD");
}

TEST_F(ServeTest, RequestIdIsEchoedOrReplacedWhenUnsafe) {
  auto echoed = http_request(port(), "GET", "/health", "", {{"X-Request-ID", "trace-42.a_b:c"}});
  EXPECT_EQ(echoed->header("x-request-id"), "trace-42.a_b:c");
  auto replaced = http_request(port(), "GET", "/health", "", {{"X-Request-ID", "bad id<script>"}});
  const std::string id = replaced->header("x-request-id");
  EXPECT_FALSE(id.empty());
  EXPECT_EQ(id.find('<'), std::string::npos);
}

TEST_F(ServeTest, OversizedBodyIsRefusedBeforeItIsSent) {
  RawConnection c(port());
  ASSERT_TRUE(
      c.send("POST /api/v1/debug/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: 100000000\r\n\r\n"));
  // No body byte sent: the answer must come anyway, quickly.
  auto r = c.read_reply(std::chrono::seconds(3));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(nlohmann::json::parse(r->body)["error"]["code"], "payload_too_large");
  EXPECT_EQ(http_request(port(), "GET", "/health")->status, 200);
}

TEST_F(ServeTest, OversizedChunkedBodyIs413) {
  RawConnection c(port());
  std::string req = "POST /api/v1/debug/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 10; ++i) req += "400\r\n" + std::string(1024, 'a') + "\r\n";
  req += "0\r\n\r\n";
  c.send(req);
  auto r = c.read_reply(std::chrono::seconds(5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
}

TEST_F(ServeTest, ChunkedRequestBodyIsAssembled) {
  RawConnection c(port());
  c.send(
      "POST /api/v1/debug/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\n{\"a\":\r\n3\r\n[1]\r\n1\r\n}\r\n0\r\n\r\n");
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(nlohmann::json::parse(r->body)["echo"]["a"][0], 1);
}

TEST_F(ServeTest, MalformedHttpGets400AndServerKeepsServing) {
  for (const char* garbage : {"GARBAGE\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
                              "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n"}) {
    RawConnection c(port());
    c.send(garbage);
    auto r = c.read_reply(std::chrono::seconds(3));
    ASSERT_TRUE(r) << garbage;
    EXPECT_EQ(r->status, 400) << garbage;
  }
  EXPECT_EQ(http_request(port(), "GET", "/health")->status, 200);
}

TEST_F(ServeTest, BadJsonAndInvalidUtf8Are400) {
  auto bad_json = http_request(port(), "POST", "/api/v1/debug/echo", "{\"a\":");
  EXPECT_EQ(bad_json->status, 400);
  EXPECT_EQ(nlohmann::json::parse(bad_json->body)["error"]["code"], "invalid_json");
  auto bad_utf8 = http_request(port(), "POST", "/api/v1/debug/echo", "{\"a\":\"\xff\xfe\"}");
  EXPECT_EQ(bad_utf8->status, 400);
  EXPECT_EQ(nlohmann::json::parse(bad_utf8->body)["error"]["code"], "invalid_utf8");
}

TEST_F(ServeTest, PipelinedRequestsAreAnsweredInOrder) {
  RawConnection c(port());
  c.send(
      "GET /health HTTP/1.1\r\nHost: x\r\nX-Request-ID: one\r\n\r\n"
      "GET /nowhere HTTP/1.1\r\nHost: x\r\nX-Request-ID: two\r\n\r\n"
      "GET /ready HTTP/1.1\r\nHost: x\r\nX-Request-ID: three\r\n\r\n");
  auto a = c.read_reply(), b = c.read_reply(), d = c.read_reply();
  ASSERT_TRUE(a && b && d);
  EXPECT_EQ(a->header("x-request-id"), "one");
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(b->header("x-request-id"), "two");
  EXPECT_EQ(b->status, 404);
  EXPECT_EQ(d->header("x-request-id"), "three");
  EXPECT_EQ(d->status, 200);
}

TEST_F(ServeTest, TwoHundredParallelKeepAliveClients) {
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 200; ++i) {
    clients.emplace_back([&] {
      RawConnection c(port());
      for (int k = 0; k < 5; ++k) {
        auto r = c.request("POST", "/api/v1/debug/echo", "{\"k\":" + std::to_string(k) + "}");
        if (r && r->status == 200 && nlohmann::json::parse(r->body)["echo"]["k"] == k) ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 1000);
}

TEST_F(ServeTest, SilentClientIsDisconnectedAfterHeaderTimeout) {
  RawConnection c(port());
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c.closed_by_peer(std::chrono::seconds(5)));
}

TEST_F(ServeTest, GracefulShutdownFinishesRequestInFlight) {
  RawConnection c(port());
  const std::string body = "{\"slow\":true}";
  // Head and half the body now; SIGTERM; the rest after.
  ASSERT_TRUE(
      c.send("POST /api/v1/debug/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: " +
             std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, 5)));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  server_->process().signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // New connections are refused once shutdown began.
  EXPECT_FALSE(http_request(port(), "GET", "/health").has_value());
  ASSERT_TRUE(c.send(body.substr(5)));
  auto r = c.read_reply(std::chrono::seconds(5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(nlohmann::json::parse(r->body)["echo"]["slow"], true);
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_EQ(server_->process().wait(std::chrono::seconds(10)), 0) << server_->log();
}

TEST(ServeConfig, BadConfigExitsTwoWithOneLineNamingTheKey) {
  TempDir dir;
  write_file(dir / "bad.yaml", "server: { port: seventy }\n");
  Process p({kBinary, "serve", "-c", (dir / "bad.yaml").string()}, dir.path(), dir / "out.log");
  EXPECT_EQ(p.wait(std::chrono::seconds(20)), 2);
  const std::string out = p.log();
  EXPECT_NE(out.find("server.port"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

TEST(ServeConfig, UnknownFlagExitsTwo) {
  TempDir dir;
  Process p({kBinary, "serve", "--no-such-flag"}, dir.path(), dir / "out.log");
  EXPECT_EQ(p.wait(std::chrono::seconds(20)), 2);
  EXPECT_NE(p.log().find("--no-such-flag"), std::string::npos);
}

TEST(ServeConfig, EnvironmentOverridesPort) {
  TempDir dir;
  const int port = free_port();
  Process p({kBinary, "serve"}, dir.path(), dir / "out.log",
            {{"LLMD_SERVER_PORT", std::to_string(port)},
             {"LLMD_SERVER_DATA_DIR", (dir / "data").string()},
             {"LLMD_DATABASE", "sqlite:" + (dir / "data/x.db").string()}});
  EXPECT_TRUE(wait_for_http(port, "/health", 200, std::chrono::seconds(30))) << p.log();
  EXPECT_TRUE(std::filesystem::exists(dir / "data/x.db"));
}

}  // namespace
}  // namespace llmd::testing
