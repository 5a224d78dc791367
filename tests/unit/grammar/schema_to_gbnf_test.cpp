#include <gtest/gtest.h>

#include <string>

#include "grammar/json_schema.h"
#include "unit/grammar/gbnf_matcher.h"

namespace llmd::grammar {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;
using testing::GbnfMatcher;

GbnfMatcher compile_json(const ordered_json& schema) {
  auto gbnf = json_schema_to_gbnf(schema);
  EXPECT_TRUE(gbnf) << (gbnf ? "" : gbnf.error().message);
  if (!gbnf) return GbnfMatcher::parse("root ::= \"<conversion failed>\"\n").value();
  auto m = GbnfMatcher::parse(*gbnf);
  EXPECT_TRUE(m) << (m ? "" : m.error().message) << "\n" << *gbnf;
  if (!m) return GbnfMatcher::parse("root ::= \"<bad grammar>\"\n").value();
  return std::move(m).value();
}

GbnfMatcher compile(std::string_view schema_text) { return compile_json(ordered_json::parse(schema_text)); }

Error conversion_error(std::string_view schema_text) {
  auto gbnf = json_schema_to_gbnf(ordered_json::parse(schema_text));
  EXPECT_FALSE(gbnf) << "expected an error, got:\n" << (gbnf ? *gbnf : "");
  return gbnf ? Error() : gbnf.error();
}

std::string items(int n, std::string_view item = "1") {
  std::string out = "[";
  for (int i = 0; i < n; ++i) out += (i ? "," : "") + std::string(item);
  return out + "]";
}

TEST(JsonSchemaToGbnf, RootRuleIsNamedRoot) {
  auto gbnf = json_schema_to_gbnf(json{{"type", "string"}});
  ASSERT_TRUE(gbnf);
  EXPECT_TRUE(gbnf->starts_with("root ::= "));
}

TEST(JsonSchemaToGbnf, RequiredPropertiesInDeclaredOrder) {
  const auto m = compile(R"({"type":"object","properties":{"score":{"type":"integer"},"ok":{"type":"boolean"}},
                            "required":["score","ok"]})");
  EXPECT_TRUE(m.accepts(R"({"score":90,"ok":true})"));
  EXPECT_TRUE(m.accepts("{\n  \"score\": -3,\n  \"ok\": false\n}"));
  EXPECT_FALSE(m.accepts(R"({"ok":true,"score":90})"));
  EXPECT_FALSE(m.accepts(R"({"score":90})"));
  EXPECT_FALSE(m.accepts(R"({"score":90,"ok":true,"x":1})"));
  EXPECT_FALSE(m.accepts(R"({"score":"90","ok":true})"));
}

TEST(JsonSchemaToGbnf, OptionalPropertiesMayBeOmittedAnywhere) {
  const auto m = compile(R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"},
                            "c":{"type":"integer"},"d":{"type":"integer"}},"required":["c"]})");
  for (const char* ok : {R"({"c":3})", R"({"a":1,"c":3})", R"({"b":2,"c":3})", R"({"a":1,"b":2,"c":3,"d":4})",
                         R"({"c":3,"d":4})", R"({"a":1,"c":3,"d":4})"}) {
    EXPECT_TRUE(m.accepts(ok)) << ok;
  }
  for (const char* bad :
       {R"({})", R"({"a":1})", R"({"a":1,"b":2,"d":4})", R"({,"c":3})", R"({"c":3,})", R"({"a":1,,"c":3})"}) {
    EXPECT_FALSE(m.accepts(bad)) << bad;
  }
}

TEST(JsonSchemaToGbnf, AllOptionalObjectMayBeEmpty) {
  const auto m = compile(R"({"type":"object","properties":{"x":{"type":"null"},"y":{"type":"null"}}})");
  EXPECT_TRUE(m.accepts("{}"));
  EXPECT_TRUE(m.accepts("{ }"));
  EXPECT_TRUE(m.accepts(R"({"y":null})"));
  EXPECT_TRUE(m.accepts(R"({"x":null, "y":null})"));
  EXPECT_FALSE(m.accepts(R"({"y":null,"x":null})"));
}

