#include "tasks/subtitle/subtitle_jobs.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <span>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "billing/meter.h"
#include "billing/reply_allowance.h"
#include "inference/token_estimate.h"
#include "tasks/subtitle/job_state.h"
#include "tasks/subtitle/translate.h"

namespace llmd::subtitle {
namespace {

namespace net = boost::asio;
namespace fs = std::filesystem;
using boost::asio::awaitable;
using nlohmann::json;

constexpr const char* kKind = "subtitle";
constexpr const char* kRoute = "/api/v1/tasks/subtitle";
// A running job's owner touches it this often; a job untouched for
// kStaleSeconds belongs to an instance that is gone and may be taken over.
constexpr auto kHeartbeat = std::chrono::seconds(30);
constexpr std::int64_t kStaleSeconds = 300;

std::int64_t now_seconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

// What the owner of a batch is billed for as its prompt (SPEC §5): the cue
// texts, not the translation instructions, summary and glossary around them.
std::string billed_text(std::span<const Cue> cues) {
  std::string out;
  for (const auto& c : cues) {
    if (!out.empty()) out += '\n';
    out += c.text;
  }
  return out;
}

std::int64_t cues_done(const std::vector<Batch>& batches, std::size_t next_batch) {
  std::int64_t n = 0;
  for (std::size_t i = 0; i < next_batch && i < batches.size(); ++i) n += static_cast<std::int64_t>(batches[i].count);
  return n;
}

// Writes `data` to a new random file in `dir` (temporary name, then rename).
Result<std::string> write_result_file(const std::string& dir, const std::string& ext, const std::string& data) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail(ErrorCode::kUnavailable, "cannot create the results directory", "storage_error");
  const fs::path final_path = fs::path(dir) / (jobs::new_job_id() + ext);
  const fs::path tmp = fs::path(dir) / (".tmp-" + jobs::new_job_id());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    out.flush();
    if (!out) {
      fs::remove(tmp, ec);
      return fail(ErrorCode::kUnavailable, "cannot write the result file", "storage_error");
    }
  }
  fs::rename(tmp, final_path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return fail(ErrorCode::kUnavailable, "cannot write the result file", "storage_error");
  }
  return final_path.string();
}

// The error a failed model call ends a batch with: the gateway's code where
// the translator tells it apart (payment, not found, rate limit, timeout,
// a refused request), otherwise "unavailable".
Error batch_call_error(const inference::CallFailure& f) {
  ErrorCode code = ErrorCode::kUnavailable;
  switch (f.error.code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kPaymentRequired:
    case ErrorCode::kNotFound:
    case ErrorCode::kRateLimited:
    case ErrorCode::kDeadlineExceeded: code = f.error.code; break;
    default: break;
  }
  return Error(code, f.error.message, "model_error");
}

}  // namespace

// ---- the runner ---------------------------------------------------------------

struct SubtitleJobs::Impl : std::enable_shared_from_this<SubtitleJobs::Impl> {
  explicit Impl(SubtitleJobsDeps deps) : d(std::move(deps)) {}

  SubtitleJobsDeps d;
  jobs::JobWatchBoard watches;
  std::atomic<bool> stopping{false};

  struct Pending {
    std::string id;
    bool resumed = false;  // taken up again after a restart: its reservation must be renewed
  };

  std::mutex mutex;
  std::deque<Pending> queue;                                         // guarded by mutex
  int running = 0;                                                   // guarded by mutex
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> active;  // job id -> cancel flag; guarded by mutex

  std::int64_t price(std::int64_t base) const { return base > 0 ? d.pricing.charge(kKind, base, d.model) : 0; }

  // The base tokens of the first batch, reserved when the job is submitted.
  // Estimated, not counted: a submit starts no model. The exact count is
  // reserved for before the batch runs (hold_batch), and a balance short of
  // it ends the job then.
  std::int64_t first_batch_base(const Document& doc) const {
    const auto batches = plan(doc.cues);
    if (batches.empty()) return 0;
    const auto cues = batch_cues(doc, batches.front());
    const std::int64_t text_tokens = inference::estimated_tokens(billed_text(cues));
    return text_tokens + std::min(completion_bound(cues, Context{}), completion_floor(cues));
  }

