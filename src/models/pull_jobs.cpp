#include "models/pull_jobs.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <stop_token>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/random_id.h"
#include "models/catalog.h"

namespace llmd::models {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string_view pull_state_name(PullState state) {
  switch (state) {
    case PullState::kQueued: return "queued";
    case PullState::kResolving: return "resolving";
    case PullState::kDownloading: return "downloading";
    case PullState::kDone: return "done";
    case PullState::kFailed: return "failed";
    case PullState::kCancelled: return "cancelled";
  }
  return "failed";
}

namespace {

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Bytes per second over a sliding window of about three seconds.
class RateMeter {
 public:
  double update(std::uint64_t bytes, Clock::time_point now) {
    samples_.push_back({now, bytes});
    while (samples_.size() > 2 && now - samples_.front().at > std::chrono::seconds(3)) samples_.pop_front();
    const auto& first = samples_.front();
    const double seconds = std::chrono::duration<double>(now - first.at).count();
    if (seconds < 0.2) return rate_;
    rate_ = static_cast<double>(bytes - std::min(bytes, first.bytes)) / seconds;
    return rate_;
  }

 private:
  struct Sample {
    Clock::time_point at;
    std::uint64_t bytes;
  };
  std::deque<Sample> samples_;
  double rate_ = 0;
};

}  // namespace

Result<std::vector<PlannedFile>> plan_pull(const PullSpec& spec, const DownloadOptions& base, const HubAccess& hub) {
  std::vector<PlannedFile> files;
  if (!spec.source.starts_with("hf:")) {
    PlannedFile f{base, spec.source, 0};
    f.download.url = spec.source;
    f.download.file_name = spec.name;
    f.download.sha256 = spec.sha256;
    if (f.download.file_name.empty()) {
      auto name = file_name_from_url(spec.source);
      if (!name) return std::unexpected(name.error());
      f.download.file_name = *name;
    }
    files.push_back(std::move(f));
    return files;
  }
  auto ref = parse_hub_ref(spec.source);
  if (!ref) return std::unexpected(ref.error());
  auto info = fetch_model_info(hub, *ref);
  if (!info) return std::unexpected(info.error());
  auto chosen = choose_files(*info, *ref);
  if (!chosen) return std::unexpected(chosen.error());
  if (chosen->size() > 1 && (!spec.name.empty() || !spec.sha256.empty())) {
    return fail(ErrorCode::kInvalidArgument, "name and sha256 apply to one file; " + ref->repo + " gives " +
                                                 std::to_string(chosen->size()) + " parts");
  }
  for (const auto& c : *chosen) {
    PlannedFile f{base, c.path, c.size};
    f.download.url = resolve_url(hub.endpoint, *ref, c.path);
    f.download.file_name = spec.name.empty() ? c.name : spec.name;
    f.download.sha256 = spec.sha256.empty() ? c.sha256 : spec.sha256;
    f.download.bearer_token = hub.token;
    files.push_back(std::move(f));
  }
  return files;
}

struct PullJobs::Impl {
  struct Entry {
    PullJob job;
    std::stop_source stop;  // cancel
  };

  PullJobsOptions options;
  observe::Logger log;
  fs::path records;  // models_dir/.pulls

  mutable std::mutex mutex;
  std::condition_variable_any wake;
  std::map<std::string, Entry> jobs;  // guarded by mutex
  std::deque<std::string> queue;      // guarded by mutex
  std::jthread thread;                // last: stopped and joined first

  Impl(PullJobsOptions o, observe::Logger l)
      : options(std::move(o)), log(std::move(l)), records(options.models_dir / ".pulls") {}

  // --- records of unfinished jobs (for a restart) -------------------------

  fs::path record_path(const std::string& id) const { return records / (id + ".json"); }

  void write_record(const PullJob& job) const {
    const json j{{"id", job.id},
                 {"source", job.spec.source},
                 {"name", job.spec.name},
                 {"sha256", job.spec.sha256},
                 {"created_at", job.created_at}};
    const fs::path path = record_path(job.id), tmp = path.string() + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << j.dump();
      if (!out) {
        log.warn("cannot write a pull record", {{"path", tmp.string()}});
        return;
      }
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
  }

  void remove_record(const std::string& id) const {
    std::error_code ec;
    fs::remove(record_path(id), ec);
  }

  std::vector<PullJob> read_records() const {
    std::vector<PullJob> out;
    std::error_code ec;
    for (fs::directory_iterator it(records, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().extension() != ".json") continue;
      std::ifstream in(it->path());
      const json j = json::parse(in, nullptr, false);
      if (!j.is_object() || !j.value("id", std::string()).starts_with("pull_")) {
        log.warn("ignoring an unreadable pull record", {{"path", it->path().string()}});
        continue;
      }
      PullJob job;
      job.id = j.value("id", "");
      job.spec = {j.value("source", ""), j.value("name", ""), j.value("sha256", "")};
      job.created_at = j.value("created_at", std::int64_t{0});
      out.push_back(std::move(job));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.created_at < b.created_at; });
    return out;
  }

