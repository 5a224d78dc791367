// `llmd models list | inspect F.gguf | pull URL`: the model catalog and GGUF
// metadata (a table or --json), and a resumable, checked download.
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "config/config.h"
#include "models/catalog.h"
#include "models/download.h"
#include "models/hub.h"
#include "models/pull_jobs.h"
#include "models/request_settings.h"
#include "runner/chat.h"
#include "runner/model.h"

namespace llmd::cli {
namespace {

nlohmann::json model_json(const models::CatalogModel& m) {
  nlohmann::json j = {{"name", m.name},
                      {"file", m.path.string()},
                      {"size", m.size},
                      {"status", m.error.empty() ? "available" : "error"}};
  if (!m.description.empty()) j["description"] = m.description;
  if (!m.error.empty()) j["error"] = m.error;
  if (m.configured) {
    j["aliases"] = m.entry.aliases;
    j["defaults"] = models::params_json(m.entry.defaults);
    j["forced"] = models::params_json(m.entry.forced);
    j["preload"] = m.entry.preload || m.entry.pin;
    j["pinned"] = m.entry.pin;
  }
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
  if (b >= (1ULL << 30))
    std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(b) / (1ULL << 30));
  else
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1ULL << 20));
  return buf;
}

std::string human_params(std::uint64_t n) {
  char buf[32];
  if (n >= 1000000000ULL)
    std::snprintf(buf, sizeof buf, "%.1fB", static_cast<double>(n) / 1e9);
  else
    std::snprintf(buf, sizeof buf, "%.1fM", static_cast<double>(n) / 1e6);
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
    std::string aliases;
    for (const auto& a : m.entry.aliases) aliases += (aliases.empty() ? "" : ", ") + a;
    if (!aliases.empty()) std::printf("%-28s also: %s\n", "", aliases.c_str());
  }
}

// A one-line progress bar on a terminal (redrawn at most 10 times a second).
class ProgressBar {
 public:
  void operator()(std::uint64_t done, std::uint64_t total) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(100) && done != total) return;
    last_ = now;
    if (total > 0) {
      const int width = 30;
      const int filled = static_cast<int>(static_cast<double>(done) / static_cast<double>(total) * width);
      std::fprintf(stderr, "\r  [%-*s] %5.1f%%  %s / %s ", width,
                   std::string(static_cast<std::size_t>(filled), '#').c_str(),
                   100.0 * static_cast<double>(done) / static_cast<double>(total), human_size(done).c_str(),
                   human_size(total).c_str());
    } else {
      std::fprintf(stderr, "\r  %s ", human_size(done).c_str());
    }
    std::fflush(stderr);
  }

 private:
  std::chrono::steady_clock::time_point last_{};
};

// What the file's chat template can do (tools, thinking, system role), from
// llama.cpp's own template layer: the tokenizer and metadata are read, the
// weights are not.
nlohmann::json template_caps_json(const std::filesystem::path& path) {
  runner::ModelOptions options;
  options.vocab_only = true;
  auto model = runner::Model::load(path, options);
  if (!model) return {{"error", model.error().message}};
  auto templates = runner::ChatTemplates::create(**model);
  if (!templates) return {{"error", templates.error().message}};
  return nlohmann::json::parse(templates->capabilities().dump());
}

}  // namespace