  // The most completion tokens one batch may ask for.
  std::int64_t completion_bound(std::span<const Cue> batch, const Context& context) const {
    if (d.config.max_tokens_per_batch > 0) return d.config.max_tokens_per_batch;
    return batch_request(batch, context, TranslateOptions{}).value("max_tokens", std::int64_t{0});
  }

  std::span<const Cue> batch_cues(const Document& doc, const Batch& b) const {
    return std::span<const Cue>(doc.cues).subspan(b.first, b.count);
  }

  std::vector<Batch> plan(const std::vector<Cue>& cues) const {
    return plan_batches(cues, d.config.batch_min, d.config.batch_max);
  }

  void enqueue(Pending p) {
    {
      std::lock_guard lock(mutex);
      if (stopping || running >= d.config.concurrency) {
        queue.push_back(std::move(p));
        return;
      }
      ++running;
    }
    spawn(std::move(p));
  }

  void spawn(Pending p) {
    auto self = shared_from_this();
    net::co_spawn(net::make_strand(d.executor()), run(self, std::move(p)), net::detached);
  }

  // One job ended here: the next queued one takes its place.
  void finished_one() {
    std::optional<Pending> next;
    {
      std::lock_guard lock(mutex);
      if (!stopping && !queue.empty()) {
        next = std::move(queue.front());
        queue.pop_front();
      } else {
        --running;
      }
    }
    if (next) spawn(std::move(*next));
  }

  static awaitable<void> run(std::shared_ptr<Impl> self, Pending p) {
    auto flag = std::make_shared<std::atomic<bool>>(false);
    {
      std::lock_guard lock(self->mutex);
      self->active[p.id] = flag;
    }
    try {
      co_await self->run_job(p, *flag);
    } catch (const std::exception& e) {
      self->d.log.error("subtitle job crashed", {{"job_id", p.id}, {"error", e.what()}});
    }
    {
      std::lock_guard lock(self->mutex);
      self->active.erase(p.id);
    }
    self->watches.notify(p.id);
    self->finished_one();
  }

  // Charges a job for the tokens its calls used and writes its usage record
  // (request id = job id): settles its reservation, or, when the reservation
  // is gone (released by a restart or a stale sweep), spends directly as much
  // of the charge as the balance allows. Returns the amount charged.
  Result<std::int64_t> settle_job(const jobs::Job& job, const JobProgress& p, const billing::Reservation& r, int status,
                                  const std::string& instance) {
    auto meter = billing::MeteredCall::adopt(d.accounts, d.pricing, {job.user_id, job.id, kKind, d.model, 0, ""}, r);
    const std::int64_t latency_ms = (now_seconds() - p.started_at) * 1000;
    auto settled = meter.settle({p.prompt_tokens, p.completion_tokens, status, instance, kRoute, latency_ms});
    if (!settled) return std::unexpected(settled.error());
    return settled->charged;
  }

  enum class End { kDone, kFailed, kCancelled, kStopped, kOutOfTokens };

  // One run of a job: what was loaded, and where it stands.
  struct JobRun {
    std::string id;
    jobs::Job job;
    json state;
    JobProgress progress;
    billing::Reservation reservation;
    Result<Document> doc;
    SubtitleJobSpec spec;
    std::vector<Batch> batches;
    std::int64_t total = 0;  // cues
    std::string instance;    // of the last model call
    std::int64_t call_number = 0;
    // The batch running: its reply allowance, and the billed tokens before
    // its next call's reply (the finished batches, its cue tokens, the
    // completions of its calls so far).
    billing::ReplyAllowance* allowance = nullptr;
    std::int64_t batch_billed = 0;
  };

  // How the batches ended.
  struct Ending {
    End end = End::kDone;
    std::string error;
    int status = 500;
  };

  awaitable<void> run_job(const Pending& p, std::atomic<bool>& cancel_flag) {
    std::optional<JobRun> loaded = co_await load(p.id);
    if (!loaded) co_return;
    JobRun& run = *loaded;
    if (p.resumed) {
      const bool renewed = co_await renew_reservation(run);
      if (!renewed) co_return;
    }
    if (run.job.status == jobs::Status::kCancelling) {
      co_await finish_cancelled(run.job, run.progress, run.reservation, "");
      co_return;
    }
    if (!run.doc) {
      co_await finish_failed(run.job, run.progress, run.reservation, run.doc.error().message, 500, "");
      co_return;
    }
    const Ending ending = co_await translate_batches(run, cancel_flag);
    switch (ending.end) {
      case End::kStopped:
        d.log.info("subtitle job paused by shutdown; it resumes at the next start", {{"job_id", run.id}});
        co_return;
      case End::kCancelled: co_await finish_cancelled(run.job, run.progress, run.reservation, run.instance); co_return;
      case End::kFailed:
        co_await finish_failed(run.job, run.progress, run.reservation, ending.error, ending.status, run.instance);
        co_return;
      case End::kOutOfTokens: co_await finish_done(run, ending.error); co_return;
      case End::kDone: break;
    }
    co_await finish_done(run, "");
  }

