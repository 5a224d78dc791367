#include "grammar/schema_support.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include "grammar/str_format.h"

namespace llmd::grammar::detail {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 15> kAnnotations = {
    "$schema",  "$id",       "$comment", "title",           "description",      "default", "examples",   "deprecated",
    "readOnly", "writeOnly", "format",   "contentEncoding", "contentMediaType", "$defs",   "definitions"};

constexpr std::array<std::string_view, 20> kSupported = {"type",
                                                         "enum",
                                                         "const",
                                                         "properties",
                                                         "required",
                                                         "additionalProperties",
                                                         "items",
                                                         "minItems",
                                                         "maxItems",
                                                         "minLength",
                                                         "maxLength",
                                                         "minimum",
                                                         "maximum",
                                                         "exclusiveMinimum",
                                                         "exclusiveMaximum",
                                                         "anyOf",
                                                         "oneOf",
                                                         "allOf",
                                                         "$ref",
                                                         "uniqueItems"};

constexpr std::array<std::string_view, 7> kTypeNames = {"object",  "array",   "string", "number",
                                                        "integer", "boolean", "null"};

bool contains(auto const& list, std::string_view key) { return std::find(list.begin(), list.end(), key) != list.end(); }

// Advice for keywords users commonly send, so the error says what to do.
std::string unsupported_hint(std::string_view key) {
  if (key == "pattern" || key == "patternProperties")
    return " (regular expressions are not supported; use enum or drop the constraint)";
  if (key == "minProperties" || key == "maxProperties") return " (list the properties and mark them required instead)";
  if (key == "prefixItems" || key == "contains") return " (use items with one schema for all elements)";
  if (key == "not" || key == "if" || key == "then" || key == "else")
    return " (conditional and negated schemas cannot be compiled to a grammar)";
  if (key == "nullable") return " (use \"type\": [\"<type>\", \"null\"] instead)";
  return {};
}

Error bad(std::string_view where, std::string_view what) {
  return Error(ErrorCode::kInvalidArgument, detail::sformat("invalid JSON Schema at {}: {}", where, what));
}

bool is_count(const json& v) {
  if (v.is_number_unsigned()) return true;
  if (v.is_number_integer()) return v.get<std::int64_t>() >= 0;
  if (v.is_number_float()) {
    const double d = v.get<double>();
    return d >= 0 && std::floor(d) == d && d < 1e15;
  }
  return false;
}

bool is_schema_value(const json& v) { return v.is_object() || v.is_boolean(); }

}  // namespace