void add_models_command(CLI::App& root, CommandRunner& run) {
  auto* cmd = root.add_subcommand("models", "Show the model catalog, read GGUF metadata, download models");
  cmd->require_subcommand(1);

  auto* list = cmd->add_subcommand("list", "Models from the config and the models directory");
  auto config_path = std::make_shared<std::string>();
  auto list_json = std::make_shared<bool>(false);
  list->add_option("-c,--config", *config_path, "Config file (llmd.yaml)");
  list->add_flag("--json", *list_json, "Print JSON instead of a table");
  list->callback([&run, config_path, list_json] {
    run = [config_path, list_json]() -> int {
      auto cfg = config::load_config_file(*config_path);
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
      nlohmann::json j = model_json(m);
      if (m.error.empty()) j["template_caps"] = template_caps_json(p);
      if (*inspect_json) {
        std::cout << j.dump(2) << "\n";
      } else {
        for (const auto& [k, v] : j.items()) {
          std::printf("%-18s %s\n", k.c_str(), v.is_string() ? v.get<std::string>().c_str() : v.dump().c_str());
        }
      }
      return m.error.empty() ? 0 : 1;
    };
  });

  auto* pull = cmd->add_subcommand("pull", "Download a GGUF model into models.dir (resumable, sha256-checked)");
  struct PullArgs {
    std::string url, sha256, name, dir, config;
    bool allow_private = false;
  };
  auto args = std::make_shared<PullArgs>();
  pull->add_option("url", args->url,
                   "http(s) URL of the .gguf file, or a Hugging Face name: hf:OWNER/REPO[:QUANT] (default "
                   "Q4_K_M) or hf:OWNER/REPO/FILE.gguf")
      ->required();
  pull->add_option("--sha256", args->sha256, "Expected sha256 (hex); the download is deleted on mismatch");
  pull->add_option("--name", args->name, "File name to save as (default: from the URL)");
  pull->add_option("--dir", args->dir, "Directory to save into (default: models.dir)");
  pull->add_option("-c,--config", args->config, "Config file (llmd.yaml)");
  pull->add_flag("--allow-private-redirects", args->allow_private,
                 "Follow redirects to LAN/loopback addresses (models.allow_private_redirects)");
  pull->callback([&run, args] {
    run = [args]() -> int {
      auto cfg = config::load_config_file(args->config);
      if (!cfg) {
        std::fprintf(stderr, "llmd: %s\n", cfg.error().message.c_str());
        return 2;
      }
      models::DownloadOptions o;
      o.url = args->url;
      o.dir = args->dir.empty() ? cfg->config.models.dir : args->dir;
      o.file_name = args->name;
      o.sha256 = args->sha256;
      o.allow_private_redirects = args->allow_private || cfg->config.models.allow_private_redirects;
      const bool tty = ::isatty(STDERR_FILENO) == 1;
      ProgressBar bar;
      if (tty) o.on_progress = [&bar](std::uint64_t done, std::uint64_t total) { bar(done, total); };
      auto failed = [](const Error& e) {
        std::fprintf(stderr, "llmd: models pull: %s\n", e.message.c_str());
        return e.code == ErrorCode::kInvalidArgument ? 2 : 1;
      };
      // A URL is one file; a Hub name the Hub's files for it (HF_ENDPOINT,
      // else models.hf_endpoint; HF_TOKEN opens gated repositories).
      const auto hub = models::hub_access_from_env(cfg->config.models.hf_endpoint);
      auto planned = models::plan_pull(models::PullSpec{args->url, args->name, args->sha256}, o, hub);
      if (!planned) return failed(planned.error());
      std::vector<models::DownloadOptions> downloads;
      for (auto& f : *planned) {
        if (args->url.starts_with("hf:")) std::printf("%s (%s)\n", f.path.c_str(), human_size(f.size).c_str());
        downloads.push_back(std::move(f.download));
      }
      for (const auto& d : downloads) {
        auto result = models::download_model(d);
        if (tty) std::fprintf(stderr, "\n");
        if (!result && result.error().reason == "exists" && downloads.size() > 1) {
          std::printf("have %s already\n", d.file_name.c_str());  // a part of an earlier, interrupted pull
          continue;
        }
        if (!result) return failed(result.error());
        std::printf("saved %s (%s, sha256 %s%s)\n", result->path.c_str(), human_size(result->size).c_str(),
                    result->sha256.c_str(),
                    result->resumed_from > 0
                        ? (", resumed at " + std::to_string(result->resumed_from) + " bytes").c_str()
                        : "");
      }
      return 0;
    };
  });
}

}  // namespace llmd::cli
