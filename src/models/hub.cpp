#include "models/hub.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <memory>
#include <regex>
#include <set>

namespace llmd::models {

using json = nlohmann::json;

namespace {

constexpr std::size_t kMaxInfoBytes = 32u << 20;

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool ends_with_ci(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && upper(s.substr(s.size() - suffix.size())) == upper(suffix);
}

bool valid_segment(std::string_view s) {
  if (s.empty() || s.size() > 96 || s == "." || s == "..") return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

std::string base_name(std::string_view path) {
  const auto slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// A part of a split model: "<prefix>-00002-of-00005.gguf".
struct Split {
  std::string prefix;  // the path without the part suffix
  int part = 0;        // 0: not split
  int parts = 0;
};

Split split_of(const std::string& path) {
  static const std::regex kSplit(R"(^(.*)-(\d{5})-of-(\d{5})\.gguf$)", std::regex::icase);
  std::smatch m;
  if (!std::regex_match(path, m, kSplit)) return {path, 0, 0};
  return {m[1].str(), std::stoi(m[2].str()), std::stoi(m[3].str())};
}

struct Candidate {
  HubFile file;
  Split split;
  std::string group() const { return split.part > 0 ? split.prefix : file.path; }
};

std::vector<Candidate> gguf_files(const json& info) {
  std::vector<Candidate> out;
  if (!info.is_object() || !info.contains("siblings") || !info["siblings"].is_array()) return out;
  for (const auto& s : info["siblings"]) {
    if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string()) continue;
    const std::string path = s["rfilename"];
    if (!ends_with_ci(path, ".gguf")) continue;
    Candidate c;
    c.file.path = path;
    c.file.name = base_name(path);
    const json lfs = s.contains("lfs") && s["lfs"].is_object() ? s["lfs"] : json::object();
    if (s.contains("size") && s["size"].is_number_unsigned()) {
      c.file.size = s["size"].get<std::uint64_t>();
    } else if (lfs.contains("size") && lfs["size"].is_number_unsigned()) {
      c.file.size = lfs["size"].get<std::uint64_t>();
    }
    if (lfs.contains("sha256") && lfs["sha256"].is_string()) c.file.sha256 = lfs["sha256"];
    c.split = split_of(path);
    out.push_back(std::move(c));
  }
  return out;
}

bool is_projector(const Candidate& c) { return upper(c.file.name).starts_with("MMPROJ"); }

std::string joined(const std::vector<std::string>& items, std::size_t at_most = 12) {
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < at_most; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > at_most) out += ", ...";
  return out.empty() ? "none" : out;
}

// Every part of the group `key`, in order; all N must be there.
Result<std::vector<HubFile>> parts_of(const std::vector<Candidate>& all, const std::string& key,
                                      const std::string& repo) {
  std::map<int, HubFile> parts;
  int expected = 0;
  for (const auto& c : all) {
    if (c.group() != key) continue;
    if (c.split.part == 0) return std::vector<HubFile>{c.file};
    expected = c.split.parts;
    parts.emplace(c.split.part, c.file);
  }
  if (expected <= 0 || static_cast<int>(parts.size()) != expected || parts.begin()->first != 1 ||
      parts.rbegin()->first != expected) {
    return fail(ErrorCode::kUnprocessable,
                repo + ": " + key + " is split into " + std::to_string(expected) + " parts but " +
                    std::to_string(parts.size()) + " are in the repository",
                "incomplete_split");
  }
  std::vector<HubFile> out;
  for (auto& [n, f] : parts) out.push_back(std::move(f));
  return out;
}

std::string escape_path(const std::string& path) {
  std::string out;
  std::size_t from = 0;
  for (;;) {
    const auto slash = path.find('/', from);
    const std::string segment = path.substr(from, slash == std::string::npos ? std::string::npos : slash - from);
    char* e = curl_easy_escape(nullptr, segment.c_str(), static_cast<int>(segment.size()));
    out += e ? e : "";
    curl_free(e);
    if (slash == std::string::npos) break;
    out += '/';
    from = slash + 1;
  }
  return out;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

size_t collect(char* data, size_t size, size_t n, void* user) {
  auto& body = *static_cast<std::string*>(user);
  if (body.size() + size * n > kMaxInfoBytes) return 0;
  body.append(data, size * n);
  return size * n;
}

}  // namespace

HubAccess hub_access_from_env(const std::string& configured_endpoint) {
  HubAccess hub;
  hub.endpoint = configured_endpoint;
  if (const char* e = std::getenv("HF_ENDPOINT"); e && *e) hub.endpoint = e;
  if (const char* t = std::getenv("HF_TOKEN"); t && *t) hub.token = t;
  return hub;
}

Result<HubRef> parse_hub_ref(std::string_view spec) {
  const std::string original(spec);
  auto bad = [&](const std::string& why) {
    return fail(ErrorCode::kInvalidArgument,
                "\"" + original + "\": " + why + " (expected hf:OWNER/REPO[:QUANT] or hf:OWNER/REPO/FILE.gguf)",
                "invalid_hub_ref");
  };
  if (!spec.starts_with("hf:")) return bad("not a Hugging Face name");
  spec.remove_prefix(3);
  const auto p1 = spec.find('/');
  if (p1 == std::string_view::npos) return bad("no repository name");
  HubRef ref;
  const std::string owner(spec.substr(0, p1));
  std::string_view rest = spec.substr(p1 + 1);
  std::string name;
  if (const auto p2 = rest.find('/'); p2 != std::string_view::npos) {
    name = rest.substr(0, p2);
    ref.file = rest.substr(p2 + 1);
    if (!ends_with_ci(ref.file, ".gguf")) return bad("the file must be a .gguf file");
    std::string_view f = ref.file;
    for (std::size_t from = 0;;) {
      const auto slash = f.find('/', from);
      if (!valid_segment(f.substr(from, slash == std::string_view::npos ? std::string_view::npos : slash - from))) {
        return bad("bad file path");
      }
      if (slash == std::string_view::npos) break;
      from = slash + 1;
    }
  } else {
    name = rest;
    if (const auto colon = name.find(':'); colon != std::string::npos) {
      ref.quantisation = upper(name.substr(colon + 1));
      name.resize(colon);
      const bool ok = !ref.quantisation.empty() && ref.quantisation.size() <= 32 &&
                      std::all_of(ref.quantisation.begin(), ref.quantisation.end(),
                                  [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
      if (!ok) return bad("bad quantisation name");
    }
  }
  if (const auto at = name.find('@'); at != std::string::npos) {
    ref.revision = name.substr(at + 1);
    name.resize(at);
    if (!valid_segment(ref.revision)) return bad("bad revision");
  }
  if (!valid_segment(owner) || !valid_segment(name)) return bad("bad repository name");
  ref.repo = owner + "/" + name;
  return ref;
}

std::string quantisation_of(std::string_view file_name) {
  static const std::regex kQuant(R"(^(I?Q[1-8](_[0-9A-Z]+)*|TQ[12]_0|BF16|F16|F32|FP16|FP32|MXFP4(_MOE)?)$)");
  std::string stem = base_name(file_name);
  if (ends_with_ci(stem, ".gguf")) stem.resize(stem.size() - 5);
  if (const Split s = split_of(stem + ".gguf"); s.part > 0) stem = s.prefix;
  std::string found;
  std::size_t from = 0;
  for (;;) {
    const auto end = stem.find_first_of("-.", from);
    const std::string token = upper(stem.substr(from, end == std::string::npos ? std::string::npos : end - from));
    if (std::regex_match(token, kQuant)) found = token;
    if (end == std::string::npos) break;
    from = end + 1;
  }
  return found;
}

std::vector<std::string> quantisations(const json& model_info) {
  std::set<std::string> found;
  for (const auto& c : gguf_files(model_info)) {
    if (is_projector(c)) continue;
    if (auto q = quantisation_of(c.file.name); !q.empty()) found.insert(q);
  }
  return {found.begin(), found.end()};
}

Result<std::vector<HubFile>> choose_files(const json& model_info, const HubRef& ref) {
  const std::vector<Candidate> all = gguf_files(model_info);
  if (!ref.file.empty()) {
    for (const auto& c : all) {
      if (c.file.path == ref.file) return parts_of(all, c.group(), ref.repo);
    }
    std::vector<std::string> names;
    for (const auto& c : all) names.push_back(c.file.path);
    return fail(ErrorCode::kNotFound, "no file " + ref.file + " in " + ref.repo + "; GGUF files: " + joined(names),
                "file_not_found");
  }
  const std::string wanted = ref.quantisation.empty() ? kDefaultQuantisation : ref.quantisation;
  std::set<std::string> groups;
  for (const auto& c : all) {
    if (!is_projector(c) && quantisation_of(c.file.name) == wanted) groups.insert(c.group());
  }
  if (groups.empty() && ref.quantisation.empty()) {
    // No default quantisation, but only one model in the repository: that one.
    for (const auto& c : all) {
      if (!is_projector(c)) groups.insert(c.group());
    }
    if (groups.size() != 1) groups.clear();
  }
  if (groups.empty()) {
    return fail(ErrorCode::kNotFound,
                "no " + wanted + " GGUF file in " + ref.repo + "; quantisations: " + joined(quantisations(model_info)),
                "quantisation_not_found");
  }
  if (groups.size() > 1) {
    return fail(ErrorCode::kInvalidArgument,
                "several " + wanted + " models in " + ref.repo + " (" +
                    joined(std::vector<std::string>(groups.begin(), groups.end())) +
                    "); name the file: hf:" + ref.repo + "/FILE.gguf",
                "ambiguous");
  }
  return parts_of(all, *groups.begin(), ref.repo);
}

std::string resolve_url(const std::string& endpoint, const HubRef& ref, const std::string& path) {
  std::string base = endpoint;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/" + ref.repo + "/resolve/" + escape_path(ref.revision) + "/" + escape_path(path);
}

Result<json> fetch_model_info(const HubAccess& hub, const HubRef& ref) {
  std::string base = hub.endpoint;
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (!base.starts_with("http://") && !base.starts_with("https://")) {
    return fail(ErrorCode::kInvalidArgument, "the Hub endpoint must be an http(s) URL: " + hub.endpoint, "bad_config");
  }
  const std::string url = base + "/api/models/" + ref.repo +
                          (ref.revision == "main" ? "" : "/revision/" + escape_path(ref.revision)) + "?blobs=true";
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return fail(ErrorCode::kInternal, "libcurl could not start");
  CURL* c = curl.get();
  std::string body;
  std::unique_ptr<curl_slist, SlistDeleter> headers(curl_slist_append(nullptr, "Accept: application/json"));
  if (!hub.token.empty()) {
    headers.reset(curl_slist_append(headers.release(), ("Authorization: Bearer " + hub.token).c_str()));
  }
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);  // a renamed repository; the token stays with its host
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "llmd-models-pull");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    return fail(ErrorCode::kUnavailable, std::string("cannot reach the Hub at ") + base + ": " + curl_easy_strerror(rc),
                "hub_unreachable");
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status == 401 || status == 403) {
    return fail(ErrorCode::kPermissionDenied,
                ref.repo + " was not found or needs access: for a gated or private repository set HF_TOKEN",
                "hub_access");
  }
  if (status == 404) return fail(ErrorCode::kNotFound, "no repository " + ref.repo + " on " + base, "repo_not_found");
  if (status != 200) {
    return fail(ErrorCode::kUnavailable, "the Hub answered HTTP " + std::to_string(status) + " for " + ref.repo,
                "hub_error");
  }
  json info = json::parse(body, nullptr, false);
  if (!info.is_object() || !info.contains("siblings") || !info["siblings"].is_array()) {
    return fail(ErrorCode::kUnavailable, "the Hub's answer for " + ref.repo + " has no file list", "hub_error");
  }
  return info;
}

}  // namespace llmd::models
