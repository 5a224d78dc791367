// A small blocking HTTP/1.1 client on raw sockets, for tests that need full
// control of the bytes (malformed requests, pipelining, slow bodies).
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
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

// How RawConnection::start_tls() talks TLS.
struct TlsClientOptions {
  // Verify the server's certificate against this CA (PEM) and for the
  // address 127.0.0.1; empty = no verification.
  std::filesystem::path ca_file;
  // Protocol versions offered (TLS1_VERSION ... TLS1_3_VERSION; 0 = any the
  // library knows). Old versions are really offered: the system's
  // MinProtocol and security level are overridden.
  int min_version = 0;
  int max_version = 0;
  std::string tls12_ciphers;  // OpenSSL cipher list for TLS <= 1.2; empty = library default
};

// Options that verify the server against `ca_file`, everything else default.
inline TlsClientOptions verified_by(const std::filesystem::path& ca_file, int max_version = 0) {
  TlsClientOptions o;
  o.ca_file = ca_file;
  o.max_version = max_version;
  return o;
}

// A TCP connection to 127.0.0.1:port, optionally with TLS (start_tls()).
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
  // Runs a TLS client handshake; afterwards every send and read goes over
  // TLS. False when it fails (tls_error() says why).
  bool start_tls(const TlsClientOptions& options = {});
  std::string tls_error() const { return tls_error_; }
  // After start_tls(): the server certificate's subject CN and serial
  // number, and the negotiated protocol ("TLSv1.3") and cipher.
  std::string peer_common_name() const;
  long peer_serial() const;
  std::string tls_version() const;
  std::string tls_cipher() const;
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
  // Sends one request and reads its reply (keep-alive), waiting up to `timeout`.
  std::optional<HttpReply> request(const std::string& method, const std::string& path, const std::string& body = "",
                                   const std::map<std::string, std::string>& headers = {},
                                   std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  bool fill(std::chrono::steady_clock::time_point deadline);
  // One read from the socket (through TLS when on): bytes, 0 = closed, <0 = error.
  long receive(char* buf, std::size_t size);
  struct Tls;
  int fd_ = -1;
  std::string buffer_;
  std::unique_ptr<Tls> tls_;
  std::string tls_error_;
};

// One request on a fresh HTTPS connection ("Connection: close"), the server
// verified against `ca_file`; nullopt when the connection or handshake fails.
std::optional<HttpReply> https_request(int port, const std::filesystem::path& ca_file, const std::string& method,
                                       const std::string& path, const std::string& body = "",
                                       const std::map<std::string, std::string>& headers = {});

// One request on a fresh connection ("Connection: close").
std::optional<HttpReply> http_request(int port, const std::string& method, const std::string& path,
                                      const std::string& body = "",
                                      const std::map<std::string, std::string>& headers = {},
                                      std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace llmd::testing