TEST(JsonSchemaToGbnf, ExactItemCountIsEnforced) {
  const auto m = compile(R"({"type":"array","items":{"type":"integer"},"minItems":25,"maxItems":25})");
  EXPECT_TRUE(m.accepts(items(25)));
  EXPECT_FALSE(m.accepts(items(24)));
  EXPECT_FALSE(m.accepts(items(26)));
  EXPECT_FALSE(m.accepts("[]"));
}

TEST(JsonSchemaToGbnf, ItemRangeIsEnforced) {
  const auto m = compile(R"({"type":"array","items":{"type":"boolean"},"minItems":2,"maxItems":4})");
  EXPECT_FALSE(m.accepts(items(1, "true")));
  EXPECT_TRUE(m.accepts(items(2, "true")));
  EXPECT_TRUE(m.accepts(items(4, "false")));
  EXPECT_FALSE(m.accepts(items(5, "true")));
  const auto open = compile(R"({"type":"array","minItems":3})");
  EXPECT_FALSE(open.accepts(items(2)));
  EXPECT_TRUE(open.accepts(items(3)));
  EXPECT_TRUE(open.accepts(items(40, R"({"any":["thing"]})")));
}

TEST(JsonSchemaToGbnf, LargeCountsStayCompactAndExact) {
  auto gbnf = json_schema_to_gbnf(json::parse(R"({"type":"array","items":{"type":"integer"},
                                                  "minItems":1000,"maxItems":1000})"));
  ASSERT_TRUE(gbnf);
  EXPECT_LT(gbnf->size(), 2000u);
  const auto m = compile(R"({"type":"array","items":{"const":0},"minItems":150,"maxItems":300})");
  EXPECT_FALSE(m.accepts(items(149, "0")));
  EXPECT_TRUE(m.accepts(items(150, "0")));
  EXPECT_TRUE(m.accepts(items(229, "0")));
  EXPECT_TRUE(m.accepts(items(300, "0")));
  EXPECT_FALSE(m.accepts(items(301, "0")));
  const auto exact = compile(R"({"type":"array","items":{"const":0},"minItems":1000,"maxItems":1000})");
  EXPECT_TRUE(exact.accepts(items(1000, "0")));
  EXPECT_FALSE(exact.accepts(items(999, "0")));
}

TEST(JsonSchemaToGbnf, EmptyArrayOnlyWhenMaxItemsIsZero) {
  const auto m = compile(R"({"type":"array","maxItems":0})");
  EXPECT_TRUE(m.accepts("[]"));
  EXPECT_FALSE(m.accepts("[1]"));
}

