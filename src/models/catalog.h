// The model catalog: models named in `models.list` plus every `*.gguf` file
// found directly under `models.dir`, each with its GGUF metadata read
// without loading weights. A file that cannot be read or parsed stays in the
// catalog with a non-empty `error` (status "error" in the API).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "models/gguf_reader.h"

namespace llmd::models {

struct CatalogModel {
  std::string name;  // configured name, or the file stem
  std::string description;
  std::filesystem::path path;    // the GGUF file; empty for command-only models
  config::ModelEntry entry;      // launch settings (defaults for discovered files)
  bool configured = false;       // true when it comes from models.list
  std::uint64_t size = 0;        // file size in bytes
  std::optional<GgufInfo> gguf;  // metadata when the file parsed
  std::string error;             // why the model cannot be used ("" = fine)
};

// Scans the configuration and the directory. Configured files are resolved
// relative to `models.dir` unless absolute. Result is sorted by name; a
// discovered file whose stem equals a configured name is not listed twice.
// Never fails: problems are recorded per model. Blocking (file I/O).
std::vector<CatalogModel> scan_catalog(const config::ModelsConfig& config);

// Reads one file into a CatalogModel named `name` (used by scan_catalog and
// `llmd models inspect`).
CatalogModel describe_file(const std::string& name, const std::filesystem::path& path);

}  // namespace llmd::models
