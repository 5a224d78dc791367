#include "models/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace llmd::models {
namespace {
constexpr std::size_t kKeptLines = 20;
constexpr std::size_t kMaxLine = 4096;
}  // namespace

Result<std::unique_ptr<ChildProcess>> ChildProcess::spawn(const std::vector<std::string>& argv, LineSink sink) {
  if (argv.empty()) return fail(ErrorCode::kInvalidArgument, "empty command", "bad_command");
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail(ErrorCode::kInternal, "cannot create a pipe", "spawn_failed");
  // Everything the child needs is prepared before fork: after fork only
  // async-signal-safe calls are allowed.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();

  // Until execv the child runs the parent's signal handlers (Asio's in serve
  // writes into a pipe the parent reads: a SIGTERM aimed at the new worker
  // would shut serve down). So every signal stays blocked across fork, the
  // child resets each disposition to the default, and only then unblocks: a
  // signal that arrived meanwhile then takes its default action in the child.
  sigset_t all, before;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &before);
  const pid_t pid = ::fork();
  if (pid == 0) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; ++sig) {
      if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
    }
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return fail(ErrorCode::kInternal, "cannot fork", "spawn_failed");
  }
  ::close(fds[1]);
  std::unique_ptr<ChildProcess> child(new ChildProcess());
  child->pid_ = pid;
  child->reader_ =
      std::thread([c = child.get(), fd = fds[0], s = std::move(sink)]() mutable { c->read_loop(fd, std::move(s)); });
  return child;
}

void ChildProcess::read_loop(int fd, LineSink sink) {
  std::string partial;
  auto emit = [&](std::string line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (sink) sink(line);
    std::lock_guard lock(mutex_);
    lines_.push_back(std::move(line));
    if (lines_.size() > kKeptLines) lines_.pop_front();
  };
  auto drain = [&](int timeout_ms) -> bool {  // false on EOF
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, timeout_ms);
    if (r <= 0) return r == 0 || errno == EINTR;
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return n < 0 && errno == EINTR;
    partial.append(buf, static_cast<std::size_t>(n));
    std::size_t nl;
    while ((nl = partial.find('\n')) != std::string::npos) {
      emit(partial.substr(0, nl));
      partial.erase(0, nl + 1);
    }
    if (partial.size() > kMaxLine) {
      emit(std::move(partial));
      partial.clear();
    }
    return true;
  };

  bool open = true;
  for (;;) {
    if (open)
      open = drain(100);
    else
      ::usleep(50 * 1000);
    int status = 0;
    std::unique_lock lock(mutex_);
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      lock.unlock();
      // Whatever the child wrote before dying is still in the pipe.
      while (open && drain(0)) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 0) <= 0) break;
      }
      break;
    }
    if (r < 0 && errno == ECHILD) {
      exit_code_ = -1;
      break;
    }
  }
  if (!partial.empty()) emit(std::move(partial));
  ::close(fd);
}

ChildProcess::~ChildProcess() {
  signal(SIGKILL);
  if (reader_.joinable()) reader_.join();
}

std::optional<int> ChildProcess::exit_code() const {
  std::lock_guard lock(mutex_);
  return exit_code_;
}

void ChildProcess::signal(int sig) {
  std::lock_guard lock(mutex_);
  if (!exit_code_ && pid_ > 0) ::kill(pid_, sig);
}

std::vector<std::string> ChildProcess::last_lines() const {
  std::lock_guard lock(mutex_);
  return {lines_.begin(), lines_.end()};
}

}  // namespace llmd::models
