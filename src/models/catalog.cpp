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

SplitName split_name(const std::string& file_name) {
  std::string stem = std::filesystem::path(file_name).stem().string();
  static const std::regex kSplit(R"(^(.*)-(\d{5})-of-(\d{5})$)");
  std::smatch m;
  if (!std::regex_match(stem, m, kSplit)) return {stem, 1, 1};
  return {m[1].str(), std::stoi(m[2].str()), std::stoi(m[3].str())};
}

std::vector<std::filesystem::path> model_files(const std::filesystem::path& first) {
  std::vector<std::filesystem::path> out{first};
  const SplitName s = split_name(first.filename().string());
  for (int k = 2; k <= s.parts; ++k) {
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, "-%05d-of-%05d.gguf", k, s.parts);
    out.push_back(first.parent_path() / (s.model + suffix));
  }
  return out;
}

namespace {

// Adds the sizes of parts 2..n of a split model; a missing part is the model's error.
void add_split_parts(CatalogModel& m) {
  const auto files = model_files(m.path);
  for (std::size_t k = 1; k < files.size(); ++k) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(files[k], ec);
    if (ec) {
      m.error = "part " + std::to_string(k + 1) + " of " + std::to_string(files.size()) + " is missing (" +
                files[k].filename().string() + ")";
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
    const SplitName split = split_name(p.filename().string());
    if (split.part != 1) continue;  // listed by its first part
    if (names.contains(split.model)) continue;
    names.insert(split.model);
    CatalogModel m = describe_file(split.model, p);
    if (split.parts > 1 && m.error.empty()) add_split_parts(m);
    out.push_back(std::move(m));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

}  // namespace llmd::models
