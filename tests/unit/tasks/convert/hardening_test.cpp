// Issue 13, items 4 and 15: CSV reading is linear in the column count and
// capped; duplicate XML attributes are refused like duplicate JSON keys.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <stop_token>
#include <string>
#include <utility>

#include "tasks/convert/convert.h"

namespace llmd::convert {
namespace {

using Clock = std::chrono::steady_clock;

std::string wide_csv(int columns, char delimiter = ',') {
  std::string header, row;
  for (int i = 0; i < columns; ++i) {
    if (i) {
      header += delimiter;
      row += delimiter;
    }
    header += "column" + std::to_string(i);
    row += std::to_string(i);
  }
  return header + "\n" + row + "\n";
}

// Best of three, to keep a busy machine's noise out of the ratio.
double seconds_to_read(const std::string& csv, Format format) {
  ConvertOptions o;
  o.limits.max_columns = 100'000;
  double best = 1e9;
  for (int i = 0; i < 3; ++i) {
    const auto start = Clock::now();
    auto r = read(format, csv, o);
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    EXPECT_TRUE(r) << r.error().message;
    best = std::min(best, s);
  }
  return best;
}

// 4x the columns must cost about 4x the time, not 16x (the header checks
// compared every column with every other one). The bound leaves room for a
// busy machine's noise.
TEST(CsvHardening, ReadingTimeIsLinearInTheColumnCount) {
  for (Format f : {Format::kCsv, Format::kTsv}) {
    const char d = f == Format::kCsv ? ',' : '\t';
    const double small = seconds_to_read(wide_csv(5'000, d), f);
    const double large = seconds_to_read(wide_csv(20'000, d), f);
    std::printf("[ measure ] %s 5000 columns %.4f s, 20000 columns %.4f s, ratio %.1f\n",
                f == Format::kCsv ? "CSV" : "TSV", small, large, large / small);
    EXPECT_LT(large / small, 10.0);
  }
}

TEST(CsvHardening, WideHeaderWithOneRowReadsIntoOneObject) {
  auto r = read(Format::kCsv, wide_csv(10'000), ConvertOptions{});
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->as_array().size(), 1u);
  const auto& row = r->as_array()[0].as_object();
  EXPECT_EQ(row.size(), 10'000u);
  EXPECT_EQ(row.find("column9999")->as_string(), "9999");
}

TEST(CsvHardening, ColumnsOverTheDefaultCapAreRefusedFast) {
  const auto start = Clock::now();
  auto r = read(Format::kCsv, wide_csv(100'000), ConvertOptions{});
  const auto took = Clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTooLarge);
  EXPECT_EQ(r.error().reason, "column_limit");
  EXPECT_NE(r.error().message.find("100000 columns"), std::string::npos) << r.error().message;
  EXPECT_LT(took, std::chrono::seconds(2));
}

TEST(CsvHardening, DuplicateColumnsAreStillRefusedInAWideHeader) {
  std::string csv = wide_csv(5'000);
  csv.insert(csv.find('\n'), ",column4321");
  auto r = read(Format::kCsv, csv, ConvertOptions{});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, "duplicate_key");
  EXPECT_NE(r.error().message.find("column4321"), std::string::npos) << r.error().message;
}

TEST(CsvHardening, DottedColumnConflictsAreStillFound) {
  auto r = read(Format::kCsv, "a.b,x,a\n1,2,3\n", ConvertOptions{});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, "csv_shape");
  auto ok = read(Format::kCsv, "a.b,x,a.c,t.2,t.1\n1,2,3,5,4\n", ConvertOptions{});
  ASSERT_TRUE(ok) << ok.error().message;
  const auto& row = ok->as_array()[0].as_object();
  EXPECT_EQ(row.find("a")->as_object().size(), 2u);
  ASSERT_TRUE(row.find("t")->is_array());
  EXPECT_EQ(row.find("t")->as_array()[0].as_string(), "4");
}

TEST(XmlHardening, DuplicateAttributeIsRefusedLikeADuplicateKey) {
  auto r = read(Format::kXml, R"(<r a="1" a="2"/>)", ConvertOptions{});
  ASSERT_FALSE(r) << "converted with data dropped";
  EXPECT_EQ(r.error().code, ErrorCode::kUnprocessable);
  EXPECT_EQ(r.error().reason, "duplicate_key");
  EXPECT_NE(r.error().message.find("\"a\""), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("line 1"), std::string::npos) << r.error().message;

  auto nested = read(Format::kXml, "<r>\n  <c x=\"1\" y=\"2\" x=\"3\">t</c>\n</r>", ConvertOptions{});
  ASSERT_FALSE(nested);
  EXPECT_EQ(nested.error().reason, "duplicate_key");
  EXPECT_NE(nested.error().message.find("line 2"), std::string::npos) << nested.error().message;
}

TEST(XmlHardening, DistinctAttributesStillConvert) {
  ConvertOptions compact;
  compact.pretty = false;
  auto r = convert(R"(<r a="1" b="2" ns:a="3"/>)", Format::kXml, Format::kJson, compact);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, R"({"r":{"@a":"1","@b":"2","@ns:a":"3"}})");
}

// Issue 13, item 18: a stop request (the service shutting down) ends a
// conversion at its next value instead of letting it run to the end.
TEST(ConvertCancel, StopRequestEndsEveryReaderAndWriterWithCancelled) {
  std::stop_source stop;
  ConvertOptions o;
  o.limits.cancel = stop.get_token();
  ASSERT_TRUE(convert("[1, 2]", Format::kJson, Format::kYaml, o));
  stop.request_stop();
  const std::pair<Format, const char*> inputs[] = {{Format::kJson, "[1, 2, 3]"},      {Format::kYaml, "a: [1, 2]\n"},
                                                   {Format::kXml, "<a><b>1</b></a>"}, {Format::kCsv, "a,b\n1,2\n"},
                                                   {Format::kTsv, "a\tb\n1\t2\n"},    {Format::kToml, "a = 1\n"}};
  for (const auto& [format, input] : inputs) {
    auto r = read(format, input, o);
    ASSERT_FALSE(r) << format_name(format);
    EXPECT_EQ(r.error().code, ErrorCode::kUnavailable) << format_name(format);
    EXPECT_EQ(r.error().reason, "cancelled") << format_name(format);
  }
  auto doc = read(Format::kJson, R"([{"a": 1, "b": {"c": "x"}}])", ConvertOptions{});
  ASSERT_TRUE(doc);
  for (const auto& [format, input] : inputs) {
    auto w = write(format, *doc, o);
    ASSERT_FALSE(w) << format_name(format);
    EXPECT_EQ(w.error().reason, "cancelled") << format_name(format);
  }
}

}  // namespace
}  // namespace llmd::convert
