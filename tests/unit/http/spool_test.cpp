// Request bodies streamed to a temporary file (ServerOptions::body_policy):
// a real Server on loopback, driven with raw sockets so the tests control
// every byte (chunked bodies, early disconnects, missing credentials).
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "http/errors.h"
#include "http/pipeline.h"
#include "http/server.h"
#include "support/http.h"
#include "support/test_support.h"

namespace llmd::http {
namespace {

namespace fs = std::filesystem;
namespace net = boost::asio;
using testing::http_request;
using testing::RawConnection;

constexpr std::uint64_t kSpoolLimit = 1000;

std::size_t files_in(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return 0;
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    (void)e;
    ++n;
  }
  return n;
}

// Polls until `dir` holds `n` files (the server cleans up asynchronously).
bool wait_for_files(const fs::path& dir, std::size_t n) {
  for (int i = 0; i < 200; ++i) {
    if (files_in(dir) == n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return files_in(dir) == n;
}

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto router = std::make_shared<Router>();
    // Echoes what arrived: the body file's bytes and size, or the in-memory body.
    router->post("/upload", [this](RequestContext& ctx) -> net::awaitable<Response> {
      ++handled_;
      nlohmann::json out;
      out["spooled"] = static_cast<bool>(ctx.request.body_file);
      if (ctx.request.body_file) {
        out["size"] = ctx.request.body_file->size();
        out["content"] = testing::read_file(ctx.request.body_file->path());
        out["in_spool_dir"] = ctx.request.body_file->path().parent_path() == spool_dir_;
      }
      out["memory_body"] = ctx.request.body;
      co_return Response::json(200, out);
    });
    // Takes the file: renames it away and releases it.
    router->post("/keep", [this](RequestContext& ctx) -> net::awaitable<Response> {
      fs::rename(ctx.request.body_file->path(), kept_);
      ctx.request.body_file->release();
      co_return Response::text(201, "kept");
    });
    router->post("/echo", [](RequestContext& ctx) -> net::awaitable<Response> {
      co_return Response::text(200, ctx.request.body_file ? "file" : ctx.request.body);
    });
    ServerOptions opts;
    opts.port = 0;
    opts.io_threads = 2;
    opts.handle_signals = false;
    opts.shutdown_grace = std::chrono::seconds(2);
    opts.max_body_bytes = 64 * 1024;
    opts.idle_timeout = std::chrono::seconds(5);
    opts.body_policy = [this](const Request& head) -> net::awaitable<Result<std::optional<SpoolPlan>>> {
      if (head.method != "POST" || (head.path != "/upload" && head.path != "/keep")) co_return std::nullopt;
      if (!head.headers.has("Authorization")) {
        co_return fail(ErrorCode::kUnauthenticated, "uploads need credentials", "unauthenticated");
      }
      co_return SpoolPlan{spool_dir_, kSpoolLimit};
    };
    server_ = std::make_unique<Server>(opts, make_pipeline(router, {request_id_middleware()}), observe::Logger::null());
    ASSERT_TRUE(server_->listen());
    port_ = server_->port();
    thread_ = std::thread([this] { server_->run(); });
  }

  void TearDown() override {
    server_->stop();
    thread_.join();
  }

  static std::map<std::string, std::string> auth() { return {{"Authorization", "Bearer x"}}; }

  testing::TempDir dir_;
  fs::path spool_dir_ = dir_ / "spool";
  fs::path kept_ = dir_ / "kept.bin";
  std::atomic<int> handled_{0};
  std::unique_ptr<Server> server_;
  std::thread thread_;
  int port_ = 0;
};

TEST_F(SpoolTest, BodyArrivesInAFileThatIsRemovedAfterTheRequest) {
  std::string body;
  for (int i = 0; i < 900; ++i) body.push_back(static_cast<char>('a' + i % 26));
  body[10] = '\0';
  auto r = http_request(port_, "POST", "/upload", body, auth());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto j = nlohmann::json::parse(r->body);
  EXPECT_TRUE(j["spooled"].get<bool>());
  EXPECT_EQ(j["size"].get<std::uint64_t>(), body.size());
  EXPECT_EQ(j["content"].get<std::string>(), body);
  EXPECT_TRUE(j["in_spool_dir"].get<bool>());
  EXPECT_EQ(j["memory_body"].get<std::string>(), "");
  EXPECT_TRUE(wait_for_files(spool_dir_, 0));
}

TEST_F(SpoolTest, ChunkedBodyIsSpooledAndCounted) {
  RawConnection c(port_);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(
      c.send("POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["content"].get<std::string>(), "hello world");
  EXPECT_EQ(j["size"].get<std::uint64_t>(), 11u);
  // The connection stays usable for the next request.
  auto again = c.request("POST", "/echo", "small");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->body, "small");
  EXPECT_TRUE(wait_for_files(spool_dir_, 0));
}

TEST_F(SpoolTest, DeclaredLengthOverTheLimitIs413BeforeReading) {
  RawConnection c(port_);
  ASSERT_TRUE(c.send("POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\nContent-Length: " +
                     std::to_string(kSpoolLimit + 1) + "\r\n\r\n"));
  auto r = c.read_reply(std::chrono::seconds(5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(r->body.find("1000"), std::string::npos) << r->body;
  EXPECT_EQ(handled_.load(), 0);
  EXPECT_EQ(files_in(spool_dir_), 0u);
}

TEST_F(SpoolTest, ChunkedBodyOverTheLimitIs413AndLeavesNoFile) {
  RawConnection c(port_);
  ASSERT_TRUE(
      c.send("POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\nTransfer-Encoding: chunked\r\n\r\n"));
  const std::string piece(400, 'z');
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.send("190\r\n" + piece + "\r\n"));  // 0x190 = 400
  (void)c.send("0\r\n\r\n");
  auto r = c.read_reply(std::chrono::seconds(5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(handled_.load(), 0);
  EXPECT_TRUE(wait_for_files(spool_dir_, 0));
}

TEST_F(SpoolTest, MissingCredentialsAre401WithoutReadingTheBody) {
  RawConnection c(port_);
  // Only the head and a little of a large declared body: the answer comes anyway.
  ASSERT_TRUE(c.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\nabc"));
  auto r = c.read_reply(std::chrono::seconds(5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_NE(r->body.find("unauthenticated"), std::string::npos) << r->body;
  EXPECT_EQ(handled_.load(), 0);
  EXPECT_EQ(files_in(spool_dir_), 0u);
}

TEST_F(SpoolTest, ClientDisconnectingMidBodyLeavesNoFile) {
  {
    RawConnection c(port_);
    ASSERT_TRUE(c.send("POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\nContent-Length: 900\r\n\r\n" +
                       std::string(300, 'p')));
    // The partial file exists while the server waits for the rest.
    ASSERT_TRUE(wait_for_files(spool_dir_, 1));
  }  // closes the socket mid-body
  EXPECT_TRUE(wait_for_files(spool_dir_, 0));
  EXPECT_EQ(handled_.load(), 0);
  // The server keeps serving.
  auto r = http_request(port_, "POST", "/upload", "fine", auth());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(SpoolTest, HandlerThatReleasesTheFileKeepsIt) {
  auto r = http_request(port_, "POST", "/keep", "keep these bytes", auth());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(testing::read_file(kept_), "keep these bytes");
  EXPECT_TRUE(wait_for_files(spool_dir_, 0));
}

TEST_F(SpoolTest, OtherRoutesStillReadBodiesIntoMemory) {
  auto r = http_request(port_, "POST", "/echo", "in memory");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "in memory");
  // And keep the in-memory limit, far below the spool limit's purpose.
  auto big = http_request(port_, "POST", "/echo", std::string(64 * 1024 + 1, 'b'));
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_FALSE(fs::exists(spool_dir_));
}

}  // namespace
}  // namespace llmd::http
