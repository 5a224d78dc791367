// Round-trip properties with a fixed seed: a random document written as JSON,
// converted to X and back to JSON reads back equal, for every X that can
// represent it. Each generator produces exactly the documents its format can
// carry (see the conventions in convert.h / formats_description()).
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "tasks/convert/convert.h"
#include "unit/tasks/convert/random_documents.h"

namespace llmd::convert {
namespace {

using test_docs::Gen;

constexpr std::uint64_t kSeed = 20240611;
constexpr int kIterations = 300;

// JSON text of `v`, read back through `via`, then written as JSON again.
void expect_round_trip(const Value& v, Format via, const ConvertOptions& o, int iteration) {
  auto json = write(Format::kJson, v, o);
  ASSERT_TRUE(json) << json.error().message;
  auto there = convert(*json, Format::kJson, via, o);
  ASSERT_TRUE(there) << "iteration " << iteration << ": " << there.error().message << "\nJSON:\n" << *json;
  auto back = read(via, *there, o);
  ASSERT_TRUE(back) << "iteration " << iteration << ": " << back.error().message << "\n"
                    << format_name(via) << ":\n"
                    << *there;
  if (!(*back == v)) {
    auto again = write(Format::kJson, *back, o);
    FAIL() << "iteration " << iteration << " via " << format_name(via) << "\nJSON in:\n"
           << *json << "\n"
           << format_name(via) << ":\n"
           << *there << "\nJSON back:\n"
           << (again ? *again : "?");
  }
}

TEST(RoundTrip, JsonThroughYamlKeepsEverything) {
  Gen g(kSeed);
  ConvertOptions o;
  for (int i = 0; i < kIterations; ++i) {
    Value v = g.json_value(4);
    expect_round_trip(v, Format::kYaml, o, i);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(RoundTrip, JsonThroughJsonCompactKeepsEverything) {
  Gen g(kSeed + 1);
  ConvertOptions o;
  o.pretty = false;
  for (int i = 0; i < kIterations; ++i) {
    expect_round_trip(g.json_value(4), Format::kJson, o, i);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(RoundTrip, JsonThroughTomlKeepsObjectsWithoutNull) {
  Gen g(kSeed + 2);
  ConvertOptions o;
  for (int i = 0; i < kIterations; ++i) {
    Value v(g.object(4, /*allow_null=*/false, /*allow_big=*/false));
    expect_round_trip(v, Format::kToml, o, i);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(RoundTrip, JsonThroughXmlKeepsXmlShapedDocuments) {
  Gen g(kSeed + 3);
  for (bool pretty : {true, false}) {
    ConvertOptions o;
    o.pretty = pretty;
    for (int i = 0; i < kIterations; ++i) {
      Object root;
      root.insert(g.name(), g.xml_element(4));
      expect_round_trip(Value(std::move(root)), Format::kXml, o, i);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

TEST(RoundTrip, JsonThroughCsvAndTsvKeepsFlatRecords) {
  Gen g(kSeed + 4);
  ConvertOptions o;
  for (Format via : {Format::kCsv, Format::kTsv}) {
    for (int i = 0; i < kIterations; ++i) {
      expect_round_trip(g.csv_rows(), via, o, i);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

TEST(RoundTrip, InferTypesRestoresTypedCsvCells) {
  Gen g(kSeed + 5);
  ConvertOptions o;
  o.infer_types = true;
  for (int i = 0; i < kIterations; ++i) {
    Object row;
    row.insert("i", g.number());
    row.insert("b", Value(g.chance(50)));
    row.insert("s", Value("01730"));
    Array rows;
    rows.push_back(Value(std::move(row)));
    expect_round_trip(Value(std::move(rows)), Format::kCsv, o, i);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace llmd::convert