TEST(JsonSchemaToGbnf, StringsAcceptUnicodeAndEscapesButNotControlCharacters) {
  const auto m = compile(R"({"type":"string"})");
  EXPECT_TRUE(m.accepts(R"("你好，世界")"));
  EXPECT_TRUE(m.accepts(R"("emoji 😀 and \"quotes\" \\ \/ \n\t\b\f\r \u4e2d")"));
  EXPECT_FALSE(m.accepts("\"raw\nnewline\""));
  EXPECT_FALSE(m.accepts("\"tab\tchar\""));
  EXPECT_FALSE(m.accepts(R"("bad \x escape")"));
  EXPECT_FALSE(m.accepts(R"("short \u12 escape")"));
  EXPECT_FALSE(m.accepts(R"("unterminated)"));
}

TEST(JsonSchemaToGbnf, StringLengthCountsCharactersNotBytes) {
  const auto m = compile(R"({"type":"string","minLength":2,"maxLength":3})");
  EXPECT_FALSE(m.accepts(R"("中")"));
  EXPECT_TRUE(m.accepts(R"("中文")"));
  EXPECT_TRUE(m.accepts(R"("中文字")"));
  EXPECT_FALSE(m.accepts(R"("中文字符")"));
  EXPECT_TRUE(m.accepts(R"("a\nb")"));
}

TEST(JsonSchemaToGbnf, EnumAndConstAreLiterals) {
  const auto m = compile(R"({"enum":["优","良","差", 1, null, {"k":[true]}]})");
  EXPECT_TRUE(m.accepts(R"("优")"));
  EXPECT_TRUE(m.accepts("1"));
  EXPECT_TRUE(m.accepts("null"));
  EXPECT_TRUE(m.accepts(R"({"k":[true]})"));
  EXPECT_FALSE(m.accepts(R"("中")"));
  const auto c = compile(R"({"const":"say \"hi\"\n"})");
  EXPECT_TRUE(c.accepts(R"("say \"hi\"\n")"));
  EXPECT_FALSE(c.accepts(R"("say hi")"));
}

TEST(JsonSchemaToGbnf, EnumValuesOutsideTheTypeAreDropped) {
  const auto m = compile(R"({"type":"string","enum":["a",1,"b"]})");
  EXPECT_TRUE(m.accepts(R"("a")"));
  EXPECT_FALSE(m.accepts("1"));
  EXPECT_EQ(conversion_error(R"({"type":"string","enum":[1,2]})").code, ErrorCode::kUnprocessable);
}

TEST(JsonSchemaToGbnf, NumbersAndIntegers) {
  const auto n = compile(R"({"type":"number"})");
  for (const char* ok : {"0", "-0", "3.25", "-12", "1e5", "2.5E-3", "123456789"}) EXPECT_TRUE(n.accepts(ok)) << ok;
  for (const char* bad : {"01", "+1", ".5", "1.", "1e", "NaN", "0x10", "12345678901234567"})
    EXPECT_FALSE(n.accepts(bad)) << bad;
  const auto i = compile(R"({"type":"integer"})");
  EXPECT_TRUE(i.accepts("-42"));
  EXPECT_FALSE(i.accepts("4.2"));
  EXPECT_FALSE(i.accepts("1e3"));
}

TEST(JsonSchemaToGbnf, IntegerBoundsAreEnforced) {
  const auto m = compile(R"({"type":"integer","minimum":-15,"maximum":120})");
  for (int v = -30; v <= 150; ++v) {
    EXPECT_EQ(m.accepts(std::to_string(v)), v >= -15 && v <= 120) << v;
  }
  const auto ex = compile(R"({"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":1000})");
  EXPECT_FALSE(ex.accepts("0"));
  EXPECT_TRUE(ex.accepts("1"));
  EXPECT_TRUE(ex.accepts("999"));
  EXPECT_FALSE(ex.accepts("1000"));
  const auto positive = compile(R"({"type":"integer","minimum":1})");
  EXPECT_TRUE(positive.accepts("9999999999999999"));
  EXPECT_FALSE(positive.accepts("0"));
  EXPECT_FALSE(positive.accepts("-5"));
}

TEST(JsonSchemaToGbnf, NumberBoundsAreEnforced) {
  const auto m = compile(R"({"type":"number","minimum":0,"maximum":100})");
  for (const char* ok : {"0", "0.5", "99.99", "100", "100.000", "7"}) EXPECT_TRUE(m.accepts(ok)) << ok;
  for (const char* bad : {"-1", "-0.5", "100.01", "101", "1e2"}) EXPECT_FALSE(m.accepts(bad)) << bad;
  const auto neg = compile(R"({"type":"number","minimum":-2,"maximum":-1})");
  EXPECT_TRUE(neg.accepts("-1.5"));
  EXPECT_TRUE(neg.accepts("-2"));
  EXPECT_FALSE(neg.accepts("-2.5"));
  EXPECT_FALSE(neg.accepts("-0.5"));
  EXPECT_EQ(conversion_error(R"({"type":"number","maximum":0.5})").code, ErrorCode::kUnprocessable);
}

TEST(JsonSchemaToGbnf, NullableTypeArray) {
  const auto m = compile(R"({"type":["string","null"],"maxLength":2})");
  EXPECT_TRUE(m.accepts("null"));
  EXPECT_TRUE(m.accepts(R"("ab")"));
  EXPECT_FALSE(m.accepts(R"("abc")"));
  EXPECT_FALSE(m.accepts("1"));
}

TEST(JsonSchemaToGbnf, AnyOfAndOneOf) {
  const auto m = compile(R"({"anyOf":[{"type":"integer"},{"type":"object","properties":{"v":{"type":"string"}},
                                      "required":["v"]}]})");
  EXPECT_TRUE(m.accepts("7"));
  EXPECT_TRUE(m.accepts(R"({"v":"x"})"));
  EXPECT_FALSE(m.accepts("true"));
  const auto o = compile(R"({"oneOf":[{"const":"a"},{"const":"b"}]})");
  EXPECT_TRUE(o.accepts(R"("b")"));
  EXPECT_FALSE(o.accepts(R"("c")"));
}

