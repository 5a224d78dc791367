// Conversion throughput: a generated JSON document (default 10 MB) converted
// to YAML, XML, CSV and TOML and back, timed with the library's convert().
//
//   convert_bench [--mb 10] [--runs 3] [--out DIR]
//
// MB/s is input bytes of that conversion / best wall time of --runs. With
// --out, the files are written to DIR (data.json, data.yaml, ...) so that
// bench/convert_vs_python.sh can time Python on exactly the same input.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "tasks/convert/convert.h"

using llmd::convert::ConvertOptions;
using llmd::convert::Format;

namespace {

// Deterministic records with every scalar type, nesting, a list, text that
// needs quoting in every format, Chinese and emoji.
std::string make_json(std::size_t target_bytes) {
  static const char* kCities[] = {"Boston", "北京", "São Paulo", "Zürich", "Lagos"};
  std::string s = "[";
  unsigned long long state = 42;
  auto next = [&] { return state = state * 6364136223846793005ULL + 1442695040888963407ULL; };
  for (std::size_t i = 0; s.size() < target_bytes; ++i) {
    if (i) s += ",\n";
    auto r = next();
    s += "{\"id\":" + std::to_string(i) + ",\"name\":\"user " + std::to_string(r % 100000) + "\"";
    s += ",\"email\":\"u" + std::to_string(i) + "@example.com\"";
    s += ",\"active\":" + std::string((r >> 7) & 1 ? "true" : "false");
    s += ",\"score\":" + std::to_string((r >> 11) % 10000) + "." + std::to_string((r >> 23) % 100);
    s += ",\"zip\":\"0" + std::to_string(1000 + (r >> 29) % 9000) + "\"";
    s += ",\"big\":9223372036854775807";
    s += ",\"tags\":[\"yes\",\"on\",\"t" + std::to_string((r >> 31) % 50) + "\"]";
    s += ",\"address\":{\"city\":\"" + std::string(kCities[(r >> 37) % 5]) + "\",\"street\":\"" +
         std::to_string((r >> 41) % 999) + " Main St, Apt \\\"B\\\"\"}";
    s += ",\"note\":\"line one\\nline two 😀\"}";
  }
  s += "]\n";
  return s;
}

double seconds_of_best(int runs, const auto& fn) {
  double best = 1e9;
  for (int i = 0; i < runs; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    std::chrono::duration<double> d = std::chrono::steady_clock::now() - t0;
    best = std::min(best, d.count());
  }
  return best;
}

std::string convert_or_die(const std::string& in, Format from, Format to, const ConvertOptions& o) {
  auto r = llmd::convert::convert(in, from, to, o);
  if (!r) {
    std::fprintf(stderr, "convert %s -> %s failed: %s\n", std::string(llmd::convert::format_name(from)).c_str(),
                 std::string(llmd::convert::format_name(to)).c_str(), r.error().message.c_str());
    std::exit(1);
  }
  return std::move(*r);
}

}  // namespace

int main(int argc, char** argv) {
  double mb = 10;
  int runs = 3;
  std::string out_dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--mb")
      mb = std::atof(argv[i + 1]);
    else if (flag == "--runs")
      runs = std::atoi(argv[i + 1]);
    else if (flag == "--out")
      out_dir = argv[i + 1];
  }
  ConvertOptions o;
  o.limits.max_input_bytes = 1u << 30;
  o.limits.max_nodes = 100'000'000;
  std::string json = make_json(static_cast<std::size_t>(mb * 1024 * 1024));
  std::printf("input: %.2f MB JSON, best of %d runs\n", static_cast<double>(json.size()) / 1e6, runs);
  std::printf("%-16s %10s %10s %10s\n", "conversion", "in MB", "seconds", "MB/s");

  auto report = [&](const char* name, const std::string& in, Format from, Format to) {
    std::string out;
    double s = seconds_of_best(runs, [&] { out = convert_or_die(in, from, to, o); });
    double in_mb = static_cast<double>(in.size()) / 1e6;
    std::printf("%-16s %10.2f %10.3f %10.1f\n", name, in_mb, s, in_mb / s);
    return out;
  };

  report("json -> json", json, Format::kJson, Format::kJson);
  std::string yaml = report("json -> yaml", json, Format::kJson, Format::kYaml);
  report("yaml -> json", yaml, Format::kYaml, Format::kJson);
  std::string xml = report("json -> xml", json, Format::kJson, Format::kXml);
  report("xml -> json", xml, Format::kXml, Format::kJson);
  std::string csv = report("json -> csv", json, Format::kJson, Format::kCsv);
  report("csv -> json", csv, Format::kCsv, Format::kJson);
  std::string toml = report("json -> toml", json, Format::kJson, Format::kToml);
  report("toml -> json", toml, Format::kToml, Format::kJson);

  if (!out_dir.empty()) {
    auto save = [&](const char* name, const std::string& text) {
      std::ofstream(out_dir + "/" + name, std::ios::binary) << text;
    };
    save("data.json", json);
    save("data.yaml", yaml);
    save("data.xml", xml);
    save("data.csv", csv);
  }
  return 0;
}
