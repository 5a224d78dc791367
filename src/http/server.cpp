#include "http/server.h"

#include <sys/resource.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/http/file_body.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/conn_stream.h"
#include "http/errors.h"
#include "http/request_head.h"
#include "http/tls.h"

namespace llmd::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr auto kNoThrow = net::as_tuple(net::use_awaitable);

// State of one connection shared with the server for shutdown: the server
// may ask an idle connection to close (always on the connection's strand).
struct Connection {
  Connection(tcp::socket socket, IpAddress peer_address) : stream(std::move(socket)), peer(peer_address) {}
  ConnStream stream;     // TCP, or TLS over it on an HTTPS listener
  const IpAddress peer;  // the TCP peer, canonical (IPv4-mapped shown as IPv4)
  bool idle = true;      // waiting for the next request; only touched on the strand
  // On an HTTPS listener, a client that spoke plain HTTP: its one request is
  // answered per ServerOptions::plain_http, then the connection closes.
  bool plain_on_tls_port = false;
};

// Streams a response of unknown length directly onto the connection:
// chunked to HTTP/1.1 clients; to HTTP/1.0 clients (which know no chunked
// encoding) raw, ended by closing the connection; to a HEAD request only the
// head (write() then answers false so the producer stops at once).
class ChunkedStream final : public ResponseStream {
 public:
  ChunkedStream(ConnStream& stream, std::chrono::seconds write_timeout, bool keep_alive, const Headers& extra_headers,
                unsigned version, bool head_only)
      : stream_(stream),
        write_timeout_(write_timeout),
        keep_alive_(keep_alive && version >= 11),
        extra_headers_(extra_headers),
        chunked_(version >= 11),
        close_delimited_(version < 11 && !head_only),
        head_only_(head_only) {}

  net::awaitable<bool> begin(int status, const Headers& headers) override {
    if (started_) co_return !failed_;
    started_ = true;
    bhttp::response<bhttp::empty_body> res{static_cast<bhttp::status>(status), 11};
    for (const auto& [k, v] : extra_headers_.fields()) res.set(k, v);
    for (const auto& [k, v] : headers.fields()) res.set(k, v);
    res.set(bhttp::field::server, "llmd");
    res.keep_alive(keep_alive_);
    if (chunked_) res.chunked(true);
    bhttp::response_serializer<bhttp::empty_body> sr{res};
    stream_.expires_after(write_timeout_);
    auto [ec, n] = co_await bhttp::async_write_header(stream_, sr, kNoThrow);
    (void)n;
    failed_ = static_cast<bool>(ec);
    if (head_only_) ended_ = true;  // a HEAD response ends with its head
    co_return !failed_;
  }

  net::awaitable<bool> write(std::string_view data) override {
    if (!started_ || failed_ || head_only_) co_return false;
    if (data.empty()) co_return true;
    stream_.expires_after(write_timeout_);
    if (close_delimited_) {
      auto [ec, n] = co_await net::async_write(stream_, net::buffer(data), kNoThrow);
      (void)n;
      failed_ = static_cast<bool>(ec);
    } else {
      auto [ec, n] = co_await net::async_write(stream_, bhttp::make_chunk(net::buffer(data)), kNoThrow);
      (void)n;
      failed_ = static_cast<bool>(ec);
    }
    co_return !failed_;
  }

  net::awaitable<void> end() override {
    if (!started_ || failed_ || ended_) co_return;
    ended_ = true;
    if (close_delimited_) co_return;  // the connection's close ends the body
    stream_.expires_after(write_timeout_);
    auto [ec, n] = co_await net::async_write(stream_, bhttp::make_chunk_last(), kNoThrow);
    (void)n;
    failed_ = static_cast<bool>(ec);
  }

  bool started() const { return started_; }
  // Whether the connection may carry another request after this response.
  bool usable_after() const { return started_ && ended_ && !failed_ && !close_delimited_ && keep_alive_; }

