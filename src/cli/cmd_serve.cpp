#include <CLI/CLI.hpp>

#include <sys/resource.h>

#include <cstdio>

#include <nlohmann/json.hpp>

#include "app/backend.h"
#include "cli/commands.h"
#include "config/config.h"

namespace llmd::cli {
namespace {

// Raises the open-file soft limit to the hard limit (as Go and nginx do):
// every connection needs a descriptor, often two or three (an upstream
// socket, a spooled body), and the connection cap is derived from it.
void raise_open_file_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= lim.rlim_max) return;
  lim.rlim_cur = lim.rlim_max;
  (void)::setrlimit(RLIMIT_NOFILE, &lim);
}

}  // namespace

void add_serve_command(CLI::App& root, CommandRunner& run) {
  auto* cmd = root.add_subcommand("serve", "Run the backend: HTTP API, web UI, model manager, load balancer");
  auto config_path = std::make_shared<std::string>();
  auto port = std::make_shared<int>(0);
  cmd->add_option("-c,--config", *config_path, "YAML config file (default: embedded defaults)")
      ->check(CLI::ExistingFile);
  cmd->add_option("-p,--port", *port, "Listen port (overrides server.port)")->check(CLI::Range(1, 65535));
  cmd->callback([&run, config_path, port] {
    run = [config_path, port]() -> int {
      auto loaded = config::load_config_file(*config_path);
      if (!loaded) {
        std::fprintf(stderr, "llmd: %s\n", loaded.error().message.c_str());
        return 2;
      }
      config::Config config = std::move(loaded->config);
      if (*port != 0) config.server.port = *port;
      auto log = app::make_logger(config.logging);
      if (!log) {
        std::fprintf(stderr, "llmd: %s\n", log.error().message.c_str());
        return 2;
      }
      for (const auto& w : loaded->warnings) log->warn(w);
      raise_open_file_limit();
      auto backend = app::Backend::create(std::move(config), *log);
      if (!backend) {
        log->error("cannot start", {{"error", backend.error().message}});
        std::fprintf(stderr, "llmd: %s\n", backend.error().message.c_str());
        return backend.error().reason == "bad_config" ? 2 : 1;
      }
      (*backend)->run();
      log->info("stopped");
      log->flush();
      return 0;
    };
  });
}

}  // namespace llmd::cli