  // --- the jobs ------------------------------------------------------------

  void enqueue(PullJob job) {
    const std::string id = job.id;
    jobs[id].job = std::move(job);
    queue.push_back(id);
    wake.notify_all();
  }

  // Changes job `id` under the lock.
  template <typename F>
  void update(const std::string& id, F&& change) {
    std::lock_guard lock(mutex);
    auto it = jobs.find(id);
    if (it == jobs.end()) return;
    change(it->second.job);
    ++it->second.job.version;
  }

  void drop_old_finished() {  // under the lock
    std::vector<const PullJob*> finished;
    for (const auto& [id, e] : jobs) {
      if (is_finished(e.job.state)) finished.push_back(&e.job);
    }
    if (finished.size() <= options.keep_finished) return;
    std::sort(finished.begin(), finished.end(), [](auto* a, auto* b) { return a->created_at < b->created_at; });
    std::vector<std::string> gone;
    for (std::size_t i = 0; i + options.keep_finished < finished.size(); ++i) gone.push_back(finished[i]->id);
    for (const auto& id : gone) jobs.erase(id);
  }

  void run_worker(std::stop_token service) {
    while (true) {
      std::string id;
      std::stop_token cancel;
      {
        std::unique_lock lock(mutex);
        if (!wake.wait(lock, service, [&] { return !queue.empty(); })) return;
        id = queue.front();
        queue.pop_front();
        cancel = jobs[id].stop.get_token();
      }
      run_job(id, cancel, service);
    }
  }

  void delete_parts(const std::vector<std::string>& files) const {
    std::error_code ec;
    for (const auto& f : files) {
      fs::remove(options.models_dir / (f + ".part"), ec);
      fs::remove(options.models_dir / (f + ".part.json"), ec);
    }
  }

  void finish(const std::string& id, PullState state, const Error* error = nullptr) {
    update(id, [&](PullJob& j) {
      j.state = state;
      j.bytes_per_second = 0;
      j.eta_seconds.reset();
      if (error) {
        j.error = error->message;
        j.error_reason = error->reason;
      }
    });
    std::lock_guard lock(mutex);
    drop_old_finished();
  }

  void run_job(const std::string& id, std::stop_token cancel, std::stop_token service) {
    PullSpec spec;
    {
      std::lock_guard lock(mutex);
      spec = jobs[id].job.spec;
    }
    // One stop for the transfer: the job's cancel or the service's end.
    std::stop_source transfer;
    std::stop_callback on_cancel(cancel, [&] { transfer.request_stop(); });
    std::stop_callback on_shutdown(service, [&] { transfer.request_stop(); });

    update(id, [](PullJob& j) { j.state = PullState::kResolving; });
    DownloadOptions base;
    base.dir = options.models_dir;
    base.allow_private_redirects = options.allow_private_redirects;
    auto planned = plan_pull(spec, base, options.hub);
    if (!planned) {
      log.warn("model pull failed", {{"id", id}, {"source", spec.source}, {"error", planned.error().message}});
      remove_record(id);
      finish(id, PullState::kFailed, &planned.error());
      return;
    }
    std::uint64_t total = 0;
    std::vector<std::string> names;
    for (const auto& f : *planned) {
      total += f.size;
      names.push_back(f.download.file_name);
    }
    update(id, [&](PullJob& j) {
      j.state = PullState::kDownloading;
      j.files = names;
      j.model = split_name(names.front()).model;  // the catalog's name for it
      j.total = total;
    });
    log.info("model pull started", {{"id", id}, {"source", spec.source}, {"files", names}});

    std::uint64_t finished_bytes = 0;  // files done before the current one
    RateMeter rate;
    for (auto& f : *planned) {
      std::error_code ec;
      if (planned->size() > 1 && fs::exists(options.models_dir / f.download.file_name, ec)) {
        finished_bytes += fs::file_size(options.models_dir / f.download.file_name, ec);  // an earlier run's part
        continue;
      }
      f.download.stop = transfer.get_token();
      f.download.on_progress = [&](std::uint64_t done, std::uint64_t file_total) {
        const std::uint64_t all = finished_bytes + done;
        const double bps = rate.update(all, Clock::now());
        update(id, [&](PullJob& j) {
          j.done = all;
          if (total == 0 && file_total > 0) j.total = finished_bytes + file_total;
          j.bytes_per_second = bps;
          if (bps > 0 && j.total > all) {
            j.eta_seconds = static_cast<double>(j.total - all) / bps;
          } else {
            j.eta_seconds.reset();
          }
        });
      };
      auto result = download_model(f.download);
      if (!result) {
        if (result.error().reason == "cancelled" && service.stop_requested() && !cancel.stop_requested()) {
          log.info("model pull paused for shutdown", {{"id", id}, {"file", f.download.file_name}});
          return;  // the record stays: the next start resumes it
        }
        remove_record(id);
        if (result.error().reason == "cancelled") {
          delete_parts(names);
          log.info("model pull cancelled", {{"id", id}});
          finish(id, PullState::kCancelled);
        } else {
          log.warn("model pull failed", {{"id", id}, {"source", spec.source}, {"error", result.error().message}});
          finish(id, PullState::kFailed, &result.error());
        }
        return;
      }
      finished_bytes += result->size;
      update(id, [&](PullJob& j) {
        j.resumed_from += result->resumed_from;
        j.done = finished_bytes;
      });
    }
    remove_record(id);
    update(id, [&](PullJob& j) {
      if (j.total < finished_bytes) j.total = finished_bytes;
    });
    log.info("model pull done", {{"id", id}, {"files", names}, {"bytes", finished_bytes}});
    finish(id, PullState::kDone);
  }
};

