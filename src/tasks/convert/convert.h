// Exact format conversion: JSON, YAML, XML, CSV, TSV and TOML, any to any,
// through one Document model (tasks/convert/document.h). No HTTP, no model.
//
//   auto yaml = convert::convert(R"({"a": [1, 2]})", Format::kJson, Format::kYaml, {});
//   // yaml == "a:\n  - 1\n  - 2\n"
//
// All functions are thread-safe (no shared state) and never throw for bad
// input; they report it as an Error:
//   kInvalidArgument (reason "parse_error", "invalid_utf8") - input does not parse;
//                    the message names the format, line and column.
//   kTooLarge        (reason "input_too_large")   - input over limits.max_input_bytes;
//                    (reason "column_limit")      - a CSV/TSV header over limits.max_columns.
//   kUnprocessable   (reason "depth_limit", "node_limit", "alias_cycle", "xml_entities_forbidden",
//                     "unrepresentable", "duplicate_key", "csv_shape")
//                    - well-formed but over a limit or not expressible in the target.
//   kUnsupportedFormat (reason "unsupported_format") - unknown format name.
//   kUnavailable     (reason "cancelled")         - limits.cancel was requested while it ran.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tasks/convert/document.h"

namespace llmd::convert {

enum class Format { kJson, kYaml, kXml, kCsv, kTsv, kToml };

// Parses a format name, case-insensitively: json, yaml (or yml), xml, csv,
// tsv, toml. Anything else -> kUnsupportedFormat.
Result<Format> parse_format(std::string_view name);

// The canonical lower-case name ("json", "yaml", ...).
std::string_view format_name(Format f);

struct ConvertOptions {
  // Turn CSV/TSV cells and XML text into numbers/booleans/null when they are
  // unambiguous (42, -7, 1.5, true, false, null). Never touches values with
  // leading zeros ("01730"), a leading '+', or surrounding spaces.
  bool infer_types = false;
  // Element that wraps a document with no single root when writing XML, and
  // the key that wraps a non-object top level when writing TOML.
  std::string root_name = "root";
  // Element name for each entry of a top-level array written as XML.
  std::string item_name = "item";
  // Indented multi-line output (JSON, XML); YAML, CSV and TOML are always
  // line-oriented.
  bool pretty = true;
  int indent = 2;  // spaces per level (1..8) for JSON, YAML and XML
  Limits limits;
};

// Reads `input` in format `from`. A leading UTF-8 BOM is skipped; invalid
// UTF-8 is rejected. See the file comment for errors.
Result<Value> read(Format from, std::string_view input, const ConvertOptions& options);

// Writes `doc` in format `to`. Fails with kUnprocessable when the target
// cannot express the document (e.g. null in TOML, a key that is not an XML
// name, a nested array inside a CSV row cell's path) or `doc` exceeds the
// depth limit. The output ends with a newline (except compact JSON/XML).
Result<std::string> write(Format to, const Value& doc, const ConvertOptions& options);

// read() then write().
Result<std::string> convert(std::string_view input, Format from, Format to, const ConvertOptions& options);

// For GET /api/v1/tasks/formats: {"formats":[...], "conversions":[{"from","to"}...],
// "conventions":[...lines...], "options":{...}, "limits":{...defaults}}.
nlohmann::json formats_description();

// The conventions as one Markdown list (the same lines as in formats_description()).
std::string conventions_markdown();

}  // namespace llmd::convert
