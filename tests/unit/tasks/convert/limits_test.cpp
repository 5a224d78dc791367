// Hostile input fails fast and cleanly: alias bombs, deep nesting, size.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "tasks/convert/convert.h"

namespace llmd::convert {
namespace {

using Clock = std::chrono::steady_clock;

// Nine levels of nine aliases each: 9^9 (387 million) values when expanded.
std::string yaml_bomb() {
  std::string s = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i <= 9; ++i) {
    std::string prev = "*a" + std::to_string(i - 1);
    s += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 9; ++j) s += (j ? ", " : "") + prev;
    s += "]\n";
  }
  return s;
}

TEST(Limits, YamlAliasBombRejectedWithinOneSecond) {
  auto start = Clock::now();
  auto r = convert(yaml_bomb(), Format::kYaml, Format::kJson, ConvertOptions{});
  auto elapsed = Clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnprocessable);
  EXPECT_EQ(r.error().reason, "node_limit");
  EXPECT_LT(elapsed, std::chrono::seconds(1));
}

TEST(Limits, YamlAliasesWithinBudgetAreExpanded) {
  auto r = read(Format::kYaml, "a: &a [1, 2]\nb: [*a, *a]\n", ConvertOptions{});
  ASSERT_TRUE(r) << r.error().message;
  const Value& b = *r->as_object().find("b");
  ASSERT_EQ(b.as_array().size(), 2u);
  EXPECT_EQ(b.as_array()[1], *r->as_object().find("a"));
}

TEST(Limits, NodeLimitCountsEveryValue) {
  ConvertOptions o;
  o.limits.max_nodes = 4;
  EXPECT_TRUE(read(Format::kJson, "[1,2,3]", o));  // 4 values
  auto r = read(Format::kJson, "[1,2,3,4]", o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, "node_limit");
}

TEST(Limits, DefaultDepthLimitAtAndPastForJson) {
  ConvertOptions o;
  int limit = o.limits.max_depth;
  std::string at =
      std::string(static_cast<std::size_t>(limit), '[') + std::string(static_cast<std::size_t>(limit), ']');
  EXPECT_TRUE(read(Format::kJson, at, o));
  std::string past = "[" + at + "]";
  auto r = read(Format::kJson, past, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnprocessable);
  EXPECT_EQ(r.error().reason, "depth_limit");
}

TEST(Limits, VeryDeepInputFailsFastInEveryNestingFormat) {
  constexpr std::size_t kDeep = 100000;
  ConvertOptions o;
  struct Input {
    Format format;
    std::string text;
  };
  std::string xml;
  for (std::size_t i = 0; i < kDeep; ++i) xml += "<a>";
  for (std::size_t i = 0; i < kDeep; ++i) xml += "</a>";
  std::vector<Input> inputs = {
      {Format::kJson, std::string(kDeep, '[') + std::string(kDeep, ']')},
      {Format::kYaml, std::string(kDeep, '[') + std::string(kDeep, ']')},
      {Format::kXml, xml},
      {Format::kToml, "a = " + std::string(kDeep, '[') + std::string(kDeep, ']')},
  };
  for (const auto& in : inputs) {
    auto start = Clock::now();
    auto r = read(in.format, in.text, o);
    ASSERT_FALSE(r) << format_name(in.format);
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(2)) << format_name(in.format);
    // TOML's parser has its own nesting limit and reports it as a parse error.
    if (in.format != Format::kToml) {
      EXPECT_EQ(r.error().reason, "depth_limit") << r.error().message;
    }
  }
}

TEST(Limits, InputOverByteLimitIsTooLarge) {
  ConvertOptions o;
  o.limits.max_input_bytes = 10;
  EXPECT_TRUE(read(Format::kJson, "[1,2,3,44]", o));  // exactly 10 bytes
  auto r = read(Format::kJson, "[1,2,3,444]", o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTooLarge);
  EXPECT_EQ(r.error().reason, "input_too_large");
}

TEST(Limits, XxePayloadNeverReadsTheFile) {
  std::string payload =
      "<?xml version=\"1.0\"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/hostname\">]>\n<r>&x;</r>";
  auto r = convert(payload, Format::kXml, Format::kJson, ConvertOptions{});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, "xml_entities_forbidden");
  EXPECT_NE(r.error().message.find("line 2"), std::string::npos) << r.error().message;
}

TEST(Limits, UndeclaredEntityStaysLiteralText) {
  // pugixml never resolves entities it does not know; the text is inert.
  auto r = convert("<r>&x;</r>", Format::kXml, Format::kJson, ConvertOptions{});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, "{\n  \"r\": \"&x;\"\n}\n");
}

TEST(Limits, WriteChecksDepthOfHandBuiltDocuments) {
  Value v(1);
  for (int i = 0; i < 10; ++i) {
    Array a;
    a.push_back(std::move(v));
    v = Value(std::move(a));
  }
  ConvertOptions o;
  o.limits.max_depth = 9;
  auto r = write(Format::kYaml, v, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, "depth_limit");
}

}  // namespace
}  // namespace llmd::convert