 private:
  ConnStream& stream_;
  std::chrono::seconds write_timeout_;
  bool keep_alive_;
  const Headers& extra_headers_;  // added by middleware (request id, CORS)
  bool chunked_;                  // HTTP/1.1 client: the body goes in chunks
  bool close_delimited_;          // HTTP/1.0 client: no chunks, close at the end
  bool head_only_;                // HEAD: the head and nothing else
  bool started_ = false;
  bool ended_ = false;
  bool failed_ = false;
};

// Refuses an accepted socket at once, without a coroutine or a read: what
// the client already sent is discarded, a short JSON error written if the
// socket takes it (not on an HTTPS listener: a TLS client could not read
// plain HTTP), and the socket closed. Never blocks.
void refuse_connection(tcp::socket& socket, const Error& error, bool answer) {
  beast::error_code ec;
  socket.non_blocking(true, ec);
  std::array<char, 4096> scratch;
  for (int i = 0; i < 16; ++i) {
    socket.read_some(net::buffer(scratch), ec);
    if (ec) break;
  }
  if (!answer) {
    socket.close(ec);
    return;
  }
  Response r = error_response(error, new_request_id());
  std::string bytes = "HTTP/1.1 " + std::to_string(r.status) +
                      (r.status == 429 ? " Too Many Requests" : " Service Unavailable") +
                      "\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nServer: llmd\r\n"
                      "Content-Length: " +
                      std::to_string(r.body.size()) + "\r\n\r\n" + r.body;
  socket.write_some(net::buffer(bytes), ec);
  socket.shutdown(tcp::socket::shutdown_send, ec);
  socket.close(ec);
}

bool is_disconnect(const beast::error_code& ec) {
  return ec == beast::error::timeout || ec == net::error::eof || ec == bhttp::error::end_of_stream ||
         ec == net::error::connection_reset || ec == bhttp::error::partial_message ||
         ec == net::error::operation_aborted || ec == net::ssl::error::stream_truncated;
}

}  // namespace

struct Server::Impl {
  Impl(ServerOptions o, Handler h, observe::Logger l)
      : options(std::move(o)),
        io(options.io_threads > 0 ? options.io_threads : 1),
        handler(std::move(h)),
        log(std::move(l)),
        acceptor(io),
        signals(io),
        drain_timer(io) {
    max_connections = options.max_connections > 0 ? options.max_connections : default_max_connections();
    max_connections_per_ip = options.max_connections_per_ip > 0 ? options.max_connections_per_ip
                                                                : std::clamp<std::size_t>(max_connections / 8, 4, 64);
  }

  ServerOptions options;
  // Declared before the handler: the handler may own sockets on this context
  // (pooled upstream connections), which must close before it goes away.
  net::io_context io;
  Handler handler;
  observe::Logger log;
  tcp::acceptor acceptor;
  net::signal_set signals;
  net::steady_timer drain_timer;
  std::atomic<bool> stopping{false};
  std::atomic<int> open_connections{0};
  std::function<void()> shutdown_hook;

  std::mutex connections_mutex;
  // Live connections and the strand each runs on. Guarded by connections_mutex.
  std::map<std::uint64_t, std::pair<net::strand<net::io_context::executor_type>, std::weak_ptr<Connection>>>
      connections;
  std::uint64_t next_connection_id = 0;  // guarded by connections_mutex
  // Open connections per TCP peer address (entries at 0 are removed).
  // Guarded by connections_mutex.
  std::map<IpAddress, std::size_t> connections_per_ip;
  std::size_t max_connections = 0;  // resolved from options at construction
  std::size_t max_connections_per_ip = 0;

  // Registers a new connection, or says why it is refused (over a cap).
  std::optional<Error> admit(const std::shared_ptr<Connection>& conn,
                             const net::strand<net::io_context::executor_type>& strand, std::uint64_t& id);
  void forget(std::uint64_t id, const IpAddress& peer);
  // Sets the stream's expiry while reading a body: idle_timeout from now,
  // or sooner when the body falls behind min_body_rate (see ServerOptions).
  void expire_for_body(Connection& conn, std::chrono::steady_clock::time_point body_start,
                       std::uint64_t received) const;

