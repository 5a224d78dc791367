#include "models/catalog.h"

#include <algorithm>
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
    const std::string stem = p.stem().string();
    if (names.contains(stem)) continue;
    names.insert(stem);
    out.push_back(describe_file(stem, p));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

}  // namespace llmd::models
