#include "support/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <utility>

namespace llmd::testing {

struct RawConnection::Tls {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx{nullptr, SSL_CTX_free};
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl{nullptr, SSL_free};
};

namespace {

std::string last_ssl_error() {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "no OpenSSL error queued";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

}  // namespace

bool RawConnection::start_tls(const TlsClientOptions& options) {
  if (fd_ < 0) {
    tls_error_ = "not connected";
    return false;
  }
  // OpenSSL writes with write(2): a server that closes must fail the call,
  // not kill the test process with SIGPIPE.
  static const bool sigpipe_ignored = [] {
    std::signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)sigpipe_ignored;
  auto tls = std::make_unique<Tls>();
  tls->ctx.reset(SSL_CTX_new(TLS_client_method()));
  SSL_CTX* ctx = tls->ctx.get();
  // Offer exactly what the test asks for, whatever the system's openssl.cnf
  // says (Debian's refuses TLS < 1.2 on the client side too).
  SSL_CTX_set_security_level(ctx, 0);
  SSL_CTX_set_min_proto_version(ctx, options.min_version);
  SSL_CTX_set_max_proto_version(ctx, options.max_version);
  const std::string ciphers =
      options.tls12_ciphers.empty() ? "DEFAULT:@SECLEVEL=0" : options.tls12_ciphers + ":@SECLEVEL=0";
  if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1) {
    tls_error_ = "bad cipher list: " + last_ssl_error();
    return false;
  }
  if (!options.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) != 1) {
      tls_error_ = "cannot load CA: " + last_ssl_error();
      return false;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  tls->ssl.reset(SSL_new(ctx));
  SSL* ssl = tls->ssl.get();
  SSL_set_tlsext_host_name(ssl, "localhost");
  if (!options.ca_file.empty()) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
  SSL_set_fd(ssl, fd_);
  // The handshake blocks: bound it so a server that never answers fails the test.
  timeval tv{10, 0};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const int r = SSL_connect(ssl);
  if (r != 1) {
    tls_error_ = last_ssl_error();
    if (SSL_get_verify_result(ssl) != X509_V_OK) {
      tls_error_ += std::string(" (verify: ") + X509_verify_cert_error_string(SSL_get_verify_result(ssl)) + ")";
    }
    return false;
  }
  tls_ = std::move(tls);
  return true;
}

std::string RawConnection::peer_common_name() const {
  if (!tls_) return {};
  X509* cert = SSL_get0_peer_certificate(tls_->ssl.get());
  if (!cert) return {};
  char cn[256] = {};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) < 0) return {};
  return cn;
}

long RawConnection::peer_serial() const {
  if (!tls_) return -1;
  X509* cert = SSL_get0_peer_certificate(tls_->ssl.get());
  return cert ? ASN1_INTEGER_get(X509_get0_serialNumber(cert)) : -1;
}

std::string RawConnection::tls_version() const { return tls_ ? SSL_get_version(tls_->ssl.get()) : ""; }
std::string RawConnection::tls_cipher() const { return tls_ ? SSL_get_cipher_name(tls_->ssl.get()) : ""; }

long RawConnection::receive(char* buf, std::size_t size) {
  if (!tls_) return ::recv(fd_, buf, size, 0);
  const int n = SSL_read(tls_->ssl.get(), buf, static_cast<int>(size));
  return n > 0 ? n : (SSL_get_error(tls_->ssl.get(), n) == SSL_ERROR_ZERO_RETURN ? 0 : -1);
}

RawConnection::RawConnection(int port) : RawConnection(port, "") {}

