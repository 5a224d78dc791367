// json_schema_to_gbnf(): walks a schema and emits one GBNF rule per
// structural node through GbnfBuilder.
#include <cctype>
#include <cmath>
#include <map>
#include <string>
#include <vector>
#include "grammar/str_format.h"

#include "grammar/gbnf_builder.h"
#include "grammar/json_schema.h"
#include "grammar/schema_support.h"

namespace llmd::grammar {

// Spelled out (rather than generated) so it is a constant; a unit test checks
// it equals what the converter emits for {"type": "object"}.
const std::string_view kJsonGbnf =
    "root ::= object\n"
    "value ::= object | array | string | number | boolean | null\n"
    "object ::= \"{\" ws ( member ( ws \",\" ws member )* ws )? \"}\"\n"
    "member ::= string ws \":\" ws value\n"
    "array ::= \"[\" ws ( value ( ws \",\" ws value )* ws )? \"]\"\n"
    "string ::= \"\\\"\" char* \"\\\"\"\n"
    "char ::= [^\"\\\\\\x00-\\x1F] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4} )\n"
    "number ::= \"-\"? ( \"0\" | [1-9] [0-9]{0,15} ) ( \".\" [0-9]{1,16} )? ( [eE] [+\\-]? [0-9]{1,3} )?\n"
    "boolean ::= \"true\" | \"false\"\n"
    "null ::= \"null\"\n"
    "ws ::= ( \" \" | \"\\n\" [ \\t]{0,16} )?\n";

namespace {

using detail::GbnfBuilder;
using nlohmann::ordered_json;

Error unprocessable(std::string message) {
  return Error(ErrorCode::kUnprocessable, std::move(message), "unsupported_schema");
}

bool has_only_annotations_besides(const ordered_json& schema, std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : schema.items()) {
    if (detail::is_annotation(key)) continue;
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) return false;
  }
  return true;
}

nlohmann::json to_json(const ordered_json& v) {
  return nlohmann::json::parse(v.dump(-1, ' ', false, ordered_json::error_handler_t::replace));
}

class Converter {
 public:
  explicit Converter(const ordered_json& root) : root_(root), root_plain_(to_json(root)) {}

  Result<std::string> run() {
    auto body = expr(root_, "#", "root-value");
    if (!body) return std::unexpected(body.error());
    return builder_.render(*body);
  }

 private:
  // The GBNF expression for `schema`, found at schema location `where`.
  Result<std::string> expr(const ordered_json& schema, const std::string& where, const std::string& hint) {
    if (auto ok = detail::check_schema_node(to_json_shallow(schema), where); !ok) return std::unexpected(ok.error());
    if (schema.is_boolean()) {
      if (schema.get<bool>()) return builder_.primitive("value");
      return fail(ErrorCode::kUnprocessable, detail::sformat("schema at {} is false: no value can match", where),
                  "unsatisfiable_schema");
    }
    if (schema.contains("$ref")) return ref_expr(schema, where);
    if (schema.contains("allOf")) {
      if (!has_only_annotations_besides(schema, {"allOf"}))
        return std::unexpected(
            unprocessable(detail::sformat("'allOf' at {} cannot be combined with other keywords", where)));
      return expr(schema["allOf"][0], where + "/allOf/0", hint);
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (schema.contains(key)) return alternatives_expr(schema, key, where, hint);
    }
    if (schema.contains("const") || schema.contains("enum")) return enum_expr(schema, where);

    const auto types = detail::admitted_types(to_json_shallow(schema));
    if (!types) return builder_.primitive("value");
    std::vector<std::string> alts;
    for (const auto& type : *types) {
      auto e = typed_expr(schema, type, where, types->size() > 1 ? hint + "-" + type : hint);
      if (!e) return e;
      alts.push_back(*e);
    }
    return join(alts);
  }

