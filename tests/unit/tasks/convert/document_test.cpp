// The document model, the JSON bridge, format names and the self-description.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tasks/convert/convert.h"
#include "tasks/convert/document.h"

namespace llmd::convert {
namespace {

TEST(Object, InsertRefusesDuplicateKeys) {
  Object o;
  EXPECT_TRUE(o.insert("a", Value(1)));
  EXPECT_FALSE(o.insert("a", Value(2)));
  EXPECT_EQ(*o.find("a"), Value(1));
  EXPECT_EQ(o.size(), 1u);
}

TEST(Object, InsertOrAssignKeepsPosition) {
  Object o;
  o.insert("a", Value(1));
  o.insert("b", Value(2));
  o.insert_or_assign("a", Value(3));
  ASSERT_EQ(o.size(), 2u);
  EXPECT_EQ(o.members()[0].first, "a");
  EXPECT_EQ(o.members()[0].second, Value(3));
}

TEST(Object, LargeObjectsKeepOrderAndFindEveryKey) {
  Object o;
  for (int i = 999; i >= 0; --i) ASSERT_TRUE(o.insert("k" + std::to_string(i), Value(i)));
  EXPECT_FALSE(o.insert("k500", Value(0)));
  EXPECT_EQ(o.members().front().first, "k999");
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(*o.find("k" + std::to_string(i)), Value(i));
  Object copy = o;  // the copy rebuilds its own index
  EXPECT_FALSE(copy.insert("k7", Value(0)));
  EXPECT_TRUE(copy.insert("new", Value(0)));
  EXPECT_EQ(*copy.find("new"), Value(0));
  EXPECT_EQ(o.find("new"), nullptr);
}

TEST(Value, EqualityIsKindSensitive) {
  EXPECT_NE(Value(1), Value(1.0));
  EXPECT_NE(Value(1), Value("1"));
  EXPECT_NE(Value(), Value(""));
  EXPECT_EQ(Value(BigInt{"99999999999999999999"}), Value(BigInt{"99999999999999999999"}));
}

TEST(FromJson, OrderedJsonKeepsKeyOrderAndTypes) {
  auto j = nlohmann::ordered_json::parse(R"({"z":1,"a":[true,null,1.5,"s"],"big":18446744073709551615})");
  auto v = from_json(j);
  ASSERT_TRUE(v) << v.error().message;
  auto out = write(Format::kYaml, *v, ConvertOptions{});
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, "z: 1\na:\n  - true\n  - null\n  - 1.5\n  - s\nbig: 18446744073709551615\n");
}

TEST(FromJson, RejectsInvalidUtf8AndDeepDocuments) {
  nlohmann::json bad = {{"a", std::string("\xff")}};
  auto v = from_json(bad);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().reason, "invalid_utf8");

  nlohmann::json deep = 1;
  for (int i = 0; i < 10; ++i) deep = nlohmann::json::array({deep});
  Limits limits;
  limits.max_depth = 9;
  auto d = from_json(deep, limits);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().reason, "depth_limit");
}

TEST(Formats, ParseFormatAcceptsNamesCaseInsensitively) {
  EXPECT_EQ(parse_format("JSON").value(), Format::kJson);
  EXPECT_EQ(parse_format("yml").value(), Format::kYaml);
  EXPECT_EQ(parse_format("Toml").value(), Format::kToml);
  auto r = parse_format("docx");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnsupportedFormat);
  EXPECT_EQ(r.error().reason, "unsupported_format");
}

TEST(Formats, DescriptionListsEveryPairAndTheConventions) {
  auto d = formats_description();
  EXPECT_EQ(d["formats"].size(), 6u);
  EXPECT_EQ(d["conversions"].size(), 36u);
  EXPECT_GE(d["conventions"].size(), 10u);
  EXPECT_EQ(d["limits"]["max_depth"], Limits{}.max_depth);
  EXPECT_NE(conventions_markdown().find("@name"), std::string::npos);
}

TEST(Options, BadIndentIsInvalidArgument) {
  ConvertOptions o;
  o.indent = 0;
  auto r = convert("{}", Format::kJson, Format::kYaml, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
}

// Every pair: the same two records, read from each format's natural
// spelling, survive the trip to every other format with the shape the
// conventions promise.
struct Source {
  Format format;
  std::string text;
};

std::vector<Source> sources() {
  return {
      {Format::kJson, R"([{"name":"Ann","zip":"01730"},{"name":"李","zip":"02139"}])"},
      {Format::kYaml, "- name: Ann\n  zip: \"01730\"\n- name: 李\n  zip: \"02139\"\n"},
      {Format::kCsv, "name,zip\r\nAnn,01730\r\n李,02139\r\n"},
      {Format::kTsv, "name\tzip\nAnn\t01730\n李\t02139\n"},
      {Format::kXml,
       "<root><item><name>Ann</name><zip>01730</zip></item><item><name>李</name><zip>02139</zip></item></root>"},
      {Format::kToml, "[[root]]\nname = \"Ann\"\nzip = \"01730\"\n\n[[root]]\nname = \"李\"\nzip = \"02139\"\n"},
  };
}

// What reading `doc` back from format `to` gives, per the conventions.
Value expected_after(Format to, const Value& doc) {
  auto wrap = [](std::string key, Value v) {
    Object o;
    o.insert(std::move(key), std::move(v));
    return Value(std::move(o));
  };
  switch (to) {
    case Format::kJson:
    case Format::kYaml: return doc;
    case Format::kCsv:
    case Format::kTsv:
      if (doc.is_array()) return doc;
      return Value(Array{doc});
    case Format::kXml:
      if (doc.is_array()) return wrap("root", wrap("item", doc));
      if (doc.as_object().size() == 1 && !doc.as_object().begin()->second.is_array()) return doc;
      return wrap("root", doc);
    case Format::kToml: return doc.is_object() ? doc : wrap("root", doc);
  }
  return doc;
}

TEST(AllPairs, EveryFormatConvertsToEveryOther) {
  ConvertOptions o;
  int pairs = 0;
  for (const auto& src : sources()) {
    auto doc = read(src.format, src.text, o);
    ASSERT_TRUE(doc) << format_name(src.format) << ": " << doc.error().message;
    for (Format to : {Format::kJson, Format::kYaml, Format::kXml, Format::kCsv, Format::kTsv, Format::kToml}) {
      SCOPED_TRACE(std::string(format_name(src.format)) + " -> " + std::string(format_name(to)));
      auto out = convert(src.text, src.format, to, o);
      ASSERT_TRUE(out) << out.error().message;
      EXPECT_NE(out->find("01730"), std::string::npos) << *out;
      EXPECT_NE(out->find("李"), std::string::npos) << *out;
      auto back = read(to, *out, o);
      ASSERT_TRUE(back) << back.error().message << "\n" << *out;
      EXPECT_EQ(*back, expected_after(to, *doc)) << *out;
      ++pairs;
    }
  }
  EXPECT_EQ(pairs, 36);
}

}  // namespace
}  // namespace llmd::convert
