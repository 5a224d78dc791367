// /api/v1/tasks/subtitle and /api/v1/jobs/* (SPEC §4.4, §6 Subtitle): the
// HTTP side of subtitle jobs. Handlers validate and parse the input (so a bad
// file is a 400 naming the line and cue, before anything is reserved), then
// hand the cues to SubtitleJobs. A video or upload without a text subtitle
// stream is transcribed (asr.url) before the job is accepted, so its cost
// can be reserved from the recognised text like any other input. Every job route answers 404 for a job of
// another user, exactly as for one that does not exist.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "http/router.h"
#include "http/worker_pool.h"
#include "observe/log.h"
#include "tasks/jobs/job_store.h"
#include "tasks/subtitle/subtitle_jobs.h"

namespace llmd::api {

// An uploaded file as the subtitle route needs it.
struct UploadedFile {
  std::string path;           // on disk, inside uploads.dir
  std::string original_name;  // metadata only; never used as a path
};
// Finds an upload by (id, owner): kNotFound otherwise. Blocking.
using UploadLookup = std::function<Result<UploadedFile>(const std::string& upload_id, std::int64_t user_id)>;

struct SubtitleRoutesDeps {
  subtitle::SubtitleJobs& jobs;
  jobs::JobStore& store;
  http::WorkerPool& pool;
  observe::Logger log;
  std::vector<std::string> media_roots;  // uploads.media_roots: where video_path may point
  UploadLookup find_upload;              // empty = upload_id not supported (400)
  config::AsrConfig asr;                 // speech recognition for media without text subtitles; url "" = off
};

void add_subtitle_routes(http::Router& router, SubtitleRoutesDeps deps);

}  // namespace llmd::api
