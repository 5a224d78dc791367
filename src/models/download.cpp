#include "models/download.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>

#include <openssl/evp.h>
#include <nlohmann/json.hpp>

namespace llmd::models {
namespace {

namespace fs = std::filesystem;
constexpr int kMaxRedirects = 5;
constexpr std::size_t kMaxFileName = 200;

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct CurlUrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
struct DigestDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// curl_global_init once per process (it is not thread-safe to race).
void ensure_curl_initialised() {
  static const bool done = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  (void)done;
}

struct ParsedUrl {
  std::string scheme;
  std::string host;
  std::string path;
};

Result<ParsedUrl> parse_url(const std::string& url) {
  std::unique_ptr<CURLU, CurlUrlDeleter> u(curl_url());
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
    return fail(ErrorCode::kInvalidArgument, "not a valid URL: " + url, "bad_url");
  }
  ParsedUrl out;
  auto part = [&](CURLUPart p, std::string& into, unsigned flags) {
    char* v = nullptr;
    if (curl_url_get(u.get(), p, &v, flags) == CURLUE_OK && v) into = v;
    curl_free(v);
  };
  part(CURLUPART_SCHEME, out.scheme, 0);
  part(CURLUPART_HOST, out.host, 0);
  part(CURLUPART_PATH, out.path, CURLU_URLDECODE);
  std::transform(out.scheme.begin(), out.scheme.end(), out.scheme.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (out.scheme != "http" && out.scheme != "https") {
    return fail(ErrorCode::kInvalidArgument, "only http and https URLs can be pulled", "bad_url");
  }
  if (out.host.empty()) return fail(ErrorCode::kInvalidArgument, "the URL has no host", "bad_url");
  return out;
}

bool valid_file_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxFileName || name.front() == '.' || name.front() == '-') return false;
  if (name.size() < 6 || name.substr(name.size() - 5) != ".gguf") return false;
  return std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '.' || c == '_' || c == '-' || c == '+'; });
}

std::string to_lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string hex(const unsigned char* data, unsigned n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (unsigned i = 0; i < n; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 15];
  }
  return out;
}

// What we remember about a partial download, to resume it safely.
struct PartInfo {
  std::string url;
  std::string etag;
  std::string last_modified;
};