  net::awaitable<void> accept_loop();
  net::awaitable<void> session(std::shared_ptr<Connection> conn, std::uint64_t id);
  net::awaitable<bool> serve_one(Connection& conn, beast::flat_buffer& buffer);
  net::awaitable<bool> write_error(Connection& conn, const Error& error, bool keep_alive);
  // Answers a ProtocolError and closes (after a lingering drain).
  net::awaitable<void> refuse(Connection& conn, const ProtocolError& error);
  net::awaitable<void> drain_before_close(Connection& conn);
  net::awaitable<Response> call_handler(RequestContext& ctx);
  // Reads the body into a temporary file per `plan`. nullptr when the
  // connection cannot continue (an error answer was already written).
  net::awaitable<std::shared_ptr<SpooledBody>> spool_body(Connection& conn, beast::flat_buffer& buffer,
                                                          bhttp::request_parser<bhttp::string_body>& parser,
                                                          const SpoolPlan& plan);
  Error too_large(boost::optional<std::uint64_t> declared, std::uint64_t limit) const {
    return Error(ErrorCode::kTooLarge,
                 (declared ? "request body of " + std::to_string(*declared) + " bytes" : std::string("request body")) +
                     " exceeds the limit of " + std::to_string(limit) + " bytes");
  }
  void begin_shutdown();
  void drain_check(std::chrono::steady_clock::time_point deadline);

  // HTTPS listener: reads the connection's first bytes and, when they start
  // a TLS handshake, completes it (all within header_timeout); otherwise
  // marks the connection plain_on_tls_port. False when the connection is
  // over (silence, disconnect, failed handshake).
  net::awaitable<bool> start_tls(Connection& conn, beast::flat_buffer& buffer);
  // Answers a plain HTTP request on the HTTPS listener (ServerOptions::plain_http).
  net::awaitable<void> answer_plain_http(Connection& conn, const bhttp::request_header<>& head);
  // The Strict-Transport-Security value for responses on `conn`; empty when none.
  std::string hsts(const Connection& conn) const {
    if (!conn.stream.is_tls() || options.hsts_max_age.count() <= 0) return {};
    return "max-age=" + std::to_string(options.hsts_max_age.count());
  }
};

std::optional<Error> Server::Impl::admit(const std::shared_ptr<Connection>& conn,
                                         const net::strand<net::io_context::executor_type>& strand, std::uint64_t& id) {
  std::lock_guard lock(connections_mutex);
  if (connections.size() >= max_connections) {
    return Error(ErrorCode::kUnavailable, "the server has too many open connections; retry shortly",
                 "too_many_connections");
  }
  auto& per_ip = connections_per_ip[conn->peer];  // max_connections_per_ip >= 1: never left at 0
  if (per_ip >= max_connections_per_ip && !options.trusted_proxies.contains(conn->peer)) {
    return Error(ErrorCode::kRateLimited, "too many open connections from your address", "too_many_connections");
  }
  ++per_ip;
  id = next_connection_id++;
  connections.emplace(id, std::make_pair(strand, std::weak_ptr<Connection>(conn)));
  return std::nullopt;
}

void Server::Impl::forget(std::uint64_t id, const IpAddress& peer) {
  std::lock_guard lock(connections_mutex);
  connections.erase(id);
  if (auto it = connections_per_ip.find(peer); it != connections_per_ip.end() && --it->second == 0) {
    connections_per_ip.erase(it);
  }
}

