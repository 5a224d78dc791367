#include "http/client.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <map>
#include <mutex>
#include <vector>

namespace llmd::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr auto kNoThrow = net::as_tuple(net::use_awaitable);

Error unreachable(const std::string& what) {
  return Error(ErrorCode::kUnavailable, "upstream unreachable: " + what, "upstream_unreachable");
}
Error broken(const std::string& what) {
  return Error(ErrorCode::kUnavailable, "upstream failed: " + what, "upstream_error");
}
Error timed_out() { return Error(ErrorCode::kDeadlineExceeded, "upstream timed out", "upstream_timeout"); }

}  // namespace

Result<ParsedUrl> parse_http_url(std::string_view url) {
  if (url.starts_with("https://")) {
    return fail(ErrorCode::kInvalidArgument, "https upstreams are not supported yet", "bad_url");
  }
  if (!url.starts_with("http://")) return fail(ErrorCode::kInvalidArgument, "URL must start with http://", "bad_url");
  url.remove_prefix(7);
  const auto slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  ParsedUrl out;
  out.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  if (authority.find('@') != std::string_view::npos) {
    return fail(ErrorCode::kInvalidArgument, "credentials in URLs are not supported", "bad_url");
  }
  if (authority.starts_with('[')) {
    const auto end = authority.find(']');
    if (end == std::string_view::npos) return fail(ErrorCode::kInvalidArgument, "bad IPv6 host in URL", "bad_url");
    out.host = std::string(authority.substr(1, end - 1));
    authority.remove_prefix(end + 1);
    if (authority.starts_with(':')) out.port = std::string(authority.substr(1));
  } else {
    const auto colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) out.port = std::string(authority.substr(colon + 1));
  }
  if (out.port.empty()) out.port = "80";
  if (out.host.empty()) return fail(ErrorCode::kInvalidArgument, "URL has no host", "bad_url");
  for (char c : out.port) {
    if (c < '0' || c > '9') return fail(ErrorCode::kInvalidArgument, "bad port in URL", "bad_url");
  }
  return out;
}

struct HttpClient::Impl {
  Impl(net::any_io_executor ex, ClientOptions o) : executor(std::move(ex)), options(o) {}

  net::any_io_executor executor;
  ClientOptions options;
  mutable std::mutex mutex;
  std::map<std::string, std::vector<std::unique_ptr<beast::tcp_stream>>> idle;  // guarded by mutex

  std::unique_ptr<beast::tcp_stream> take_idle(const std::string& key) {
    std::lock_guard lock(mutex);
    auto it = idle.find(key);
    if (it == idle.end() || it->second.empty()) return nullptr;
    auto s = std::move(it->second.back());
    it->second.pop_back();
    return s;
  }

  void give_back(const std::string& key, std::unique_ptr<beast::tcp_stream> s) {
    std::lock_guard lock(mutex);
    auto& v = idle[key];
    if (v.size() < options.max_idle_per_host) v.push_back(std::move(s));
  }

  net::awaitable<Result<std::unique_ptr<beast::tcp_stream>>> connect(const ParsedUrl& u,
                                                                     std::chrono::milliseconds timeout) {
    tcp::resolver resolver(executor);
    auto [rec, endpoints] = co_await resolver.async_resolve(u.host, u.port, kNoThrow);
    if (rec) co_return std::unexpected(unreachable("cannot resolve host"));
    auto stream = std::make_unique<beast::tcp_stream>(executor);
    stream->expires_after(timeout);
    auto [cec, ep] = co_await stream->async_connect(endpoints, kNoThrow);
    (void)ep;
    if (cec == beast::error::timeout) co_return std::unexpected(unreachable("connect timed out"));
    if (cec) co_return std::unexpected(unreachable(cec.message()));
    beast::error_code ignored;
    stream->socket().set_option(tcp::no_delay(true), ignored);
    co_return stream;
  }