  // Loads the job and claims it when queued; nothing when it is finished,
  // cannot be loaded, or another instance has it.
  awaitable<std::optional<JobRun>> load(const std::string& id) {
    auto loaded = co_await d.pool.run([&] { return d.store.get_any(id); });
    if (!loaded) {
      d.log.error("cannot load subtitle job", {{"job_id", id}, {"error", loaded.error().message}});
      co_return std::nullopt;
    }
    JobRun run;
    run.id = id;
    run.job = std::move(*loaded);
    jobs::Job& job = run.job;
    if (jobs::is_terminal(job.status)) co_return std::nullopt;
    run.state = job.state;
    run.state["instance"] = d.instance_id;
    if (job.status == jobs::Status::kQueued) {
      if (!run.state.contains("started_at")) run.state["started_at"] = now_seconds();
      auto claimed = co_await d.pool.run([&] { return d.store.claim(id, run.state); });
      if (!claimed || !*claimed) co_return std::nullopt;  // cancelled meanwhile, or another instance has it
      job.status = jobs::Status::kRunning;
    }
    run.progress = progress_from_state(run.state, now_seconds());
    run.reservation = reservation_from_state(run.state, job.user_id, id);
    run.doc = document_from_json(job.input.value("document", json::object()));
    run.spec = spec_from_json(job.input.value("spec", json::object()));
    if (run.doc) run.batches = plan(run.doc->cues);
    if (run.progress.next_batch > run.batches.size() ||
        run.progress.lines.size() != static_cast<std::size_t>(cues_done(run.batches, run.progress.next_batch))) {
      run.progress = JobProgress{};  // the state does not fit the input: start over rather than misalign
      run.progress.started_at = now_seconds();
    }
    run.total = run.doc ? static_cast<std::int64_t>(run.doc->cues.size()) : 0;
    run.call_number = run.progress.model_calls;
    co_return run;
  }

  // A resumed job: the reservation of the previous run was released at
  // startup (or is stale): release it for sure, then hold what the finished
  // batches cost (each next batch grows it). False when that failed (the job
  // has then failed).
  awaitable<bool> renew_reservation(JobRun& run) {
    const jobs::Job& job = run.job;
    auto renewed = co_await d.pool.run([&]() -> Result<billing::Reservation> {
      const billing::MeterOpen held{job.user_id, run.id, kKind, d.model, 0, ""};
      (void)billing::MeteredCall::adopt(d.accounts, d.pricing, held, run.reservation).release();
      if (job.status == jobs::Status::kCancelling || !run.doc) return billing::Reservation{0, job.user_id, 0, run.id};
      billing::MeterOpen used = held;
      used.worst_base_tokens = run.progress.base();
      used.api_key_id = run.reservation.api_key_id;
      auto meter = billing::MeteredCall::open(d.accounts, d.pricing, used);
      if (!meter) return std::unexpected(meter.error());
      return std::move(*meter).keep();  // the job holds it from now on
    });
    if (!renewed) {
      const std::string message = renewed.error().code == ErrorCode::kPaymentRequired
                                      ? "not enough tokens to resume the job: " + renewed.error().message
                                      : "the job could not be resumed";
      const billing::Reservation nothing_held{0, job.user_id, 0, run.id};
      co_await finish_failed(job, run.progress, nothing_held, message, 402, "");
      co_return false;
    }
    run.reservation = *renewed;
    run.state["reservation"] = reservation_json(run.reservation);
    (void)co_await d.pool.run([&] { return d.store.set_reservation(run.id, run.reservation.id, run.state); });
    d.log.info("subtitle job resumed", {{"job_id", run.id},
                                        {"batch", run.progress.next_batch},
                                        {"batches", run.batches.size()},
                                        {"reserved", run.reservation.amount}});
    co_return true;
  }

