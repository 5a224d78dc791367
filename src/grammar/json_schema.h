// JSON Schema → GBNF (llama.cpp's grammar dialect) and a JSON Schema validator
// for the same subset of the specification.
//
// The grammars constrain sampling so that a model, even one with random weights,
// can only write JSON that parses and validates. Every grammar starts at the rule
// `root`, uses only rule names of [a-zA-Z0-9-] and only the constructs llama.cpp's
// grammar parser accepts (literals, character classes, groups, `|`, `?`, `*`, `+`,
// `{m}`, `{m,n}` with n <= 64), so it can be handed as is to
// `llama_sampler_init_grammar(vocab, gbnf.c_str(), "root")`.
//
// Supported schema subset (anything else is refused, never silently ignored):
//   type (one name or an array of names), enum, const, properties, required,
//   additionalProperties, items, minItems, maxItems, minLength, maxLength,
//   minimum, maximum, exclusiveMinimum, exclusiveMaximum (numeric form),
//   anyOf, oneOf, allOf (one element), $ref to a local pointer ("#", "#/$defs/x",
//   "#/definitions/x"), uniqueItems: false, `{}` / `true` (any JSON value).
// Annotations are ignored: title, description, default, examples, $schema, $id,
// $comment, deprecated, readOnly, writeOnly, format, contentEncoding,
// contentMediaType, $defs, definitions.
//
// What the grammar writes (always a subset of what the schema allows):
//   * objects list exactly the declared properties, in declaration order, each
//     optional one possibly left out; undeclared properties are never written
//     (as if `additionalProperties: false`). An object schema without
//     `properties` is written as any object (values matching
//     `additionalProperties` when that is a schema);
//   * whitespace only between tokens and bounded: at most one space, or one
//     newline followed by at most 16 spaces/tabs, so output cannot spin forever
//     on whitespace; none before or after the root value;
//   * numbers: at most 16 integer digits, 16 fraction digits, 3 exponent digits;
//     no exponent when the number has bounds;
//   * strings: any Unicode text except raw control characters (U+0000–U+001F),
//     JSON escapes `\" \\ \/ \b \f \n \r \t \uXXXX`; minLength/maxLength count
//     one escape as one character (a surrogate pair counts as two);
//   * oneOf is written like anyOf (the grammar cannot exclude overlaps).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

#include "core/error.h"

namespace llmd::grammar {

// A GBNF grammar (root rule `root`) for any JSON object — the grammar of
// `response_format: {"type": "json_object"}`. Same whitespace, number and
// string rules as the grammars of json_schema_to_gbnf.
extern const std::string_view kJsonGbnf;

// Translates `schema` (a JSON Schema object or boolean) into a GBNF grammar
// whose every sentence is JSON that validate() accepts against `schema`.
// Errors: kUnprocessable for a keyword or construct outside the supported
// subset (e.g. `pattern`, `minProperties`, remote $ref), for a schema no value
// can satisfy (`false`, an enum none of whose values fits) and for $ref cycles
// that consume no input; kInvalidArgument for a malformed schema (e.g.
// `minItems: -1`, `required: "x"`). The message names the schema location
// as a JSON pointer ("#/properties/items/minItems").
Result<std::string> json_schema_to_gbnf(const nlohmann::json& schema);

// Same, keeping the schema's property order: nlohmann::json sorts object keys,
// so callers that parse a schema from a request should parse it as
// ordered_json when the order of the written properties matters.
Result<std::string> json_schema_to_gbnf(const nlohmann::ordered_json& schema);

// Checks `instance` against `schema` with standard JSON Schema (2020-12)
// semantics for the subset above (here undeclared properties are allowed unless
// `additionalProperties` forbids them, as the specification says).
// Errors: kInvalidArgument naming the instance location of the first violation
// ("/answers/3: expected integer, got string"); kUnprocessable/kInvalidArgument
// as json_schema_to_gbnf for schemas outside the subset.
Result<void> validate(const nlohmann::json& instance, const nlohmann::json& schema);

}  // namespace llmd::grammar
