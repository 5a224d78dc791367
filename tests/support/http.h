// A small blocking HTTP/1.1 client on raw sockets, for tests that need full
// control of the bytes (malformed requests, pipelining, slow bodies).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace llmd::testing {

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;                            // de-chunked
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
};

// A TCP connection to 127.0.0.1:port.
class RawConnection {
 public:
  explicit RawConnection(int port);
  // Connects from `source_ip` (e.g. "127.0.0.2": any 127/8 address works on
  // loopback), to test per-address rules.
  RawConnection(int port, const std::string& source_ip);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool ok() const { return fd_ >= 0; }
  bool send(const std::string& bytes);
  // Reads the status line and headers of a response, leaving its body unread
  // (e.g. to hold a stream open).
  std::optional<HttpReply> read_head(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Reads one response (status line, headers, Content-Length or chunked body).
  std::optional<HttpReply> read_reply(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // The raw bytes received so far and not yet read (e.g. a streamed body after
  // read_head), waiting up to `timeout` for some; nullopt when the peer closed
  // or nothing came.
  std::optional<std::string> read_some(std::chrono::milliseconds timeout);
  // True when the peer closed the connection within `timeout`.
  bool closed_by_peer(std::chrono::milliseconds timeout);
  // Everything the peer sends until it closes (or `timeout` passes), with
  // what was already buffered; nullopt when it did not close in time.
  std::optional<std::string> read_until_close(std::chrono::milliseconds timeout);
  // Sends one request and reads its reply (keep-alive).
  std::optional<HttpReply> request(const std::string& method, const std::string& path, const std::string& body = "",
                                   const std::map<std::string, std::string>& headers = {});

 private:
  bool fill(std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  std::string buffer_;
};

// One request on a fresh connection ("Connection: close").
std::optional<HttpReply> http_request(int port, const std::string& method, const std::string& path,
                                      const std::string& body = "",
                                      const std::map<std::string, std::string>& headers = {});

}  // namespace llmd::testing
