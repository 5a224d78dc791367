// Subtitle translation jobs (SPEC §4.4, §5, §6 Subtitle): accepted with a
// reservation of their worst-case cost, run on a bounded set of coroutines on
// the server's executor, translated batch by batch through the model
// gateway, with progress and resume state persisted after every batch.
//
// Billing (SPEC §5): the base is the cue texts counted by the model's
// tokenizer plus the completion tokens of every call; the translation
// instructions, running summary and glossary are what the fixed + 50 pays
// for. submit() reserves what the first batch needs at least (its cue text
// at one token per byte plus completion_floor) before the job
// exists (kPaymentRequired otherwise: no job). Before each batch the job's
// reservation grows (billing::grow_fitted) to what the finished batches used
// plus the batch's cue tokens and completion bound, the bound lowered to
// what the balance pays (not below the floor); when not even the floor fits,
// the job ends as insufficient_tokens, its result the cues translated so
// far, and pays for those. The end of a job settles ceil(base x 3.0) + 50
// (capped at the reservation) and releases the rest; a cancelled or failed
// job pays for the calls it made. One usage record per job (request id =
// job id).
//
// Resume: at start(), this instance's unfinished jobs (and those of an
// instance whose heartbeat stopped) continue from their last finished
// batch. Their old reservation is gone by then (Accounts::release_abandoned
// at startup releases what this instance left), so a resumed job releases
// it explicitly (a no-op when already released) and reserves again what
// the finished batches cost; the next batch grows it as above. When that
// no longer fits, the job fails and pays for what it used, as far as the
// balance goes.
//
// Thread-safety: all public members may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include "billing/accounts.h"
#include "config/config.h"
#include "core/error.h"
#include "http/worker_pool.h"
#include "inference/model_client.h"
#include "observe/log.h"
#include "tasks/jobs/job_store.h"
#include "tasks/jobs/job_watch.h"
#include "tasks/subtitle/job_state.h"
#include "tasks/subtitle/subtitle.h"

namespace llmd::subtitle {

struct SubtitleJobsDeps {
  jobs::JobStore& store;
  billing::Accounts& accounts;
  const billing::Pricing& pricing;
  http::WorkerPool& pool;
  inference::ModelClient& models;  // the batches' chat calls
  observe::Logger log;
  std::string model;  // tasks.subtitle.model or models.default_model
  config::SubtitleTaskConfig config;
  std::string results_dir;  // <server.data_dir>/results
  std::string instance_id;  // this backend process (as in reservations)
  std::function<boost::asio::any_io_executor()> executor;
};

class SubtitleJobs {
 public:
  explicit SubtitleJobs(SubtitleJobsDeps deps);
  ~SubtitleJobs();
  SubtitleJobs(const SubtitleJobs&) = delete;
  SubtitleJobs& operator=(const SubtitleJobs&) = delete;

  // Resumes unfinished jobs (see above) and starts the heartbeat. Call once,
  // after the server's executor exists.
  void start();
  // Stops taking up batches: running jobs stop at their next call or batch
  // boundary and stay "running" in the database for the next start.
  void stop();

  // What submit() reserves: the least the first batch can run with (its cue
  // text at one token per byte and its completion floor). Before each batch
  // runs, the job's reservation grows by the batch's worst case, or by as
  // much as the balance pays when that is at least the batch's floor (the
  // batch's max_tokens is lowered to it); a balance that cannot pay the
  // floor ends the job as insufficient_tokens with the finished cues as its
  // result.
  std::int64_t first_batch_reservation(const Document& doc) const;

  // Reserves the first batch (through billing::MeteredCall: the user's
  // groups and `api_key_id`'s budget and models apply, and the key stays on
  // the job's reservation), creates the job (queued) and schedules it.
  // Errors: kPaymentRequired (nothing created), kPermissionDenied
  // (model_not_allowed), kUnprocessable (no cues, too many), database errors.
  boost::asio::awaitable<Result<jobs::Job>> submit(std::int64_t user_id, const Document& doc,
                                                   const SubtitleJobSpec& spec, const std::string& request_id,
                                                   std::optional<std::int64_t> api_key_id = std::nullopt);

  // The owner cancels: a queued job ends at once (reservation released), a
  // running one at its next model call or batch boundary. Returns the job
  // as it is now. kNotFound for another user's job.
  boost::asio::awaitable<Result<jobs::Job>> cancel(const std::string& id, std::int64_t user_id);

  // Progress wake-ups for listeners (SSE).
  jobs::JobWatchBoard& watches();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// Whether the job has a file to download: done, or insufficient_tokens with
// at least one batch translated.
bool has_result(const jobs::Job& job);

// The API view of a job: {job_id, kind, status, progress:{done,total,percent},
// source_lang, target_lang, result?:{download_url, cues, kept_source,
// tokens_consumed}, tokens_consumed? (every other end), error?, created_at,
// updated_at}.
nlohmann::json job_json(const jobs::Job& job);

// The download file name of a finished job: "<safe stem>.<target lang>.<ext>".
std::string result_file_name(const jobs::Job& job);

}  // namespace llmd::subtitle
