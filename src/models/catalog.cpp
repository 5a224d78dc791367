#include "models/catalog.h"

#include <algorithm>
#include <cstdio>
#include <regex>
#include <set>

namespace llmd::models {

CatalogModel describe_file(const std::string& name, const std::filesystem::path& path) {
  CatalogModel m;
  m.name = name;
  m.path = path;
  m.entry.name = name;
  m.entry.file = path.string();
  std::error_code ec;
  m.size = std::filesystem::file_size(path, ec);
  if (ec) {
    m.size = 0;
    m.error = "model file not found";
    return m;
  }
  auto info = read_gguf_info(path);
  if (!info) {
    m.error = info.error().message;
    return m;
  }
  m.gguf = std::move(*info);
  return m;
}

namespace {

// Adds the sizes of parts 2..n of a split model; a missing part is the model's error.
void add_split_parts(CatalogModel& m, const std::string& prefix, int parts) {
  for (int k = 2; k <= parts; ++k) {
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, "-%05d-of-%05d.gguf", k, parts);
    const std::filesystem::path part = m.path.parent_path() / (prefix + suffix);
    std::error_code ec;
    const auto size = std::filesystem::file_size(part, ec);
    if (ec) {
      m.error = "part " + std::to_string(k) + " of " + std::to_string(parts) + " is missing (" +
                part.filename().string() + ")";
      return;
    }
    m.size += size;
  }
}

}  // namespace

std::vector<CatalogModel> scan_catalog(const config::ModelsConfig& config) {
  std::vector<CatalogModel> out;
  std::set<std::string> names;
  std::set<std::filesystem::path> files;
  const std::filesystem::path dir = config.dir;

  for (const auto& e : config.list) {
    CatalogModel m;
    if (!e.file.empty()) {
      std::filesystem::path p = e.file;
      if (p.is_relative()) p = dir / p;
      m = describe_file(e.name, p);
      std::error_code ec;
      files.insert(std::filesystem::weakly_canonical(p, ec));
    } else {
      m.name = e.name;  // command-only model: nothing to inspect
    }
    m.entry = e;
    m.description = e.description;
    m.configured = true;
    names.insert(m.name);
    out.push_back(std::move(m));
  }

  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto& p = it->path();
    std::error_code fec;
    if (p.extension() != ".gguf" || !it->is_regular_file(fec)) continue;
    if (files.contains(std::filesystem::weakly_canonical(p, fec))) continue;
    std::string stem = p.stem().string();
    // A model split into parts (NAME-00001-of-00003.gguf, ...) is one model,
    // listed by its first part (llama.cpp loads the others from it).
    std::smatch split;
    static const std::regex kSplit(R"(^(.*)-(\d{5})-of-(\d{5})$)");
    const bool is_split = std::regex_match(stem, split, kSplit);
    if (is_split && std::stoi(split[2].str()) != 1) continue;
    if (is_split) stem = split[1].str();
    if (names.contains(stem)) continue;
    names.insert(stem);
    CatalogModel m = describe_file(stem, p);
    if (is_split && m.error.empty()) add_split_parts(m, split[1].str(), std::stoi(split[3].str()));
    out.push_back(std::move(m));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

}  // namespace llmd::models
