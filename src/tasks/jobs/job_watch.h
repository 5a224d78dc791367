// In-process wake-ups for job progress listeners (the SSE route): a runner
// calls notify(job_id) after each change it persisted; a listener waits on
// its Watch until then or until a timeout, and re-reads the job from the
// database either way. The database stays the source of truth, so a job run
// by another backend instance still reports progress (through the timeout).
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

namespace llmd::jobs {

class JobWatch {
 public:
  explicit JobWatch(boost::asio::any_io_executor executor) : executor_(executor), timer_(executor) {}
  // Returns after a notify() since the last wait, or after `timeout`. Only
  // from coroutines on the executor given at construction.
  boost::asio::awaitable<void> wait(std::chrono::milliseconds timeout);

 private:
  friend class JobWatchBoard;
  static void wake(const std::shared_ptr<JobWatch>& self);  // any thread

  boost::asio::any_io_executor executor_;
  boost::asio::steady_timer timer_;  // touched only on executor_
  std::atomic<bool> pending_{false};
};

class JobWatchBoard {
 public:
  // A watch for `job_id` that wakes on notify(job_id) while the caller keeps it.
  std::shared_ptr<JobWatch> watch(const std::string& job_id, boost::asio::any_io_executor executor);
  // Wakes every live watch of the job. Thread-safe.
  void notify(const std::string& job_id);

 private:
  std::mutex mutex_;
  std::map<std::string, std::vector<std::weak_ptr<JobWatch>>> watches_;  // guarded by mutex_
};

}  // namespace llmd::jobs