RawConnection::RawConnection(int port, const std::string& source_ip) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (!source_ip.empty()) {
    sockaddr_in src{};
    src.sin_family = AF_INET;
    if (::inet_pton(AF_INET, source_ip.c_str(), &src.sin_addr) != 1 ||
        ::bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    fd_ = -1;
    return;
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

RawConnection::~RawConnection() {
  tls_.reset();
  if (fd_ >= 0) ::close(fd_);
}

bool RawConnection::send(const std::string& bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = tls_ ? SSL_write(tls_->ssl.get(), bytes.data() + off, static_cast<int>(bytes.size() - off))
                           : ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

bool RawConnection::fill(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd_, POLLIN, 0};
  const bool buffered = tls_ && SSL_pending(tls_->ssl.get()) > 0;
  if (!buffered && ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
  char buf[16384];
  const long n = receive(buf, sizeof buf);
  if (n <= 0) return false;
  buffer_.append(buf, static_cast<std::size_t>(n));
  return true;
}

std::optional<std::string> RawConnection::read_some(std::chrono::milliseconds timeout) {
  if (buffer_.empty() && !fill(std::chrono::steady_clock::now() + timeout)) return std::nullopt;
  return std::exchange(buffer_, {});
}

bool RawConnection::closed_by_peer(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd_, POLLIN, 0};
    if ((tls_ && SSL_pending(tls_->ssl.get()) > 0) || ::poll(&p, 1, 20) > 0) {
      char buf[4096];
      const long n = receive(buf, sizeof buf);
      if (n <= 0) return true;
      buffer_.append(buf, static_cast<std::size_t>(n));
    }
  }
  return false;
}

std::optional<std::string> RawConnection::read_until_close(std::chrono::milliseconds timeout) {
  if (!closed_by_peer(timeout)) return std::nullopt;
  return std::exchange(buffer_, std::string());
}

std::optional<HttpReply> RawConnection::read_head(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t head_end;
  while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(deadline)) return std::nullopt;
  }
  HttpReply reply;
  const std::string head = buffer_.substr(0, head_end);
  buffer_.erase(0, head_end + 4);
  std::size_t pos = head.find("\r\n");
  const std::string status_line = head.substr(0, pos);
  if (status_line.size() < 12) return std::nullopt;
  reply.status = std::stoi(status_line.substr(9, 3));
  while (pos != std::string::npos) {
    const std::size_t next = head.find("\r\n", pos + 2);
    const std::string line = head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      std::ranges::transform(name, name.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      reply.headers[name] = value;
    }
    pos = next;
  }
  return reply;
}

std::optional<HttpReply> RawConnection::read_reply(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto head = read_head(timeout);
  if (!head) return std::nullopt;
  HttpReply& reply = *head;
  if (reply.status == 100) return read_reply(timeout);
  if (reply.header("transfer-encoding") == "chunked") {
    while (true) {
      std::size_t line_end;
      while ((line_end = buffer_.find("\r\n")) == std::string::npos) {
        if (!fill(deadline)) return std::nullopt;
      }
      const std::size_t size = std::stoul(buffer_.substr(0, line_end), nullptr, 16);
      while (buffer_.size() < line_end + 2 + size + 2) {
        if (!fill(deadline)) return std::nullopt;
      }
      reply.body += buffer_.substr(line_end + 2, size);
      buffer_.erase(0, line_end + 2 + size + 2);
      if (size == 0) break;
    }
  } else if (auto cl = reply.header("content-length"); !cl.empty()) {
    const std::size_t len = std::stoul(cl);
    while (buffer_.size() < len) {
      if (!fill(deadline)) return std::nullopt;
    }
    reply.body = buffer_.substr(0, len);
    buffer_.erase(0, len);
  }
  return reply;
}

std::optional<HttpReply> RawConnection::request(const std::string& method, const std::string& path,
                                                const std::string& body,
                                                const std::map<std::string, std::string>& headers,
                                                std::chrono::milliseconds timeout) {
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT") {
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    if (!headers.contains("Content-Type")) req += "Content-Type: application/json\r\n";
  }
  req += "\r\n" + body;
  if (!send(req)) return std::nullopt;
  return read_reply(timeout);
}

std::optional<HttpReply> https_request(int port, const std::filesystem::path& ca_file, const std::string& method,
                                       const std::string& path, const std::string& body,
                                       const std::map<std::string, std::string>& headers) {
  RawConnection c(port);
  if (!c.ok() || !c.start_tls(verified_by(ca_file))) return std::nullopt;
  auto h = headers;
  h["Connection"] = "close";
  return c.request(method, path, body, h);
}

std::optional<HttpReply> http_request(int port, const std::string& method, const std::string& path,
                                      const std::string& body, const std::map<std::string, std::string>& headers,
                                      std::chrono::milliseconds timeout) {
  RawConnection c(port);
  if (!c.ok()) return std::nullopt;
  auto h = headers;
  h["Connection"] = "close";
  return c.request(method, path, body, h, timeout);
}

}  // namespace llmd::testing