net::awaitable<void> Server::Impl::accept_loop() {
  // While accept fails (out of descriptors: EMFILE/ENFILE, or out of
  // memory) wait, doubling from 10 ms to 1 s, and log once per episode:
  // the pending connection stays in the backlog until descriptors free up.
  std::chrono::milliseconds backoff{0};
  std::uint64_t failures = 0;
  while (!stopping) {
    auto strand = net::make_strand(io);
    auto [ec, socket] = co_await acceptor.async_accept(strand, kNoThrow);
    if (ec) {
      if (stopping || ec == net::error::operation_aborted) co_return;
      if (failures++ == 0) log.warn("accept failed; backing off until it succeeds", {{"error", ec.message()}});
      backoff = std::clamp(backoff * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
      net::steady_timer t(io, backoff);
      co_await t.async_wait(kNoThrow);
      continue;
    }
    if (failures > 0) {
      log.info("accept works again", {{"failed_attempts", failures}});
      failures = 0;
      backoff = std::chrono::milliseconds(0);
    }
    beast::error_code pec;
    const auto endpoint = socket.remote_endpoint(pec);
    if (pec) continue;  // already gone; the socket closes here
    socket.set_option(tcp::no_delay(true), pec);
    auto conn = std::make_shared<Connection>(std::move(socket), canonical_address(endpoint.address()));
    std::uint64_t id = 0;
    if (auto refused = admit(conn, strand, id)) {
      refuse_connection(conn->stream.socket(), *refused, options.tls == nullptr);
      continue;
    }
    ++open_connections;
    net::co_spawn(strand, session(std::move(conn), id), net::detached);
  }
}

void Server::Impl::expire_for_body(Connection& conn, std::chrono::steady_clock::time_point body_start,
                                   std::uint64_t received) const {
  auto deadline = std::chrono::steady_clock::now() + options.idle_timeout;
  if (options.min_body_rate > 0) {
    const auto earned = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(static_cast<double>(received) / static_cast<double>(options.min_body_rate)));
    deadline = std::min(deadline, body_start + options.body_grace + earned);
  }
  conn.stream.expires_at(deadline);
}

net::awaitable<void> Server::Impl::refuse(Connection& conn, const ProtocolError& error) {
  const std::string request_id = new_request_id();
  Response r = error_response(Error(ErrorCode::kInvalidArgument, error.message, error.reason), request_id);
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(error.status), 11};
  for (const auto& [k, v] : r.headers.fields()) res.insert(k, v);
  res.set("X-Request-ID", request_id);
  res.set(bhttp::field::server, "llmd");
  if (const auto sts = hsts(conn); !sts.empty()) res.set(bhttp::field::strict_transport_security, sts);
  res.keep_alive(false);
  res.body() = std::move(r.body);
  res.prepare_payload();
  conn.stream.expires_after(options.idle_timeout);
  auto [ec, n] = co_await bhttp::async_write(conn.stream, res, kNoThrow);
  (void)n;
  if (!ec) co_await drain_before_close(conn);
}

net::awaitable<bool> Server::Impl::write_error(Connection& conn, const Error& error, bool keep_alive) {
  const std::string request_id = new_request_id();
  Response r = error_response(error, request_id);
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), 11};
  for (const auto& [k, v] : r.headers.fields()) res.insert(k, v);
  res.set("X-Request-ID", request_id);
  res.set(bhttp::field::server, "llmd");
  if (const auto sts = hsts(conn); !sts.empty()) res.set(bhttp::field::strict_transport_security, sts);
  res.keep_alive(keep_alive);
  res.body() = std::move(r.body);
  res.prepare_payload();
  conn.stream.expires_after(options.idle_timeout);
  auto [ec, n] = co_await bhttp::async_write(conn.stream, res, kNoThrow);
  (void)n;
  co_return !ec && keep_alive;
}

net::awaitable<Response> Server::Impl::call_handler(RequestContext& ctx) {
  try {
    co_return co_await handler(ctx);
  } catch (const std::exception& e) {
    log.error("unhandled exception in handler", {{"error", e.what()}, {"path", ctx.request.path}});
  }
  co_return error_response(Error(ErrorCode::kInternal, "internal error"), ctx.request_id);
}

// After refusing a body the client may still be sending: closing at once
// would reset the connection and could destroy our answer in flight. Half-
// close, then read and discard for a moment (a "lingering close", as nginx
// does) so the client gets to read the 413.
// Over TLS, close_notify goes first and what is drained is discarded
// undecrypted.
net::awaitable<void> Server::Impl::drain_before_close(Connection& conn) {
  conn.stream.expires_after(std::chrono::seconds(2));
  co_await conn.stream.end_tls();
  beast::error_code ec;
  conn.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  static constexpr std::size_t kMaxDrain = 64 * 1024 * 1024;
  std::array<char, 16 * 1024> scratch;
  std::size_t drained = 0;
  conn.stream.expires_after(std::chrono::seconds(2));
  while (drained < kMaxDrain) {
    auto [rec, n] = co_await conn.stream.tcp().async_read_some(net::buffer(scratch), kNoThrow);
    if (rec || n == 0) break;
    drained += n;
  }
}

