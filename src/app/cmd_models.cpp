// `llmd models list | inspect F.gguf`: the model catalog and GGUF metadata,
// as a table or --json. `pull` (resumable download) is still open work of
// issue 4 and is not offered as a subcommand.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/config.h"
#include "models/catalog.h"

namespace llmd::app {
namespace {

nlohmann::json model_json(const models::CatalogModel& m) {
  nlohmann::json j = {{"name", m.name}, {"file", m.path.string()}, {"size", m.size},
                      {"status", m.error.empty() ? "available" : "error"}};
  if (!m.description.empty()) j["description"] = m.description;
  if (!m.error.empty()) j["error"] = m.error;
  if (m.gguf) {
    const auto& g = *m.gguf;
    j["gguf_version"] = g.version;
    j["arch"] = g.architecture;
    j["model_name"] = g.name;
    j["quantization"] = g.quantization;
    j["file_type"] = g.file_type;
    j["parameter_count"] = g.parameter_count;
    j["context_length"] = g.context_length;
    j["layers"] = g.n_layer;
    j["embedding_length"] = g.n_embd;
    j["heads"] = g.n_head;
    j["kv_heads"] = g.n_head_kv;
    j["tensors"] = g.tensor_count;
    j["has_chat_template"] = g.has_chat_template;
  }
  return j;
}

std::string human_size(std::uint64_t b) {
  char buf[32];
  if (b >= (1ULL << 30)) std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(b) / (1ULL << 30));
  else std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1ULL << 20));
  return buf;
}

std::string human_params(std::uint64_t n) {
  char buf[32];
  if (n >= 1000000000ULL) std::snprintf(buf, sizeof buf, "%.1fB", static_cast<double>(n) / 1e9);
  else std::snprintf(buf, sizeof buf, "%.1fM", static_cast<double>(n) / 1e6);
  return buf;
}

void print_table(const std::vector<models::CatalogModel>& list) {
  std::printf("%-28s %-10s %-9s %-8s %-8s %-7s %s\n", "NAME", "SIZE", "ARCH", "QUANT", "PARAMS", "CTX", "STATUS");
  for (const auto& m : list) {
    const bool ok = m.error.empty() && m.gguf;
    std::printf("%-28s %-10s %-9s %-8s %-8s %-7lld %s\n", m.name.c_str(), human_size(m.size).c_str(),
                ok ? m.gguf->architecture.c_str() : "-", ok ? m.gguf->quantization.c_str() : "-",
                ok ? human_params(m.gguf->parameter_count).c_str() : "-",
                static_cast<long long>(ok ? m.gguf->context_length : 0),
                m.error.empty() ? "available" : ("error: " + m.error).c_str());
  }
}

}  // namespace

void add_models_command(CLI::App& root, CommandRunner& run) {
  auto* cmd = root.add_subcommand("models", "Show the model catalog, read GGUF metadata");
  cmd->require_subcommand(1);

  auto* list = cmd->add_subcommand("list", "Models from the config and the models directory");
  auto config_path = std::make_shared<std::string>();
  auto list_json = std::make_shared<bool>(false);
  list->add_option("-c,--config", *config_path, "Config file (llmd.yaml)");
  list->add_flag("--json", *list_json, "Print JSON instead of a table");
  list->callback([&run, config_path, list_json] {
    run = [config_path, list_json]() -> int {
      auto cfg = load_config_file(*config_path);
      if (!cfg) {
        std::fprintf(stderr, "llmd: %s\n", cfg.error().message.c_str());
        return 2;
      }
      const auto catalog = models::scan_catalog(cfg->config.models);
      if (*list_json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& m : catalog) arr.push_back(model_json(m));
        std::cout << nlohmann::json{{"models", arr}}.dump(2) << "\n";
      } else {
        print_table(catalog);
      }
      return 0;
    };
  });

  auto* inspect = cmd->add_subcommand("inspect", "Read the metadata of one GGUF file (weights are not loaded)");
  auto file = std::make_shared<std::string>();
  auto inspect_json = std::make_shared<bool>(false);
  inspect->add_option("file", *file, "GGUF file")->required();
  inspect->add_flag("--json", *inspect_json, "Print JSON instead of a table");
  inspect->callback([&run, file, inspect_json] {
    run = [file, inspect_json]() -> int {
      const std::filesystem::path p = *file;
      const auto m = models::describe_file(p.stem().string(), p);
      if (*inspect_json) {
        std::cout << model_json(m).dump(2) << "\n";
      } else {
        const auto j = model_json(m);
        for (const auto& [k, v] : j.items()) {
          std::printf("%-18s %s\n", k.c_str(), v.is_string() ? v.get<std::string>().c_str() : v.dump().c_str());
        }
      }
      return m.error.empty() ? 0 : 1;
    };
  });
}

}  // namespace llmd::app
