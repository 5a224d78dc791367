// The HTTP server, SSE writer, client and worker pool together, in-process:
// a real Server on a loopback port, exercised through HttpClient.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_future.hpp>
#include <future>
#include <thread>

#include "http/client.h"
#include "http/pipeline.h"
#include "http/server.h"
#include "http/sse.h"
#include "http/worker_pool.h"
#include "support/http.h"

namespace llmd::http {
namespace {

namespace net = boost::asio;

ClientRequest get(std::string url, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  ClientRequest r;
  r.url = std::move(url);
  r.timeout = timeout;
  return r;
}

net::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  net::steady_timer t(co_await net::this_coro::executor, d);
  co_await t.async_wait(net::use_awaitable);
}

class ServerClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto router = std::make_shared<Router>();
    router->get("/big", [](RequestContext&) -> net::awaitable<Response> {
      co_return Response::text(200, std::string(1 << 20, 'x'));
    });
    router->get("/slow", [](RequestContext&) -> net::awaitable<Response> {
      co_await sleep_for(std::chrono::milliseconds(1500));
      co_return Response::text(200, "late");
    });
    router->get("/events", [](RequestContext& ctx) -> net::awaitable<Response> {
      SseWriter sse(ctx);
      co_await sse.open();
      for (int i = 0; i < 5; ++i) {
        co_await sse.send("{\"i\":" + std::to_string(i) + "}");
        co_await sleep_for(std::chrono::milliseconds(5));
      }
      co_await sse.close();
      co_return Response::already_streamed(200);
    });
    router->get("/forever", [this](RequestContext& ctx) -> net::awaitable<Response> {
      SseWriter sse(ctx);
      co_await sse.open();
      for (int i = 0; i < 2000 && sse.alive(); ++i) {
        co_await sse.send(std::string(1024, 'y'));
        co_await sleep_for(std::chrono::milliseconds(2));
      }
      stream_saw_disconnect_ = !sse.alive();
      co_await sse.close();
      co_return Response::already_streamed(200);
    });
    router->get("/thread", [this](RequestContext&) -> net::awaitable<Response> {
      const auto io_thread = std::this_thread::get_id();
      const auto pool_thread = co_await pool_.run([] { return std::this_thread::get_id(); });
      const bool back_home = std::this_thread::get_id() != pool_thread;
      co_return Response::text(200, (pool_thread != io_thread && back_home) ? "separate" : "same");
    });
    ServerOptions opts;
    opts.port = 0;
    opts.io_threads = 2;
    opts.handle_signals = false;
    opts.shutdown_grace = std::chrono::seconds(2);
    server_ = std::make_unique<Server>(opts, make_pipeline(router, {request_id_middleware()}), observe::Logger::null());
    ASSERT_TRUE(server_->listen());
    url_ = "http://127.0.0.1:" + std::to_string(server_->port());
    thread_ = std::thread([this] { server_->run(); });
    client_ = std::make_unique<HttpClient>(server_->executor());
  }

  void TearDown() override {
    server_->stop();
    thread_.join();
  }

  template <typename T>
  T run(net::awaitable<T> op) {
    return net::co_spawn(server_->executor(), std::move(op), net::use_future).get();
  }
  Result<ClientResponse> fetch(ClientRequest req) {
    return net::co_spawn(
               server_->executor(),
               [this, &req]() -> net::awaitable<Result<ClientResponse>> { co_return co_await client_->request(req); },
               net::use_future)
        .get();
  }
  Result<int> stream(ClientRequest req, HttpClient::OnHead on_head, HttpClient::OnChunk on_chunk) {
    return net::co_spawn(
               server_->executor(),
               [&]() -> net::awaitable<Result<int>> { co_return co_await client_->stream(req, on_head, on_chunk); },
               net::use_future)
        .get();
  }

  WorkerPool pool_{2};
  std::unique_ptr<Server> server_;
  std::unique_ptr<HttpClient> client_;
  std::thread thread_;
  std::string url_;
  std::atomic<bool> stream_saw_disconnect_{false};
};

