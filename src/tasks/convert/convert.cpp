// Entry points: input checks shared by every format, dispatch, and the
// self-description served by GET /api/v1/tasks/formats.
#include "tasks/convert/convert.h"

#include <array>

#include "core/text.h"
#include "tasks/convert/detail.h"

namespace llmd::convert {
namespace {

constexpr std::array<Format, 6> kFormats = {Format::kJson, Format::kYaml, Format::kXml,
                                            Format::kCsv,  Format::kTsv,  Format::kToml};

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

// One line per convention; shown in the API and the README.
constexpr std::array<std::string_view, 17> kConventions = {
    "Key order is preserved everywhere (TOML output moves a nested table inline when a plain value follows it).",
    "Types are kept when both sides are typed (JSON, YAML, TOML): integers stay exact integers (also beyond 64 bits, "
    "except in TOML), never floats or exponent notation.",
    "CSV, TSV and XML values are strings unless options.infer_types is set; inference never touches values with "
    "leading zeros (\"01730\"), a '+' sign, or anything that would not print back identically.",
    "XML: attributes become \"@name\" keys; text next to attributes or child elements becomes \"#text\"; an element "
    "with only text becomes a string; an empty element (<a/>) becomes null; repeated sibling elements become an array.",
    "XML output: an object with one non-list key becomes the root element; anything else is wrapped in <root> "
    "(options.root_name), top-level list entries as <item> (options.item_name). null, \"\" and [] become empty "
    "elements. Keys must be valid XML names.",
    "XML input: no DTD or external entity is ever loaded; a DOCTYPE declaring entities is rejected "
    "(xml_entities_forbidden); comments and processing instructions are dropped.",
    "CSV/TSV: the first record is the header; each record becomes an object. Nested values are flattened with "
    "dotted keys (b.x) and list indices from 1 (t.1, t.2) and unflattened on the way back (a path whose keys are "
    "exactly 1..n becomes a list).",
    "CSV/TSV output: the header is the union of all rows' keys in first-seen order; missing cells and null are "
    "empty; records end with CRLF; fields with the delimiter, quotes or line breaks are quoted (RFC 4180).",
    "CSV/TSV input: quoted fields may contain delimiters, \"\" and line breaks; CRLF, LF and CR line ends and a "
    "BOM are accepted; blank lines are skipped; a short record is filled with empty strings; a record longer than "
    "the header is an error. TSV uses the same quoting rules with a tab.",
    "YAML input follows the YAML 1.2 core schema (yes/no/on/off are strings), except that decimal integers with "
    "leading zeros stay strings. Anchors, aliases and merge keys (<<) are expanded; several documents become a list.",
    "YAML output quotes every string a YAML 1.1 or 1.2 reader could take for something else (yes, no, on, off, y, "
    "n, true, null, ~, 1e3, 01730, dates, ...).",
    "TOML has no null and only 64-bit integers: such documents are rejected; a non-object top level is wrapped as "
    "{root: ...}; TOML dates and times become strings.",
    "Input must be UTF-8 (a leading BOM is skipped); invalid UTF-8 is rejected.",
    "Duplicate keys in JSON, YAML, TOML or a CSV header, and duplicate attributes of an XML element, are rejected.",
    "Floating-point numbers are written in the shortest form that reads back to the same value; NaN and infinity "
    "are rejected by JSON and kept by YAML and TOML.",
    "Errors name the format, line and column.",
    "Limits: input bytes and CSV/TSV columns (413), nesting depth and number of values after alias expansion "
    "(422).",
};

Result<void> check_options(const ConvertOptions& o) {
  if (o.indent < 1 || o.indent > 8)
    return fail(ErrorCode::kInvalidArgument, "indent must be between 1 and 8", "invalid_option");
  if (o.root_name.empty() || o.item_name.empty())
    return fail(ErrorCode::kInvalidArgument, "root_name and item_name must not be empty", "invalid_option");
  return {};
}

std::string_view display_name(Format f) {
  switch (f) {
    case Format::kJson: return "JSON";
    case Format::kYaml: return "YAML";
    case Format::kXml: return "XML";
    case Format::kCsv: return "CSV";
    case Format::kTsv: return "TSV";
    case Format::kToml: return "TOML";
  }
  return "?";
}

}  // namespace

Result<Format> parse_format(std::string_view name) {
  std::string n = text::to_lower(text::trim(name));
  if (n == "json") return Format::kJson;
  if (n == "yaml" || n == "yml") return Format::kYaml;
  if (n == "xml") return Format::kXml;
  if (n == "csv") return Format::kCsv;
  if (n == "tsv") return Format::kTsv;
  if (n == "toml") return Format::kToml;
  return fail(ErrorCode::kUnsupportedFormat,
              "unsupported format \"" + std::string(name) + "\" (use json, yaml, xml, csv, tsv or toml)",
              "unsupported_format");
}

std::string_view format_name(Format f) {
  switch (f) {
    case Format::kJson: return "json";
    case Format::kYaml: return "yaml";
    case Format::kXml: return "xml";
    case Format::kCsv: return "csv";
    case Format::kTsv: return "tsv";
    case Format::kToml: return "toml";
  }
  return "?";
}

Result<Value> read(Format from, std::string_view input, const ConvertOptions& options) {
  if (auto r = check_options(options); !r) return fail(std::move(r.error()));
  if (input.size() > options.limits.max_input_bytes) {
    return fail(ErrorCode::kTooLarge,
                std::string(display_name(from)) + " input of " + std::to_string(input.size()) +
                    " bytes is over the limit of " + std::to_string(options.limits.max_input_bytes),
                "input_too_large");
  }
  if (input.starts_with(kUtf8Bom)) input.remove_prefix(kUtf8Bom.size());
  if (auto bad = text::first_invalid_utf8(input)) {
    auto [line, column] = detail::line_column(input, *bad);
    return fail(detail::input_error(ErrorCode::kInvalidArgument, "invalid_utf8", display_name(from), line, column,
                                    "input is not valid UTF-8"));
  }
  switch (from) {
    case Format::kJson: return detail::read_json(input, options);
    case Format::kYaml: return detail::read_yaml(input, options);
    case Format::kXml: return detail::read_xml(input, options);
    case Format::kCsv: return detail::read_csv(input, ',', options);
    case Format::kTsv: return detail::read_csv(input, '\t', options);
    case Format::kToml: return detail::read_toml(input, options);
  }
  return fail(ErrorCode::kUnsupportedFormat, "unsupported format", "unsupported_format");
}

Result<std::string> write(Format to, const Value& doc, const ConvertOptions& options) {
  if (auto r = check_options(options); !r) return fail(std::move(r.error()));
  // Writers recurse; a document built elsewhere (from_json, by hand) gets
  // the same depth guarantee as one that came through read().
  if (auto r = check_limits(doc, options.limits); !r) return fail(std::move(r.error()));
  switch (to) {
    case Format::kJson: return detail::write_json(doc, options);
    case Format::kYaml: return detail::write_yaml(doc, options);
    case Format::kXml: return detail::write_xml(doc, options);
    case Format::kCsv: return detail::write_csv(doc, ',', options);
    case Format::kTsv: return detail::write_csv(doc, '\t', options);
    case Format::kToml: return detail::write_toml(doc, options);
  }
  return fail(ErrorCode::kUnsupportedFormat, "unsupported format", "unsupported_format");
}

Result<std::string> convert(std::string_view input, Format from, Format to, const ConvertOptions& options) {
  auto doc = read(from, input, options);
  if (!doc) return fail(std::move(doc.error()));
  return write(to, *doc, options);
}

nlohmann::json formats_description() {
  nlohmann::json formats = nlohmann::json::array();
  nlohmann::json pairs = nlohmann::json::array();
  for (Format f : kFormats) {
    formats.push_back({{"name", format_name(f)}, {"title", display_name(f)}});
    for (Format t : kFormats) pairs.push_back({{"from", format_name(f)}, {"to", format_name(t)}});
  }
  nlohmann::json conventions = nlohmann::json::array();
  for (auto line : kConventions) conventions.push_back(line);
  Limits defaults;
  return {
      {"formats", formats},
      {"conversions", pairs},
      {"conventions", conventions},
      {"options",
       {{"infer_types", "bool, default false: type CSV/TSV cells and XML text"},
        {"root_name", "string, default \"root\": wrapper element (XML) or key (TOML)"},
        {"item_name", "string, default \"item\": element for top-level list entries in XML"},
        {"pretty", "bool, default true: indented JSON/XML"},
        {"indent", "int 1..8, default 2"}}},
      {"limits",
       {{"max_input_bytes", defaults.max_input_bytes},
        {"max_depth", defaults.max_depth},
        {"max_nodes", defaults.max_nodes},
        {"max_columns", defaults.max_columns}}},
  };
}

std::string conventions_markdown() {
  std::string md;
  for (auto line : kConventions) {
    md += "* ";
    md += line;
    md += '\n';
  }
  return md;
}

}  // namespace llmd::convert