  // The batches' model calls go through the gateway (balancer, retry on
  // another instance) like a client's would; a stopping or cancelled job
  // makes no more calls.
  ModelCall model_call(JobRun& run, std::atomic<bool>& cancel_flag) {
    return [this, &run, &cancel_flag](const json& chat) -> awaitable<Result<ModelReply>> {
      if (cancel_flag.load() || stopping.load()) {
        co_return fail(ErrorCode::kUnavailable, "the job is stopping", "cancelled");
      }
      inference::ChatRequest request = inference::chat_request_from_json(chat);
      request.model = d.model;
      if (d.log.enabled(observe::LogLevel::kDebug)) {
        const json format = request.response_format.is_null() ? json::object() : request.response_format;
        d.log.debug("subtitle batch call", {{"job_id", run.id}, {"response_format", format}});
      }
      const inference::CallTag tag{run.id + "-" + std::to_string(++run.call_number), run.job.user_id};
      inference::CallResult<inference::ChatReply> reply =
          co_await d.models.chat_streamed(request, tag, run.allowance->watch(run.batch_billed));
      if (!reply) {
        run.instance = reply.error().instance;
        co_return std::unexpected(batch_call_error(reply.error()));
      }
      run.instance = reply->instance;
      run.batch_billed += reply->usage.completion_tokens;
      if (run.allowance->stopped()) {
        // The balance ran out mid-reply: the job ends with the batches done
        // (this one is not, and is not charged).
        co_return fail(ErrorCode::kPaymentRequired, "the balance ran out during a batch", "insufficient_tokens");
      }
      co_return ModelReply{reply->content, reply->usage.prompt_tokens, reply->usage.completion_tokens};
    };
  }

  // The Grow of a batch's ReplyAllowance: the job's reservation, grown on
  // the pool while the I/O side waits (so `run` is not touched meanwhile).
  billing::ReplyAllowance::Grow cover_job(JobRun& run) {
    return [this, &run](std::int64_t wanted, std::int64_t needed) -> Result<std::int64_t> {
      const billing::MeterOpen what{run.job.user_id, run.id, kKind, d.model, 0, ""};
      auto covered = billing::cover(d.accounts, d.pricing, what, run.reservation, wanted, needed);
      if (!covered) return std::unexpected(covered.error());
      run.reservation = covered->held;
      return covered->base;
    };
  }

  // The batch's cue texts counted by the model's tokenizer.
  awaitable<Result<std::int64_t>> billed_tokens(JobRun& run, std::span<const Cue> cues) {
    const std::string text = billed_text(cues);
    const inference::CallTag tag{run.id + "-count-" + std::to_string(run.progress.next_batch), run.job.user_id};
    inference::CallResult<std::int64_t> counted = co_await d.models.count_tokens(d.model, text, tag);
    if (!counted) co_return std::unexpected(batch_call_error(counted.error()));
    co_return *counted;
  }

  // Grows the job's reservation to pay for what the finished batches used
  // plus this batch: its billed cue tokens and the first allowance of its
  // reply (the batch's floor, at most its bound), or (the balance is short)
  // as much of it as the balance pays. A reservation a stale sweep released
  // is held anew. Returns the completion tokens reserved; kPaymentRequired
  // when not even the floor fits (the reservation is then unchanged). The
  // reply's allowance grows from there as it streams (ReplyAllowance).
  awaitable<Result<std::int64_t>> hold_batch(JobRun& run, std::span<const Cue> cues, std::int64_t billed) {
    const billing::MeterOpen what{run.job.user_id, run.id, kKind, d.model, 0, ""};
    const std::int64_t bound = completion_bound(cues, run.progress.context);
    const std::int64_t first = std::min(bound, completion_floor(cues));
    const billing::FitRequest fit{billed, first, first};
    const std::int64_t used = run.progress.base();
    auto grown = co_await d.pool.run([&]() -> Result<billing::Grown> {
      auto g = billing::grow_fitted(d.accounts, d.pricing, what, run.reservation, used, fit);
      if (g || g.error().code != ErrorCode::kConflict) return g;
      auto fresh = d.accounts.reserve(run.job.user_id, 0, run.id);
      if (!fresh) return std::unexpected(fresh.error());
      auto regrown = billing::grow_fitted(d.accounts, d.pricing, what, *fresh, used, fit);
      if (!regrown) (void)d.accounts.release(*fresh);
      return regrown;
    });
    if (!grown) co_return std::unexpected(grown.error());
    if (grown->held.id != run.reservation.id) {
      run.state["reservation"] = reservation_json(grown->held);
      (void)co_await d.pool.run([&] { return d.store.set_reservation(run.id, grown->held.id, run.state); });
    }
    run.reservation = grown->held;
    if (grown->clamped) {
      d.log.info("subtitle batch allowance lowered to the balance", {{"job_id", run.id},
                                                                     {"batch", run.progress.next_batch},
                                                                     {"max_tokens", grown->max_completion},
                                                                     {"bound", bound}});
    }
    co_return grown->max_completion;
  }

