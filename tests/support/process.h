// A child process for black-box tests: started with argv and env, output to
// a log file, killed (SIGKILL) on destruction if still running.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace llmd::testing {

class Process {
 public:
  // Starts `argv[0]` with `argv` in `cwd`; `env` entries are added to the
  // current environment. stdout+stderr go to `log_file`.
  Process(std::vector<std::string> argv, const std::filesystem::path& cwd, const std::filesystem::path& log_file,
          const std::map<std::string, std::string>& env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  int pid() const { return pid_; }
  void signal(int sig) const;
  // Waits up to `timeout` for the exit; returns the exit code (128+signal
  // when killed by a signal), or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  bool running();
  std::string log() const;

 private:
  int pid_ = -1;
  std::optional<int> exit_code_;
  std::filesystem::path log_file_;
};

// Polls GET `path` on 127.0.0.1:port until it answers `status` (or timeout).
bool wait_for_http(int port, const std::string& path, int status, std::chrono::milliseconds timeout);

}  // namespace llmd::testing