TEST_F(ServerClientTest, WholeBodyAndConnectionReuse) {
  auto r = fetch(get(url_ + "/big"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body.size(), 1u << 20);
  EXPECT_EQ(client_->idle_connections(), 1u);
  auto again = fetch(get(url_ + "/big"));
  ASSERT_TRUE(again);
  EXPECT_EQ(client_->idle_connections(), 1u);  // reused, not a second connection
}

TEST_F(ServerClientTest, StreamsSseChunkByChunk) {
  auto chunks = std::make_shared<std::vector<std::string>>();
  auto status = stream(
      get(url_ + "/events"),
      [](int, const Headers& h) -> net::awaitable<bool> {
        co_return h.get("Content-Type").value_or("").starts_with("text/event-stream");
      },
      [chunks](std::string_view data) -> net::awaitable<bool> {
        chunks->emplace_back(data);
        co_return true;
      });
  ASSERT_TRUE(status) << status.error().message;
  EXPECT_EQ(*status, 200);
  std::string all;
  for (const auto& c : *chunks) all += c;
  EXPECT_GE(chunks->size(), 2u);  // arrived in pieces, not as one buffered body
  EXPECT_EQ(all, "data: {\"i\":0}\n\ndata: {\"i\":1}\n\ndata: {\"i\":2}\n\ndata: {\"i\":3}\n\ndata: {\"i\":4}\n\n");
}

TEST_F(ServerClientTest, ClientDroppingTheStreamIsNoticedByTheServer) {
  auto received = std::make_shared<int>(0);
  auto status = stream(
      get(url_ + "/forever"), [](int, const Headers&) -> net::awaitable<bool> { co_return true; },
      [received](std::string_view) -> net::awaitable<bool> { co_return ++*received < 3; });
  ASSERT_TRUE(status);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!stream_saw_disconnect_ && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(stream_saw_disconnect_.load());
}

TEST_F(ServerClientTest, SlowUpstreamTimesOut) {
  auto r = fetch(get(url_ + "/slow", std::chrono::milliseconds(200)));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kDeadlineExceeded) << r.error().message;
  EXPECT_EQ(r.error().reason, "upstream_timeout");
}

TEST_F(ServerClientTest, RefusedConnectionIsUnreachable) {
  auto r = fetch(get("http://127.0.0.1:1/x"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(r.error().reason, "upstream_unreachable");
}

TEST_F(ServerClientTest, BlockingWorkRunsOffTheIoThread) {
  auto r = fetch(get(url_ + "/thread"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "separate");
}

// Issue 13 item 16: HEAD on a streamed endpoint sends the head only; the
// connection then carries the next request (a body would be read as the
// next response's status line).
TEST_F(ServerClientTest, HeadOnAStreamedEndpointSendsNoBody) {
  testing::RawConnection c(server_->port());
  ASSERT_TRUE(c.send("HEAD /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  auto head = c.read_head(std::chrono::seconds(10));
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("content-type"), "text/event-stream; charset=utf-8");
  ASSERT_TRUE(c.send("GET /thread HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  auto next = c.read_reply(std::chrono::seconds(10));
  ASSERT_TRUE(next) << "no second reply";
  EXPECT_EQ(next->status, 200);
  EXPECT_EQ(next->body, "separate");
}

// Issue 13 item 16: an HTTP/1.0 client knows no chunked encoding; a streamed
// reply reaches it raw and ends with the connection.
TEST_F(ServerClientTest, Http10ClientGetsAStreamCloseDelimited) {
  testing::RawConnection c(server_->port());
  ASSERT_TRUE(c.send("GET /events HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"));
  const auto all = c.read_until_close(std::chrono::seconds(10));
  ASSERT_TRUE(all) << "the connection must close to end the body";
  const auto head_end = all->find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos) << *all;
  const std::string head = all->substr(0, head_end);
  EXPECT_EQ(head.find("chunked"), std::string::npos) << head;
  EXPECT_EQ(head.find("Content-Length"), std::string::npos) << head;
  std::string expected;
  for (int i = 0; i < 5; ++i) expected += format_sse_event("{\"i\":" + std::to_string(i) + "}");
  EXPECT_EQ(all->substr(head_end + 4), expected);
}

TEST(HttpUrl, ParsesHostPortAndTarget) {
  auto u = parse_http_url("http://127.0.0.1:8081/v1/chat?x=1");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, "8081");
  EXPECT_EQ(u->target, "/v1/chat?x=1");
  EXPECT_EQ(parse_http_url("http://gpu-box")->port, "80");
  EXPECT_EQ(parse_http_url("http://[::1]:9000/")->host, "::1");
  EXPECT_FALSE(parse_http_url("ftp://x"));
  EXPECT_FALSE(parse_http_url("http://user:pw@host/"));
  EXPECT_FALSE(parse_http_url("http://host:80x/"));
}

}  // namespace
}  // namespace llmd::http