std::optional<PartInfo> read_part_info(const fs::path& p) {
  std::ifstream in(p);
  if (!in) return std::nullopt;
  const auto j = nlohmann::json::parse(in, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  PartInfo info;
  info.url = j.value("url", "");
  info.etag = j.value("etag", "");
  info.last_modified = j.value("last_modified", "");
  return info;
}

void write_part_info(const fs::path& p, const PartInfo& info) {
  std::ofstream out(p, std::ios::trunc);
  out << nlohmann::json{{"url", info.url}, {"etag", info.etag}, {"last_modified", info.last_modified}}.dump();
}

// One transfer's state, shared with libcurl's callbacks.
struct Transfer {
  std::FILE* file = nullptr;
  EVP_MD_CTX* digest = nullptr;
  const DownloadOptions* options = nullptr;
  bool allow_private = true;  // this hop may connect to a private address
  bool refused_private = false;
  bool write_failed = false;
  bool cancelled = false;
  long status = 0;             // of the current response (headers)
  bool body_accepted = false;  // the current response's body is the file
  bool restart = false;        // 200 on a Range request: truncate and start over
  std::uint64_t offset = 0;    // bytes already in the file
  std::uint64_t total = 0;     // expected file size, 0 = unknown
  std::uint64_t content_length = 0;
  std::string etag, last_modified, location, content_range;
};

std::string trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return std::string(s);
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {
    t.status = 0;
    const auto sp = line.find(' ');
    if (sp != std::string_view::npos) t.status = std::strtol(std::string(line.substr(sp + 1, 3)).c_str(), nullptr, 10);
    t.etag.clear();
    t.last_modified.clear();
    t.location.clear();
    t.content_range.clear();
    t.content_length = 0;
    return size * n;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  const std::string name = to_lower(std::string(line.substr(0, colon)));
  const std::string value = trim(line.substr(colon + 1));
  if (name == "etag")
    t.etag = value;
  else if (name == "last-modified")
    t.last_modified = value;
  else if (name == "location")
    t.location = value;
  else if (name == "content-range")
    t.content_range = value;
  else if (name == "content-length")
    t.content_length = std::strtoull(value.c_str(), nullptr, 10);
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  if (!t.body_accepted) return bytes;  // an error page or a redirect's body
  if (std::fwrite(data, 1, bytes, t.file) != bytes) {
    t.write_failed = true;
    return 0;  // aborts the transfer
  }
  EVP_DigestUpdate(t.digest, data, bytes);
  t.offset += bytes;
  if (t.options->on_progress) t.options->on_progress(t.offset, t.total);
  return bytes;
}

// Curl's progress callback (at least once a second, data or not): a
// nonzero return aborts the transfer.
int on_transfer_info(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto& t = *static_cast<Transfer*>(user);
  t.cancelled = t.options->stop.stop_requested();
  return t.cancelled ? 1 : 0;
}

curl_socket_t on_open_socket(void* user, curlsocktype, curl_sockaddr* addr) {
  auto& t = *static_cast<Transfer*>(user);
  if (!t.allow_private && is_private_address(&addr->addr, addr->addrlen)) {
    t.refused_private = true;
    return CURL_SOCKET_BAD;
  }
  return ::socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

// Called once the status line and headers of the final response of a hop are
// known, before its body: decides whether the body is the file.
void on_first_body_check(Transfer& t, bool range_requested) {
  if (t.status == 206 && range_requested) {
    t.body_accepted = true;
    // Content-Range: bytes START-END/TOTAL
    const auto slash = t.content_range.find('/');
    if (slash != std::string::npos && t.content_range.substr(slash + 1) != "*") {
      t.total = std::strtoull(t.content_range.c_str() + slash + 1, nullptr, 10);
    }
  } else if (t.status == 200) {
    t.body_accepted = true;
    t.restart = range_requested;
    t.total = t.content_length;
  }
}

void reset_digest(EVP_MD_CTX* d) { EVP_DigestInit_ex(d, EVP_sha256(), nullptr); }

// Feeds the first `bytes` of `file` into the digest (a resumed part).
bool hash_existing(const fs::path& file, std::uint64_t bytes, EVP_MD_CTX* digest) {
  std::ifstream in(file, std::ios::binary);
  std::vector<char> buf(1 << 20);
  std::uint64_t left = bytes;
  while (left > 0 && in) {
    const auto want = static_cast<std::streamsize>(std::min<std::uint64_t>(left, buf.size()));
    in.read(buf.data(), want);
    const auto got = in.gcount();
    if (got <= 0) return false;
    EVP_DigestUpdate(digest, buf.data(), static_cast<std::size_t>(got));
    left -= static_cast<std::uint64_t>(got);
  }
  return left == 0;
}

bool valid_sha256(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c); });
}

}  // namespace

bool is_valid_model_file_name(const std::string& name) { return valid_file_name(name); }

bool is_valid_sha256(const std::string& hex) { return valid_sha256(hex); }

Result<void> check_download_url(const std::string& url) {
  ensure_curl_initialised();
  auto parsed = parse_url(url);
  if (!parsed) return std::unexpected(parsed.error());
  return {};
}

