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

// A model split into parts (NAME-00001-of-00003.gguf, ...) is one model,
// named NAME and listed by its first part (llama.cpp loads the others from
// it). What a file name says: its model, and which part it is (1 of 1 when
// the model is not split).
struct SplitName {
  std::string model;
  int part = 1;
  int parts = 1;
};
SplitName split_name(const std::string& file_name);

// Every file of the model whose (first) file is `first`: itself, then parts
// 2..n of a split model.
std::vector<std::filesystem::path> model_files(const std::filesystem::path& first);

// Reads one file into a CatalogModel named `name` (used by scan_catalog and
// `llmd models inspect`).
CatalogModel describe_file(const std::string& name, const std::filesystem::path& path);

}  // namespace llmd::models
