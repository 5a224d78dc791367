#include <gtest/gtest.h>

#include "grammar/json_schema.h"

namespace llmd::grammar {
namespace {

using nlohmann::json;

std::string violation(const json& instance, const json& schema) {
  auto r = validate(instance, schema);
  EXPECT_FALSE(r) << instance.dump() << " should violate " << schema.dump();
  if (r) return {};
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  return r.error().message;
}

const json kGrading = json::parse(R"({
  "type":"object",
  "properties":{
    "score":{"type":"integer","minimum":0,"maximum":100},
    "correct":{"type":"boolean"},
    "feedback":{"type":"string","minLength":1},
    "suggestions":{"type":"array","items":{"type":"string"},"maxItems":3}},
  "required":["score","correct","feedback","suggestions"],
  "additionalProperties":false})");

TEST(Validate, AcceptsAConformingInstance) {
  EXPECT_TRUE(
      validate(json::parse(R"({"score":85,"correct":true,"feedback":"很好","suggestions":["多练习"]})"), kGrading));
}

TEST(Validate, ReportsThePointerOfTheFirstViolation) {
  const auto base = json::parse(R"({"score":85,"correct":true,"feedback":"ok","suggestions":["a","b"]})");
  auto wrong = base;
  wrong["suggestions"][1] = 7;
  EXPECT_EQ(violation(wrong, kGrading), "/suggestions/1: expected string, got integer");
  wrong = base;
  wrong["score"] = 120;
  EXPECT_EQ(violation(wrong, kGrading), "/score: 120 is greater than maximum 100");
  wrong = base;
  wrong.erase("feedback");
  EXPECT_EQ(violation(wrong, kGrading), "/: missing required property 'feedback'");
  wrong = base;
  wrong["extra"] = 1;
  EXPECT_EQ(violation(wrong, kGrading), "/extra: property is not allowed (additionalProperties is false)");
  wrong = base;
  wrong["feedback"] = "";
  EXPECT_NE(violation(wrong, kGrading).find("/feedback: string has 0 characters"), std::string::npos);
}

TEST(Validate, ArrayCountsAreExact) {
  const json schema = {{"type", "array"}, {"minItems", 3}, {"maxItems", 3}};
  EXPECT_TRUE(validate(json{1, 2, 3}, schema));
  EXPECT_NE(violation(json{1, 2}, schema).find("at least 3"), std::string::npos);
  EXPECT_NE(violation(json{1, 2, 3, 4}, schema).find("at most 3"), std::string::npos);
}

TEST(Validate, StringLengthCountsCodePoints) {
  const json schema = {{"type", "string"}, {"maxLength", 2}};
  EXPECT_TRUE(validate("中文", schema));
  violation("中文字", schema);
}

TEST(Validate, IntegerAcceptsIntegralFloatsOnly) {
  const json schema = {{"type", "integer"}};
  EXPECT_TRUE(validate(json::parse("3.0"), schema));
  EXPECT_EQ(violation(json::parse("3.5"), schema), "/: expected integer, got number");
  EXPECT_TRUE(validate(3, json{{"type", "number"}}));
}

TEST(Validate, ExclusiveBounds) {
  const json schema = {{"type", "number"}, {"exclusiveMinimum", 0}, {"exclusiveMaximum", 1}};
  EXPECT_TRUE(validate(0.5, schema));
  violation(0, schema);
  violation(1, schema);
}

TEST(Validate, EnumConstAndTypeArrays) {
  EXPECT_TRUE(validate("b", json::parse(R"({"enum":["a","b"]})")));
  EXPECT_NE(violation("c", json::parse(R"({"enum":["a","b"]})")).find("is not one of"), std::string::npos);
  EXPECT_TRUE(validate(nullptr, json::parse(R"({"type":["string","null"]})")));
  EXPECT_EQ(violation(1, json::parse(R"({"type":["string","null"]})")), "/: expected string or null, got integer");
  EXPECT_TRUE(validate(1.0, json::parse(R"({"const":1})")));
}

TEST(Validate, AnyOfAndOneOf) {
  const auto any = json::parse(R"({"anyOf":[{"type":"integer"},{"minimum":0}]})");
  EXPECT_TRUE(validate(5, any));
  const auto one = json::parse(R"({"oneOf":[{"type":"integer"},{"minimum":0}]})");
  EXPECT_NE(violation(5, one).find("exactly one"), std::string::npos);
  EXPECT_TRUE(validate(-5, one));
  EXPECT_NE(violation("x", json::parse(R"({"anyOf":[{"type":"integer"},{"type":"null"}]})")).find("none of"),
            std::string::npos);
}

TEST(Validate, FollowsLocalRefsRecursively) {
  const auto schema = json::parse(R"({"$defs":{"node":{"type":"object","properties":{
      "kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["kids"]}},"$ref":"#/$defs/node"})");
  EXPECT_TRUE(validate(json::parse(R"({"kids":[{"kids":[]}]})"), schema));
  EXPECT_EQ(violation(json::parse(R"({"kids":[{"kids":[{}]}]})"), schema),
            "/kids/0/kids/0: missing required property 'kids'");
}

TEST(Validate, UndeclaredPropertiesAreAllowedByDefault) {
  EXPECT_TRUE(validate(json::parse(R"({"a":1,"b":2})"), json::parse(R"({"properties":{"a":{"type":"integer"}}})")));
  EXPECT_FALSE(validate(json::parse(R"({"a":1,"b":"x"})"),
                        json::parse(R"({"properties":{"a":{}},"additionalProperties":{"type":"integer"}})")));
}

TEST(Validate, UnsupportedSchemasAreRefusedNotIgnored) {
  auto r = validate("abc", json::parse(R"({"type":"string","pattern":"^a"})"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnprocessable);
  r = validate(1, json::parse(R"({"$ref":"#/$defs/none"})"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  r = validate(1, json::parse(R"({"$ref":"#"})"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnprocessable);
}

TEST(Validate, BooleanSchemas) {
  EXPECT_TRUE(validate(json::parse(R"({"x":[1]})"), true));
  EXPECT_TRUE(validate(1, json::object()));
  violation(1, false);
}

}  // namespace
}  // namespace llmd::grammar
