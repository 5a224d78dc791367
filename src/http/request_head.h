// What the server checks and takes from a request head before a handler
// sees it: body framing (RFC 9112 §6), the target's form (§3.2), the
// request line and fields as a Request, X-Forwarded-For. Internal to
// http/server.cpp; pure functions, unit-tested on their own.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/message.hpp>

#include "http/client_address.h"
#include "http/message.h"

namespace llmd::http {

namespace bhttp = boost::beast::http;

// An error the server answers itself at the protocol level. `status` may be
// one no ErrorCode maps to (431, 501); the body is still the standard JSON
// error built by error_response().
struct ProtocolError {
  int status;
  std::string reason;
  std::string message;
};

// Case-insensitive ASCII comparison (field names and values).
bool iequal(std::string_view a, std::string_view b);
// Without the optional white space (spaces, tabs) around a field value.
std::string_view trim_ows(std::string_view s);

// Checks how the request's body is delimited (RFC 9112 §6): at most one
// Content-Length or Transfer-Encoding, and a Transfer-Encoding only when
// it is exactly "chunked" — anything whose final coding is not chunked
// (e.g. "xchunked", "gzip") leaves the body length undeterminable (400); a
// coding before chunked ("gzip, chunked") is one we do not implement (501).
// Also refuses more than one Host field (RFC 9112 §3.2: 400).
std::optional<ProtocolError> framing_error(const bhttp::request_header<>& msg);

// A request target split into what the server routes on. Origin-form
// ("/path?query") is the usual; absolute-form ("http://host/path?query",
// what clients send to proxies) must be accepted too (RFC 9112 §3.2.2): its
// authority then replaces the Host header. Anything else (authority-form,
// "*", junk) is refused.
struct Target {
  std::string origin;     // "/path?query"
  std::string authority;  // from an absolute-form target; empty otherwise
};

std::optional<Target> parse_target(std::string_view target);

// The request without its body (read later, into memory or a file).
Request request_head(const bhttp::request_header<>& msg, const Target& target, bool keep_alive, const IpAddress& client,
                     const IpAddress& peer);

// Every X-Forwarded-For field of the head, in order.
std::vector<std::string_view> forwarded_for(const bhttp::request_header<>& msg);

}  // namespace llmd::http
