// `llmd models pull URL`: downloads a GGUF file into the models directory.
//
// * http(s) only; at most 5 redirects, each followed by hand so every hop is
//   checked. The URL the operator typed may point anywhere (a LAN mirror is
//   normal), but a redirect may not lead to a private, loopback or
//   link-local address unless `allow_private_redirects` — checked on the
//   address actually connected to, so DNS tricks do not get around it.
// * Resumable: bytes go to `<name>.part` next to a small `<name>.part.json`
//   (URL, ETag, Last-Modified). A second run continues with a Range request
//   guarded by If-Range; a server that changed the file answers 200 and the
//   download starts over.
// * The sha256 is computed over the whole file (a resumed part is hashed
//   first); a mismatch deletes the part and is an error. The finished file
//   is fsync'ed and renamed into place atomically; an existing model file is
//   never overwritten.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <stop_token>
#include <string>

#include "core/error.h"

namespace llmd::models {

struct DownloadOptions {
  std::string url;
  std::filesystem::path dir;  // models.dir
  std::string file_name;      // empty = last path segment of the URL (must end in .gguf)
  std::string sha256;         // expected, lower- or upper-case hex; empty = not checked
  bool allow_private_redirects = false;
  // Sent as Authorization: Bearer to the URL's own server only, never to
  // where it redirects (a Hub's token does not go to its CDN).
  std::string bearer_token;
  std::chrono::seconds connect_timeout{30};
  std::chrono::seconds stall_timeout{60};  // abort when no byte arrives for this long
  // Called as bytes arrive (done includes a resumed part; total 0 = unknown).
  std::function<void(std::uint64_t done, std::uint64_t total)> on_progress;
  // A stop request ends the transfer within about a second ("cancelled");
  // the part stays, so a later run resumes it.
  std::stop_token stop;
};

struct DownloadResult {
  std::filesystem::path path;
  std::uint64_t size = 0;
  std::string sha256;              // lower-case hex of the whole file
  std::uint64_t resumed_from = 0;  // bytes kept from an earlier run
};

// Errors: kInvalidArgument (bad URL, scheme, file name, sha256 syntax),
// kConflict (the model file exists), kPermissionDenied (redirect to a private
// address), kUnavailable (network, HTTP error, interrupted: run again to
// resume; reason "cancelled" after a stop request), kUnprocessable (sha256
// mismatch).
Result<DownloadResult> download_model(const DownloadOptions& options);

// True for a name download_model saves as: NAME.gguf of letters, digits
// and ._-+, not starting with '.' or '-'.
bool is_valid_model_file_name(const std::string& name);

// True for 64 hex digits (either case).
bool is_valid_sha256(const std::string& hex);

// An http(s) URL download_model accepts. Errors: kInvalidArgument.
Result<void> check_download_url(const std::string& url);

// The file name a URL would be saved as (validated), e.g. for messages.
Result<std::string> file_name_from_url(const std::string& url);

// True for loopback, private (RFC 1918 / ULA), link-local, CGNAT and
// unspecified addresses, IPv4-mapped IPv6 included. `sockaddr` bytes.
bool is_private_address(const void* sockaddr, std::size_t length);

}  // namespace llmd::models
