// What a handler sees of one request: the request, path parameters, the
// request id, an attribute slot for middleware (e.g. the authenticated user),
// and a stream for responses written in pieces (SSE, proxied bodies).
//
// A RequestContext lives for one request on one connection's strand; it is
// not shared between threads.
#pragma once

#include <any>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <typeindex>

#include <boost/asio/awaitable.hpp>

#include "core/error.h"
#include "http/message.h"

namespace llmd::http {

// The output side of a streamed response (implemented by the server).
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  // Sends the status line and headers, then switches to chunked encoding.
  // Returns false when the client is gone.
  virtual boost::asio::awaitable<bool> begin(int status, const Headers& headers) = 0;
  // Sends one chunk and waits until the socket took it (backpressure).
  // Returns false when the client is gone; stop producing then.
  virtual boost::asio::awaitable<bool> write(std::string_view data) = 0;
  // Sends the final chunk.
  virtual boost::asio::awaitable<void> end() = 0;
};

struct RequestContext {
  RequestContext(Request& req, ResponseStream& out, Headers& extra)
      : request(req), stream(out), response_headers(extra) {}

  Request& request;
  ResponseStream& stream;
  // Headers added to whatever response goes out, streamed or not (request
  // id, CORS); set by middleware.
  Headers& response_headers;
  std::string request_id;
  std::string route;                          // matched route pattern, "" if none
  std::map<std::string, std::string> params;  // path parameters
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  // Values a middleware or hook hands on to the handler, one per type (the
  // caller's auth::Principal, the open billing meter): set() replaces,
  // get() is null when none was set.
  template <typename T>
  void set(T value) {
    values_[std::type_index(typeid(T))] = std::move(value);
  }
  template <typename T>
  const T* get() const {
    const auto it = values_.find(std::type_index(typeid(T)));
    return it == values_.end() ? nullptr : std::any_cast<T>(&it->second);
  }
  // Takes the value out (nullopt when none was set).
  template <typename T>
  std::optional<T> take() {
    const auto it = values_.find(std::type_index(typeid(T)));
    if (it == values_.end()) return std::nullopt;
    std::optional<T> value(std::move(*std::any_cast<T>(&it->second)));
    values_.erase(it);
    return value;
  }

  // Set by the pipeline's routing step (not for handlers).
  const std::function<boost::asio::awaitable<Response>(RequestContext&)>* handler = nullptr;
  std::string allowed_methods;  // "GET, HEAD" when the path exists for other methods

  const std::string& param(const std::string& name) const {
    static const std::string kEmpty;
    auto it = params.find(name);
    return it == params.end() ? kEmpty : it->second;
  }

 private:
  std::map<std::type_index, std::any> values_;
};

using Handler = std::function<boost::asio::awaitable<Response>(RequestContext&)>;
// A handler that returns its failures as values: the router renders an
// Error (error_response(), with the request id): the one place where a
// handler's error becomes HTTP. A Response it returns goes out as it is.
using ResultHandler = std::function<boost::asio::awaitable<Result<Response>>(RequestContext&)>;
using Next = std::function<boost::asio::awaitable<Response>(RequestContext&)>;
// A middleware calls `next(ctx)` to continue the chain, or answers itself.
using Middleware = std::function<boost::asio::awaitable<Response>(RequestContext&, const Next&)>;
using ResultMiddleware = std::function<boost::asio::awaitable<Result<Response>>(RequestContext&, const Next&)>;

}  // namespace llmd::http
