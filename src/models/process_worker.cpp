// The real WorkerFactory: one child process per worker.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>

#include "models/child_process.h"
#include "models/worker.h"

namespace llmd::models {
namespace {

namespace fs = std::filesystem;

// --gpu-layers' value (llmd runner's and llama-server's words).
std::string gpu_layers_flag(int layers) {
  if (layers == config::kGpuLayersAuto) return "auto";
  if (layers == config::kGpuLayersAll) return "all";
  return std::to_string(layers);
}

// A file holding a worker's API key: created 0600 (O_EXCL) in the factory's
// private directory, removed on destruction.
class KeyFile {
 public:
  KeyFile() = default;
  KeyFile(KeyFile&& o) noexcept : path_(std::exchange(o.path_, {})) {}
  KeyFile& operator=(KeyFile&& o) noexcept {
    if (this != &o) {
      remove();
      path_ = std::exchange(o.path_, {});
    }
    return *this;
  }
  ~KeyFile() { remove(); }
  // Errors: kInternal (cannot create or write the file).
  static Result<KeyFile> write(const fs::path& path, const std::string& key) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
      return fail(ErrorCode::kInternal, "cannot create the worker's key file " + path.string(), "spawn_failed");
    KeyFile f;
    f.path_ = path;  // removed from here on, also when the write fails
    const std::string text = key + "\n";
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    if (!ok) return fail(ErrorCode::kInternal, "cannot write the worker's key file " + path.string(), "spawn_failed");
    return f;
  }
  const fs::path& path() const { return path_; }

 private:
  void remove() {
    std::error_code ec;
    if (!path_.empty()) fs::remove(path_, ec);
  }
  fs::path path_;
};

class ProcessWorker final : public Worker {
 public:
  ProcessWorker(std::unique_ptr<ChildProcess> child, KeyFile key) : child_(std::move(child)), key_(std::move(key)) {}
  // The process goes first (killed and reaped), then its key file.
  ~ProcessWorker() override { child_.reset(); }
  std::optional<int> exit_code() const override { return child_->exit_code(); }
  void terminate() override { child_->signal(SIGTERM); }
  void kill() override { child_->signal(SIGKILL); }
  int pid() const override { return child_->pid(); }
  std::vector<std::string> last_lines() const override { return child_->last_lines(); }

 private:
  std::unique_ptr<ChildProcess> child_;
  KeyFile key_;
};

class ProcessWorkerFactory final : public WorkerFactory {
 public:
  ProcessWorkerFactory(std::string binary, observe::Logger log) : binary_(std::move(binary)), log_(std::move(log)) {}
  ~ProcessWorkerFactory() override {
    std::error_code ec;
    if (!key_dir_.empty()) fs::remove_all(key_dir_, ec);
  }

  Result<std::unique_ptr<Worker>> spawn(const WorkerSpec& spec) override {
    KeyFile key;
    if (!spec.api_key.empty()) {
      auto dir = key_dir();
      if (!dir) return std::unexpected(dir.error());
      auto written = KeyFile::write(*dir / ("worker-" + std::to_string(++key_files_) + ".key"), spec.api_key);
      if (!written) return std::unexpected(written.error());
      key = std::move(*written);
    }
    std::vector<std::string> argv;
    if (!spec.entry.command.empty()) {
      auto expanded = expand_command(spec.entry.command, spec, key.path().string());
      if (!expanded) return std::unexpected(expanded.error());
      argv = std::move(*expanded);
    } else {
      const auto& e = spec.entry;
      argv = {binary_,      "runner",
              "--model",    spec.file.string(),
              "--host",     spec.host,
              "--port",     std::to_string(spec.port),
              "--ctx",      std::to_string(e.ctx),
              "--parallel", std::to_string(e.parallel),
              "--alias",    spec.model};
      if (e.threads > 0) argv.insert(argv.end(), {"--threads", std::to_string(e.threads)});
      argv.insert(argv.end(), {"--gpu-layers", gpu_layers_flag(e.gpu_layers)});
      if (!e.chat_template.empty()) argv.insert(argv.end(), {"--chat-template", e.chat_template});
      if (e.mode == "embeddings") argv.push_back("--embeddings");
      if (!e.pooling.empty()) argv.insert(argv.end(), {"--pooling", e.pooling});
      if (e.mode == "rerank") argv.push_back("--reranking");
      if (!key.path().empty()) argv.insert(argv.end(), {"--api-key-file", key.path().string()});
    }
    auto log = log_;
    auto child = ChildProcess::spawn(argv, [log, model = spec.model, id = spec.instance_id](std::string_view line) {
      log.info("worker output", {{"model", model}, {"instance", id}, {"line", std::string(line)}});
    });
    if (!child) return std::unexpected(child.error());
    return std::unique_ptr<Worker>(new ProcessWorker(std::move(*child), std::move(key)));
  }

 private:
  // The private directory for key files (mkdtemp: mode 0700), made on first
  // use. Called on the supervisor thread only, like spawn().
  Result<fs::path> key_dir() {
    if (!key_dir_.empty()) return key_dir_;
    std::error_code ec;
    const fs::path base = fs::temp_directory_path(ec);
    std::string templ = ((ec ? fs::path("/tmp") : base) / "llmd-worker-keys-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) {
      return fail(ErrorCode::kInternal,
                  "cannot create a private directory for worker keys: " + std::string(std::strerror(errno)),
                  "spawn_failed");
    }
    key_dir_ = templ;
    return key_dir_;
  }

  std::string binary_;
  observe::Logger log_;
  fs::path key_dir_;             // supervisor thread only
  std::uint64_t key_files_ = 0;  // supervisor thread only
};

}  // namespace

Result<std::vector<std::string>> expand_command(const std::string& command, const WorkerSpec& spec,
                                                const std::string& api_key_file) {
  const std::pair<std::string, std::string> vars[] = {
      {"{model}", spec.file.string()},
      {"{port}", std::to_string(spec.port)},
      {"{host}", spec.host},
      {"{ctx}", std::to_string(spec.entry.ctx)},
      {"{threads}", std::to_string(spec.entry.threads)},
      {"{parallel}", std::to_string(spec.entry.parallel)},
      {"{gpu_layers}", gpu_layers_flag(spec.entry.gpu_layers)},
      {"{name}", spec.model},
      {"{api_key_file}", api_key_file},
  };
  std::vector<std::string> argv;
  std::istringstream in(command);
  std::string word;
  while (in >> word) {
    for (const auto& [k, v] : vars) {
      for (std::size_t at = word.find(k); at != std::string::npos; at = word.find(k, at + v.size())) {
        word.replace(at, k.size(), v);
      }
    }
    argv.push_back(word);
  }
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') {
    return fail(ErrorCode::kInvalidArgument, "models.list.command must start with an absolute program path",
                "bad_command");
  }
  return argv;
}

std::shared_ptr<WorkerFactory> make_process_worker_factory(std::string runner_binary, observe::Logger log) {
  return std::make_shared<ProcessWorkerFactory>(std::move(runner_binary), std::move(log));
}

}  // namespace llmd::models