  // Translates the batches from progress.next_batch on, saving the progress
  // after each, until the end, a failure, a cancel or a shutdown.
  awaitable<Ending> translate_batches(JobRun& run, std::atomic<bool>& cancel_flag) {
    const ModelCall call = model_call(run, cancel_flag);
    TranslateOptions options;
    options.source_lang = run.spec.source_lang;
    options.target_lang = run.spec.target_lang;

    Ending out;
    JobProgress& progress = run.progress;
    // A shutdown (stop, resumable) wins over a cancel; either ends the loop.
    const auto interruption = [&]() -> std::optional<End> {
      if (stopping.load()) return End::kStopped;
      if (cancel_flag.load()) return End::kCancelled;
      return std::nullopt;
    };
    for (std::size_t k = progress.next_batch; k < run.batches.size(); ++k) {
      if (const auto why = interruption()) {
        out.end = *why;
        break;
      }
      const auto cues = batch_cues(*run.doc, run.batches[k]);
      const auto billed = co_await billed_tokens(run, cues);
      if (!billed) {
        out = Ending{End::kFailed, billed.error().message, 500};
        break;
      }
      // The balance pays for this batch before it runs, or the job ends here.
      const Result<std::int64_t> allowance = co_await hold_batch(run, cues, *billed);
      if (!allowance) {
        if (allowance.error().code == ErrorCode::kPaymentRequired) {
          out = Ending{End::kOutOfTokens, allowance.error().message, 402};
        } else {
          out = Ending{End::kFailed, "the job's reservation could not be extended", 500};
        }
        break;
      }
      const std::int64_t bound = completion_bound(cues, progress.context);
      options.max_tokens_per_batch = static_cast<int>(bound);
      run.batch_billed = progress.base() + *billed;
      billing::ReplyAllowance reply_allowance(d.pool, cover_job(run), run.batch_billed + *allowance, bound);
      run.allowance = &reply_allowance;
      Context context = progress.context;  // kept unchanged if this batch is discarded
      auto batch = co_await translate_batch(cues, context, options, call);
      run.allowance = nullptr;
      // A stop or cancel during the batch may have cut its calls short: its
      // result is discarded (a resumed job redoes the batch).
      if (const auto why = interruption()) {
        out.end = *why;
        break;
      }
      if (!batch) {
        const bool out_of_tokens = batch.error().code == ErrorCode::kPaymentRequired;
        out =
            Ending{out_of_tokens ? End::kOutOfTokens : End::kFailed, batch.error().message, out_of_tokens ? 402 : 500};
        break;
      }
      if (batch->lines.size() != cues.size()) {
        out = Ending{End::kFailed, "the translation of a batch lost lines", 500};
        break;
      }
      for (std::size_t i = 0; i < batch->lines.size(); ++i) progress.lines.push_back(std::move(batch->lines[i]));
      for (std::size_t i : batch->kept_source) {
        progress.kept_source.push_back(static_cast<std::int64_t>(run.batches[k].first + i));
      }
      progress.prompt_tokens += *billed;  // the cue texts, whatever the batch's calls sent around them
      progress.completion_tokens += batch->completion_tokens;
      progress.model_calls = run.call_number;
      progress.context = std::move(context);
      progress.next_batch = k + 1;
      progress_to_state(progress, run.state);
      run.state["reservation"] = reservation_json(run.reservation);
      const std::int64_t done = cues_done(run.batches, progress.next_batch);
      auto saved = co_await d.pool.run([&] { return d.store.save_progress(run.id, done, run.total, run.state); });
      if (saved && !*saved) {  // no longer running: cancelled through another instance
        out.end = End::kCancelled;
        break;
      }
      if (!saved) {
        d.log.warn("saving subtitle job progress failed", {{"job_id", run.id}, {"error", saved.error().message}});
      }
      watches.notify(run.id);
    }
    progress.model_calls = run.call_number;
    co_return out;
  }