std::string substitute(std::string_view pattern, const std::vector<std::string>& args) {
  std::string out;
  std::size_t next = 0;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern.substr(i, 2) == "{{" || pattern.substr(i, 2) == "}}") {
      out += pattern[i++];
    } else if (pattern.substr(i, 2) == "{}") {
      if (next < args.size()) out += args[next++];
      ++i;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

std::string pointer_append(std::string_view pointer, std::string_view token) {
  std::string out(pointer);
  out += '/';
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

bool is_annotation(std::string_view key) { return contains(kAnnotations, key); }

Result<void> check_schema_node(const json& schema, std::string_view where) {
  if (schema.is_boolean()) return {};
  if (!schema.is_object()) return std::unexpected(bad(where, "a schema must be an object or a boolean"));
  for (const auto& [key, value] : schema.items()) {
    if (is_annotation(key)) continue;
    if (!contains(kSupported, key)) {
      return fail(ErrorCode::kUnprocessable,
                  detail::sformat("unsupported JSON Schema keyword '{}' at {}{}", key, where, unsupported_hint(key)),
                  "unsupported_schema");
    }
    if (key == "type") {
      const auto valid_name = [](const json& t) { return t.is_string() && contains(kTypeNames, t.get<std::string>()); };
      const bool ok = valid_name(value) ||
                      (value.is_array() && !value.empty() && std::all_of(value.begin(), value.end(), valid_name));
      if (!ok) return std::unexpected(bad(where, "'type' must be a type name or a non-empty array of type names"));
    } else if (key == "enum") {
      if (!value.is_array() || value.empty()) return std::unexpected(bad(where, "'enum' must be a non-empty array"));
    } else if (key == "properties" || key == "$defs" || key == "definitions") {
      if (!value.is_object()) return std::unexpected(bad(where, detail::sformat("'{}' must be an object", key)));
      for (const auto& [name, sub] : value.items()) {
        if (!is_schema_value(sub))
          return std::unexpected(bad(where, detail::sformat("'{}/{}' must be a schema", key, name)));
      }
    } else if (key == "required") {
      if (!value.is_array() || !std::all_of(value.begin(), value.end(), [](const json& v) { return v.is_string(); }))
        return std::unexpected(bad(where, "'required' must be an array of strings"));
    } else if (key == "additionalProperties" || key == "items") {
      if (!is_schema_value(value)) {
        return fail(ErrorCode::kUnprocessable,
                    detail::sformat("'{}' at {} must be a single schema (tuple forms are not supported)", key, where),
                    "unsupported_schema");
      }
    } else if (key == "minItems" || key == "maxItems" || key == "minLength" || key == "maxLength") {
      if (!is_count(value))
        return std::unexpected(bad(where, detail::sformat("'{}' must be a non-negative integer", key)));
    } else if (key == "minimum" || key == "maximum") {
      if (!value.is_number()) return std::unexpected(bad(where, detail::sformat("'{}' must be a number", key)));
    } else if (key == "exclusiveMinimum" || key == "exclusiveMaximum") {
      if (!value.is_number()) {
        return fail(
            ErrorCode::kUnprocessable,
            detail::sformat("'{}' at {} must be a number (the draft-4 boolean form is not supported)", key, where),
            "unsupported_schema");
      }
    } else if (key == "anyOf" || key == "oneOf" || key == "allOf") {
      if (!value.is_array() || value.empty() || !std::all_of(value.begin(), value.end(), is_schema_value))
        return std::unexpected(bad(where, detail::sformat("'{}' must be a non-empty array of schemas", key)));
      if (key == "allOf" && value.size() != 1) {
        return fail(
            ErrorCode::kUnprocessable,
            detail::sformat("'allOf' at {} must have exactly one schema (merging schemas is not supported)", where),
            "unsupported_schema");
      }
    } else if (key == "$ref") {
      if (!value.is_string()) return std::unexpected(bad(where, "'$ref' must be a string"));
    } else if (key == "uniqueItems") {
      if (!value.is_boolean()) return std::unexpected(bad(where, "'uniqueItems' must be a boolean"));
      if (value.get<bool>()) {
        return fail(
            ErrorCode::kUnprocessable,
            detail::sformat("'uniqueItems: true' at {} is not supported (a grammar cannot forbid duplicates)", where),
            "unsupported_schema");
      }
    }
  }
  const auto count = [&](const char* k) -> std::optional<double> {
    if (!schema.contains(k)) return std::nullopt;
    return schema.at(k).get<double>();
  };
  if (count("minItems") && count("maxItems") && *count("minItems") > *count("maxItems"))
    return fail(ErrorCode::kUnprocessable, detail::sformat("minItems > maxItems at {}: no array can match", where),
                "unsatisfiable_schema");
  if (count("minLength") && count("maxLength") && *count("minLength") > *count("maxLength"))
    return fail(ErrorCode::kUnprocessable, detail::sformat("minLength > maxLength at {}: no string can match", where),
                "unsatisfiable_schema");
  return {};
}

Result<const json*> resolve_ref(const json& root, const std::string& ref) {
  if (ref.empty() || ref[0] != '#') {
    return fail(ErrorCode::kUnprocessable,
                detail::sformat("$ref '{}' is not supported: only local references ('#/$defs/name') are", ref),
                "unsupported_schema");
  }
  if (ref.size() > 1 && ref[1] != '/') {
    return fail(ErrorCode::kUnprocessable, detail::sformat("$ref '{}': anchor references are not supported", ref),
                "unsupported_schema");
  }
  // The fragment is URI-encoded; decode %XX before reading it as a pointer.
  std::string pointer;
  for (std::size_t i = 1; i < ref.size(); ++i) {
    if (ref[i] == '%' && i + 2 < ref.size() && std::isxdigit(static_cast<unsigned char>(ref[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(ref[i + 2]))) {
      pointer += static_cast<char>(std::stoi(ref.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      pointer += ref[i];
    }
  }
  try {
    const json::json_pointer ptr(pointer);
    if (!root.contains(ptr))
      return fail(ErrorCode::kInvalidArgument, detail::sformat("$ref '{}' points to nothing", ref));
    const json& target = root.at(ptr);
    if (!is_schema_value(target))
      return fail(ErrorCode::kInvalidArgument, detail::sformat("$ref '{}' does not point to a schema", ref));
    return &target;
  } catch (const json::exception&) {
    return fail(ErrorCode::kInvalidArgument, detail::sformat("$ref '{}' is not a valid JSON pointer", ref));
  }
}

std::optional<std::vector<std::string>> admitted_types(const json& schema) {
  if (!schema.is_object()) return std::nullopt;
  if (const auto it = schema.find("type"); it != schema.end()) {
    if (it->is_string()) return std::vector<std::string>{it->get<std::string>()};
    std::vector<std::string> out;
    for (const auto& t : *it) {
      if (!contains(out, t.get<std::string>())) out.push_back(t.get<std::string>());
    }
    return out;
  }
  std::vector<std::string> out;
  const auto uses = [&](std::initializer_list<const char*> keys) {
    return std::any_of(keys.begin(), keys.end(), [&](const char* k) { return schema.contains(k); });
  };
  if (uses({"properties", "required", "additionalProperties"})) out.emplace_back("object");
  if (uses({"items", "minItems", "maxItems", "uniqueItems"})) out.emplace_back("array");
  if (uses({"minLength", "maxLength"})) out.emplace_back("string");
  if (uses({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})) out.emplace_back("number");
  if (out.empty()) return std::nullopt;
  return out;
}

Result<IntRange> integer_range(const json& schema, std::string_view where) {
  // Work in long double so bounds beyond int64 clamp instead of overflowing.
  long double lo = -static_cast<long double>(kMaxGrammarMagnitude);
  long double hi = static_cast<long double>(kMaxGrammarMagnitude);
  if (schema.contains("minimum")) lo = std::max(lo, std::ceil(schema["minimum"].get<long double>()));
  if (schema.contains("exclusiveMinimum")) {
    lo = std::max(lo, std::floor(schema["exclusiveMinimum"].get<long double>()) + 1);
  }
  if (schema.contains("maximum")) hi = std::min(hi, std::floor(schema["maximum"].get<long double>()));
  if (schema.contains("exclusiveMaximum")) {
    hi = std::min(hi, std::ceil(schema["exclusiveMaximum"].get<long double>()) - 1);
  }
  if (lo > hi) {
    return fail(ErrorCode::kUnprocessable,
                detail::sformat("integer bounds at {} admit no value the grammar can write (at most {} digits)", where,
                                kMaxIntegerDigits),
                "unsatisfiable_schema");
  }
  return IntRange{static_cast<std::int64_t>(lo), static_cast<std::int64_t>(hi)};
}

std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

}  // namespace llmd::grammar::detail
