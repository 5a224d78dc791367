// Subcommands of the `llmd` program. Each add_*_command registers one CLI11
// subcommand on `root`; when that subcommand is chosen, its callback stores
// the function that runs it into `run` (main() calls it after parsing).
// Exit codes: 0 ok, 1 runtime failure, 2 bad flags or config.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace llmd::cli {

using CommandRunner = std::function<int()>;

void add_serve_command(CLI::App& root, CommandRunner& run);
// `llmd admin user-add | grant | set-role | disable | list` (src/cli/cmd_admin.cpp).
void add_admin_command(CLI::App& root, CommandRunner& run);
// `llmd convert --from X --to Y [FILE]` (src/cli/cmd_convert.cpp).
void add_convert_command(CLI::App& root, CommandRunner& run);
// `llmd dev make-test-model ...` (src/cli/cmd_dev.cpp).
void add_dev_command(CLI::App& root, CommandRunner& run);
// `llmd runner --model F.gguf ...` (src/cli/cmd_runner.cpp).
void add_runner_command(CLI::App& root, CommandRunner& run);
// `llmd models list | inspect F.gguf` (src/cli/cmd_models.cpp).
void add_models_command(CLI::App& root, CommandRunner& run);

}  // namespace llmd::cli