  // All batches done, or (`out_of_tokens` says why) the balance could not
  // pay for the next one: writes the result file (the finished cues), charges
  // and marks the job done or insufficient_tokens.
  awaitable<void> finish_done(JobRun& run, const std::string& out_of_tokens) {
    const std::string& id = run.id;
    const JobProgress& progress = run.progress;
    const bool partial = !out_of_tokens.empty();
    // A partial result renders the finished cues only (a copy, made only then).
    std::optional<Document> finished_part;
    if (partial) {
      finished_part = *run.doc;
      finished_part->cues.resize(std::min(finished_part->cues.size(), progress.lines.size()));
    }
    const Document& rendered = finished_part ? *finished_part : *run.doc;
    OutputOptions out_options;
    out_options.format = run.spec.output_format;
    out_options.bilingual = run.spec.bilingual;
    out_options.target_first = run.spec.target_first;
    out_options.max_line_chars = run.spec.max_line_chars;
    out_options.target_lang = run.spec.target_lang;
    const std::string ext(file_extension(run.spec.output_format));
    auto written = co_await d.pool.run([&]() -> Result<std::string> {
      if (rendered.cues.empty()) return std::string();  // nothing finished: no result file
      const std::string text = render_translation(rendered, progress.lines, out_options);
      return write_result_file(d.results_dir, ext, text);
    });
    if (!written) {
      co_await finish_failed(run.job, progress, run.reservation, written.error().message, 500, run.instance);
      co_return;
    }
    const std::string path = *written;
    progress_to_state(progress, run.state);
    const std::string why = partial
                                ? "not enough tokens for the rest: " + std::to_string(progress.lines.size()) + " of " +
                                      std::to_string(run.total) + " cues were translated (" + out_of_tokens + ")"
                                : std::string();
    auto finished = co_await d.pool.run([&]() -> Result<std::int64_t> {
      auto charged = settle_job(run.job, progress, run.reservation, partial ? 402 : 200, run.instance);
      if (!charged) return charged;
      auto ok = partial ? d.store.finish_partial(id, path, *charged, run.state, why)
                        : d.store.finish(id, path, *charged, run.state);
      if (ok && !*ok) {
        // Cancelled at the very end: the work was done and is paid for, but
        // the owner asked not to have it.
        std::error_code ec;
        fs::remove(path, ec);
        (void)d.store.mark_cancelled(id, *charged);
      } else if (!ok) {
        return std::unexpected(ok.error());
      }
      return charged;
    });
    if (!finished) {
      d.log.error("finishing subtitle job failed", {{"job_id", id}, {"error", finished.error().message}});
    } else {
      d.log.info(partial ? "subtitle job stopped: insufficient tokens" : "subtitle job done",
                 {{"job_id", id},
                  {"cues", run.total},
                  {"translated", progress.lines.size()},
                  {"model_calls", progress.model_calls},
                  {"kept_source", progress.kept_source.size()},
                  {"tokens", *finished}});
    }
    watches.notify(id);
  }

  awaitable<void> finish_cancelled(const jobs::Job& job, const JobProgress& progress,
                                   const billing::Reservation& reservation, const std::string& instance) {
    auto r = co_await d.pool.run([&]() -> Result<std::int64_t> {
      auto charged = settle_job(job, progress, reservation, 499, instance);
      if (!charged) return charged;
      LLMD_TRY(d.store.mark_cancelled(job.id, *charged));
      return charged;
    });
    if (!r)
      d.log.error("cancelling subtitle job failed", {{"job_id", job.id}, {"error", r.error().message}});
    else
      d.log.info("subtitle job cancelled", {{"job_id", job.id}, {"tokens", *r}});
    watches.notify(job.id);
  }

  awaitable<void> finish_failed(const jobs::Job& job, const JobProgress& progress,
                                const billing::Reservation& reservation, const std::string& message, int status,
                                const std::string& instance) {
    auto r = co_await d.pool.run([&]() -> Result<std::int64_t> {
      auto charged = settle_job(job, progress, reservation, status, instance);
      const std::int64_t paid = charged ? *charged : 0;
      LLMD_TRY(d.store.mark_failed(job.id, message, paid));
      return paid;
    });
    if (!r)
      d.log.error("failing subtitle job failed", {{"job_id", job.id}, {"error", r.error().message}});
    else
      d.log.warn("subtitle job failed", {{"job_id", job.id}, {"error", message}, {"tokens", *r}});
    watches.notify(job.id);
  }

