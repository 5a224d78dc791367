// The byte stream of one server connection: TCP (a beast::tcp_stream, which
// carries the timeouts), with TLS layered on top once start_tls() ran. It is
// an AsyncReadStream and AsyncWriteStream, so the server's HTTP code (Beast's
// parser and serializer, chunked streaming, draining) is the same code over
// plain HTTP and HTTPS; timeouts set with expires_after() bound the TLS
// handshake and TLS reads and writes too, since those are TCP reads and
// writes underneath.
#pragma once

#include <chrono>
#include <memory>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <openssl/ssl.h>

namespace llmd::http {

class ConnStream {
 public:
  using executor_type = boost::beast::tcp_stream::executor_type;
  using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream&>;

  explicit ConnStream(boost::asio::ip::tcp::socket socket) : tcp_(std::move(socket)) {}
  ConnStream(const ConnStream&) = delete;
  ConnStream& operator=(const ConnStream&) = delete;

  executor_type get_executor() noexcept { return tcp_.get_executor(); }
  // The TCP layer: raw bytes (before or instead of TLS), the socket.
  boost::beast::tcp_stream& tcp() { return tcp_; }
  boost::asio::ip::tcp::socket& socket() { return tcp_.socket(); }

  // Timeouts for the operations started afterwards (see beast::basic_stream).
  void expires_after(std::chrono::steady_clock::duration d) { tcp_.expires_after(d); }
  void expires_at(std::chrono::steady_clock::time_point t) { tcp_.expires_at(t); }
  // Cancels pending operations (they complete with operation_aborted).
  void cancel() { tcp_.cancel(); }
  void close() { tcp_.close(); }

  // Layers TLS over the TCP stream; reads and writes then go through it.
  // `context` is kept alive as long as the connection. Once per connection,
  // before its handshake.
  TlsStream& start_tls(std::shared_ptr<boost::asio::ssl::context> context) {
    context_ = std::move(context);
    tls_ = std::make_unique<TlsStream>(tcp_, *context_);
    return *tls_;
  }
  bool is_tls() const { return tls_ != nullptr; }

  // Sends TLS close_notify (when TLS is on and not already sent) without
  // waiting for the peer's: RFC 8446 §6.1 lets the closing side go on to
  // close the TCP connection. Bounded by the stream's timeout.
  boost::asio::awaitable<void> end_tls() {
    if (!tls_ || tls_ended_) co_return;
    tls_ended_ = true;
    // Marking the peer's close_notify as received makes SSL_shutdown write
    // ours and finish instead of reading for the reply.
    SSL_set_shutdown(tls_->native_handle(), SSL_get_shutdown(tls_->native_handle()) | SSL_RECEIVED_SHUTDOWN);
    auto [ec] = co_await tls_->async_shutdown(boost::asio::as_tuple(boost::asio::use_awaitable));
    (void)ec;  // the connection closes either way
  }

  template <class MutableBufferSequence, class ReadToken>
  auto async_read_some(const MutableBufferSequence& buffers, ReadToken&& token) {
    return boost::asio::async_initiate<ReadToken, void(boost::beast::error_code, std::size_t)>(
        [this](auto handler, const MutableBufferSequence& b) {
          if (tls_) {
            tls_->async_read_some(b, std::move(handler));
          } else {
            tcp_.async_read_some(b, std::move(handler));
          }
        },
        token, buffers);
  }

  template <class ConstBufferSequence, class WriteToken>
  auto async_write_some(const ConstBufferSequence& buffers, WriteToken&& token) {
    return boost::asio::async_initiate<WriteToken, void(boost::beast::error_code, std::size_t)>(
        [this](auto handler, const ConstBufferSequence& b) {
          if (tls_) {
            tls_->async_write_some(b, std::move(handler));
          } else {
            tcp_.async_write_some(b, std::move(handler));
          }
        },
        token, buffers);
  }

 private:
  boost::beast::tcp_stream tcp_;
  std::shared_ptr<boost::asio::ssl::context> context_;  // before tls_: outlives it
  std::unique_ptr<TlsStream> tls_;
  bool tls_ended_ = false;
};

}  // namespace llmd::http
