#include "http/request_head.h"

#include <algorithm>

#include <boost/beast/core/string.hpp>

namespace llmd::http {

namespace beast = boost::beast;

bool iequal(std::string_view a, std::string_view b) { return beast::iequals(a, b); }

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Checks how the request's body is delimited (RFC 9112 §6): at most one
// Content-Length or Transfer-Encoding, and a Transfer-Encoding only when
// it is exactly "chunked" — anything whose final coding is not chunked
// (e.g. "xchunked", "gzip") leaves the body length undeterminable (400); a
// coding before chunked ("gzip, chunked") is one we do not implement (501).
// Also refuses more than one Host field (RFC 9112 §3.2: 400).
std::optional<ProtocolError> framing_error(const bhttp::request_header<>& msg) {
  int hosts = 0;
  bool has_content_length = false;
  std::vector<std::string_view> codings;
  for (const auto& f : msg) {
    if (f.name() == bhttp::field::host) ++hosts;
    if (f.name() == bhttp::field::content_length) has_content_length = true;
    if (f.name() != bhttp::field::transfer_encoding) continue;
    std::string_view list = f.value();
    while (true) {
      const auto comma = list.find(',');
      const auto token = trim_ows(list.substr(0, comma));
      if (!token.empty()) codings.push_back(token);
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  if (hosts > 1) return ProtocolError{400, "bad_request", "more than one Host header"};
  const bool has_transfer_encoding = msg.find(bhttp::field::transfer_encoding) != msg.end();
  if (!has_transfer_encoding) return std::nullopt;
  if (codings.empty() || !iequal(codings.back(), "chunked") ||
      std::count_if(codings.begin(), codings.end(), [](std::string_view c) { return iequal(c, "chunked"); }) > 1) {
    return ProtocolError{400, "bad_request", "unsupported Transfer-Encoding: the body length cannot be determined"};
  }
  if (codings.size() > 1) {
    return ProtocolError{501, "not_implemented", "unsupported transfer coding; only chunked is accepted"};
  }
  if (has_content_length) {
    return ProtocolError{400, "bad_request", "both Content-Length and Transfer-Encoding"};
  }
  if (msg.version() < 11) {
    return ProtocolError{400, "bad_request", "Transfer-Encoding in an HTTP/1.0 request"};
  }
  return std::nullopt;
}

std::optional<Target> parse_target(std::string_view target) {
  if (target.starts_with('/')) return Target{std::string(target), {}};
  for (const std::string_view scheme : {"http://", "https://"}) {
    if (target.size() < scheme.size() || !iequal(target.substr(0, scheme.size()), scheme)) continue;
    const std::string_view rest = target.substr(scheme.size());
    const auto end = rest.find_first_of("/?#");
    const std::string_view authority = rest.substr(0, end);
    // No empty host, and no userinfo ("user@host": deprecated, and a way to
    // disguise the host).
    if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
    std::string origin(end == std::string_view::npos ? std::string_view{} : rest.substr(end));
    if (origin.starts_with('#')) origin.clear();
    if (!origin.starts_with('/')) origin.insert(0, "/");
    return Target{std::move(origin), std::string(authority)};
  }
  return std::nullopt;
}

// The request without its body (read later, into memory or a file).
Request request_head(const bhttp::request_header<>& msg, const Target& target, bool keep_alive, const IpAddress& client,
                     const IpAddress& peer) {
  Request req;
  req.method = std::string(msg.method_string());
  req.target = target.origin;
  const auto q = req.target.find('?');
  const std::string raw_path = req.target.substr(0, q);
  req.path = percent_decode(raw_path).value_or(raw_path);
  if (q != std::string::npos) req.query = req.target.substr(q + 1);
  for (const auto& f : msg) req.headers.add(std::string(f.name_string()), std::string(f.value()));
  if (!target.authority.empty()) req.headers.set("Host", target.authority);
  req.remote_ip = client.to_string();
  req.peer_ip = peer.to_string();
  req.keep_alive = keep_alive;
  return req;
}

// Every X-Forwarded-For field of the head, in order.
std::vector<std::string_view> forwarded_for(const bhttp::request_header<>& msg) {
  std::vector<std::string_view> out;
  for (const auto& f : msg) {
    if (beast::iequals(f.name_string(), "X-Forwarded-For")) out.push_back(f.value());
  }
  return out;
}

}  // namespace llmd::http