net::awaitable<std::shared_ptr<SpooledBody>> Server::Impl::spool_body(Connection& conn, beast::flat_buffer& buffer,
                                                                      bhttp::request_parser<bhttp::string_body>& parser,
                                                                      const SpoolPlan& plan) {
  if (auto len = parser.content_length(); len && *len > plan.max_bytes) {
    co_await write_error(conn, too_large(len, plan.max_bytes), false);
    co_await drain_before_close(conn);
    co_return nullptr;
  }
  std::error_code fs_ec;
  std::filesystem::create_directories(plan.dir, fs_ec);
  bhttp::request_parser<bhttp::file_body> file_parser{std::move(parser)};
  file_parser.body_limit(plan.max_bytes);
  const auto path = plan.dir / (".incoming-" + new_request_id() + new_request_id() + ".part");
  beast::error_code ec;
  file_parser.get().body().open(path.c_str(), beast::file_mode::write_new, ec);
  if (ec) {
    log.error("cannot create a temporary file for a request body", {{"error", ec.message()}});
    co_await write_error(
        conn, Error(ErrorCode::kUnavailable, "cannot store the request body now", "storage_unavailable"), false);
    co_await drain_before_close(conn);
    co_return nullptr;
  }
  // Owns the file from here: every early return below removes it.
  auto spooled = std::make_shared<SpooledBody>(path, 0);
  if (auto expect = file_parser.get()[bhttp::field::expect]; beast::iequals(expect, "100-continue")) {
    bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, 11};
    conn.stream.expires_after(options.idle_timeout);
    auto [wec, n] = co_await bhttp::async_write(conn.stream, cont, kNoThrow);
    (void)n;
    if (wec) co_return nullptr;
  }
  // Read piece by piece: the timeout limits silence and a too-slow average
  // rate (expire_for_body), not the size of the upload.
  const auto body_start = std::chrono::steady_clock::now();
  std::uint64_t read_so_far = 0;
  while (!file_parser.is_done()) {
    expire_for_body(conn, body_start, read_so_far);
    auto [rec, n] = co_await bhttp::async_read_some(conn.stream, buffer, file_parser, kNoThrow);
    read_so_far += n;
    if (rec == bhttp::error::body_limit) {
      co_await write_error(conn, too_large(boost::none, plan.max_bytes), false);
      co_await drain_before_close(conn);
      co_return nullptr;
    }
    if (is_disconnect(rec)) co_return nullptr;
    if (rec) {
      co_await write_error(conn, Error(ErrorCode::kInvalidArgument, "malformed HTTP request body", "bad_request"),
                           false);
      co_return nullptr;
    }
  }
  file_parser.get().body().file().close(ec);
  if (ec) {
    co_await write_error(
        conn, Error(ErrorCode::kUnavailable, "cannot store the request body now", "storage_unavailable"), false);
    co_return nullptr;
  }
  const auto received = std::filesystem::file_size(path, fs_ec);
  spooled->set_size(fs_ec ? 0 : received);
  co_return spooled;
}

