// An owned child process: fork+exec with stdout/stderr captured line by line,
// PR_SET_PDEATHSIG so it dies with the thread that spawned it (also when the
// backend is SIGKILLed), and kill + reap on destruction (no orphans, no zombies).
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/error.h"

namespace llmd::models {

class ChildProcess {
 public:
  // Receives each output line (without newline) on the reader thread.
  using LineSink = std::function<void(std::string_view line)>;

  // Starts argv[0] (a path; no shell, no PATH search) with argv. The child's
  // stdin is /dev/null. Note: PDEATHSIG fires when the *spawning thread*
  // ends, so spawn from a thread that lives as long as the child should.
  // Errors: kInternal (fork/pipe failure). An exec failure shows up as exit code 127.
  static Result<std::unique_ptr<ChildProcess>> spawn(const std::vector<std::string>& argv, LineSink sink);

  // Sends SIGKILL if still running, reaps it and joins the reader thread.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  int pid() const { return pid_; }
  // Exit code once the child has been reaped (128+signal when killed), else nullopt.
  std::optional<int> exit_code() const;
  // Sends `sig` unless the child has already been reaped (so never to a reused pid).
  void signal(int sig);
  // The last output lines (at most 20), oldest first.
  std::vector<std::string> last_lines() const;

 private:
  ChildProcess() = default;
  void read_loop(int fd, LineSink sink);

  int pid_ = -1;
  std::thread reader_;
  mutable std::mutex mutex_;       // guards lines_, exit_code_ and the reap/signal race
  std::deque<std::string> lines_;  // guarded by mutex_
  std::optional<int> exit_code_;   // guarded by mutex_
  std::atomic<bool> stop_reading_{false};
};

}  // namespace llmd::models
