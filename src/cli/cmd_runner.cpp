// `llmd runner`: one model in this process, served over HTTP in the
// llama-server / OpenAI dialects. Listens first (so /health reports the
// load), loads the model on a background thread, exits 1 with one clear line
// when the model cannot be loaded, and stops gracefully on SIGTERM/SIGINT.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/version.h"
#include "http/pipeline.h"
#include "http/server.h"
#include "http/worker_pool.h"
#include "observe/log.h"
#include "observe/metrics.h"
#include "runner/backend.h"
#include "runner/devices.h"
#include "runner/http_api.h"

namespace llmd::cli {
namespace {

struct RunnerFlags {
  runner::RunnerConfig config;
  std::string host = "127.0.0.1";
  int port = 8081;
  int http_threads = 2;
  uint64_t max_body_bytes = 8 * 1024 * 1024;
  std::string api_key;
  std::string api_key_file;
  std::string pooling;
  bool reranking = false;
  std::vector<std::string> lora;         // --lora FILE (repeatable)
  std::vector<std::string> lora_scaled;  // --lora-scaled FILE SCALE (pairs)
  bool lora_init_without_apply = false;
  std::string reasoning = "auto";
  std::string gpu_layers = "auto";
  std::string devices = "auto";
  std::string tensor_split;
  uint64_t fit_target_mib = 1024;
  bool list_devices = false;
  std::string log_level = "info";
};

// The first line of `path` without surrounding blanks (llama-server's
// --api-key-file format, first key only). Errors: kInvalidArgument
// (unreadable or no key in it).
Result<std::string> read_api_key_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return fail(ErrorCode::kInvalidArgument, "cannot read " + path, "bad_api_key_file");
  std::string line;
  std::getline(in, line);
  const auto first = line.find_first_not_of(" \t\r");
  const auto last = line.find_last_not_of(" \t\r");
  if (first == std::string::npos) return fail(ErrorCode::kInvalidArgument, path + " holds no key", "bad_api_key_file");
  return line.substr(first, last - first + 1);
}

// --list-devices: one line per device, as llama-server prints them, then
// the same as JSON on the last line (for `llmd serve`).
int print_devices() {
  runner::init_backends();
  nlohmann::json all = nlohmann::json::array();
  std::printf("Available devices:\n");
  for (const runner::DeviceInfo& d : runner::list_devices()) {
    std::printf("  %s: %s (%llu MiB, %llu MiB free) [%s]\n", d.name.c_str(), d.description.c_str(),
                static_cast<unsigned long long>(d.memory_total >> 20),
                static_cast<unsigned long long>(d.memory_free >> 20), d.type.c_str());
    all.push_back({{"name", d.name},
                   {"description", d.description},
                   {"type", d.type},
                   {"memory_total", d.memory_total},
                   {"memory_free", d.memory_free}});
  }
  std::printf("%s\n", all.dump().c_str());
  return 0;
}

int run_runner(RunnerFlags f) {
  observe::LogLevel level;
  if (!observe::parse_log_level(f.log_level, level)) {
    std::fprintf(stderr, "llmd: --log-level: unknown level \"%s\"\n", f.log_level.c_str());
    return 2;
  }
  if (f.list_devices) return print_devices();
  if (f.config.model_path.empty()) {
    std::fprintf(stderr, "llmd: --model is required\n");
    return 2;
  }
  auto gpu_layers = runner::parse_gpu_layers(f.gpu_layers);
  auto tensor_split = runner::parse_tensor_split(f.tensor_split);
  for (const auto* bad : {gpu_layers ? nullptr : &gpu_layers.error(), tensor_split ? nullptr : &tensor_split.error()}) {
    if (bad == nullptr) continue;
    std::fprintf(stderr, "llmd: %s\n", bad->message.c_str());
    return 2;
  }
  f.config.placement.gpu_layers = *gpu_layers;
  f.config.placement.tensor_split = std::move(*tensor_split);
  f.config.placement.devices = runner::parse_device_list(f.devices);
  f.config.placement.fit_margin_bytes = f.fit_target_mib << 20;
  if (f.reasoning != "auto") f.config.reasoning = f.reasoning == "on";
  if (f.pooling == "mean") f.config.engine.pooling = LLAMA_POOLING_TYPE_MEAN;
  if (f.pooling == "cls") f.config.engine.pooling = LLAMA_POOLING_TYPE_CLS;
  if (f.pooling == "last") f.config.engine.pooling = LLAMA_POOLING_TYPE_LAST;
  if (f.pooling == "none") f.config.engine.pooling = LLAMA_POOLING_TYPE_NONE;  // a vector per token
  if (f.pooling == "rank" || f.reranking) {
    // llama-server's --reranking: a pooled context that scores (query, document) pairs.
    f.config.engine.embeddings = true;
    f.config.engine.pooling = LLAMA_POOLING_TYPE_RANK;
  }
  for (const auto& path : f.lora) f.config.engine.lora_adapters.push_back({path, 1.0f});
  for (std::size_t i = 0; i + 1 < f.lora_scaled.size(); i += 2) {
    float scale = 0;
    const auto& text = f.lora_scaled[i + 1];
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), scale);
    if (ec != std::errc() || end != text.data() + text.size()) {
      std::fprintf(stderr, "llmd: --lora-scaled: \"%s\" is not a number\n", text.c_str());
      return 2;
    }
    f.config.engine.lora_adapters.push_back({f.lora_scaled[i], scale});
  }
  if (f.lora_init_without_apply) {
    for (auto& a : f.config.engine.lora_adapters) a.scale = 0;
  }
  if (f.api_key.empty() && !f.api_key_file.empty()) {
    // A file (what `llmd serve` uses) or the environment keeps the key out of `ps` output.
    auto key = read_api_key_file(f.api_key_file);
    if (!key) {
      std::fprintf(stderr, "llmd: --api-key-file: %s\n", key.error().message.c_str());
      return 2;
    }
    f.api_key = std::move(*key);
  }
  if (f.api_key.empty()) {
    if (const char* k = std::getenv("LLMD_RUNNER_API_KEY")) f.api_key = k;
  }
  f.config.build_info = "llmd " + std::string(kVersion);
  if (!f.config.chat_template.empty()) {
    // --chat-template FILE: the template's text (a name is used as is).
    std::error_code ec;
    if (std::filesystem::is_regular_file(f.config.chat_template, ec)) {
      std::ifstream in(f.config.chat_template, std::ios::binary);
      f.config.chat_template.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }

  observe::Logger log(level, observe::LogFormat::kJson);
  observe::Registry metrics;
  metrics.gauge("llmd_build_info", "Build information", {"version"}).with({std::string(kVersion)}).set(1);
  runner::RunnerService service(f.config, metrics, log);
  // Blocking work of requests (tokenizing, grammar compilation, embeddings).
  http::WorkerPool pool(2);

  auto router = std::make_shared<http::Router>();
  runner::add_runner_routes(*router, service, pool);
  router->get("/metrics", [&metrics](http::RequestContext&) -> boost::asio::awaitable<http::Response> {
    co_return http::Response::text(200, metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  std::vector<http::Middleware> middlewares{http::request_id_middleware(), http::access_log_middleware(log),
                                            http::metrics_middleware(metrics)};
  if (!f.api_key.empty()) middlewares.push_back(runner::api_key_middleware(f.api_key));
  middlewares.push_back(runner::loading_middleware(service));

  http::ServerOptions opts;
  opts.host = f.host;
  opts.port = f.port;
  opts.io_threads = f.http_threads;
  opts.max_body_bytes = f.max_body_bytes;
  // Generations can be long: keep idle keep-alive connections for a while,
  // and give streams in flight time to finish on shutdown.
  opts.idle_timeout = std::chrono::seconds(120);
  opts.shutdown_grace = std::chrono::seconds(5);
  // Its one client is the gateway, from one address, with a connection per
  // call in flight (and its prompt counts beside them): no per-address cap
  // below the process's own.
  opts.max_connections_per_ip = http::default_max_connections();
  http::Server server(opts, http::make_pipeline(router, std::move(middlewares)), log);
  if (auto l = server.listen(); !l) {
    std::fprintf(stderr, "llmd: cannot listen on %s:%d: %s\n", f.host.c_str(), f.port, l.error().message.c_str());
    return 1;
  }
  log.info("listening", {{"host", f.host}, {"port", server.port()}, {"model", f.config.model_path}});

  std::atomic<int> exit_code{0};
  std::thread loader([&] {
    // Test hook: stretches the "loading model" phase so black-box tests can observe it.
    if (const char* d = std::getenv("LLMD_RUNNER_TEST_LOAD_DELAY_MS")) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::clamp(std::atoi(d), 0, 60'000)));
    }
    if (auto r = service.load(); !r) {
      std::fprintf(stderr, "llmd: cannot load model: %s\n", r.error().message.c_str());
      exit_code.store(1);
      server.stop();
    }
  });
  server.run();
  loader.join();  // a SIGTERM during the load waits for it (bounded by the file size)
  service.shutdown();
  log.info("stopped");
  log.flush();
  return exit_code.load();
}

}  // namespace

void add_runner_command(CLI::App& root, CommandRunner& run) {
  auto* cmd = root.add_subcommand("runner", "Serve one GGUF model over HTTP (llama-server and OpenAI dialects)");
  auto f = std::make_shared<RunnerFlags>();
  auto& c = f->config;
  cmd->add_option("-m,--model", c.model_path, "GGUF model file")->check(CLI::ExistingFile);
  cmd->add_option("--host", f->host, "Listen address")->capture_default_str();
  cmd->add_option("--port", f->port, "Listen port (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("-c,--ctx", c.engine.n_ctx, "Context per slot in tokens (0: the model's training context)")
      ->check(CLI::Range(0, 1 << 22))
      ->capture_default_str();
  cmd->add_option("--parallel", c.engine.n_parallel, "Parallel slots (continuous batching)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("-t,--threads", c.engine.n_threads, "Generation threads (0: all cores)")
      ->check(CLI::Range(0, 512))
      ->capture_default_str();
  cmd->add_option("--threads-batch", c.engine.n_threads_batch, "Prompt-processing threads (0: as --threads)")
      ->check(CLI::Range(0, 512));
  cmd->add_option("-b,--batch", c.engine.n_batch, "Tokens per decode step, all slots together")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  cmd->add_option("--gpu-layers,--n-gpu-layers", f->gpu_layers,
                  "Layers on the GPU devices: auto (as many as fit their free memory), all, or a count (0: the CPU "
                  "only)")
      ->capture_default_str();
  cmd->add_option("--device", f->devices,
                  "GPU devices to use, comma-separated (see --list-devices); auto: every GPU; none: the CPU only")
      ->capture_default_str();
  cmd->add_flag("--list-devices", f->list_devices, "Print the compute devices found and exit");
  cmd->add_option("--split-mode", c.placement.split_mode, "How a model spans several GPUs: none, layer or row")
      ->check(CLI::IsMember({"none", "layer", "row"}))
      ->capture_default_str();
  cmd->add_option("--main-gpu", c.placement.main_gpu,
                  "The device (index among those used) for split mode none, or for row mode's small tensors")
      ->check(CLI::Range(0, 255));
  cmd->add_option("--tensor-split", f->tensor_split,
                  "Share of the model per device, e.g. 3,1 (default: by free memory)");
  cmd->add_option("--fit-target", f->fit_target_mib, "MiB that --gpu-layers auto leaves free on each device")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  cmd->add_option("-n,--n-predict", c.n_predict,
                  "Tokens a request generates at most, and when it names no limit (-1: no limit)")
      ->check(CLI::Range(-1, 1 << 22))
      ->capture_default_str();
  cmd->add_option("--reasoning", f->reasoning,
                  "Whether chats think when the request does not say: on, off, or auto (the template's default)")
      ->check(CLI::IsMember({"on", "off", "auto"}))
      ->capture_default_str();
  cmd->add_flag("--slots,!--no-slots", c.slots_endpoint, "Serve GET /slots (slot monitoring; on by default)");
  cmd->add_option("--queue", c.engine.queue_max, "Requests that may wait for a slot; more get 503")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  cmd->add_option("--api-key", f->api_key, "Require Authorization: Bearer KEY (or set LLMD_RUNNER_API_KEY)");
  cmd->add_option("--api-key-file", f->api_key_file, "Read the key for --api-key from the first line of this file");
  cmd->add_option("-a,--alias", c.alias, "Model name in responses (default: the file name)");
  cmd->add_option("--chat-template", c.chat_template,
                  "Chat template override: a Jinja template file, or a llama.cpp built-in name (chatml, llama3, ...)");
  cmd->add_flag("--embeddings", c.engine.embeddings, "Serve /v1/embeddings instead of completions");
  cmd->add_option("--pooling", f->pooling,
                  "Embedding pooling (default: the model's); none = a vector per token (/embeddings only); rank = "
                  "--reranking")
      ->check(CLI::IsMember({"mean", "cls", "last", "none", "rank"}));
  cmd->add_flag("--reranking,--rerank", f->reranking,
                "Serve /rerank (and /v1/rerank): score documents against a query with a reranker model");
  cmd->add_option("--lora", f->lora, "Load a LoRA adapter (GGUF) at scale 1; repeatable. Ids follow the order given")
      ->check(CLI::ExistingFile);
  cmd->add_option("--lora-scaled", f->lora_scaled, "Load a LoRA adapter at a scale: --lora-scaled FILE SCALE")
      ->type_size(2)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_flag("--lora-init-without-apply", f->lora_init_without_apply,
                "Load the adapters at scale 0 (switch them on with POST /lora-adapters or per request)");
  cmd->add_flag("--verbose", c.verbose,
                "Every whole reply carries __verbose (the rendered prompt and llama-server's /completion fields)");
  cmd->add_option("--http-threads", f->http_threads, "HTTP I/O threads")->check(CLI::Range(1, 64));
  cmd->add_option("--max-body", f->max_body_bytes, "Largest request body in bytes")
      ->check(CLI::Range(uint64_t{1024}, uint64_t{1} << 30));
  cmd->add_option("--log-level", f->log_level, "trace|debug|info|warn|error|off");
  cmd->callback([&run, f] { run = [f] { return run_runner(*f); }; });
}

}  // namespace llmd::cli
