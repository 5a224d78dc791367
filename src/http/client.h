// Async HTTP/1.1 client for talking to workers and upstreams: keep-alive
// connection pool per host:port, connect and overall timeouts, whole-body or
// chunk-by-chunk (streaming) responses. Plain http:// only for now.
//
// Thread-safety: one HttpClient may be used by many coroutines at once.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "core/error.h"
#include "http/message.h"

namespace llmd::http {

struct ClientRequest {
  std::string method = "GET";
  std::string url;  // http://host:port/path?query
  Headers headers;
  std::string body;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds timeout{60000};  // per read/write step: time without progress
};

struct ClientResponse {
  int status = 0;
  Headers headers;
  std::string body;
};

struct ClientOptions {
  std::size_t max_idle_per_host = 32;
  std::size_t max_body_bytes = 64 * 1024 * 1024;  // for request(): larger replies fail
};

// Error reasons: "upstream_unreachable" (connect failed, or the connection
// broke before any response byte: safe to retry elsewhere), "upstream_timeout"
// (kDeadlineExceeded), "upstream_error" (broken reply after bytes arrived),
// "bad_url" (kInvalidArgument).
class HttpClient {
 public:
  explicit HttpClient(boost::asio::any_io_executor executor, ClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends the request and reads the whole response.
  //
  // Arguments are taken by reference and must outlive the co_await (they do
  // when awaited at once). Do not build temporaries with owning captures
  // inside the co_await expression: g++ 12 destroys such temporaries twice.
  boost::asio::awaitable<Result<ClientResponse>> request(const ClientRequest& req);

  // Sends the request and hands the response over as it arrives: on_head
  // once, then on_chunk for each piece of the (de-chunked) body. A callback
  // returning false stops reading and drops the connection (this is how a
  // downstream disconnect cancels the upstream). Returns the status code.
  using OnHead = std::function<boost::asio::awaitable<bool>(int status, const Headers& headers)>;
  using OnChunk = std::function<boost::asio::awaitable<bool>(std::string_view data)>;
  boost::asio::awaitable<Result<int>> stream(const ClientRequest& req, const OnHead& on_head, const OnChunk& on_chunk);

  // Idle pooled connections right now (for tests and metrics).
  std::size_t idle_connections() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

struct ParsedUrl {
  std::string host;
  std::string port;
  std::string target;  // path + query, at least "/"
};
// Parses http://host[:port][/path]. Errors: kInvalidArgument "bad_url".
Result<ParsedUrl> parse_http_url(std::string_view url);

}  // namespace llmd::http