// Reads and answers one request. Returns true when the connection may be
// reused for another.
net::awaitable<bool> Server::Impl::serve_one(Connection& conn, beast::flat_buffer& buffer) {
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(64 * 1024);
  // No limit while reading the head (Beast would fail the head itself);
  // Content-Length is checked below, then the limit applies to the body.
  parser.body_limit(boost::none);

  conn.stream.expires_after(options.header_timeout);
  {
    auto [ec, n] = co_await bhttp::async_read_header(conn.stream, buffer, parser, kNoThrow);
    (void)n;
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout || ec == net::error::operation_aborted ||
        ec == net::error::eof || ec == net::error::connection_reset || ec == net::ssl::error::stream_truncated) {
      co_return false;
    }
    if (ec == bhttp::error::header_limit) {
      // Named, not a temporary in the co_await: g++ 12 destroys those twice.
      const ProtocolError too_large_head{431, "header_too_large", "request header fields too large"};
      co_await refuse(conn, too_large_head);
      co_return false;
    }
    if (ec) {
      co_await write_error(conn, Error(ErrorCode::kInvalidArgument, "malformed HTTP request", "bad_request"), false);
      co_return false;
    }
  }
  conn.idle = false;

  if (conn.plain_on_tls_port) {
    co_await answer_plain_http(conn, parser.get());
    co_return false;
  }

  // Who is asking, before anything else happens for them.
  const std::vector<std::string_view> forwarded = forwarded_for(parser.get());
  const IpAddress client = client_address(conn.peer, forwarded, options.trusted_proxies);
  if (!options.allowed_networks.empty() && !options.allowed_networks.contains(client)) {
    const ProtocolError not_allowed{403, "client_not_allowed",
                                    "this server does not accept requests from your address"};
    co_await refuse(conn, not_allowed);
    co_return false;
  }

  if (auto bad = framing_error(parser.get())) {
    co_await refuse(conn, *bad);
    co_return false;
  }
  const auto target = parse_target(parser.get().target());
  if (!target) {
    const ProtocolError bad_target{400, "bad_request", "the request target must be an absolute path or an http(s) URL"};
    co_await refuse(conn, bad_target);
    co_return false;
  }

  // Taken from the head now: a spooled body moves the parser away.
  const unsigned version = parser.get().version();
  const bool is_head = parser.get().method() == bhttp::verb::head;
  Request request = request_head(parser.get(), *target, parser.get().keep_alive(), client, conn.peer);
  std::optional<SpoolPlan> spool;
  if (options.body_policy) {
    auto decided = co_await options.body_policy(request);
    if (!decided) {
      // Refused from the head alone: the body is never read.
      co_await write_error(conn, decided.error(), false);
      co_await drain_before_close(conn);
      co_return false;
    }
    spool = std::move(*decided);
  }

  if (spool) {
    auto file = co_await spool_body(conn, buffer, parser, *spool);
    if (!file) co_return false;
    request.body_file = std::move(file);
  } else {
    // Refuse an oversized body before reading it.
    if (auto len = parser.content_length(); len && *len > options.max_body_bytes) {
      co_await write_error(conn, too_large(len, options.max_body_bytes), false);
      co_await drain_before_close(conn);
      co_return false;
    }
    parser.body_limit(options.max_body_bytes);
    if (auto expect = parser.get()[bhttp::field::expect]; beast::iequals(expect, "100-continue")) {
      bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, 11};
      conn.stream.expires_after(options.idle_timeout);
      auto [ec, n] = co_await bhttp::async_write(conn.stream, cont, kNoThrow);
      (void)n;
      if (ec) co_return false;
    }
    const auto body_start = std::chrono::steady_clock::now();
    std::uint64_t received = 0;
    while (!parser.is_done()) {
      expire_for_body(conn, body_start, received);
      auto [ec, n] = co_await bhttp::async_read_some(conn.stream, buffer, parser, kNoThrow);
      received += n;
      if (ec == bhttp::error::body_limit) {
        co_await write_error(conn, too_large(boost::none, options.max_body_bytes), false);
        co_await drain_before_close(conn);
        co_return false;
      }
      if (is_disconnect(ec)) co_return false;
      if (ec) {
        co_await write_error(conn, Error(ErrorCode::kInvalidArgument, "malformed HTTP request body", "bad_request"),
                             false);
        co_return false;
      }
    }
    request.body = std::move(parser.get().body());
  }

  const bool keep_alive = request.keep_alive && !stopping;
  Headers extra_headers;
  if (auto sts = hsts(conn); !sts.empty()) extra_headers.set("Strict-Transport-Security", std::move(sts));
  ChunkedStream chunked(conn.stream, options.idle_timeout, keep_alive, extra_headers, version, is_head);
  RequestContext ctx{request, chunked, extra_headers};

  // Initialised from the co_await, never assigned from one: g++ 12 has been
  // seen to lose members of a class object assigned from a co_await.
  Response response = co_await call_handler(ctx);
  if (response.streamed || chunked.started()) {
    if (!chunked.usable_after()) co_await chunked.end();
    co_return chunked.usable_after() && keep_alive;
  }

  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(response.status), version};
  for (const auto& [k, v] : extra_headers.fields()) res.set(k, v);
  for (const auto& [k, v] : response.headers.fields()) res.insert(k, v);
  res.set(bhttp::field::server, "llmd");
  res.keep_alive(keep_alive);
  if (is_head) {
    res.content_length(response.body.size());
  } else {
    res.body() = std::move(response.body);
    res.prepare_payload();
  }
  conn.stream.expires_after(options.idle_timeout);
  auto [ec, n] = co_await bhttp::async_write(conn.stream, res, kNoThrow);
  (void)n;
  co_return !ec && keep_alive;
}

