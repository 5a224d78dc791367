// Property tests over random schemas and instances from fixed seeds:
//  * completeness — every instance validate() accepts, written with the
//    schema's property order and ordinary (compact or 2-space) formatting, is
//    a sentence of the schema's grammar;
//  * soundness — every mutated instance the grammar accepts is one validate()
//    accepts, and most mutations are rejected by both.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "grammar/json_schema.h"
#include "unit/grammar/gbnf_matcher.h"

namespace llmd::grammar {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;
using testing::GbnfMatcher;

class Random {
 public:
  explicit Random(std::uint32_t seed) : rng_(seed) {}
  int between(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[static_cast<std::size_t>(between(0, static_cast<int>(v.size()) - 1))];
  }

 private:
  std::mt19937 rng_;
};

const std::vector<std::string> kNames = {"name", "score", "中文名", "a b", "quote\"d", "x_y", "items", "k"};
const std::vector<std::string> kTextPieces = {"a", "Z", " ", "中", "文", "😀", "\"", "\\", "\n", "\t", "é", "/", "0"};

ordered_json random_schema(Random& r, int depth, ordered_json& defs) {
  const int kind = r.between(0, depth > 2 ? 6 : 11);
  switch (kind) {
    case 0: {
      ordered_json s = {{"type", "string"}};
      if (r.chance(0.5)) s["minLength"] = r.between(0, 3);
      if (r.chance(0.5)) s["maxLength"] = s.value("minLength", 0) + r.between(0, 4);
      return s;
    }
    case 1: {
      ordered_json s = {{"type", "integer"}};
      if (r.chance(0.5)) s["minimum"] = r.between(-50, 50);
      if (r.chance(0.5)) s["maximum"] = s.value("minimum", -60) + r.between(0, 200);
      if (r.chance(0.2)) s["exclusiveMaximum"] = s.value("maximum", 300) + 1;
      return s;
    }
    case 2: {
      ordered_json s = {{"type", "number"}};
      if (r.chance(0.4)) {
        s["minimum"] = r.between(-5, 5);
        s["maximum"] = s["minimum"].get<int>() + r.between(0, 20);
      }
      return s;
    }
    case 3: return {{"type", r.chance(0.5) ? "boolean" : "null"}};
    case 4: {
      ordered_json values = ordered_json::array();
      for (int i = r.between(1, 4); i > 0; --i) {
        values.push_back(r.chance(0.5) ? ordered_json(r.pick(kNames)) : ordered_json(r.between(-9, 99)));
      }
      return {{"enum", values}};
    }
    case 5: return {{"const", r.chance(0.5) ? ordered_json(r.pick(kNames)) : ordered_json({{"k", 1}})}};
    case 6: return r.chance(0.5) ? ordered_json::object() : ordered_json({{"type", {"string", "null"}}});
    case 7:
    case 8: {
      ordered_json s = {{"type", "object"}, {"properties", ordered_json::object()}};
      ordered_json required = ordered_json::array();
      for (int i = r.between(1, 4); i > 0; --i) {
        const std::string name = r.pick(kNames);
        if (s["properties"].contains(name)) continue;
        s["properties"][name] = random_schema(r, depth + 1, defs);
        if (r.chance(0.5)) required.push_back(name);
      }
      if (!required.empty()) s["required"] = required;
      if (r.chance(0.3)) s["additionalProperties"] = false;
      return s;
    }
    case 9: {
      ordered_json s = {{"type", "array"}, {"items", random_schema(r, depth + 1, defs)}};
      if (r.chance(0.6)) s["minItems"] = r.between(0, 3);
      if (r.chance(0.6)) s["maxItems"] = s.value("minItems", 0) + r.between(0, 3);
      return s;
    }
    case 10: return {{"anyOf", {random_schema(r, depth + 1, defs), random_schema(r, depth + 1, defs)}}};
    default: {
      const std::string name = "d" + std::to_string(defs.size());
      defs[name] = true;  // reserve the name before recursing
      defs[name] = random_schema(r, depth + 1, defs);
      return {{"$ref", "#/$defs/" + name}};
    }
  }
}

std::string random_text(Random& r, int length) {
  std::string s;
  for (int i = 0; i < length; ++i) s += r.pick(kTextPieces);
  return s;
}

// A value meant to satisfy `schema` (it may not, e.g. for anyOf branches the
// other keywords rule out; validate() has the last word).
ordered_json random_instance(Random& r, const ordered_json& schema, const ordered_json& root, int depth = 0) {
  if (schema.is_boolean() || schema.empty() || depth > 8) {
    return r.pick(std::vector<ordered_json>{1, "任意", nullptr, ordered_json::array({true, 2.5}), {{"k", "v"}}});
  }
  if (schema.contains("$ref")) {
    const std::string ref = schema["$ref"];
    return random_instance(r, root.at(ordered_json::json_pointer(ref.substr(1))), root, depth + 1);
  }
  if (schema.contains("allOf")) return random_instance(r, schema["allOf"][0], root, depth + 1);
  if (schema.contains("anyOf"))
    return random_instance(r, r.pick(schema["anyOf"].get<std::vector<ordered_json>>()), root, depth + 1);
  if (schema.contains("const")) return schema["const"];
  if (schema.contains("enum")) return r.pick(schema["enum"].get<std::vector<ordered_json>>());
  const ordered_json& type = schema["type"];
  const std::string t =
      type.is_array() ? type[static_cast<std::size_t>(r.between(0, 1))].get<std::string>() : type.get<std::string>();
  if (t == "string") {
    const int lo = schema.value("minLength", 0);
    const int hi = schema.value("maxLength", lo + 6);
    return random_text(r, r.between(lo, hi));
  }
  if (t == "integer") {
    const int lo = schema.value("minimum", -1000);
    int hi = schema.value("maximum", 1000);
    if (schema.contains("exclusiveMaximum")) hi = std::min(hi, schema["exclusiveMaximum"].get<int>() - 1);
    return r.between(lo, hi);
  }
  if (t == "number") {
    const int lo = schema.value("minimum", -100), hi = schema.value("maximum", 100);
    const int whole = r.between(lo, hi);
    const double fraction = whole < hi ? r.pick(std::vector<double>{0.0, 0.5, 0.25, 0.125}) : 0.0;
    if (!schema.contains("minimum") && r.chance(0.2)) return 1.5e30;
    return whole + fraction;
  }
  if (t == "boolean") return r.chance(0.5);
  if (t == "null") return nullptr;
  if (t == "array") {
    const int lo = schema.value("minItems", 0);
    const int hi = schema.value("maxItems", lo + 3);
    ordered_json out = ordered_json::array();
    for (int n = r.between(lo, hi); n > 0; --n) out.push_back(random_instance(r, schema["items"], root, depth + 1));
    return out;
  }
  ordered_json out = ordered_json::object();
  const auto required = schema.value("required", ordered_json::array());
  for (const auto& [name, sub] : schema["properties"].items()) {
    const bool is_required = std::find(required.begin(), required.end(), name) != required.end();
    if (is_required || r.chance(0.5)) out[name] = random_instance(r, sub, root, depth + 1);
  }
  return out;
}

// A small random change somewhere in the instance.
void mutate(Random& r, ordered_json& v) {
  if ((v.is_object() || v.is_array()) && !v.empty() && r.chance(0.6)) {
    const auto i = static_cast<std::size_t>(r.between(0, static_cast<int>(v.size()) - 1));
    auto it = v.begin();
    std::advance(it, i);
    mutate(r, *it);
    return;
  }
  switch (r.between(0, 4)) {
    case 0:
      v = r.pick(
          std::vector<ordered_json>{1, -3, 0.5, "x", true, nullptr, ordered_json::array(), ordered_json::object()});
      break;
    case 1:
      if (v.is_array()) {
        v.push_back(v.empty() ? ordered_json(1) : v.back());
      } else if (v.is_object()) {
        v["zz-extra"] = 1;
      } else if (v.is_string()) {
        v = v.get<std::string>() + random_text(r, 5);
      } else if (v.is_number()) {
        v = v.get<double>() * 10 + 1000;
      }
      break;
    case 2:
      if ((v.is_array() || v.is_object()) && !v.empty()) {
        if (v.is_array()) {
          v.erase(v.size() - 1);
        } else {
          v.erase(v.begin());
        }
      }
      break;
    case 3: v = "中文"; break;
    default: v = 123456; break;
  }
}

struct Totals {
  int schemas = 0, valid_instances = 0, mutants = 0, mutants_rejected = 0;
};

void run_seed(std::uint32_t seed, Totals& totals) {
  Random r(seed);
  ordered_json defs = ordered_json::object();
  ordered_json schema = random_schema(r, 0, defs);
  if (!defs.empty()) {
    if (!schema.is_object() || schema.contains("$ref") || schema.empty()) schema = {{"allOf", {schema}}};
    schema["$defs"] = defs;
  }
  auto gbnf = json_schema_to_gbnf(schema);
  if (!gbnf) {
    // Only unsatisfiable random combinations (e.g. an enum outside its type) may be refused.
    ASSERT_EQ(gbnf.error().reason, "unsatisfiable_schema") << gbnf.error().message << "\n" << schema.dump();
    return;
  }
  auto matcher = GbnfMatcher::parse(*gbnf);
  ASSERT_TRUE(matcher) << matcher.error().message << "\n" << *gbnf;
  ++totals.schemas;
  const json plain_schema = json::parse(schema.dump());
  for (int k = 0; k < 6; ++k) {
    ordered_json instance = random_instance(r, schema, schema);
    const bool valid = static_cast<bool>(validate(json::parse(instance.dump()), plain_schema));
    if (valid) {
      ++totals.valid_instances;
      EXPECT_TRUE(matcher->accepts(instance.dump()))
          << "seed " << seed << "\nschema " << schema.dump() << "\ninstance " << instance.dump() << "\n"
          << *gbnf;
      EXPECT_TRUE(matcher->accepts(instance.dump(2))) << "seed " << seed << " pretty " << instance.dump(2);
    }
    mutate(r, instance);
    const std::string text = instance.dump();
    const auto verdict = validate(json::parse(text), plain_schema);
    ++totals.mutants;
    if (matcher->accepts(text)) {
      EXPECT_TRUE(verdict) << "grammar accepted an invalid instance, seed " << seed << "\nschema " << schema.dump()
                           << "\ninstance " << text << "\n"
                           << (verdict ? "" : verdict.error().message);
    } else {
      ++totals.mutants_rejected;
    }
  }
}

TEST(GrammarProperty, ValidInstancesAreSentencesAndSentencesAreValid) {
  Totals totals;
  for (std::uint32_t seed = 1; seed <= 400; ++seed) {
    run_seed(seed, totals);
    if (HasFatalFailure()) return;
  }
  // The generators must actually exercise the grammars.
  EXPECT_GT(totals.schemas, 300);
  EXPECT_GT(totals.valid_instances, 1000);
  EXPECT_GT(totals.mutants_rejected, totals.mutants / 3);
  std::cout << "schemas " << totals.schemas << ", valid instances " << totals.valid_instances << ", mutants "
            << totals.mutants << " (" << totals.mutants_rejected << " rejected)\n";
}

TEST(GrammarProperty, KnownGoodSchemasProduceLlamaCompatibleGrammars) {
  // The shapes the product itself sends: homework grading and subtitle batches.
  const char* schemas[] = {
      R"({"type":"object","properties":{"score":{"type":"integer","minimum":0,"maximum":100},
          "correct":{"type":"boolean"},"feedback":{"type":"string"},
          "suggestions":{"type":"array","items":{"type":"string"},"maxItems":5}},
          "required":["score","correct","feedback","suggestions"],"additionalProperties":false})",
      R"({"type":"object","properties":{"lines":{"type":"array","items":{"type":"string","maxLength":400},
          "minItems":25,"maxItems":25}},"required":["lines"]})",
  };
  for (const char* text : schemas) {
    auto gbnf = json_schema_to_gbnf(ordered_json::parse(text));
    ASSERT_TRUE(gbnf) << gbnf.error().message;
    auto m = GbnfMatcher::parse(*gbnf);
    ASSERT_TRUE(m) << m.error().message << "\n" << *gbnf;
    EXPECT_LT(m->rule_count(), 2000u);
  }
}

}  // namespace
}  // namespace llmd::grammar
