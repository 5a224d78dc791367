// Routes: method + path pattern -> handler. Patterns are literal segments
// and `{name}` parameters (`/api/v1/models/{name}/start`); a `{name...}`
// final segment captures the rest of the path. Matching is by segments, so
// `/a/{x}` never matches `/a/b/c`.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "http/context.h"
#include "http/errors.h"

namespace llmd::http {

struct RouteMatch {
  enum class Kind { kFound, kNotFound, kMethodNotAllowed };
  Kind kind = Kind::kNotFound;
  const Handler* handler = nullptr;
  std::string pattern;                        // the matched route pattern (metrics label)
  std::map<std::string, std::string> params;  // decoded path parameters
  std::vector<std::string> allowed;           // for kMethodNotAllowed: the Allow list
};

class Router {
 public:
  // Registers `handler` for `method` on `pattern`. Registering the same
  // method+pattern twice replaces the first.
  void add(std::string method, std::string pattern, Handler handler);
  void get(std::string pattern, Handler h) { add("GET", std::move(pattern), std::move(h)); }
  void post(std::string pattern, Handler h) { add("POST", std::move(pattern), std::move(h)); }
  void del(std::string pattern, Handler h) { add("DELETE", std::move(pattern), std::move(h)); }
  // The same for handlers that return their errors as values (rendered by
  // http::render_errors).
  void add(std::string method, std::string pattern, ResultHandler handler) {
    add(std::move(method), std::move(pattern), render_errors(std::move(handler)));
  }
  void get(std::string pattern, ResultHandler h) { add("GET", std::move(pattern), std::move(h)); }
  void post(std::string pattern, ResultHandler h) { add("POST", std::move(pattern), std::move(h)); }
  void del(std::string pattern, ResultHandler h) { add("DELETE", std::move(pattern), std::move(h)); }
  // Handles every request that no route's path matches (any method); its
  // RouteMatch has `pattern` as the metrics label. Paths that match a route
  // with another method still get 405. Used for the web UI's static files.
  void fallback(std::string pattern, Handler h) {
    fallback_pattern_ = std::move(pattern);
    fallback_ = std::move(h);
  }
  void fallback(std::string pattern, ResultHandler h) { fallback(std::move(pattern), render_errors(std::move(h))); }

  // Finds the route for a decoded path. HEAD falls back to GET. When routes
  // match the path but not the method, kMethodNotAllowed lists the methods.
  RouteMatch match(std::string_view method, std::string_view path) const;

 private:
  struct Segment {
    std::string text;
    bool is_param = false;
    bool is_rest = false;
  };
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<Segment> segments;
    Handler handler;
  };
  static bool match_segments(const Route& r, const std::vector<std::string_view>& parts,
                             std::map<std::string, std::string>& params);
  std::vector<Route> routes_;
  std::string fallback_pattern_;
  Handler fallback_;
};

}  // namespace llmd::http
