// Internal: what the converter and the validator share — the supported keyword
// set, schema well-formedness checks, local $ref resolution and type inference.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace llmd::grammar::detail {

// Digit limits of the numbers the grammars write (see json_schema.h).
inline constexpr int kMaxIntegerDigits = 16;
inline constexpr int kMaxFractionDigits = 16;
inline constexpr int kMaxExponentDigits = 3;
// Largest magnitude an integer the grammar writes can have: 10^16 - 1.
inline constexpr std::int64_t kMaxGrammarMagnitude = 9'999'999'999'999'999;

// Appends a JSON-pointer token (escaping '~' and '/') to `pointer`.
std::string pointer_append(std::string_view pointer, std::string_view token);

// Checks that `schema` (at schema location `where`, "#/..." form) is a boolean
// or an object whose keywords are all supported or annotations, and that the
// supported keywords have well-formed values. Does not descend into subschemas.
Result<void> check_schema_node(const nlohmann::json& schema, std::string_view where);

// Resolves a local reference ("#", "#/$defs/a", "#/definitions/a", any
// "#/json/pointer") against the root schema. The returned pointer refers into
// `root`. Errors: kUnprocessable for remote or anchor references,
// kInvalidArgument for a pointer that names nothing.
Result<const nlohmann::json*> resolve_ref(const nlohmann::json& root, const std::string& ref);

// The JSON types a schema node admits, from `type` when present, else inferred
// from the type-specific keywords it uses (properties → object, items →
// array, minLength → string, minimum → number ...). Returns std::nullopt when
// nothing restricts the type. "integer" and "number" are kept distinct.
std::optional<std::vector<std::string>> admitted_types(const nlohmann::json& schema);

// True for a key that is a pure annotation (title, description, ...) or a
// definitions container ($defs, definitions).
bool is_annotation(std::string_view key);

// Integer bounds of an "integer" schema after folding exclusive bounds:
// [lo, hi], each clamped to ±kMaxGrammarMagnitude. Errors: kUnprocessable when
// the range is empty.
struct IntRange {
  std::int64_t lo = -kMaxGrammarMagnitude;
  std::int64_t hi = kMaxGrammarMagnitude;
};
Result<IntRange> integer_range(const nlohmann::json& schema, std::string_view where);

// Number of Unicode code points in a UTF-8 string (invalid bytes count as one).
std::size_t utf8_length(std::string_view s);

}  // namespace llmd::grammar::detail