  // The schema node without its subschemas' contents, for keyword checks that
  // do not need them (avoids converting whole subtrees at every level).
  static nlohmann::json to_json_shallow(const ordered_json& schema) {
    if (!schema.is_object()) return to_json(schema);
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [key, value] : schema.items()) {
      if (key == "properties" || key == "$defs" || key == "definitions") {
        nlohmann::json names = nlohmann::json::object();
        for (const auto& [name, sub] : value.items())
          names[name] = sub.is_boolean() ? nlohmann::json(sub.get<bool>()) : nlohmann::json::object();
        out[key] = value.is_object() ? names : to_json(value);
      } else if ((key == "items" || key == "additionalProperties") && value.is_object()) {
        out[key] = nlohmann::json::object();
      } else if ((key == "anyOf" || key == "oneOf" || key == "allOf") && value.is_array()) {
        nlohmann::json subs = nlohmann::json::array();
        for (const auto& sub : value) subs.push_back(sub.is_object() ? nlohmann::json::object() : to_json(sub));
        out[key] = subs;
      } else {
        out[key] = to_json(value);
      }
    }
    return out;
  }

  static std::string join(const std::vector<std::string>& alts) {
    if (alts.size() == 1) return alts.front();
    std::string out = "(";
    for (std::size_t i = 0; i < alts.size(); ++i) out += (i > 0 ? " | " : "") + alts[i];
    return out + ")";
  }

  // A subschema inside an object or array: it starts after a consumed '{' or
  // '[', so $refs seen before no longer form a left-recursive cycle.
  Result<std::string> nested_rule(const ordered_json& schema, const std::string& where, const std::string& hint) {
    std::vector<std::string> saved;
    saved.swap(leading_refs_);
    auto e = expr(schema, where, hint);
    leading_refs_.swap(saved);
    if (!e) return e;
    return builder_.as_rule(std::move(*e), hint);
  }

  Result<std::string> ref_expr(const ordered_json& schema, const std::string& where) {
    if (!has_only_annotations_besides(schema, {"$ref"}))
      return std::unexpected(
          unprocessable(detail::sformat("'$ref' at {} cannot be combined with other keywords", where)));
    const std::string ref = schema["$ref"].get<std::string>();
    if (std::find(leading_refs_.begin(), leading_refs_.end(), ref) != leading_refs_.end()) {
      return std::unexpected(unprocessable(
          detail::sformat("$ref '{}' at {} refers to itself without an enclosing object or array", ref, where)));
    }
    if (auto it = ref_rules_.find(ref); it != ref_rules_.end()) return it->second;
    auto target_plain = detail::resolve_ref(root_plain_, ref);
    if (!target_plain) return std::unexpected(target_plain.error());
    // Same pointer into the order-preserving copy, so property order survives.
    const std::string pointer = ref.substr(1);
    const ordered_json& target = root_.at(ordered_json::json_pointer(decode_fragment(pointer)));
    const std::string tail = pointer.substr(pointer.find_last_of('/') + 1);
    const std::string name = builder_.fresh_name(tail.empty() ? "ref" : "ref-" + tail);
    ref_rules_.emplace(ref, name);
    leading_refs_.push_back(ref);
    auto body = expr(target, ref, name);
    leading_refs_.pop_back();
    if (!body) return body;
    builder_.define(name, *body);
    return name;
  }

  static std::string decode_fragment(const std::string& fragment) {
    std::string out;
    for (std::size_t i = 0; i < fragment.size(); ++i) {
      if (fragment[i] == '%' && i + 2 < fragment.size() + 0 &&
          std::isxdigit(static_cast<unsigned char>(fragment[i + 1])) &&
          std::isxdigit(static_cast<unsigned char>(fragment[i + 2]))) {
        out += static_cast<char>(std::stoi(fragment.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        out += fragment[i];
      }
    }
    return out;
  }

  Result<std::string> alternatives_expr(const ordered_json& schema, const char* key, const std::string& where,
                                        const std::string& hint) {
    if (!has_only_annotations_besides(schema, {key})) {
      return std::unexpected(unprocessable(detail::sformat(
          "'{}' at {} cannot be combined with other keywords; move them into each alternative", key, where)));
    }
    std::vector<std::string> alts;
    const auto& subs = schema[key];
    for (std::size_t i = 0; i < subs.size(); ++i) {
      auto e = expr(subs[i], detail::sformat("{}/{}/{}", where, key, i), detail::sformat("{}-{}", hint, i));
      if (!e) return e;
      if (std::find(alts.begin(), alts.end(), *e) == alts.end()) alts.push_back(*e);
    }
    return join(alts);
  }

  // enum/const: the literal JSON text of every listed value that also meets
  // the schema's other keywords.
  Result<std::string> enum_expr(const ordered_json& schema, const std::string& where) {
    const bool is_const = schema.contains("const");
    std::vector<ordered_json> candidates;
    if (is_const) {
      candidates.push_back(schema["const"]);
    } else {
      for (const auto& v : schema["enum"]) candidates.push_back(v);
    }
    ordered_json rest = schema;
    rest.erase(is_const ? "const" : "enum");
    const nlohmann::json rest_plain = to_json(rest);
    std::vector<std::string> alts;
    for (const auto& value : candidates) {
      if (auto ok = validate(to_json(value), rest_plain); !ok) {
        if (ok.error().reason == "schema_violation") continue;
        return std::unexpected(ok.error());
      }
      std::string literal = value_expr(value);
      if (std::find(alts.begin(), alts.end(), literal) == alts.end()) alts.push_back(std::move(literal));
    }
    if (alts.empty()) {
      return fail(ErrorCode::kUnprocessable,
                  detail::sformat("no value listed in '{}' at {} satisfies the rest of the schema",
                                  is_const ? "const" : "enum", where),
                  "unsatisfiable_schema");
    }
    return join(alts);
  }

  // Exactly `value`, with the usual optional whitespace inside objects and
  // arrays (so a model may pretty-print a constant like any other value).
  std::string value_expr(const ordered_json& value) {
    const auto text = [](const ordered_json& v) {
      return detail::gbnf_literal(v.dump(-1, ' ', false, ordered_json::error_handler_t::replace));
    };
    if (value.empty() || !value.is_structured()) return text(value);
    const std::string ws = builder_.primitive("ws");
    std::string out = value.is_object() ? "\"{\" ws " : "\"[\" ws ";
    bool first = true;
    for (const auto& [key, item] : value.items()) {
      if (!first) out += "ws \",\" ws ";
      first = false;
      if (value.is_object()) out += text(ordered_json(key)) + " ws \":\" ws ";
      out += value_expr(item) + " ";
    }
    return out + (value.is_object() ? "ws \"}\"" : "ws \"]\"");
  }

  Result<std::string> typed_expr(const ordered_json& schema, const std::string& type, const std::string& where,
                                 const std::string& hint) {
    if (type == "object") return object_expr(schema, where, hint);
    if (type == "array") return array_expr(schema, where, hint);
    if (type == "string") return string_expr(schema);
    if (type == "integer") return integer_expr(schema, where);
    if (type == "number") return number_expr(schema, where);
    return builder_.primitive(type);  // boolean, null
  }

  Result<std::string> object_expr(const ordered_json& schema, const std::string& where, const std::string& hint) {
    const auto additional = schema.find("additionalProperties");
    const bool closed = additional != schema.end() && additional->is_boolean() && !additional->get<bool>();
    if (!schema.contains("properties") && !schema.contains("required")) {
      if (closed) return std::string("\"{\" ") + builder_.primitive("ws") + " \"}\"";
      if (additional == schema.end() || additional->is_boolean()) return builder_.primitive("object");
      // additionalProperties as a schema: any keys, each value matching it.
      auto value = nested_rule(*additional, where + "/additionalProperties", hint + "-value");
      if (!value) return value;
      const std::string member =
          builder_.as_rule(detail::sformat("{} {} \":\" {} {}", builder_.primitive("string"), builder_.primitive("ws"),
                                           builder_.primitive("ws"), *value),
                           hint + "-member");
      return detail::sformat("\"{{\" ws ( {} ( ws \",\" ws {} )* ws )? \"}}\"", member, member);
    }

    struct Property {
      std::string kv_rule;
      bool required = false;
    };
    std::vector<Property> props;
    std::vector<std::string> required;
    if (schema.contains("required")) {
      for (const auto& r : schema["required"]) required.push_back(r.get<std::string>());
    }
    const auto is_required = [&](const std::string& name) {
      return std::find(required.begin(), required.end(), name) != required.end();
    };
    const auto add_property = [&](const std::string& name, const ordered_json& sub,
                                  const std::string& sub_where) -> Result<void> {
      auto value = nested_rule(sub, sub_where, hint + "-" + name);
      if (!value) return std::unexpected(value.error());
      const std::string key =
          detail::gbnf_literal(ordered_json(name).dump(-1, ' ', false, ordered_json::error_handler_t::replace));
      const std::string kv =
          builder_.as_rule(detail::sformat("{} ws \":\" ws {}", key, *value), hint + "-" + name + "-kv");
      props.push_back({kv, is_required(name)});
      return {};
    };
    builder_.primitive("ws");
    if (schema.contains("properties")) {
      for (const auto& [name, sub] : schema["properties"].items()) {
        auto ok = add_property(name, sub, detail::pointer_append(where + "/properties", name));
        if (!ok) return std::unexpected(ok.error());
      }
    }
    // Required but undeclared properties: written last, with any value.
    for (const auto& name : required) {
      if (schema.contains("properties") && schema["properties"].contains(name)) continue;
      if (closed) {
        return fail(ErrorCode::kUnprocessable,
                    detail::sformat("property '{}' at {} is required but additionalProperties is false", name, where),
                    "unsatisfiable_schema");
      }
      auto ok = add_property(name, ordered_json(true), where + "/required");
      if (!ok) return std::unexpected(ok.error());
    }
    if (props.empty()) return std::string("\"{\" ws \"}\"");
    const std::string sep = "ws \",\" ws ";

    // tail[i]: properties i.. once something has been written (each present
    // one preceded by a comma). first[i]: a non-empty run starting at or
    // after i. Both as rules so the grammar stays linear in the property count.
    const std::size_t n = props.size();
    std::vector<std::string> tail(n + 1);
    for (std::size_t i = n; i-- > 1;) {
      std::string piece = props[i].required ? sep + props[i].kv_rule : "( " + sep + props[i].kv_rule + " )?";
      if (!tail[i + 1].empty()) piece += " " + tail[i + 1];
      tail[i] = builder_.as_rule(piece, hint + "-rest");
    }
    const auto opens_with = [&](std::size_t i) {
      return tail[i + 1].empty() ? props[i].kv_rule : props[i].kv_rule + " " + tail[i + 1];
    };
    std::size_t first_required = n;
    for (std::size_t i = 0; i < n; ++i) {
      if (props[i].required) {
        first_required = i;
        break;
      }
    }
    // Built from the back: the run opens with the first required property,
    // or with any optional one before it.
    const std::size_t start = first_required == n ? n - 1 : first_required;
    std::string first = opens_with(start);
    for (std::size_t i = start; i-- > 0;) {
      first = opens_with(i) + " | " + builder_.as_rule(first, hint + "-from");
    }
    const bool all_optional = first_required == n;
    const std::string body = builder_.as_rule(first, hint + "-props");
    if (all_optional) return detail::sformat("\"{{\" ws ( {} ws )? \"}}\"", body);
    return detail::sformat("\"{{\" ws {} ws \"}}\"", body);
  }

  Result<std::string> array_expr(const ordered_json& schema, const std::string& where, const std::string& hint) {
    const std::uint64_t min = schema.contains("minItems") ? schema["minItems"].get<std::uint64_t>() : 0;
    std::optional<std::uint64_t> max;
    if (schema.contains("maxItems")) max = schema["maxItems"].get<std::uint64_t>();
    const std::string ws = builder_.primitive("ws");
    if (max && *max == 0) return detail::sformat("\"[\" {} \"]\"", ws);
    std::string item;
    if (schema.contains("items")) {
      auto e = nested_rule(schema["items"], where + "/items", hint + "-item");
      if (!e) return e;
      item = *e;
    } else {
      item = builder_.primitive("value");
    }
    const std::string more = builder_.as_rule(detail::sformat("ws \",\" ws {}", item), hint + "-more");
    std::string inner = item;
    const std::string rest =
        builder_.repeat(more, min > 0 ? min - 1 : 0, max ? std::optional<std::uint64_t>(*max - 1) : std::nullopt);
    if (!rest.empty()) inner += " " + rest;
    if (min == 0) return detail::sformat("\"[\" ws ( {} ws )? \"]\"", inner);
    return detail::sformat("\"[\" ws {} ws \"]\"", inner);
  }

  Result<std::string> string_expr(const ordered_json& schema) {
    if (!schema.contains("minLength") && !schema.contains("maxLength")) return builder_.primitive("string");
    const std::uint64_t min = schema.contains("minLength") ? schema["minLength"].get<std::uint64_t>() : 0;
    std::optional<std::uint64_t> max;
    if (schema.contains("maxLength")) max = schema["maxLength"].get<std::uint64_t>();
    const std::string ch = builder_.primitive("char");
    std::string body = builder_.repeat(ch, min, max);
    return detail::sformat("\"\\\"\" {}\"\\\"\"", body.empty() ? "" : body + " ");
  }

  static bool has_bounds(const ordered_json& schema) {
    return schema.contains("minimum") || schema.contains("maximum") || schema.contains("exclusiveMinimum") ||
           schema.contains("exclusiveMaximum");
  }

  Result<std::string> integer_expr(const ordered_json& schema, const std::string& where) {
    if (!has_bounds(schema)) return builder_.primitive("integer");
    auto range = detail::integer_range(to_json_shallow(schema), where);
    if (!range) return std::unexpected(range.error());
    return detail::integer_range_expr(range->lo, range->hi);
  }

  Result<std::string> number_expr(const ordered_json& schema, const std::string& where) {
    if (!has_bounds(schema)) return builder_.primitive("number");
    if (schema.contains("exclusiveMinimum") || schema.contains("exclusiveMaximum")) {
      return std::unexpected(unprocessable(detail::sformat(
          "exclusiveMinimum/exclusiveMaximum on a number at {} is not supported (use minimum/maximum, or type integer)",
          where)));
    }
    for (const char* key : {"minimum", "maximum"}) {
      if (!schema.contains(key)) continue;
      const long double bound = schema[key].get<long double>();
      if (std::floor(bound) != bound) {
        return std::unexpected(unprocessable(
            detail::sformat("'{}' of a number at {} must be a whole number to be enforced by a grammar", key, where)));
      }
    }
    auto range = detail::integer_range(to_json_shallow(schema), where);
    if (!range) return std::unexpected(range.error());
    return detail::number_range_expr(range->lo, range->hi);
  }

  const ordered_json& root_;
  const nlohmann::json root_plain_;  // for resolve_ref's existence checks
  GbnfBuilder builder_;
  std::map<std::string, std::string> ref_rules_;  // $ref -> its rule name
  std::vector<std::string> leading_refs_;         // $refs entered since the last '{' or '['
};

}  // namespace

Result<std::string> json_schema_to_gbnf(const nlohmann::ordered_json& schema) {
  try {
    return Converter(schema).run();
  } catch (const nlohmann::json::exception& e) {
    // Only reachable through a malformed value the keyword checks let pass.
    return fail(ErrorCode::kInvalidArgument, detail::sformat("invalid JSON Schema: {}", e.what()));
  }
}

Result<std::string> json_schema_to_gbnf(const nlohmann::json& schema) {
  return json_schema_to_gbnf(
      nlohmann::ordered_json::parse(schema.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
}

}  // namespace llmd::grammar
