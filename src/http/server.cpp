#include "http/server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/http/file_body.hpp>

#include <array>
#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/errors.h"

namespace llmd::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr auto kNoThrow = net::as_tuple(net::use_awaitable);

std::string random_request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(16, '0');
  auto v = rng();
  for (auto& c : id) {
    c = kHex[v & 0xf];
    v >>= 4;
  }
  return id;
}

// State of one connection shared with the server for shutdown: the server
// may ask an idle connection to close (always on the connection's strand).
struct Connection {
  explicit Connection(tcp::socket socket) : stream(std::move(socket)) {}
  beast::tcp_stream stream;
  bool idle = true;  // waiting for the next request; only touched on the strand
};

// Streams a chunked response directly onto the connection.
class ChunkedStream final : public ResponseStream {
 public:
  ChunkedStream(beast::tcp_stream& stream, std::chrono::seconds write_timeout, bool keep_alive,
                const Headers& extra_headers)
      : stream_(stream), write_timeout_(write_timeout), keep_alive_(keep_alive), extra_headers_(extra_headers) {}

  net::awaitable<bool> begin(int status, const Headers& headers) override {
    if (started_) co_return !failed_;
    started_ = true;
    bhttp::response<bhttp::empty_body> res{static_cast<bhttp::status>(status), 11};
    for (const auto& [k, v] : extra_headers_.fields()) res.set(k, v);
    for (const auto& [k, v] : headers.fields()) res.set(k, v);
    res.set(bhttp::field::server, "llmd");
    res.keep_alive(keep_alive_);
    res.chunked(true);
    bhttp::response_serializer<bhttp::empty_body> sr{res};
    stream_.expires_after(write_timeout_);
    auto [ec, n] = co_await bhttp::async_write_header(stream_, sr, kNoThrow);
    (void)n;
    failed_ = static_cast<bool>(ec);
    co_return !failed_;
  }

  net::awaitable<bool> write(std::string_view data) override {
    if (!started_ || failed_) co_return false;
    if (data.empty()) co_return true;
    stream_.expires_after(write_timeout_);
    auto [ec, n] = co_await net::async_write(stream_, bhttp::make_chunk(net::buffer(data)), kNoThrow);
    (void)n;
    failed_ = static_cast<bool>(ec);
    co_return !failed_;
  }

  net::awaitable<void> end() override {
    if (!started_ || failed_ || ended_) co_return;
    ended_ = true;
    stream_.expires_after(write_timeout_);
    auto [ec, n] = co_await net::async_write(stream_, bhttp::make_chunk_last(), kNoThrow);
    (void)n;
    failed_ = static_cast<bool>(ec);
  }

  bool started() const { return started_; }
  bool usable_after() const { return started_ && ended_ && !failed_; }

 private:
  beast::tcp_stream& stream_;
  std::chrono::seconds write_timeout_;
  bool keep_alive_;
  const Headers& extra_headers_;  // added by middleware (request id, CORS)
  bool started_ = false;
  bool ended_ = false;
  bool failed_ = false;
};

// The request without its body (read later, into memory or a file).
Request request_head(const bhttp::request_header<>& msg, bool keep_alive, const std::string& remote_ip) {
  Request req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  const auto q = req.target.find('?');
  const std::string raw_path = req.target.substr(0, q);
  req.path = percent_decode(raw_path).value_or(raw_path);
  if (q != std::string::npos) req.query = req.target.substr(q + 1);
  for (const auto& f : msg) req.headers.add(std::string(f.name_string()), std::string(f.value()));
  req.remote_ip = remote_ip;
  req.keep_alive = keep_alive;
  return req;
}

bool is_disconnect(const beast::error_code& ec) {
  return ec == beast::error::timeout || ec == net::error::eof || ec == bhttp::error::end_of_stream ||
         ec == net::error::connection_reset || ec == bhttp::error::partial_message ||
         ec == net::error::operation_aborted;
}

}  // namespace

struct Server::Impl {
  Impl(ServerOptions o, Handler h, observe::Logger l)
      : options(std::move(o)), io(options.io_threads > 0 ? options.io_threads : 1), handler(std::move(h)),
        log(std::move(l)), acceptor(io), signals(io), drain_timer(io) {}

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
  std::map<std::uint64_t, std::pair<net::strand<net::io_context::executor_type>, std::weak_ptr<Connection>>> connections;
  std::uint64_t next_connection_id = 0;  // guarded by connections_mutex

  net::awaitable<void> accept_loop();
  net::awaitable<void> session(std::shared_ptr<Connection> conn, std::uint64_t id);
  net::awaitable<bool> serve_one(Connection& conn, beast::flat_buffer& buffer, const std::string& remote_ip);
  net::awaitable<bool> write_error(Connection& conn, const Error& error, bool keep_alive);
  net::awaitable<void> drain_before_close(Connection& conn);
  net::awaitable<Response> call_handler(RequestContext& ctx);
  // Reads the body into a temporary file per `plan`. nullptr when the
  // connection cannot continue (an error answer was already written).
  net::awaitable<std::shared_ptr<SpooledBody>> spool_body(Connection& conn, beast::flat_buffer& buffer,
                                                          bhttp::request_parser<bhttp::string_body>& parser,
                                                          const SpoolPlan& plan);
  Error too_large(boost::optional<std::uint64_t> declared, std::uint64_t limit) const {
    return Error(ErrorCode::kTooLarge, (declared ? "request body of " + std::to_string(*declared) + " bytes"
                                                 : std::string("request body")) +
                                           " exceeds the limit of " + std::to_string(limit) + " bytes");
  }
  void begin_shutdown();
  void drain_check(std::chrono::steady_clock::time_point deadline);
};