  // The owner's heartbeat on the jobs this instance runs or holds queued.
  static awaitable<void> heartbeat_loop(std::shared_ptr<Impl> self) {
    net::steady_timer timer(co_await net::this_coro::executor);
    while (!self->stopping.load()) {
      timer.expires_after(kHeartbeat);
      boost::system::error_code ec;
      co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
      if (self->stopping.load()) break;
      std::vector<std::string> ids;
      {
        std::lock_guard lock(self->mutex);
        for (const auto& [id, flag] : self->active) ids.push_back(id);
        for (const auto& q : self->queue) ids.push_back(q.id);
      }
      co_await self->d.pool.run([&] {
        for (const auto& id : ids) (void)self->d.store.heartbeat(id);
      });
    }
  }
};

SubtitleJobs::SubtitleJobs(SubtitleJobsDeps deps) : impl_(std::make_shared<Impl>(std::move(deps))) {}

SubtitleJobs::~SubtitleJobs() { stop(); }

jobs::JobWatchBoard& SubtitleJobs::watches() { return impl_->watches; }

void SubtitleJobs::start() {
  Impl& s = *impl_;
  // Runs before the server accepts requests, so no job submitted by this
  // run can be mistaken for one to resume.
  auto unfinished = s.d.store.unfinished(kKind);
  if (!unfinished) {
    s.d.log.error("cannot list unfinished subtitle jobs", {{"error", unfinished.error().message}});
  } else {
    int resumed = 0;
    for (auto& job : *unfinished) {
      const bool mine = job.state.value("instance", std::string()) == s.d.instance_id;
      const bool stale = job.updated_at < now_seconds() - kStaleSeconds;
      if (!mine && !stale) continue;  // another live instance runs it
      if (job.status != jobs::Status::kQueued) {
        json state = job.state;
        state["instance"] = s.d.instance_id;
        auto taken = s.d.store.take_over(job.id, job.updated_at, state);
        if (!taken || !*taken) continue;
      }
      s.enqueue({job.id, true});
      ++resumed;
    }
    if (resumed > 0) s.d.log.info("resuming subtitle jobs", {{"count", resumed}});
  }
  net::co_spawn(net::make_strand(s.d.executor()), Impl::heartbeat_loop(impl_), net::detached);
}

void SubtitleJobs::stop() { impl_->stopping.store(true); }

std::int64_t SubtitleJobs::first_batch_reservation(const Document& doc) const {
  return impl_->price(impl_->first_batch_base(doc));
}

awaitable<Result<jobs::Job>> SubtitleJobs::submit(std::int64_t user_id, const Document& doc,
                                                  const SubtitleJobSpec& spec, const std::string& request_id,
                                                  std::optional<std::int64_t> api_key_id) {
  Impl& s = *impl_;
  if (doc.cues.empty()) co_return fail(ErrorCode::kUnprocessable, "the subtitles contain no cues", "no_cues");
  if (doc.cues.size() > static_cast<std::size_t>(s.d.config.max_cues)) {
    co_return fail(
        ErrorCode::kUnprocessable,
        "too many cues: " + std::to_string(doc.cues.size()) + " (at most " + std::to_string(s.d.config.max_cues) + ")",
        "too_many_cues");
  }
  if (s.d.model.empty()) {
    co_return fail(ErrorCode::kUnavailable,
                   "subtitle translation needs a model (tasks.subtitle.model or models.default_model)",
                   "model_unavailable");
  }
  const billing::MeterOpen first{user_id, request_id, kKind, s.d.model, s.first_batch_base(doc), "", api_key_id};
  const std::int64_t worst = first_batch_reservation(doc);
  json input = json::object();
  input["spec"] = spec_to_json(spec);
  input["document"] = document_to_json(doc);
  const std::int64_t total = static_cast<std::int64_t>(doc.cues.size());
  auto created = co_await s.d.pool.run([&]() -> Result<jobs::Job> {
    auto meter = billing::MeteredCall::open(s.d.accounts, s.d.pricing, first);
    if (!meter) return std::unexpected(meter.error());
    const std::optional<billing::Reservation> held = std::move(*meter).keep();
    json state = json::object();
    state["instance"] = s.d.instance_id;
    state["reservation"] = reservation_json(*held);
    auto job = s.d.store.create(user_id, kKind, input, state, total, held->id);
    if (!job) (void)s.d.accounts.release(*held);  // no job, no hold
    return job;
  });
  if (!created) co_return std::unexpected(created.error());
  s.d.log.info("subtitle job accepted", {{"job_id", created->id},
                                         {"request_id", request_id},
                                         {"cues", total},
                                         {"reserved", worst},
                                         {"source", spec.source}});
  s.enqueue({created->id, false});
  co_return created;
}