bool is_private_address(const void* sockaddr, std::size_t length) {
  const auto* sa = static_cast<const struct sockaddr*>(sockaddr);
  auto private_v4 = [](std::uint32_t a) {
    const std::uint8_t b0 = a >> 24, b1 = (a >> 16) & 0xff;
    return b0 == 0 || b0 == 10 || b0 == 127 || (b0 == 169 && b1 == 254) || (b0 == 172 && (b1 & 0xf0) == 16) ||
           (b0 == 192 && b1 == 168) || (b0 == 100 && (b1 & 0xc0) == 64) || b0 >= 224;
  };
  if (sa->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    const auto* in = static_cast<const sockaddr_in*>(sockaddr);
    return private_v4(ntohl(in->sin_addr.s_addr));
  }
  if (sa->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    const auto& a = static_cast<const sockaddr_in6*>(sockaddr)->sin6_addr;
    const std::uint8_t* b = a.s6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a) || IN6_IS_ADDR_V4COMPAT(&a)) {
      const std::uint32_t v4 = (std::uint32_t(b[12]) << 24) | (b[13] << 16) | (b[14] << 8) | b[15];
      return private_v4(v4);
    }
    return IN6_IS_ADDR_LOOPBACK(&a) || IN6_IS_ADDR_UNSPECIFIED(&a) || IN6_IS_ADDR_LINKLOCAL(&a) ||
           IN6_IS_ADDR_MULTICAST(&a) || (b[0] & 0xfe) == 0xfc;
  }
  return true;  // unknown families are not allowed after a redirect
}

Result<std::string> file_name_from_url(const std::string& url) {
  auto parsed = parse_url(url);
  if (!parsed) return std::unexpected(parsed.error());
  const auto slash = parsed->path.find_last_of('/');
  const std::string name = slash == std::string::npos ? parsed->path : parsed->path.substr(slash + 1);
  if (!valid_file_name(name)) {
    return fail(ErrorCode::kInvalidArgument,
                "cannot take a model file name from the URL (want NAME.gguf of letters, digits and ._-+); use --name",
                "bad_file_name");
  }
  return name;
}

namespace {

// Where a pull writes: the file, its partial download and the partial's
// record of where it came from.
struct Paths {
  fs::path target, part, part_meta;
};

// The file name: --name, else the URL's last path segment.
Result<std::string> target_name(const DownloadOptions& options) {
  if (options.file_name.empty()) return file_name_from_url(options.url);
  if (!valid_file_name(options.file_name)) {
    return fail(ErrorCode::kInvalidArgument, "--name must be NAME.gguf of letters, digits and ._-+", "bad_file_name");
  }
  return options.file_name;
}

Result<Paths> prepare_paths(const fs::path& dir, const std::string& name) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail(ErrorCode::kUnavailable, "cannot create the models directory " + dir.string());
  Paths paths{dir / name, dir / (name + ".part"), dir / (name + ".part.json")};
  if (fs::exists(paths.target)) {
    return fail(ErrorCode::kConflict, paths.target.string() + " exists already; remove it to pull again", "exists");
  }
  return paths;
}

// Sets up one request of the transfer (the first, or a redirect's): no
// automatic redirects (each hop is checked), stall and connect timeouts,
// and a Range from the bytes already fetched, guarded by If-Range.
void configure_hop(CURL* c, const std::string& url, Transfer& t, const PartInfo& info, bool first_hop,
                   std::unique_ptr<curl_slist, SlistDeleter>& headers) {
  const DownloadOptions& options = *t.options;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(options.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options.stall_timeout.count()));
  curl_easy_setopt(c, CURLOPT_USERAGENT, "llmd-models-pull");
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
  curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_transfer_info);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  if (t.offset > 0) {
    const std::string range = "Range: bytes=" + std::to_string(t.offset) + "-";
    headers.reset(curl_slist_append(headers.release(), range.c_str()));
    const std::string validator = !info.etag.empty() ? info.etag : info.last_modified;
    if (!validator.empty()) headers.reset(curl_slist_append(headers.release(), ("If-Range: " + validator).c_str()));
  }
  if (first_hop && !options.bearer_token.empty()) {
    headers.reset(curl_slist_append(headers.release(), ("Authorization: Bearer " + options.bearer_token).c_str()));
  }
  if (headers) curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
}

// libcurl calls the write callback only after all headers of the response
// are in, so its first call decides whether the body is the file (200/206)
// or something to ignore (redirect, error page).
struct BodyGate {
  Transfer* t;
  bool range;
  bool checked = false;
};