net::awaitable<bool> Server::Impl::start_tls(Connection& conn, beast::flat_buffer& buffer) {
  conn.stream.expires_after(options.header_timeout);
  auto [ec, n] = co_await conn.stream.tcp().async_read_some(buffer.prepare(8192), kNoThrow);
  if (ec || n == 0) co_return false;
  buffer.commit(n);
  // A TLS connection opens with a handshake record (content type 22); an
  // HTTP request with a method name.
  constexpr unsigned char kTlsHandshakeRecord = 0x16;
  if (static_cast<const unsigned char*>(buffer.data().data())[0] != kTlsHandshakeRecord) {
    conn.plain_on_tls_port = true;
    co_return true;
  }
  auto& tls = conn.stream.start_tls(options.tls->current());
  // Still under the deadline set above: the first bytes and the whole
  // handshake share header_timeout.
  auto [hec, used] = co_await tls.async_handshake(net::ssl::stream_base::server, buffer.data(), kNoThrow);
  if (hec) {
    log.debug("TLS handshake failed", {{"client", conn.peer.to_string()}, {"error", hec.message()}});
    co_return false;
  }
  buffer.consume(used);
  co_return true;
}

namespace {

// A Host value safe to put into a Location header: a name, IPv4 or
// bracketed IPv6 address with an optional port, nothing else.
bool plausible_authority(std::string_view a) {
  if (a.empty() || a.size() > 255) return false;
  return std::all_of(a.begin(), a.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
  });
}

}  // namespace

net::awaitable<void> Server::Impl::answer_plain_http(Connection& conn, const bhttp::request_header<>& head) {
  const auto target = parse_target(head.target());
  const std::string authority =
      target && !target->authority.empty() ? target->authority : std::string(head[bhttp::field::host]);
  const bool known_host = head.count(bhttp::field::host) <= 1 && plausible_authority(authority);
  const bool safe_method = head.method() == bhttp::verb::get || head.method() == bhttp::verb::head;
  log.debug("plain HTTP request on the HTTPS listener", {{"client", conn.peer.to_string()}});
  if (options.plain_http == PlainHttpOnTls::kRedirect && known_host && target && safe_method) {
    // 308 keeps the method; the same host and port, which speak HTTPS.
    bhttp::response<bhttp::empty_body> res{bhttp::status::permanent_redirect, 11};
    res.set(bhttp::field::location, "https://" + authority + target->origin);
    res.set(bhttp::field::server, "llmd");
    res.content_length(0);
    res.keep_alive(false);
    conn.stream.expires_after(options.idle_timeout);
    auto [ec, n] = co_await bhttp::async_write(conn.stream, res, kNoThrow);
    (void)n;
    if (!ec) co_await drain_before_close(conn);
    co_return;
  }
  const ProtocolError https_required{400, "https_required",
                                     known_host ? "this port speaks HTTPS: use https://" + authority + "/"
                                                : "this port speaks HTTPS: use an https:// URL"};
  co_await refuse(conn, https_required);
}

