// Model downloads started from the API (POST /api/v1/admin/models/pull):
// each is a job run on the service's own thread, one at a time in the order
// asked, with its progress (bytes, rate, ETA) readable at any moment.
//
//   auto jobs = PullJobs::create({.models_dir = dir, .hub = {endpoint, token}}, log);
//   auto job = (*jobs)->start({.source = "hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M"});
//   (*jobs)->get(job->id);   // state, done/total bytes, rate, ETA, files
//   (*jobs)->cancel(job->id);
//
// * A source is an http(s) URL of a .gguf file or a Hugging Face name
//   (hf:OWNER/REPO[:QUANT|/FILE.gguf], see hub.h), resolved on the job's
//   thread; every part of a split model is fetched. Downloads are
//   download_model()'s: resumable, sha256-checked, redirect rules.
// * Unfinished jobs are kept as <models_dir>/.pulls/<id>.json; the next
//   PullJobs on that directory (a restarted serve) queues them again and
//   download_model() continues their parts where they stopped.
// * Cancel stops the transfer within about a second and deletes its parts.
// * The finished file lands in models_dir, where the manager finds it.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "models/download.h"
#include "models/hub.h"
#include "observe/log.h"

namespace llmd::models {

struct PullSpec {
  std::string source;  // https://.../x.gguf or hf:OWNER/REPO[:QUANT|/FILE.gguf]
  std::string name;    // save as (one file only); "" = the source's file name
  std::string sha256;  // expected (one file only); "" = the Hub's, if any
};

// One file a pull downloads.
struct PlannedFile {
  DownloadOptions download;  // `base` with the file's URL, name, sha256 and token
  std::string path;          // in the Hub repository (the URL for a URL source)
  std::uint64_t size = 0;    // from the Hub; 0 = unknown
};

// The files `spec` stands for: a URL is one file; a Hub name is the Hub's
// files for it (every part of a split model), each with the Hub's sha256
// unless spec.sha256 is given. Blocking (the Hub's API). Errors: those of
// parse_hub_ref, fetch_model_info, choose_files and file_name_from_url;
// kInvalidArgument when name or sha256 is given for several parts.
Result<std::vector<PlannedFile>> plan_pull(const PullSpec& spec, const DownloadOptions& base, const HubAccess& hub);

enum class PullState { kQueued, kResolving, kDownloading, kDone, kFailed, kCancelled };
std::string_view pull_state_name(PullState state);
inline bool is_finished(PullState s) {
  return s == PullState::kDone || s == PullState::kFailed || s == PullState::kCancelled;
}

struct PullJob {
  std::string id;
  PullSpec spec;
  PullState state = PullState::kQueued;
  std::vector<std::string> files;  // the file names it saves (known once resolved)
  std::string model;               // the model they make (the name in the model list)
  std::uint64_t done = 0;          // bytes, over every file
  std::uint64_t total = 0;         // 0 = not known yet
  std::uint64_t resumed_from = 0;  // bytes kept from before a restart
  double bytes_per_second = 0;     // over the last few seconds
  std::optional<double> eta_seconds;
  std::string error, error_reason;  // when failed
  std::int64_t created_at = 0;      // unix seconds
  std::uint64_t version = 0;        // grows with every change (for watchers)
};

struct PullJobsOptions {
  std::filesystem::path models_dir;
  HubAccess hub;
  bool allow_private_redirects = false;
  std::size_t keep_finished = 20;  // finished jobs listed (oldest dropped)
};

class PullJobs {
 public:
  // Queues the unfinished jobs found under models_dir/.pulls and starts the
  // thread. Errors: kUnavailable (models_dir cannot be created).
  static Result<std::unique_ptr<PullJobs>> create(PullJobsOptions options, observe::Logger log);
  // Stops the running transfer (its parts and record stay, for the next
  // start) and joins the thread.
  ~PullJobs();
  PullJobs(const PullJobs&) = delete;
  PullJobs& operator=(const PullJobs&) = delete;

  // Errors: kInvalidArgument (not a URL or hub name, a bad name or sha256),
  // kConflict (that source is being pulled already, or its file exists).
  Result<PullJob> start(PullSpec spec);
  std::vector<PullJob> list() const;                 // newest first
  Result<PullJob> get(const std::string& id) const;  // kNotFound
  // Cancels a queued or running job (its parts are deleted); a finished
  // one is returned as it is. Errors: kNotFound.
  Result<PullJob> cancel(const std::string& id);

 private:
  struct Impl;
  explicit PullJobs(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmd::models