  // Runs one exchange. `on_head`/`on_chunk` null means "collect the body".
  net::awaitable<Result<ClientResponse>> exchange(const ClientRequest& req, const OnHead* on_head,
                                                  const OnChunk* on_chunk) {
    auto url = parse_http_url(req.url);
    if (!url) co_return std::unexpected(url.error());
    const std::string key = url->host + ":" + url->port;

    bhttp::request<bhttp::string_body> msg{bhttp::string_to_verb(req.method), url->target, 11};
    if (msg.method() == bhttp::verb::unknown) {
      co_return std::unexpected(Error(ErrorCode::kInvalidArgument, "unknown HTTP method", "bad_request"));
    }
    msg.set(bhttp::field::host, url->host + ":" + url->port);
    msg.set(bhttp::field::user_agent, "llmd");
    for (const auto& [k, v] : req.headers.fields()) msg.set(k, v);
    msg.keep_alive(true);
    msg.body() = req.body;
    msg.prepare_payload();

    // A pooled connection may have been closed by the peer meanwhile; if it
    // fails before any response byte, retry once on a fresh connection.
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::unique_ptr<beast::tcp_stream> stream = attempt == 0 ? take_idle(key) : nullptr;
      const bool reused = stream != nullptr;
      if (!stream) {
        auto c = co_await connect(*url, req.connect_timeout);
        if (!c) co_return std::unexpected(c.error());
        stream = std::move(*c);
      }
      stream->expires_after(req.timeout);
      auto [wec, wn] = co_await bhttp::async_write(*stream, msg, kNoThrow);
      (void)wn;
      if (wec) {
        if (reused) continue;
        co_return std::unexpected(unreachable(wec.message()));
      }

      beast::flat_buffer buffer;
      bhttp::response_parser<bhttp::buffer_body> parser;
      parser.body_limit(boost::none);
      stream->expires_after(req.timeout);
      auto [hec, hn] = co_await bhttp::async_read_header(*stream, buffer, parser, kNoThrow);
      (void)hn;
      if (hec) {
        // Beast reports an expired deadline as timeout, or as operation_aborted
        // when it fires between the write and the read.
        if (hec == beast::error::timeout || hec == net::error::operation_aborted) {
          co_return std::unexpected(timed_out());
        }
        if (reused && buffer.size() == 0) continue;
        co_return std::unexpected(unreachable(hec.message()));
      }

      ClientResponse out;
      out.status = static_cast<int>(parser.get().result_int());
      for (const auto& f : parser.get()) out.headers.add(std::string(f.name_string()), std::string(f.value()));
      if (on_head && !co_await (*on_head)(out.status, out.headers)) co_return out;  // dropped

      char chunk[16 * 1024];
      while (!parser.is_done()) {
        parser.get().body().data = chunk;
        parser.get().body().size = sizeof chunk;
        stream->expires_after(req.timeout);
        auto [bec, bn] = co_await bhttp::async_read_some(*stream, buffer, parser, kNoThrow);
        (void)bn;
        if (bec && bec != bhttp::error::need_buffer) {
          if (bec == beast::error::timeout || bec == net::error::operation_aborted) {
            co_return std::unexpected(timed_out());
          }
          co_return std::unexpected(broken(bec.message()));
        }
        const std::size_t got = sizeof chunk - parser.get().body().size;
        if (got == 0) continue;
        const std::string_view piece(chunk, got);
        if (on_chunk) {
          if (!co_await (*on_chunk)(piece)) co_return out;  // connection dropped with the stream
        } else {
          if (out.body.size() + got > options.max_body_bytes) {
            co_return std::unexpected(broken("response body too large"));
          }
          out.body.append(piece);
        }
      }
      if (parser.get().keep_alive()) give_back(key, std::move(stream));
      co_return out;
    }
    co_return std::unexpected(unreachable("connection closed"));
  }
};

HttpClient::HttpClient(net::any_io_executor executor, ClientOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), options)) {}

HttpClient::~HttpClient() = default;

net::awaitable<Result<ClientResponse>> HttpClient::request(const ClientRequest& req) {
  auto impl = impl_;
  co_return co_await impl->exchange(req, nullptr, nullptr);
}

net::awaitable<Result<int>> HttpClient::stream(const ClientRequest& req, const OnHead& on_head,
                                               const OnChunk& on_chunk) {
  auto impl = impl_;
  auto r = co_await impl->exchange(req, &on_head, &on_chunk);
  if (!r) co_return std::unexpected(r.error());
  co_return r->status;
}

std::size_t HttpClient::idle_connections() const {
  std::lock_guard lock(impl_->mutex);
  std::size_t n = 0;
  for (const auto& [k, v] : impl_->idle) n += v.size();
  return n;
}

}  // namespace llmd::http
