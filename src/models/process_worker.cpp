// The real WorkerFactory: one child process per worker.
#include <csignal>
#include <sstream>

#include <nlohmann/json.hpp>

#include "models/child_process.h"
#include "models/worker.h"

namespace llmd::models {
namespace {

class ProcessWorker final : public Worker {
 public:
  explicit ProcessWorker(std::unique_ptr<ChildProcess> child) : child_(std::move(child)) {}
  std::optional<int> exit_code() const override { return child_->exit_code(); }
  void terminate() override { child_->signal(SIGTERM); }
  void kill() override { child_->signal(SIGKILL); }
  int pid() const override { return child_->pid(); }
  std::vector<std::string> last_lines() const override { return child_->last_lines(); }

 private:
  std::unique_ptr<ChildProcess> child_;
};

class ProcessWorkerFactory final : public WorkerFactory {
 public:
  ProcessWorkerFactory(std::string binary, observe::Logger log) : binary_(std::move(binary)), log_(std::move(log)) {}

  Result<std::unique_ptr<Worker>> spawn(const WorkerSpec& spec) override {
    std::vector<std::string> argv;
    if (!spec.entry.command.empty()) {
      auto expanded = expand_command(spec.entry.command, spec);
      if (!expanded) return std::unexpected(expanded.error());
      argv = std::move(*expanded);
    } else {
      const auto& e = spec.entry;
      argv = {binary_, "runner", "--model", spec.file.string(), "--host", spec.host,
              "--port", std::to_string(spec.port), "--ctx", std::to_string(e.ctx),
              "--parallel", std::to_string(e.parallel), "--alias", spec.model};
      if (e.threads > 0) argv.insert(argv.end(), {"--threads", std::to_string(e.threads)});
      if (e.gpu_layers > 0) argv.insert(argv.end(), {"--gpu-layers", std::to_string(e.gpu_layers)});
      if (!e.chat_template.empty()) argv.insert(argv.end(), {"--chat-template", e.chat_template});
    }
    auto log = log_;
    auto child = ChildProcess::spawn(argv, [log, model = spec.model, id = spec.instance_id](std::string_view line) {
      log.info("worker output", {{"model", model}, {"instance", id}, {"line", std::string(line)}});
    });
    if (!child) return std::unexpected(child.error());
    return std::unique_ptr<Worker>(new ProcessWorker(std::move(*child)));
  }

 private:
  std::string binary_;
  observe::Logger log_;
};

}  // namespace

Result<std::vector<std::string>> expand_command(const std::string& command, const WorkerSpec& spec) {
  const std::pair<std::string, std::string> vars[] = {
      {"{model}", spec.file.string()},
      {"{port}", std::to_string(spec.port)},
      {"{host}", spec.host},
      {"{ctx}", std::to_string(spec.entry.ctx)},
      {"{threads}", std::to_string(spec.entry.threads)},
      {"{parallel}", std::to_string(spec.entry.parallel)},
      {"{gpu_layers}", std::to_string(spec.entry.gpu_layers)},
      {"{name}", spec.model},
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
