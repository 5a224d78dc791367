#include "api/static_routes.h"

#include <array>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/errors.h"

namespace llmd::api {
namespace {

namespace fs = std::filesystem;
using boost::asio::awaitable;
using http::RequestContext;
using http::Response;

// Hashed build output: the file name changes whenever its content does.
constexpr std::string_view kAssetsPrefix = "/assets/";
constexpr const char* kImmutable = "public, max-age=31536000, immutable";
// The UI talks only to its own origin; Element Plus sets inline styles.
constexpr const char* kIndexPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'";

bool has_index(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "index.html", ec);
}

// The path's segments, or nullopt when one could climb out or is not a plain
// name ("..", ".", backslashes, NUL). `path` is already percent-decoded, so
// "%2e%2e" arrives here as "..".
std::optional<std::vector<std::string>> safe_segments(std::string_view path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i <= path.size()) {
    const auto end = std::min(path.find('/', i), path.size());
    const std::string_view seg = path.substr(i, end - i);
    if (!seg.empty()) {
      if (seg == "." || seg == ".." || seg.find('\\') != std::string_view::npos ||
          seg.find('\0') != std::string_view::npos) {
        return std::nullopt;
      }
      out.emplace_back(seg);
    }
    i = end + 1;
  }
  return out;
}

// True when `p` (canonical) is `root` (canonical) or below it.
bool inside(const fs::path& root, const fs::path& p) {
  auto r = root.begin();
  auto q = p.begin();
  for (; r != root.end(); ++r, ++q) {
    if (q == p.end() || *r != *q) return false;
  }
  return true;
}

struct FileHit {
  std::string body;
  std::string etag;
  std::string content_type;
};

// Reads `rel` under `root` if it is a regular file whose real location is
// inside root. Blocking: run on the pool.
std::optional<FileHit> read_inside(const fs::path& root, const fs::path& rel) {
  std::error_code ec;
  const fs::path real = fs::canonical(root / rel, ec);
  if (ec || !inside(root, real) || !fs::is_regular_file(real, ec)) return std::nullopt;
  const auto size = fs::file_size(real, ec);
  if (ec) return std::nullopt;
  const auto mtime = fs::last_write_time(real, ec);
  if (ec) return std::nullopt;
  std::ifstream in(real, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream body;
  body << in.rdbuf();
  std::ostringstream tag;
  tag << '"' << std::hex << size << '-' << mtime.time_since_epoch().count() << '"';
  return FileHit{std::move(body).str(), tag.str(), content_type_for(real.filename().string())};
}

std::unexpected<Error> not_found() { return std::unexpected(Error(ErrorCode::kNotFound, "no such endpoint")); }

Response not_built_note() {
  Response r = Response::text(
      200,
      "<!doctype html><meta charset=\"utf-8\"><title>llmd</title>"
      "<h1>llmd</h1><p>The web UI is not built. Run <code>./setup.sh build</code> (or <code>npm ci &amp;&amp; npm run "
      "build</code> in <code>web/</code>) and set <code>server.web_dir</code> if it lives elsewhere. The API is "
      "at <code>/api/v1</code>, <code>/v1</code>; health at <code>/health</code>.</p>\n",
      "text/html; charset=utf-8");
  r.headers.set("Cache-Control", "no-cache");
  return r;
}

std::optional<fs::path> exe_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return std::nullopt;
  return exe.parent_path();
}

}  // namespace

std::optional<fs::path> find_web_dir(const std::string& configured) {
  std::error_code ec;
  std::vector<fs::path> candidates;
  if (!configured.empty()) {
    candidates.emplace_back(configured);
  } else {
    if (auto dir = exe_dir()) {
      candidates.push_back(*dir / ".." / "share" / "llmd" / "web");
      candidates.push_back(*dir / ".." / ".." / ".." / "web" / "dist");
    }
    candidates.push_back(fs::current_path(ec) / "web" / "dist");
  }
  for (const auto& c : candidates) {
    if (!has_index(c)) continue;
    const fs::path real = fs::canonical(c, ec);
    if (!ec) return real;
  }
  return std::nullopt;
}

std::string content_type_for(std::string_view file_name) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 19> kTypes{{
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".webmanifest", "application/manifest+json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".webp", "image/webp"},
      {".ico", "image/x-icon"},
      {".woff", "font/woff"},
      {".woff2", "font/woff2"},
      {".ttf", "font/ttf"},
      {".txt", "text/plain; charset=utf-8"},
      {".wasm", "application/wasm"},
  }};
  const auto dot = file_name.rfind('.');
  if (dot != std::string_view::npos) {
    std::string ext(file_name.substr(dot));
    for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const auto& [e, type] : kTypes) {
      if (e == ext) return std::string(type);
    }
  }
  return "application/octet-stream";
}

bool is_reserved_path(std::string_view path) {
  for (std::string_view p : {"/api", "/v1", "/metrics", "/health", "/ready"}) {
    if (path == p || (path.starts_with(p) && path.size() > p.size() && path[p.size()] == '/')) return true;
  }
  return false;
}

void add_static_routes(http::Router& router, const std::optional<fs::path>& web_dir, http::WorkerPool& pool) {
  if (!web_dir) {
    router.get("/", [](RequestContext&) -> awaitable<Result<Response>> { co_return not_built_note(); });
    return;
  }
  router.fallback("static", [root = *web_dir, &pool](RequestContext& ctx) -> awaitable<Result<Response>> {
    const std::string& path = ctx.request.path;
    if (is_reserved_path(path)) co_return not_found();
    if (ctx.request.method != "GET" && ctx.request.method != "HEAD") {
      Response r = http::error_response(
          Error(ErrorCode::kMethodNotAllowed, "method " + ctx.request.method + " is not allowed here; use GET, HEAD"),
          ctx.request_id);
      r.headers.set("Allow", "GET, HEAD");
      co_return r;
    }
    const auto segments = safe_segments(path);
    if (!segments) co_return not_found();
    fs::path rel;
    for (const auto& s : *segments) rel /= s;
    const bool is_asset = path.starts_with(kAssetsPrefix);
    // A client route (no file extension, not an asset) falls back to index.html.
    const bool spa_route = !is_asset && (segments->empty() || segments->back().find('.') == std::string::npos);
    const fs::path index = "index.html";
    auto hit = co_await pool.run([&]() -> std::optional<FileHit> {
      if (!segments->empty()) {
        if (auto f = read_inside(root, rel)) return f;
        if (!spa_route) return std::nullopt;
      }
      return read_inside(root, index);
    });
    if (!hit) co_return not_found();
    const bool is_html = hit->content_type.starts_with("text/html");
    Response r;
    r.headers.set("ETag", hit->etag);
    r.headers.set("Cache-Control", is_asset ? kImmutable : "no-cache");
    if (is_html) r.headers.set("Content-Security-Policy", kIndexPolicy);
    if (ctx.request.headers.get("If-None-Match").value_or("") == hit->etag) {
      r.status = 304;
      co_return r;
    }
    r.status = 200;
    r.headers.set("Content-Type", hit->content_type);
    r.body = std::move(hit->body);
    co_return r;
  });
}

}  // namespace llmd::api