awaitable<Result<jobs::Job>> SubtitleJobs::cancel(const std::string& id, std::int64_t user_id) {
  Impl& s = *impl_;
  auto result = co_await s.d.pool.run([&]() -> Result<jobs::Job> {
    auto before = s.d.store.request_cancel(id, user_id);
    if (!before) return std::unexpected(before.error());
    if (*before == jobs::Status::kQueued) {
      // Nobody runs it: release its reservation here.
      auto job = s.d.store.get(id, user_id);
      if (job) {
        const auto r = reservation_from_state(job->state, user_id, id);
        (void)billing::MeteredCall::adopt(s.d.accounts, s.d.pricing, {user_id, id, kKind, s.d.model, 0, ""}, r)
            .release();
      }
    }
    return s.d.store.get(id, user_id);
  });
  if (!result) co_return std::unexpected(result.error());
  {
    std::lock_guard lock(s.mutex);
    if (auto it = s.active.find(id); it != s.active.end()) it->second->store(true);
  }
  s.watches.notify(id);
  co_return result;
}

// ---- views ------------------------------------------------------------------

bool has_result(const jobs::Job& job) {
  return (job.status == jobs::Status::kDone || job.status == jobs::Status::kOutOfTokens) && !job.result_path.empty();
}

json job_json(const jobs::Job& job) {
  const std::int64_t total = job.progress_total;
  const std::int64_t done = std::min(job.progress_done, total);
  const double percent =
      total > 0 ? std::floor(1000.0 * static_cast<double>(done) / static_cast<double>(total)) / 10.0 : 0.0;
  json out = {{"job_id", job.id},
              {"kind", job.kind},
              {"status", std::string(jobs::status_name(job.status))},
              {"progress", {{"done", done}, {"total", total}, {"percent", percent}}},
              {"created_at", job.created_at},
              {"updated_at", job.updated_at}};
  // The languages as resolved (canonical tags: "英文" was stored as "en").
  const json spec = job.input.value("spec", json::object());
  out["source_lang"] = spec.value("source_lang", std::string("auto"));
  out["target_lang"] = spec.value("target_lang", std::string());
  if (has_result(job)) {
    json kept = json::array();
    if (auto it = job.state.find("kept_source"); it != job.state.end() && it->is_array()) kept = *it;
    // insufficient_tokens: the result holds the cues translated before the balance ran out.
    out["result"] = {{"download_url", "/api/v1/jobs/" + job.id + "/result"},
                     {"cues", job.status == jobs::Status::kDone ? total : done},
                     {"kept_source", kept},
                     {"tokens_consumed", job.tokens_charged}};
  }
  if (jobs::is_terminal(job.status) && job.status != jobs::Status::kDone) out["tokens_consumed"] = job.tokens_charged;
  if (!job.error.empty()) out["error"] = job.error;
  return out;
}

std::string result_file_name(const jobs::Job& job) {
  const SubtitleJobSpec spec = spec_from_json(job.input.value("spec", json::object()));
  // Only [A-Za-z0-9._-] survive: the name goes into a header.
  auto safe = [](const std::string& s, std::size_t max) {
    std::string out;
    for (char c : s) {
      if (out.size() >= max) break;
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '_' || c == '.';
      out += ok ? c : '_';
    }
    while (!out.empty() && (out.front() == '.' || out.front() == '_')) out.erase(out.begin());
    return out;
  };
  std::string stem = fs::path(spec.source_name).stem().string();
  stem = safe(stem, 80);
  if (stem.empty()) stem = "subtitles-" + job.id.substr(0, 8);
  std::string lang = safe(spec.target_lang, 16);
  return stem + (lang.empty() ? "" : "." + lang) + std::string(file_extension(spec.output_format));
}

}  // namespace llmd::subtitle