net::awaitable<void> Server::Impl::accept_loop() {
  while (!stopping) {
    auto strand = net::make_strand(io);
    auto [ec, socket] = co_await acceptor.async_accept(strand, kNoThrow);
    if (ec) {
      if (stopping || ec == net::error::operation_aborted) co_return;
      // Out of fds or similar: back off briefly instead of spinning.
      log.warn("accept failed", {{"error", ec.message()}});
      net::steady_timer t(io, std::chrono::milliseconds(50));
      co_await t.async_wait(kNoThrow);
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto conn = std::make_shared<Connection>(std::move(socket));
    std::uint64_t id;
    {
      std::lock_guard lock(connections_mutex);
      id = next_connection_id++;
      connections.emplace(id, std::make_pair(strand, std::weak_ptr<Connection>(conn)));
    }
    ++open_connections;
    net::co_spawn(strand, session(std::move(conn), id), net::detached);
  }
}

net::awaitable<bool> Server::Impl::write_error(Connection& conn, const Error& error, bool keep_alive) {
  const std::string request_id = random_request_id();
  Response r = error_response(error, request_id);
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), 11};
  for (const auto& [k, v] : r.headers.fields()) res.insert(k, v);
  res.set("X-Request-ID", request_id);
  res.set(bhttp::field::server, "llmd");
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
net::awaitable<void> Server::Impl::drain_before_close(Connection& conn) {
  beast::error_code ec;
  conn.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  static constexpr std::size_t kMaxDrain = 64 * 1024 * 1024;
  std::array<char, 16 * 1024> scratch;
  std::size_t drained = 0;
  conn.stream.expires_after(std::chrono::seconds(2));
  while (drained < kMaxDrain) {
    auto [rec, n] = co_await conn.stream.async_read_some(net::buffer(scratch), kNoThrow);
    if (rec || n == 0) break;
    drained += n;
  }
}

net::awaitable<std::shared_ptr<SpooledBody>> Server::Impl::spool_body(
    Connection& conn, beast::flat_buffer& buffer, bhttp::request_parser<bhttp::string_body>& parser,
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
  const auto path = plan.dir / (".incoming-" + random_request_id() + random_request_id() + ".part");
  beast::error_code ec;
  file_parser.get().body().open(path.c_str(), beast::file_mode::write_new, ec);
  if (ec) {
    log.error("cannot create a temporary file for a request body", {{"error", ec.message()}});
    co_await write_error(conn, Error(ErrorCode::kUnavailable, "cannot store the request body now", "storage_unavailable"),
                         false);
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
  // Read piece by piece so the timeout limits silence, not the whole upload.
  while (!file_parser.is_done()) {
    conn.stream.expires_after(options.idle_timeout);
    auto [rec, n] = co_await bhttp::async_read_some(conn.stream, buffer, file_parser, kNoThrow);
    (void)n;
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
    co_await write_error(conn, Error(ErrorCode::kUnavailable, "cannot store the request body now", "storage_unavailable"),
                         false);
    co_return nullptr;
  }
  const auto received = std::filesystem::file_size(path, fs_ec);
  spooled->set_size(fs_ec ? 0 : received);
  co_return spooled;
}

// Reads and answers one request. Returns true when the connection may be
// reused for another.
net::awaitable<bool> Server::Impl::serve_one(Connection& conn, beast::flat_buffer& buffer,
                                             const std::string& remote_ip) {
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
        ec == net::error::eof || ec == net::error::connection_reset) {
      co_return false;
    }
    if (ec) {
      co_await write_error(conn, Error(ErrorCode::kInvalidArgument, "malformed HTTP request", "bad_request"), false);
      co_return false;
    }
  }
  conn.idle = false;

  // Taken from the head now: a spooled body moves the parser away.
  const unsigned version = parser.get().version();
  const bool is_head = parser.get().method() == bhttp::verb::head;
  Request request = request_head(parser.get(), parser.get().keep_alive(), remote_ip);
  std::optional<SpoolPlan> spool;
  if (options.body_policy) {
    auto decided = options.body_policy(request);
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
    conn.stream.expires_after(options.idle_timeout);
    {
      auto [ec, n] = co_await bhttp::async_read(conn.stream, buffer, parser, kNoThrow);
      (void)n;
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
  ChunkedStream chunked(conn.stream, options.idle_timeout, keep_alive, extra_headers);
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

net::awaitable<void> Server::Impl::session(std::shared_ptr<Connection> conn, std::uint64_t id) {
  beast::flat_buffer buffer;
  std::string remote_ip;
  {
    beast::error_code ec;
    auto ep = conn->stream.socket().remote_endpoint(ec);
    if (!ec) remote_ip = ep.address().to_string();
  }
  bool first = true;
  while (!stopping) {
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
    if (!co_await serve_one(*conn, buffer, remote_ip)) break;
  }
  beast::error_code ec;
  conn->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  conn->stream.close();
  {
    std::lock_guard lock(connections_mutex);
    connections.erase(id);
  }
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

Server::Server(ServerOptions options, Handler handler, observe::Logger log)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler), std::move(log))) {}

Server::~Server() = default;

Result<void> Server::listen() {
  auto& a = impl_->acceptor;
  beast::error_code ec;
  const auto address = net::ip::make_address(impl_->options.host, ec);
  if (ec) return fail(ErrorCode::kInvalidArgument, "server.host: not an IP address: " + impl_->options.host, "bad_config");
  const tcp::endpoint ep(address, static_cast<unsigned short>(impl_->options.port));
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return fail(ErrorCode::kUnavailable,
                "cannot listen on " + impl_->options.host + ":" + std::to_string(impl_->options.port) + ": " +
                    ec.message(),
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