TEST(JsonSchemaToGbnf, NestedObjectsAndArrays) {
  const auto m = compile(R"({"type":"object","properties":{
      "students":{"type":"array","minItems":1,"items":{"type":"object",
        "properties":{"name":{"type":"string"},"scores":{"type":"array","items":{"type":"integer"},"maxItems":3}},
        "required":["name","scores"]}}},"required":["students"]})");
  EXPECT_TRUE(m.accepts(R"({"students":[{"name":"李雷","scores":[90,85]},{"name":"Han","scores":[]}]})"));
  EXPECT_FALSE(m.accepts(R"({"students":[]})"));
  EXPECT_FALSE(m.accepts(R"({"students":[{"name":"x","scores":[1,2,3,4]}]})"));
}

TEST(JsonSchemaToGbnf, RefsToDefsIncludingRecursion) {
  const auto m = compile(R"({"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},
      "kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v"]}},"$ref":"#/$defs/node"})");
  EXPECT_TRUE(m.accepts(R"({"v":1})"));
  EXPECT_TRUE(m.accepts(R"({"v":1,"kids":[{"v":2,"kids":[{"v":3}]},{"v":4}]})"));
  EXPECT_FALSE(m.accepts(R"({"v":1,"kids":[{"kids":[]}]})"));
  const auto d =
      compile(R"({"definitions":{"s":{"type":"string"}},"type":"array","items":{"$ref":"#/definitions/s"}})");
  EXPECT_TRUE(d.accepts(R"(["a","b"])"));
  EXPECT_FALSE(d.accepts("[1]"));
}

TEST(JsonSchemaToGbnf, EmptySchemaAndTrueMeanAnyValue) {
  for (const char* schema : {"{}", "true"}) {
    const auto m = compile(schema);
    for (const char* ok : {"1", "\"s\"", "null", "[1,{\"a\":[]}]", "{\"k\":{}}", "false"})
      EXPECT_TRUE(m.accepts(ok)) << schema << " " << ok;
    EXPECT_FALSE(m.accepts("{'a':1}"));
  }
}

TEST(JsonSchemaToGbnf, WhitespaceIsBounded) {
  const auto m = compile(R"({"type":"array","items":{"type":"integer"}})");
  EXPECT_TRUE(m.accepts("[1, 2,\n    3]"));
  EXPECT_TRUE(m.accepts("[\n\t1\n]"));
  EXPECT_FALSE(m.accepts("[1,  2]"));
  EXPECT_FALSE(m.accepts("[1,\n\n2]"));
  EXPECT_FALSE(m.accepts("[1,\n" + std::string(17, ' ') + "2]"));
  EXPECT_FALSE(m.accepts(" [1]"));
  EXPECT_FALSE(m.accepts("[1] "));
}

