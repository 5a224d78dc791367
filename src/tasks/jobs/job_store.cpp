#include "tasks/jobs/job_store.h"

#include <ctime>

#include "core/random_id.h"

namespace llmd::jobs {
namespace {

using nlohmann::json;
using store::Connection;
using store::Row;
using store::Value;

std::int64_t now_seconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

constexpr std::string_view kColumns =
    "id, user_id, kind, status, progress_done, progress_total, input, state, result_path, error, reservation_id, "
    "tokens_charged, created_at, updated_at";

// Stored JSON that does not parse reads as an empty object: a damaged row
// must not take the listing down (the runner then fails that job).
json parse_object(const std::string& text) {
  if (text.empty()) return json::object();
  auto j = json::parse(text, nullptr, false);
  return j.is_object() ? j : json::object();
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Job job_from_row(const Row& r, bool with_payload) {
  Job j;
  j.id = r.text(0);
  j.user_id = r.integer(1);
  j.kind = r.text(2);
  j.status = parse_status(r.text(3)).value_or(Status::kFailed);
  j.progress_done = r.integer(4);
  j.progress_total = r.integer(5);
  if (with_payload) {
    j.input = parse_object(r.text(6));
    j.state = parse_object(r.text(7));
  }
  j.result_path = r.text(8);
  j.error = r.text(9);
  j.reservation_id = r.integer(10);
  j.tokens_charged = r.integer(11);
  j.created_at = r.integer(12);
  j.updated_at = r.integer(13);
  return j;
}

Error not_found() { return Error(ErrorCode::kNotFound, "no such job", "job_not_found"); }

}  // namespace

std::string_view status_name(Status s) {
  switch (s) {
    case Status::kQueued: return "queued";
    case Status::kRunning: return "running";
    case Status::kCancelling: return "cancelling";
    case Status::kDone: return "done";
    case Status::kFailed: return "failed";
    case Status::kCancelled: return "cancelled";
    case Status::kOutOfTokens: return "insufficient_tokens";
  }
  return "failed";
}

std::optional<Status> parse_status(std::string_view name) {
  for (Status s : {Status::kQueued, Status::kRunning, Status::kCancelling, Status::kDone, Status::kFailed,
                   Status::kCancelled, Status::kOutOfTokens}) {
    if (status_name(s) == name) return s;
  }
  return std::nullopt;
}

bool is_terminal(Status s) {
  return s == Status::kDone || s == Status::kFailed || s == Status::kCancelled || s == Status::kOutOfTokens;
}

std::string new_job_id() { return core::random_hex(16); }

Result<Job> JobStore::create(std::int64_t user_id, const std::string& kind, const json& input, const json& state,
                             std::int64_t progress_total, std::int64_t reservation_id) {
  Job j;
  j.id = new_job_id();
  j.user_id = user_id;
  j.kind = kind;
  j.status = Status::kQueued;
  j.progress_total = progress_total;
  j.input = input;
  j.state = state;
  j.reservation_id = reservation_id;
  j.created_at = j.updated_at = now_seconds();
  return db_.with_connection<Job>([&](Connection& c) -> Result<Job> {
    LLMD_TRY(
        c.exec("INSERT INTO jobs (id, user_id, kind, status, progress_done, progress_total, input, state, "
               "reservation_id, created_at, updated_at) VALUES (?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?, ?)",
               std::vector<Value>{j.id, user_id, kind, progress_total, dump(input), dump(state), reservation_id,
                                  j.created_at, j.updated_at}));
    return j;
  });
}

Result<Job> JobStore::get(const std::string& id, std::int64_t user_id) {
  return db_.with_connection<Job>([&](Connection& c) -> Result<Job> {
    auto rows = c.query("SELECT " + std::string(kColumns) + " FROM jobs WHERE id = ? AND user_id = ?",
                        std::vector<Value>{id, user_id});
    if (!rows) return std::unexpected(rows.error());
    if (rows->empty()) return std::unexpected(not_found());
    return job_from_row(rows->front(), true);
  });
}

Result<Job> JobStore::get_any(const std::string& id) {
  return db_.with_connection<Job>([&](Connection& c) -> Result<Job> {
    auto rows = c.query("SELECT " + std::string(kColumns) + " FROM jobs WHERE id = ?", std::vector<Value>{id});
    if (!rows) return std::unexpected(rows.error());
    if (rows->empty()) return std::unexpected(not_found());
    return job_from_row(rows->front(), true);
  });
}

Result<std::vector<Job>> JobStore::list(std::int64_t user_id, int limit) {
  return db_.with_connection<std::vector<Job>>([&](Connection& c) -> Result<std::vector<Job>> {
    // The payload columns are left out: a listing never needs them.
    auto rows = c.query(
        "SELECT id, user_id, kind, status, progress_done, progress_total, '', '', result_path, error, "
        "reservation_id, tokens_charged, created_at, updated_at FROM jobs WHERE user_id = ? "
        "ORDER BY created_at DESC, id DESC LIMIT ?",
        std::vector<Value>{user_id, std::int64_t{limit}});
    if (!rows) return std::unexpected(rows.error());
    std::vector<Job> out;
    for (const auto& r : *rows) out.push_back(job_from_row(r, false));
    return out;
  });
}

Result<std::vector<Job>> JobStore::unfinished(const std::string& kind) {
  return db_.with_connection<std::vector<Job>>([&](Connection& c) -> Result<std::vector<Job>> {
    auto rows = c.query("SELECT " + std::string(kColumns) +
                            " FROM jobs WHERE kind = ? AND status IN ('queued', 'running', 'cancelling') "
                            "ORDER BY created_at, id",
                        std::vector<Value>{kind});
    if (!rows) return std::unexpected(rows.error());
    std::vector<Job> out;
    for (const auto& r : *rows) out.push_back(job_from_row(r, true));
    return out;
  });
}

Result<bool> JobStore::claim(const std::string& id, const json& state) {
  return db_.with_connection<bool>([&](Connection& c) -> Result<bool> {
    auto r = c.exec("UPDATE jobs SET status = 'running', state = ?, updated_at = ? WHERE id = ? AND status = 'queued'",
                    std::vector<Value>{dump(state), now_seconds(), id});
    if (!r) return std::unexpected(r.error());
    return r->affected_rows == 1;
  });
}

Result<bool> JobStore::take_over(const std::string& id, std::int64_t seen_updated_at, const json& state) {
  return db_.with_connection<bool>([&](Connection& c) -> Result<bool> {
    auto r = c.exec(
        "UPDATE jobs SET state = ?, updated_at = ? WHERE id = ? AND status IN ('running', 'cancelling') "
        "AND updated_at = ?",
        std::vector<Value>{dump(state), now_seconds(), id, seen_updated_at});
    if (!r) return std::unexpected(r.error());
    return r->affected_rows == 1;
  });
}

Result<bool> JobStore::save_progress(const std::string& id, std::int64_t done, std::int64_t total, const json& state) {
  return db_.with_connection<bool>([&](Connection& c) -> Result<bool> {
    auto r = c.exec(
        "UPDATE jobs SET progress_done = ?, progress_total = ?, state = ?, updated_at = ? "
        "WHERE id = ? AND status = 'running'",
        std::vector<Value>{done, total, dump(state), now_seconds(), id});
    if (!r) return std::unexpected(r.error());
    return r->affected_rows == 1;
  });
}

Result<void> JobStore::heartbeat(const std::string& id) {
  return db_.with_connection<void>([&](Connection& c) -> Result<void> {
    LLMD_TRY(c.exec("UPDATE jobs SET updated_at = ? WHERE id = ? AND status IN ('queued', 'running')",
                    std::vector<Value>{now_seconds(), id}));
    return {};
  });
}

Result<void> JobStore::set_reservation(const std::string& id, std::int64_t reservation_id, const json& state) {
  return db_.with_connection<void>([&](Connection& c) -> Result<void> {
    LLMD_TRY(c.exec("UPDATE jobs SET reservation_id = ?, state = ?, updated_at = ? WHERE id = ?",
                    std::vector<Value>{reservation_id, dump(state), now_seconds(), id}));
    return {};
  });
}

Result<bool> JobStore::finish(const std::string& id, const std::string& result_path, std::int64_t tokens_charged,
                              const json& state) {
  return db_.with_connection<bool>([&](Connection& c) -> Result<bool> {
    auto r = c.exec(
        "UPDATE jobs SET status = 'done', progress_done = progress_total, result_path = ?, "
        "tokens_charged = ?, state = ?, updated_at = ? WHERE id = ? AND status = 'running'",
        std::vector<Value>{result_path, tokens_charged, dump(state), now_seconds(), id});
    if (!r) return std::unexpected(r.error());
    return r->affected_rows == 1;
  });
}

Result<bool> JobStore::finish_partial(const std::string& id, const std::string& result_path,
                                      std::int64_t tokens_charged, const json& state, const std::string& error) {
  return db_.with_connection<bool>([&](Connection& c) -> Result<bool> {
    auto r = c.exec(
        "UPDATE jobs SET status = 'insufficient_tokens', result_path = ?, tokens_charged = ?, state = ?, "
        "error = ?, updated_at = ? WHERE id = ? AND status = 'running'",
        std::vector<Value>{result_path, tokens_charged, dump(state), error, now_seconds(), id});
    if (!r) return std::unexpected(r.error());
    return r->affected_rows == 1;
  });
}

Result<bool> JobStore::mark_failed(const std::string& id, const std::string& error, std::int64_t tokens_charged) {
  return db_.with_connection<bool>([&](Connection& c) -> Result<bool> {
    auto r = c.exec(
        "UPDATE jobs SET status = 'failed', error = ?, tokens_charged = ?, updated_at = ? "
        "WHERE id = ? AND status IN ('queued', 'running', 'cancelling')",
        std::vector<Value>{error, tokens_charged, now_seconds(), id});
    if (!r) return std::unexpected(r.error());
    return r->affected_rows == 1;
  });
}

Result<bool> JobStore::mark_cancelled(const std::string& id, std::int64_t tokens_charged) {
  return db_.with_connection<bool>([&](Connection& c) -> Result<bool> {
    auto r = c.exec(
        "UPDATE jobs SET status = 'cancelled', tokens_charged = ?, updated_at = ? "
        "WHERE id = ? AND status IN ('running', 'cancelling')",
        std::vector<Value>{tokens_charged, now_seconds(), id});
    if (!r) return std::unexpected(r.error());
    return r->affected_rows == 1;
  });
}

Result<Status> JobStore::request_cancel(const std::string& id, std::int64_t user_id) {
  return db_.transaction<Status>([&](Connection& c) -> Result<Status> {
    auto rows = c.query("SELECT status FROM jobs WHERE id = ? AND user_id = ?", std::vector<Value>{id, user_id});
    if (!rows) return std::unexpected(rows.error());
    if (rows->empty()) return std::unexpected(not_found());
    const Status before = parse_status(rows->front().text(0)).value_or(Status::kFailed);
    // Conditional on the status just read: a runner finishing at the same
    // moment wins or loses cleanly, never half.
    if (before == Status::kQueued || before == Status::kRunning) {
      const std::string next = before == Status::kQueued ? "cancelled" : "cancelling";
      auto r = c.exec("UPDATE jobs SET status = ?, updated_at = ? WHERE id = ? AND status = ?",
                      std::vector<Value>{next, now_seconds(), id, std::string(status_name(before))});
      if (!r) return std::unexpected(r.error());
      if (r->affected_rows != 1) {
        return fail(ErrorCode::kUnavailable, "the job changed meanwhile, try again", std::string(store::kBusyReason));
      }
    }
    return before;
  });
}

}  // namespace llmd::jobs
