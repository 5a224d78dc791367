// The HTTP/1.1 server: async (Asio coroutines) on N I/O threads, keep-alive
// and pipelining-safe (requests on a connection are answered in order),
// header/idle timeouts, request bodies bounded by max_body_bytes (413 from
// Content-Length before the body is read; chunked bodies counted as they
// arrive) or, for requests the body policy picks, streamed to a temporary
// file with their own limit, graceful shutdown on SIGINT/SIGTERM or stop().
// With ServerOptions::tls the same server speaks HTTPS (HTTP/1.1 over TLS).
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "core/error.h"
#include "http/client_address.h"
#include "http/context.h"
#include "observe/log.h"

namespace llmd::http {

class TlsCertificates;  // http/tls.h

// What the HTTPS listener answers a client that speaks plain HTTP to it.
enum class PlainHttpOnTls {
  kRefuse,    // 400 with the JSON error code "https_required"
  kRedirect,  // GET/HEAD: 308 to https://<Host><target>; other methods refused as above
};

// Where one request's body goes: streamed into a temporary file in `dir`
// (created if missing), at most `max_bytes`; see ServerOptions::body_policy.
struct SpoolPlan {
  std::filesystem::path dir;
  std::uint64_t max_bytes = 0;
};

// Decides from a request's head (method, target, path, headers; body not yet
// read) how its body is received: nullopt = in memory up to max_body_bytes;
// a SpoolPlan = into a temporary file (Request::body_file, removed when the
// request ends unless released; 413 from Content-Length before reading,
// chunked bodies counted; a client that disconnects leaves no file); an
// error = answered at once without reading the body, then the connection is
// closed (e.g. 401 for an upload whose credentials do not check out). A
// coroutine on the connection's I/O thread: blocking work (a database
// lookup) goes to a worker pool. The policy object outlives every call.
using BodyPolicy = std::function<boost::asio::awaitable<Result<std::optional<SpoolPlan>>>(const Request& head)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0 = any free port (see Server::port())
  int io_threads = 1;
  std::uint64_t max_body_bytes = 10 * 1024 * 1024;
  std::chrono::seconds header_timeout{10};
  std::chrono::seconds idle_timeout{60};
  std::chrono::seconds shutdown_grace{10};
  bool handle_signals = true;  // SIGINT/SIGTERM start a graceful shutdown
  BodyPolicy body_policy;      // empty = every body in memory

  // Peers whose X-Forwarded-For is believed (see client_address()); the
  // result is Request::remote_ip. Empty = the TCP peer is always the client.
  NetworkList trusted_proxies;
  // Clients (by Request::remote_ip) allowed to use the server; others get a
  // 403 right after their request head, before the body is read or anything
  // runs. Empty = everyone.
  NetworkList allowed_networks;

  // Open connections at most, all clients together (0 = derived from the
  // process's file-descriptor limit, see default_max_connections()), and per
  // TCP peer address (0 = max_connections / 8, clamped to 4..64; trusted
  // proxies count only towards the global cap). A connection over either cap
  // is answered 503 / 429 at once and closed, without reading from it.
  std::size_t max_connections = 0;
  std::size_t max_connections_per_ip = 0;
  // A request body must arrive at min_body_rate bytes/s on average, counted
  // after body_grace (so received >= rate x (elapsed - grace)); a slower one
  // is cut (the connection is closed). 0 = only idle_timeout applies.
  std::uint64_t min_body_rate = 1024;
  std::chrono::seconds body_grace{10};

  // HTTPS: when set, every connection is TLS (the certificate new
  // connections get comes from tls->current()). The first bytes and the
  // handshake must arrive within header_timeout; a connection counts towards
  // the connection caps from accept, handshake included (one over a cap is
  // closed without an answer: a TLS client cannot read plain HTTP). A client whose first
  // byte is not a TLS handshake record is answered per plain_http, in plain
  // HTTP, and closed. Every response over TLS carries
  // Strict-Transport-Security: max-age=<hsts_max_age> (0 = none).
  std::shared_ptr<TlsCertificates> tls;
  PlainHttpOnTls plain_http = PlainHttpOnTls::kRefuse;
  std::chrono::seconds hsts_max_age{31536000};
};

// A global connection cap that leaves room for the descriptors each request
// may need besides its socket (an upstream socket, a spooled file) and for
// the database and runners: (RLIMIT_NOFILE soft limit - 64) / 3, clamped to
// 16..10000.
std::size_t default_max_connections();

class Server {
 public:
  // `handler` answers every request that reached the application (routing
  // and middleware live inside it); protocol-level errors (malformed HTTP,
  // 413, timeouts) are answered by the server itself.
  Server(ServerOptions options, Handler handler, observe::Logger log);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens. Errors: kUnavailable when the address is in use.
  Result<void> listen();
  // The bound port (after listen()).
  int port() const;

  // Runs the I/O threads until shutdown completes. Blocks.
  void run();
  // Starts a graceful shutdown: stop accepting, close idle connections, let
  // requests in flight finish up to shutdown_grace, then make run() return.
  // Thread-safe; may be called from any thread, more than once.
  void stop();

  // Called once when a shutdown begins (before connections drain), e.g. to
  // stop background tasks. Set before run().
  void on_shutdown(std::function<void()> f);

  // The executor of the I/O context, for clients and background coroutines.
  boost::asio::any_io_executor executor();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmd::http
