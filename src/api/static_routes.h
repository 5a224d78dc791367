// The built web UI (web/dist) served by `llmd serve` at "/".
//
// GET/HEAD only. A path names a file under the web directory; a client-side
// route (no file, no extension, not under /assets/) gets index.html so the
// single-page app can route it. API paths (/api, /v1, /metrics, /health,
// /ready) never get a file: they keep their JSON 404s. Paths that leave the
// web directory (`..`, encoded or not, or symlinks pointing outside) are 404.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "http/router.h"
#include "http/worker_pool.h"

namespace llmd::api {

// The web directory to serve: `configured` when non-empty (nullopt if it has
// no index.html), else the first that has an index.html of
// <exe dir>/../share/llmd/web (an install), <exe dir>/../../../web/dist (a
// build tree: build/<type>/bin/llmd) and <cwd>/web/dist.
std::optional<std::filesystem::path> find_web_dir(const std::string& configured);

// The Content-Type for a file name ("index.html" -> "text/html; charset=utf-8").
std::string content_type_for(std::string_view file_name);

// True for paths that belong to the API and never get a static file.
bool is_reserved_path(std::string_view path);

// Registers the static site as the router's fallback (so every API route
// wins). Without a web directory only "/" is added, answering a short note
// that the UI is not built. Files are read on `pool` per request, so a
// rebuilt UI is served without a restart.
void add_static_routes(http::Router& router, const std::optional<std::filesystem::path>& web_dir,
                       http::WorkerPool& pool);

}  // namespace llmd::api