TEST(JsonSchemaToGbnf, ObjectWithoutPropertiesFollowsAdditionalProperties) {
  const auto any = compile(R"({"type":"object"})");
  EXPECT_TRUE(any.accepts(R"({"x":[1],"y":"z"})"));
  EXPECT_FALSE(any.accepts("[]"));
  const auto map = compile(R"({"type":"object","additionalProperties":{"type":"integer"}})");
  EXPECT_TRUE(map.accepts(R"({"a":1,"中":2})"));
  EXPECT_FALSE(map.accepts(R"({"a":"1"})"));
  const auto closed = compile(R"({"type":"object","additionalProperties":false})");
  EXPECT_TRUE(closed.accepts("{}"));
  EXPECT_FALSE(closed.accepts(R"({"a":1})"));
}

TEST(JsonSchemaToGbnf, PropertyNamesAreEscapedAndRuleNamesSanitized) {
  const auto m = compile(R"({"type":"object","properties":{"分 数":{"type":"integer"},"a\"b":{"type":"null"},
                             "x_y":{"type":"null"}},"required":["分 数","a\"b","x_y"]})");
  EXPECT_TRUE(m.accepts(R"({"分 数":1,"a\"b":null,"x_y":null})"));
}

TEST(JsonSchemaToGbnf, JsonObjectGrammarMatchesConverterOutput) {
  auto gbnf = json_schema_to_gbnf(json{{"type", "object"}});
  ASSERT_TRUE(gbnf);
  EXPECT_EQ(*gbnf, std::string(kJsonGbnf));
  auto m = GbnfMatcher::parse(kJsonGbnf);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_TRUE(m->accepts(R"({"a":[1,2.5,-3e2,"中文",true,null,{"b":{}}]})"));
  EXPECT_FALSE(m->accepts("[1]"));
  EXPECT_FALSE(m->accepts("\"str\""));
}

TEST(JsonSchemaToGbnf, UnsupportedKeywordsAreRefusedWithTheirLocation) {
  const Error e = conversion_error(R"({"type":"object","properties":{"code":{"type":"string","pattern":"^[0-9]+$"}}})");
  EXPECT_EQ(e.code, ErrorCode::kUnprocessable);
  EXPECT_NE(e.message.find("pattern"), std::string::npos);
  EXPECT_NE(e.message.find("#/properties/code"), std::string::npos);
  for (const char* schema :
       {R"({"type":"object","minProperties":1})", R"({"not":{"type":"null"}})",
        R"({"type":"array","uniqueItems":true})", R"({"$ref":"http://example.com/s.json"})", R"({"$ref":"#node"})",
        R"({"allOf":[{"type":"string"},{"minLength":1}]})", R"({"type":"array","items":[{"type":"string"}]})",
        R"({"type":"integer","multipleOf":2})", "false", R"({"type":"string","nullable":true})", R"({"$ref":"#"})",
        R"({"$defs":{"a":{"anyOf":[{"$ref":"#/$defs/a"},{"type":"null"}]}},"$ref":"#/$defs/a"})"}) {
    EXPECT_EQ(conversion_error(schema).code, ErrorCode::kUnprocessable) << schema;
  }
}

TEST(JsonSchemaToGbnf, MalformedSchemasAreInvalidArguments) {
  for (const char* schema : {R"({"type":"array","minItems":-1})", R"({"type":"strng"})", R"({"required":"a"})",
                             R"({"enum":[]})", R"({"properties":{"a":1}})", R"({"$ref":"#/$defs/missing"})", "[]"}) {
    EXPECT_EQ(conversion_error(schema).code, ErrorCode::kInvalidArgument) << schema;
  }
  EXPECT_EQ(conversion_error(R"({"type":"array","minItems":3,"maxItems":2})").code, ErrorCode::kUnprocessable);
}

TEST(JsonSchemaToGbnf, KeepsPropertyOrderOfOrderedJson) {
  const auto m = compile(R"({"type":"object","properties":{"z":{"type":"integer"},"a":{"type":"integer"}},
                            "required":["z","a"]})");
  EXPECT_TRUE(m.accepts(R"({"z":1,"a":2})"));
  EXPECT_FALSE(m.accepts(R"({"a":2,"z":1})"));
}

}  // namespace
}  // namespace llmd::grammar