size_t gated_body(char* data, size_t size, size_t n, void* user) {
  auto& g = *static_cast<BodyGate*>(user);
  if (!g.checked) {
    g.checked = true;
    on_first_body_check(*g.t, g.range);
    if (g.t->restart) {
      // The server sent the whole file: start over from byte 0.
      if (std::fseek(g.t->file, 0, SEEK_SET) != 0 || ::ftruncate(::fileno(g.t->file), 0) != 0) {
        g.t->write_failed = true;
        return 0;
      }
      g.t->offset = 0;
      reset_digest(g.t->digest);
    }
  }
  return on_body(data, size, n, g.t);
}

// Fetches the rest of the file into `t.file`, following redirects (each
// checked against the private-address rule). An interrupted transfer
// records the validators, so the next run resumes only the same file.
Result<void> fetch(Transfer& t, PartInfo& info, const Paths& paths) {
  const DownloadOptions& options = *t.options;
  std::string url = options.url;
  for (int hop = 0;; ++hop) {
    if (hop > kMaxRedirects) return fail(ErrorCode::kUnavailable, "too many redirects", "download_failed");
    t.allow_private = hop == 0 || options.allow_private_redirects;
    CurlPtr curl(curl_easy_init());
    if (!curl) return fail(ErrorCode::kInternal, "libcurl could not start");
    CURL* c = curl.get();
    std::unique_ptr<curl_slist, SlistDeleter> headers;
    const bool range_requested = t.offset > 0;
    configure_hop(c, url, t, info, hop == 0, headers);
    t.body_accepted = false;
    t.restart = false;
    t.status = 0;
    BodyGate gate{&t, range_requested};
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, gated_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &gate);

    const CURLcode rc = curl_easy_perform(c);
    if (t.refused_private) {
      return fail(ErrorCode::kPermissionDenied,
                  "refused a redirect to a private or loopback address (set models.allow_private_redirects to allow)",
                  "private_redirect");
    }
    if (t.write_failed) return fail(ErrorCode::kUnavailable, "cannot write " + paths.part.string() + " (disk full?)");
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 300 && status < 400 && status != 304) {
      char* next = nullptr;
      curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &next);
      if (!next) return fail(ErrorCode::kUnavailable, "redirect without a Location", "download_failed");
      if (!parse_url(next)) {
        return fail(ErrorCode::kUnavailable, "redirect to a URL that is not http(s)", "download_failed");
      }
      url = next;
      continue;
    }
    if (status == 416 && range_requested) {
      // Nothing left to fetch: the part is complete if the server says so.
      const auto slash = t.content_range.find('/');
      const std::uint64_t size =
          slash == std::string::npos ? 0 : std::strtoull(t.content_range.c_str() + slash + 1, nullptr, 10);
      if (size != t.offset) {
        return fail(ErrorCode::kUnavailable,
                    "the server refused to resume; delete " + paths.part.string() + " and retry", "download_failed");
      }
      t.total = size;
    } else if (rc != CURLE_OK) {
      std::fflush(t.file);
      if (t.etag.size() || t.last_modified.size()) {
        info.etag = t.etag;
        info.last_modified = t.last_modified;
        write_part_info(paths.part_meta, info);
      }
      if (t.cancelled) {
        return fail(ErrorCode::kUnavailable, "cancelled after " + std::to_string(t.offset) + " bytes", "cancelled");
      }
      return fail(ErrorCode::kUnavailable,
                  std::string("download interrupted (") + curl_easy_strerror(rc) + ") after " +
                      std::to_string(t.offset) + " bytes; run the same command again to resume",
                  "download_interrupted");
    } else if (status != 200 && status != 206) {
      return fail(ErrorCode::kUnavailable, "the server answered HTTP " + std::to_string(status), "download_failed");
    }
    curl_off_t length = -1;
    if (status == 200) curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    const bool short_200 = status == 200 && length >= 0 && static_cast<std::uint64_t>(length) != t.offset;
    const bool short_206 = status == 206 && t.total != 0 && t.total != t.offset;
    if (short_200 || short_206) {
      return fail(ErrorCode::kUnavailable, "download cut short; run the same command again to resume",
                  "download_interrupted");
    }
    return {};
  }
}

