// What the manager needs of a model worker, behind interfaces so tests can
// inject fakes: a WorkerFactory starts workers, a Worker is one running
// process (owned: destroying it kills and reaps it), a Prober asks an
// instance whether it is ready.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "config/config.h"
#include "core/error.h"
#include "observe/log.h"

namespace llmd::models {

struct WorkerSpec {
  std::string model;           // model name (log tag, --alias)
  std::string instance_id;     // e.g. "qwen#0"
  std::filesystem::path file;  // GGUF file
  config::ModelEntry entry;    // ctx, threads, parallel, gpu_layers, chat_template, command
  std::string host = "127.0.0.1";
  int port = 0;
  // The key the worker must require (Authorization: Bearer), "" = none. The
  // factory hands it over out of the command line (a 0600 file), never in argv.
  std::string api_key;
};

class Worker {
 public:
  // Kills (SIGKILL) and reaps the process if it still runs.
  virtual ~Worker() = default;
  // Exit code once the process has ended (128+signal when killed), else nullopt.
  virtual std::optional<int> exit_code() const = 0;
  // Asks the process to end (SIGTERM).
  virtual void terminate() = 0;
  // Ends it now (SIGKILL).
  virtual void kill() = 0;
  virtual int pid() const = 0;
  // Its last output lines, oldest first (for error reasons).
  virtual std::vector<std::string> last_lines() const = 0;
};

class WorkerFactory {
 public:
  virtual ~WorkerFactory() = default;
  // Starts a worker for `spec`. Errors: kInvalidArgument (bad command
  // template), kInternal (cannot spawn). Called only on the manager's
  // supervisor thread.
  virtual Result<std::unique_ptr<Worker>> spawn(const WorkerSpec& spec) = 0;
};

// Starts `llmd runner` (`runner_binary runner --model ... --port ...`) or the
// model's `command` template, whose placeholders {model} {port} {host} {ctx}
// {threads} {parallel} {gpu_layers} {name} {api_key_file} are substituted
// after splitting on whitespace (no shell). A non-empty spec.api_key is
// written to a 0600 file in a private 0700 directory that lives as long as
// the worker: `llmd runner` gets `--api-key-file FILE`, a command template
// gets it where it says {api_key_file} (llama-server: `--api-key-file
// {api_key_file}`). Output lines go to `log` tagged with the model.
std::shared_ptr<WorkerFactory> make_process_worker_factory(std::string runner_binary, observe::Logger log);

// Splits a command template and substitutes its placeholders (exposed for
// tests); {api_key_file} becomes `api_key_file`.
Result<std::vector<std::string>> expand_command(const std::string& command, const WorkerSpec& spec,
                                                const std::string& api_key_file = "");

// Readiness/health probe of an instance at `base_url` ("http://host:port").
// True when it is ready to serve.
using Prober = std::function<boost::asio::awaitable<bool>(const std::string& base_url, const std::string& api_key)>;

}  // namespace llmd::models