PullJobs::PullJobs(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PullJobs::~PullJobs() {
  if (impl_->thread.joinable()) {
    impl_->thread.request_stop();
    impl_->thread.join();
  }
}

Result<std::unique_ptr<PullJobs>> PullJobs::create(PullJobsOptions options, observe::Logger log) {
  auto impl = std::make_unique<Impl>(std::move(options), std::move(log));
  std::error_code ec;
  fs::create_directories(impl->records, ec);
  if (ec) {
    return fail(ErrorCode::kUnavailable, "cannot create " + impl->records.string() + ": " + ec.message());
  }
  for (auto& job : impl->read_records()) {
    impl->log.info("resuming a model pull", {{"id", job.id}, {"source", job.spec.source}});
    impl->enqueue(std::move(job));
  }
  Impl* raw = impl.get();
  impl->thread = std::jthread([raw](std::stop_token st) { raw->run_worker(st); });
  return std::unique_ptr<PullJobs>(new PullJobs(std::move(impl)));
}

Result<PullJob> PullJobs::start(PullSpec spec) {
  if (spec.source.starts_with("hf:")) {
    auto ref = parse_hub_ref(spec.source);
    if (!ref) return std::unexpected(ref.error());
  } else if (spec.name.empty()) {
    auto name = file_name_from_url(spec.source);
    if (!name) return std::unexpected(name.error());
  } else if (auto url = check_download_url(spec.source); !url) {
    return std::unexpected(url.error());
  }
  if (!spec.name.empty() && !is_valid_model_file_name(spec.name)) {
    return fail(ErrorCode::kInvalidArgument, "name must be NAME.gguf of letters, digits and ._-+", "bad_file_name");
  }
  if (!spec.sha256.empty() && !is_valid_sha256(spec.sha256)) {
    return fail(ErrorCode::kInvalidArgument, "sha256 must be 64 hex digits", "bad_sha256");
  }
  std::lock_guard lock(impl_->mutex);
  for (const auto& [id, e] : impl_->jobs) {
    if (!is_finished(e.job.state) && e.job.spec.source == spec.source) {
      return fail(ErrorCode::kConflict, spec.source + " is being pulled already (" + id + ")", "pull_running");
    }
  }
  PullJob job;
  job.id = "pull_" + core::random_hex(8);
  job.spec = std::move(spec);
  job.created_at = unix_now();
  impl_->write_record(job);
  PullJob copy = job;
  impl_->enqueue(std::move(job));
  return copy;
}

std::vector<PullJob> PullJobs::list() const {
  std::lock_guard lock(impl_->mutex);
  std::vector<PullJob> out;
  for (const auto& [id, e] : impl_->jobs) out.push_back(e.job);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.created_at != b.created_at ? a.created_at > b.created_at : a.id > b.id;
  });
  return out;
}

Result<PullJob> PullJobs::get(const std::string& id) const {
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->jobs.find(id);
  if (it == impl_->jobs.end()) return fail(ErrorCode::kNotFound, "no such pull: " + id, "pull_not_found");
  return it->second.job;
}

Result<PullJob> PullJobs::cancel(const std::string& id) {
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->jobs.find(id);
  if (it == impl_->jobs.end()) return fail(ErrorCode::kNotFound, "no such pull: " + id, "pull_not_found");
  Impl::Entry& e = it->second;
  if (is_finished(e.job.state)) return e.job;
  if (auto q = std::find(impl_->queue.begin(), impl_->queue.end(), id); q != impl_->queue.end()) {
    impl_->queue.erase(q);
    // Not started in this run; one queued again after a restart may have a
    // part (named by its URL; a Hub name's files are known once resolved,
    // and such a part stays for a later pull to resume).
    if (!e.job.spec.source.starts_with("hf:")) {
      auto name =
          e.job.spec.name.empty() ? file_name_from_url(e.job.spec.source) : Result<std::string>(e.job.spec.name);
      if (name) impl_->delete_parts({*name});
    }
    impl_->remove_record(id);
    e.job.state = PullState::kCancelled;
    ++e.job.version;
    return e.job;
  }
  e.stop.request_stop();  // the worker deletes the parts and marks it cancelled
  return e.job;
}

}  // namespace llmd::models
