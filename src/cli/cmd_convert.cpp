// `llmd convert --from X --to Y [FILE]`: the conversion engine offline.
// Reads FILE (or stdin), writes the result to stdout. Exit 1 with the
// engine's message (format, line, column) on bad input; 2 on bad flags.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "tasks/convert/convert.h"

namespace llmd::cli {
namespace {

struct ConvertFlags {
  std::string from;
  std::string to;
  std::string file;
  bool infer_types = false;
  bool compact = false;
  int indent = 2;
  std::string root_name = "root";
  std::string item_name = "item";
};

// The whole of `path`, or of stdin for "" / "-"; nullopt when unreadable.
std::optional<std::string> read_input(const std::string& path) {
  std::ostringstream buf;
  if (path.empty() || path == "-") {
    buf << std::cin.rdbuf();
    return buf.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  buf << in.rdbuf();
  return buf.str();
}

int run_convert(const ConvertFlags& f) {
  // The flag checks already passed, so both names parse.
  auto from = convert::parse_format(f.from);
  auto to = convert::parse_format(f.to);
  if (!from || !to) {
    std::fprintf(stderr, "llmd convert: %s\n", (!from ? from.error() : to.error()).message.c_str());
    return 2;
  }
  auto input = read_input(f.file);
  if (!input) {
    std::fprintf(stderr, "llmd convert: cannot read %s\n", f.file.c_str());
    return 1;
  }
  convert::ConvertOptions options;
  options.infer_types = f.infer_types;
  options.pretty = !f.compact;
  options.indent = f.indent;
  options.root_name = f.root_name;
  options.item_name = f.item_name;
  auto out = convert::convert(*input, *from, *to, options);
  if (!out) {
    std::fprintf(stderr, "llmd convert: %s\n", out.error().message.c_str());
    return 1;
  }
  std::fwrite(out->data(), 1, out->size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace

void add_convert_command(CLI::App& root, CommandRunner& run) {
  auto* cmd = root.add_subcommand("convert", "Convert between JSON, YAML, XML, CSV, TSV and TOML (stdin -> stdout)");
  auto flags = std::make_shared<ConvertFlags>();
  const std::vector<std::string> formats = {"json", "yaml", "yml", "xml", "csv", "tsv", "toml"};
  cmd->add_option("--from", flags->from, "Input format")->required()->check(CLI::IsMember(formats, CLI::ignore_case));
  cmd->add_option("--to", flags->to, "Output format")->required()->check(CLI::IsMember(formats, CLI::ignore_case));
  cmd->add_option("file", flags->file, "Input file (default: stdin)");
  cmd->add_flag("--infer-types", flags->infer_types, "Type CSV/TSV cells and XML text (numbers, booleans, null)");
  cmd->add_flag("--compact", flags->compact, "Single-line JSON/XML output");
  cmd->add_option("--indent", flags->indent, "Spaces per level")->check(CLI::Range(1, 8));
  cmd->add_option("--root-name", flags->root_name,
                  "XML root element / TOML key wrapping a document with no single root");
  cmd->add_option("--item-name", flags->item_name, "XML element for entries of a top-level list");
  cmd->callback([&run, flags] { run = [flags] { return run_convert(*flags); }; });
}

}  // namespace llmd::cli