// The whole file is in the part: checks its digest, syncs it and renames
// it into place (and syncs the directory).
Result<std::string> commit(FilePtr file, EVP_MD_CTX* digest, const std::string& expected, const Paths& paths,
                           const fs::path& dir) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned md_len = 0;
  EVP_DigestFinal_ex(digest, md, &md_len);
  const std::string actual = hex(md, md_len);
  if (std::fflush(file.get()) != 0 || ::fsync(::fileno(file.get())) != 0) {
    return fail(ErrorCode::kUnavailable, "cannot write " + paths.part.string() + " (disk full?)");
  }
  file.reset();
  std::error_code ec;
  if (!expected.empty() && actual != expected) {
    fs::remove(paths.part, ec);
    fs::remove(paths.part_meta, ec);
    return fail(ErrorCode::kUnprocessable,
                "sha256 mismatch: expected " + expected + ", got " + actual + " (the download was deleted)",
                "sha256_mismatch");
  }
  if (fs::exists(paths.target)) {
    return fail(ErrorCode::kConflict,
                paths.target.string() + " appeared while downloading; kept " + paths.part.string(), "exists");
  }
  fs::rename(paths.part, paths.target, ec);
  if (ec) return fail(ErrorCode::kUnavailable, "cannot rename the download into place: " + ec.message());
  fs::remove(paths.part_meta, ec);
  if (const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return actual;
}

}  // namespace

Result<DownloadResult> download_model(const DownloadOptions& options) {
  ensure_curl_initialised();
  if (auto first = parse_url(options.url); !first) return std::unexpected(first.error());
  auto name = target_name(options);
  if (!name) return std::unexpected(name.error());
  const std::string expected = to_lower(options.sha256);
  if (!expected.empty() && !valid_sha256(expected)) {
    return fail(ErrorCode::kInvalidArgument, "--sha256 must be 64 hex digits", "bad_sha256");
  }
  auto paths = prepare_paths(options.dir, *name);
  if (!paths) return std::unexpected(paths.error());

  // Resume only what was fetched from the same URL.
  std::error_code ec;
  std::uint64_t resumed = 0;
  PartInfo info{options.url, "", ""};
  if (auto old = read_part_info(paths->part_meta); old && old->url == options.url && fs::exists(paths->part)) {
    resumed = fs::file_size(paths->part, ec);
    if (ec) resumed = 0;
    info = *old;
  } else {
    fs::remove(paths->part, ec);
  }
  std::unique_ptr<EVP_MD_CTX, DigestDeleter> digest(EVP_MD_CTX_new());
  reset_digest(digest.get());
  if (resumed > 0 && !hash_existing(paths->part, resumed, digest.get())) {
    resumed = 0;
    reset_digest(digest.get());
  }
  FilePtr file(std::fopen(paths->part.c_str(), resumed > 0 ? "r+b" : "wb"));
  if (!file) return fail(ErrorCode::kUnavailable, "cannot write " + paths->part.string());
  if (resumed > 0 && std::fseek(file.get(), static_cast<long>(resumed), SEEK_SET) != 0) {
    return fail(ErrorCode::kUnavailable, "cannot seek in " + paths->part.string());
  }
  write_part_info(paths->part_meta, info);

  Transfer t;
  t.file = file.get();
  t.digest = digest.get();
  t.options = &options;
  t.offset = resumed;
  if (auto fetched = fetch(t, info, *paths); !fetched) return std::unexpected(fetched.error());
  auto sha256 = commit(std::move(file), digest.get(), expected, *paths, options.dir);
  if (!sha256) return std::unexpected(sha256.error());
  return DownloadResult{paths->target, t.offset, *sha256, resumed};
}

}  // namespace llmd::models
