// validate(): JSON Schema 2020-12 semantics for the subset of json_schema.h.
#include <cmath>
#include <string>
#include "grammar/str_format.h"

#include "grammar/json_schema.h"
#include "grammar/schema_support.h"

namespace llmd::grammar {
namespace {

using nlohmann::json;

constexpr int kMaxRefDepth = 256;  // guards `{"$ref": "#"}`-style infinite recursion

std::string type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::object: return "object";
    case json::value_t::array: return "array";
    case json::value_t::string: return "string";
    case json::value_t::boolean: return "boolean";
    case json::value_t::null: return "null";
    case json::value_t::number_float: {
      const double d = v.get<double>();
      return std::isfinite(d) && std::floor(d) == d ? "integer" : "number";
    }
    default: return "integer";
  }
}

bool has_type(const json& v, std::string_view type) {
  const std::string actual = type_name(v);
  return actual == type || (type == "number" && actual == "integer");
}

// Short rendering of a value for messages: long strings are cut.
std::string brief(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

class Validator {
 public:
  explicit Validator(const json& root) : root_(root) {}

  // `at` is the instance location (JSON pointer), `where` the schema location.
  Result<void> check(const json& v, const json& schema, const std::string& at, const std::string& where, int depth) {
    if (depth > kMaxRefDepth)
      return fail(ErrorCode::kUnprocessable, detail::sformat("$ref recursion too deep at {}", where),
                  "unsupported_schema");
    if (auto ok = detail::check_schema_node(schema, where); !ok) return ok;
    if (schema.is_boolean()) {
      if (schema.get<bool>()) return {};
      return violation(at, "no value is allowed here (schema false)");
    }
    if (const auto it = schema.find("$ref"); it != schema.end()) {
      auto target = detail::resolve_ref(root_, it->get<std::string>());
      if (!target) return std::unexpected(target.error());
      if (auto ok = check(v, **target, at, it->get<std::string>(), depth + 1); !ok) return ok;
    }
    if (const auto it = schema.find("type"); it != schema.end()) {
      const auto types = *detail::admitted_types(schema);
      bool any = false;
      for (const auto& t : types) any = any || has_type(v, t);
      if (!any) {
        std::string expected = types.front();
        for (std::size_t i = 1; i < types.size(); ++i) expected += " or " + types[i];
        return violation(at, detail::sformat("expected {}, got {}", expected, type_name(v)));
      }
    }
    if (const auto it = schema.find("const"); it != schema.end() && v != *it) {
      return violation(at, detail::sformat("must equal {}", brief(*it)));
    }
    if (const auto it = schema.find("enum"); it != schema.end()) {
      bool found = false;
      for (const auto& option : *it) found = found || option == v;
      if (!found) return violation(at, detail::sformat("{} is not one of {}", brief(v), brief(*it)));
    }
    if (auto ok = check_combinators(v, schema, at, where, depth); !ok) return ok;
    if (v.is_object()) return check_object(v, schema, at, where, depth);
    if (v.is_array()) return check_array(v, schema, at, where, depth);
    if (v.is_string()) return check_string(v, schema, at);
    if (v.is_number()) return check_number(v, schema, at);
    return {};
  }

 private:
  static std::unexpected<Error> violation(const std::string& at, const std::string& what) {
    return fail(ErrorCode::kInvalidArgument, detail::sformat("{}: {}", at.empty() ? "/" : at, what),
                "schema_violation");
  }

  Result<void> check_combinators(const json& v, const json& schema, const std::string& at, const std::string& where,
                                 int depth) {
    if (const auto it = schema.find("allOf"); it != schema.end()) {
      for (std::size_t i = 0; i < it->size(); ++i) {
        auto ok = check(v, (*it)[i], at, detail::sformat("{}/allOf/{}", where, i), depth + 1);
        if (!ok) return ok;
      }
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      const auto it = schema.find(key);
      if (it == schema.end()) continue;
      int matches = 0;
      std::optional<Error> first_failure;
      for (std::size_t i = 0; i < it->size(); ++i) {
        auto ok = check(v, (*it)[i], at, detail::sformat("{}/{}/{}", where, key, i), depth + 1);
        if (ok) {
          ++matches;
        } else if (ok.error().code != ErrorCode::kInvalidArgument || ok.error().reason != "schema_violation") {
          return ok;  // a broken schema is reported as such, not as a mismatch
        } else if (!first_failure) {
          first_failure = ok.error();
        }
      }
      if (matches == 0) {
        return violation(at, detail::sformat("matches none of the {} alternatives (first: {})", key,
                                             first_failure ? first_failure->message : std::string("-")));
      }
      if (std::string_view(key) == "oneOf" && matches > 1)
        return violation(at, detail::sformat("matches {} oneOf alternatives, exactly one is allowed", matches));
    }
    return {};
  }

  Result<void> check_object(const json& v, const json& schema, const std::string& at, const std::string& where,
                            int depth) {
    if (const auto it = schema.find("required"); it != schema.end()) {
      for (const auto& name : *it) {
        if (!v.contains(name.get<std::string>()))
          return violation(at, detail::sformat("missing required property '{}'", name.get<std::string>()));
      }
    }
    const json* properties = nullptr;
    if (const auto it = schema.find("properties"); it != schema.end()) properties = &*it;
    const json* additional = nullptr;
    if (const auto it = schema.find("additionalProperties"); it != schema.end()) additional = &*it;
    for (const auto& [name, value] : v.items()) {
      const std::string child_at = detail::pointer_append(at, name);
      if (properties != nullptr && properties->contains(name)) {
        auto ok = check(value, properties->at(name), child_at, detail::pointer_append(where + "/properties", name),
                        depth + 1);
        if (!ok) return ok;
      } else if (additional != nullptr) {
        if (additional->is_boolean() && !additional->get<bool>())
          return violation(child_at, "property is not allowed (additionalProperties is false)");
        auto ok = check(value, *additional, child_at, where + "/additionalProperties", depth + 1);
        if (!ok) return ok;
      }
    }
    return {};
  }

  Result<void> check_array(const json& v, const json& schema, const std::string& at, const std::string& where,
                           int depth) {
    if (const auto it = schema.find("minItems"); it != schema.end() && v.size() < it->get<double>())
      return violation(at, detail::sformat("has {} items, at least {} required", v.size(), brief(*it)));
    if (const auto it = schema.find("maxItems"); it != schema.end() && v.size() > it->get<double>())
      return violation(at, detail::sformat("has {} items, at most {} allowed", v.size(), brief(*it)));
    if (const auto it = schema.find("items"); it != schema.end()) {
      for (std::size_t i = 0; i < v.size(); ++i) {
        auto ok = check(v[i], *it, detail::sformat("{}/{}", at, i), where + "/items", depth + 1);
        if (!ok) return ok;
      }
    }
    return {};
  }

  Result<void> check_string(const json& v, const json& schema, const std::string& at) {
    const std::size_t length = detail::utf8_length(v.get_ref<const std::string&>());
    if (const auto it = schema.find("minLength"); it != schema.end() && length < it->get<double>())
      return violation(at, detail::sformat("string has {} characters, at least {} required", length, brief(*it)));
    if (const auto it = schema.find("maxLength"); it != schema.end() && length > it->get<double>())
      return violation(at, detail::sformat("string has {} characters, at most {} allowed", length, brief(*it)));
    return {};
  }

  Result<void> check_number(const json& v, const json& schema, const std::string& at) {
    // long double compares int64 values exactly on x86-64 (64-bit mantissa).
    const long double x = v.get<long double>();
    const auto bound = [&](const char* key) { return schema.at(key).get<long double>(); };
    if (schema.contains("minimum") && x < bound("minimum"))
      return violation(at, detail::sformat("{} is less than minimum {}", brief(v), brief(schema["minimum"])));
    if (schema.contains("maximum") && x > bound("maximum"))
      return violation(at, detail::sformat("{} is greater than maximum {}", brief(v), brief(schema["maximum"])));
    if (schema.contains("exclusiveMinimum") && x <= bound("exclusiveMinimum"))
      return violation(at, detail::sformat("{} must be greater than {}", brief(v), brief(schema["exclusiveMinimum"])));
    if (schema.contains("exclusiveMaximum") && x >= bound("exclusiveMaximum"))
      return violation(at, detail::sformat("{} must be less than {}", brief(v), brief(schema["exclusiveMaximum"])));
    return {};
  }

  const json& root_;
};

}  // namespace

Result<void> validate(const json& instance, const json& schema) {
  return Validator(schema).check(instance, schema, "", "#", 0);
}

}  // namespace llmd::grammar