net::awaitable<void> Server::Impl::session(std::shared_ptr<Connection> conn, std::uint64_t id) {
  beast::flat_buffer buffer;
  bool first = true;
  bool open = true;
  if (options.tls) open = co_await start_tls(*conn, buffer);
  while (open && !stopping) {
    conn->idle = true;
    if (buffer.size() == 0) {
      // Wait for the first byte of the next request; an idle keep-alive
      // connection may wait idle_timeout, a new one only header_timeout.
      conn->stream.expires_after(first ? options.header_timeout : options.idle_timeout);
      auto [ec, n] = co_await conn->stream.async_read_some(buffer.prepare(8192), kNoThrow);
      if (ec || n == 0) break;
      buffer.commit(n);
    }
    first = false;
    if (!co_await serve_one(*conn, buffer)) break;
  }
  conn->stream.expires_after(std::chrono::seconds(2));
  co_await conn->stream.end_tls();
  beast::error_code ec;
  conn->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  conn->stream.close();
  forget(id, conn->peer);
  --open_connections;
}

void Server::Impl::begin_shutdown() {
  if (stopping.exchange(true)) return;
  log.info("shutting down", {{"open_connections", open_connections.load()}});
  if (shutdown_hook) shutdown_hook();
  beast::error_code ec;
  acceptor.close(ec);
  {
    std::lock_guard lock(connections_mutex);
    for (auto& [id, entry] : connections) {
      net::post(entry.first, [weak = entry.second] {
        if (auto c = weak.lock(); c && c->idle) c->stream.cancel();
      });
    }
  }
  drain_check(std::chrono::steady_clock::now() + options.shutdown_grace);
}

void Server::Impl::drain_check(std::chrono::steady_clock::time_point deadline) {
  if (open_connections == 0 || std::chrono::steady_clock::now() >= deadline) {
    if (open_connections > 0) {
      log.warn("shutdown grace period over; dropping connections", {{"open_connections", open_connections.load()}});
    }
    io.stop();
    return;
  }
  drain_timer.expires_after(std::chrono::milliseconds(20));
  drain_timer.async_wait([this, deadline](const boost::system::error_code&) { drain_check(deadline); });
}

std::size_t default_max_connections() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return 10000;
  const auto soft = static_cast<std::size_t>(lim.rlim_cur);
  return std::clamp<std::size_t>(soft > 64 ? (soft - 64) / 3 : 0, 16, 10000);
}

Server::Server(ServerOptions options, Handler handler, observe::Logger log)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler), std::move(log))) {}

Server::~Server() = default;

Result<void> Server::listen() {
  auto& a = impl_->acceptor;
  beast::error_code ec;
  const auto address = net::ip::make_address(impl_->options.host, ec);
  if (ec)
    return fail(ErrorCode::kInvalidArgument, "server.host: not an IP address: " + impl_->options.host, "bad_config");
  const tcp::endpoint ep(address, static_cast<unsigned short>(impl_->options.port));
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return fail(
        ErrorCode::kUnavailable,
        "cannot listen on " + impl_->options.host + ":" + std::to_string(impl_->options.port) + ": " + ec.message(),
        "listen_failed");
  }
  return {};
}

int Server::port() const {
  beast::error_code ec;
  auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void Server::on_shutdown(std::function<void()> f) { impl_->shutdown_hook = std::move(f); }

boost::asio::any_io_executor Server::executor() { return impl_->io.get_executor(); }

void Server::run() {
  auto& impl = *impl_;
  if (impl.options.handle_signals) {
    impl.signals.add(SIGINT);
    impl.signals.add(SIGTERM);
    impl.signals.async_wait([&impl](const boost::system::error_code& ec, int) {
      if (!ec) impl.begin_shutdown();
    });
  }
  net::co_spawn(impl.io, impl.accept_loop(), net::detached);
  const int n = impl.options.io_threads > 0 ? impl.options.io_threads : 1;
  std::vector<std::thread> threads;
  for (int i = 1; i < n; ++i) threads.emplace_back([&impl] { impl.io.run(); });
  impl.io.run();
  for (auto& t : threads) t.join();
}

void Server::stop() {
  net::post(impl_->io, [impl = impl_.get()] { impl->begin_shutdown(); });
}

}  // namespace llmd::http
