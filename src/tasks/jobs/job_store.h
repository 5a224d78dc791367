// Long-running jobs in the database (table `jobs`, schema v3): who owns
// them, where they stand, their input and the state a restarted backend
// resumes from. Ids are 128 random bits (hex), never sequence numbers;
// every lookup made for a user is by id AND owner, so another user's job
// looks exactly like one that does not exist.
//
// Status moves queued -> running -> done | failed | insufficient_tokens
// (the balance ran out: the part that was finished is the result), or to
// cancelled (directly from queued; through cancelling while a runner still
// holds it).
// Each transition is one conditional UPDATE, so two backend instances
// sharing the database never both run or both finish one job.
//
// All calls block (database): run them on the worker pool. Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "store/database.h"

namespace llmd::jobs {

enum class Status { kQueued, kRunning, kCancelling, kDone, kFailed, kCancelled, kOutOfTokens };

std::string_view status_name(Status s);  // "queued", "running", ...
std::optional<Status> parse_status(std::string_view name);
// done, failed, cancelled and insufficient_tokens: nothing will change any more.
bool is_terminal(Status s);

struct Job {
  std::string id;
  std::int64_t user_id = 0;
  std::string kind;  // "subtitle"
  Status status = Status::kQueued;
  std::int64_t progress_done = 0;
  std::int64_t progress_total = 0;
  nlohmann::json input = nlohmann::json::object();  // as accepted
  nlohmann::json state = nlohmann::json::object();  // resume state (object)
  std::string result_path;
  std::string error;
  std::int64_t reservation_id = 0;
  std::int64_t tokens_charged = 0;
  std::int64_t created_at = 0;  // unix seconds
  std::int64_t updated_at = 0;
};

// 32 lower-case hex characters from the OS random generator.
std::string new_job_id();

class JobStore {
 public:
  explicit JobStore(store::Database& db) : db_(db) {}

  // Inserts a queued job with a fresh random id and returns it.
  Result<Job> create(std::int64_t user_id, const std::string& kind, const nlohmann::json& input,
                     const nlohmann::json& state, std::int64_t progress_total, std::int64_t reservation_id);

  // The job if it exists and belongs to `user_id`; kNotFound otherwise.
  Result<Job> get(const std::string& id, std::int64_t user_id);
  // The job whoever owns it (for the runner); kNotFound when absent.
  Result<Job> get_any(const std::string& id);
  // The user's jobs, newest first (input and state left empty: they can be large).
  Result<std::vector<Job>> list(std::int64_t user_id, int limit = 100);
  // Jobs not finished: queued, running or cancelling (for resume at startup).
  Result<std::vector<Job>> unfinished(const std::string& kind);

  // queued -> running with the given state; false when the job was not
  // queued (cancelled meanwhile, or claimed by another instance).
  Result<bool> claim(const std::string& id, const nlohmann::json& state);
  // Takes over a running job for a resume, only if it is still running and
  // unchanged since `seen_updated_at` (so two instances never both take it).
  Result<bool> take_over(const std::string& id, std::int64_t seen_updated_at, const nlohmann::json& state);
  // Progress and resume state while running; false when the job is no
  // longer running (a cancel arrived): the runner stops then.
  Result<bool> save_progress(const std::string& id, std::int64_t done, std::int64_t total, const nlohmann::json& state);
  // Touches updated_at of a running job (the owner's heartbeat).
  Result<void> heartbeat(const std::string& id);
  // Also records the reservation a resumed job holds now.
  Result<void> set_reservation(const std::string& id, std::int64_t reservation_id, const nlohmann::json& state);

  // running -> done. False when the job was cancelled meanwhile.
  Result<bool> finish(const std::string& id, const std::string& result_path, std::int64_t tokens_charged,
                      const nlohmann::json& state);
  // running -> insufficient_tokens: the balance could not pay for the rest;
  // `result_path` holds the part that was done, `error` says so. False when
  // the job was cancelled meanwhile.
  Result<bool> finish_partial(const std::string& id, const std::string& result_path, std::int64_t tokens_charged,
                              const nlohmann::json& state, const std::string& error);
  // queued|running|cancelling -> failed, with a message safe to show the owner.
  Result<bool> mark_failed(const std::string& id, const std::string& error, std::int64_t tokens_charged);
  // cancelling -> cancelled once the runner stopped and settled.
  Result<bool> mark_cancelled(const std::string& id, std::int64_t tokens_charged);

  // The owner asks to cancel: queued -> cancelled, running -> cancelling.
  // Returns the status before the request; kNotFound as get(); a finished
  // job is returned unchanged (cancelling it is a no-op).
  Result<Status> request_cancel(const std::string& id, std::int64_t user_id);

 private:
  store::Database& db_;
};

}  // namespace llmd::jobs
