// llmd: subcommand dispatch only. Each command lives in src/app/cmd_*.cpp.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "core/version.h"

int main(int argc, char** argv) {
  CLI::App root{"llmd — self-hosted LLM backend on llama.cpp", "llmd"};
  root.set_version_flag("--version", std::string(llmd::kVersion));
  root.require_subcommand(1);
  root.fallthrough(false);

  llmd::cli::CommandRunner run;
  llmd::cli::add_serve_command(root, run);
  llmd::cli::add_admin_command(root, run);
  llmd::cli::add_convert_command(root, run);
  llmd::cli::add_dev_command(root, run);
  llmd::cli::add_runner_command(root, run);
  llmd::cli::add_models_command(root, run);

  try {
    root.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return root.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return root.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return root.exit(e);
  } catch (const CLI::ParseError& e) {
    // One clear line naming the problem; exit code 2 for bad usage.
    std::fprintf(stderr, "llmd: %s (see llmd --help)\n", e.what());
    return 2;
  }
  return run ? run() : 0;
}
