// HTTP request/response values used by handlers. Deliberately free of Beast
// types: modules above http/ see only these.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace llmd::http {

// Header fields in arrival order; lookups are case-insensitive.
class Headers {
 public:
  void add(std::string name, std::string value) { fields_.emplace_back(std::move(name), std::move(value)); }
  // Replaces every field called `name` with one.
  void set(std::string_view name, std::string value);
  std::optional<std::string_view> get(std::string_view name) const;
  bool has(std::string_view name) const { return get(name).has_value(); }
  const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

// A request body the server received into a temporary file instead of
// memory (see ServerOptions::body_policy). The file is removed when the last
// owner lets go, unless a handler took it with release() (e.g. after renaming
// it into place). Not thread-safe; lives with its request.
class SpooledBody {
 public:
  SpooledBody(std::filesystem::path path, std::uint64_t size) : path_(std::move(path)), size_(size) {}
  ~SpooledBody();
  SpooledBody(const SpooledBody&) = delete;
  SpooledBody& operator=(const SpooledBody&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::uint64_t size() const { return size_; }
  void set_size(std::uint64_t size) { size_ = size; }
  // The caller now owns the file at path(): it is no longer removed.
  void release() { released_ = true; }

 private:
  std::filesystem::path path_;
  std::uint64_t size_ = 0;
  bool released_ = false;
};

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: path plus query
  std::string path;    // percent-decoded path without the query
  std::string query;   // raw query string without '?'
  Headers headers;
  std::string body;
  // Set instead of `body` when the body policy spooled it to a file.
  std::shared_ptr<SpooledBody> body_file;
  // The real client's address: the TCP peer, or when the peer is a trusted
  // proxy (ServerOptions::trusted_proxies) the client it names in
  // X-Forwarded-For. What logs, rate limits and throttles key on.
  std::string remote_ip;
  // The TCP peer itself (equal to remote_ip unless a trusted proxy forwarded
  // the request).
  std::string peer_ip;
  bool keep_alive = true;

  // Value of a query parameter (percent-decoded), if present.
  std::optional<std::string> query_param(std::string_view name) const;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;
  // True when the handler already wrote the response through the stream
  // (SSE or other chunked output); the server then writes nothing more.
  bool streamed = false;

  static Response json(int status, const nlohmann::json& body);
  static Response text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
  static Response already_streamed(int status) {
    Response r;
    r.status = status;
    r.streamed = true;
    return r;
  }
};

// Percent-decodes `s` ('+' stays '+'); nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view s);

// A fresh request id: 16 random hex digits.
std::string new_request_id();

}  // namespace llmd::http
