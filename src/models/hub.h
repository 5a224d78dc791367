// `llmd models pull hf:OWNER/REPO[:QUANT|/FILE.gguf]`: which GGUF file(s) of
// a Hugging Face Hub repository to download, from the Hub's public API.
//
//   auto ref = parse_hub_ref("hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q8_0");
//   auto info = fetch_model_info({endpoint, token}, *ref);   // GET /api/models/{repo}?blobs=true
//   auto files = choose_files(*info, *ref);                  // the parts, with sizes and sha256
//   for (f : *files) download_model({.url = resolve_url(endpoint, *ref, f.path), .sha256 = f.sha256, ...});
//
// The quantisation defaults to Q4_K_M (matched against the file names, case
// aside); a model split into `-00001-of-0000N.gguf` parts comes as all its
// parts (llama.cpp loads them from the first); projector files (mmproj*)
// are chosen only by name. The endpoint is https://huggingface.co, or a
// mirror (HF_ENDPOINT).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace llmd::models {

inline constexpr const char* kDefaultHubEndpoint = "https://huggingface.co";
inline constexpr const char* kDefaultQuantisation = "Q4_K_M";

struct HubRef {
  std::string repo;          // owner/name
  std::string quantisation;  // "" = the default
  std::string file;          // a path in the repository, or ""
  std::string revision = "main";
};

struct HubFile {
  std::string path;  // in the repository
  std::string name;  // the file name it is saved as
  std::uint64_t size = 0;
  std::string sha256;  // from the Hub's LFS metadata; "" when it gives none
};

struct HubAccess {
  std::string endpoint = kDefaultHubEndpoint;
  std::string token;  // HF_TOKEN: for gated and private repositories
};

// The Hub to use: HF_ENDPOINT (a mirror) over `configured_endpoint`
// (models.hf_endpoint); HF_TOKEN, when set, for gated repositories.
HubAccess hub_access_from_env(const std::string& configured_endpoint);

// "hf:owner/name", "hf:owner/name:Q8_0", "hf:owner/name/dir/file.gguf",
// each optionally with "@revision" after the name. Errors: kInvalidArgument.
Result<HubRef> parse_hub_ref(std::string_view spec);

// The quantisation a GGUF file name says ("Q4_K_M", "IQ4_XS", "F16", ...;
// "" when none), upper-case.
std::string quantisation_of(std::string_view file_name);

// The quantisations among the repository's GGUF files, sorted.
std::vector<std::string> quantisations(const nlohmann::json& model_info);

// The files to download for `ref` from the Hub's model info (its
// `siblings` with `blobs=true`). Errors: kNotFound (no such file or
// quantisation: the message lists what there is), kInvalidArgument (more
// than one model matches: name the file), kUnprocessable (parts missing).
Result<std::vector<HubFile>> choose_files(const nlohmann::json& model_info, const HubRef& ref);

// GET {endpoint}/api/models/{repo}[/revision/{rev}]?blobs=true. Blocking.
// Errors: kNotFound (no such repository, or no access), kPermissionDenied
// (401/403: a token is needed), kUnavailable (network, other statuses).
Result<nlohmann::json> fetch_model_info(const HubAccess& hub, const HubRef& ref);

// {endpoint}/{repo}/resolve/{revision}/{path}
std::string resolve_url(const std::string& endpoint, const HubRef& ref, const std::string& path);

}  // namespace llmd::models
