#include "observe/metrics.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "observe/log.h"

namespace llmd::observe {
namespace {

TEST(Metrics, CounterRendersWithLabelsAndHelp) {
  Registry r;
  auto& f = r.counter("llmd_http_requests_total", "HTTP requests", {"route", "status"});
  f.with({"/health", "200"}).inc();
  f.with({"/health", "200"}).inc(2);
  const std::string text = r.render();
  EXPECT_NE(text.find("# HELP llmd_http_requests_total HTTP requests\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE llmd_http_requests_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("llmd_http_requests_total{route=\"/health\",status=\"200\"} 3\n"), std::string::npos);
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Registry r;
  auto& h = r.histogram("lat", "latency", {}, {0.1, 1.0}).with({});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  const std::string text = r.render();
  EXPECT_NE(text.find("lat_bucket{le=\"0.1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_bucket{le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("lat_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("lat_count 3\n"), std::string::npos);
  EXPECT_NE(text.find("lat_sum 5.55\n"), std::string::npos);
}

TEST(Metrics, LabelValuesAreEscaped) {
  Registry r;
  r.gauge("g", "gauge", {"name"}).with({"a\"b\\c\nd"}).set(1);
  EXPECT_NE(r.render().find("g{name=\"a\\\"b\\\\c\\nd\"} 1\n"), std::string::npos);
}

TEST(Metrics, ConcurrentIncrementsAreNotLost) {
  Registry r;
  auto& f = r.counter("c", "c", {"t"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) f.with({"x"}).inc();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(f.with({"x"}).value(), 40000);
}

TEST(Metrics, CollectorsRunBeforeRender) {
  Registry r;
  auto& g = r.gauge("queue_depth", "q").with({});
  int depth = 0;
  r.add_collector([&] { g.set(++depth * 10); });
  EXPECT_NE(r.render().find("queue_depth 10\n"), std::string::npos);
  EXPECT_NE(r.render().find("queue_depth 20\n"), std::string::npos);
}

TEST(Log, JsonLineHasTsLevelMsgFirstAndFields) {
  const std::string line =
      format_log_line(LogFormat::kJson, LogLevel::kInfo, "request", {{"request_id", "abc"}, {"status", 200}});
  const auto j = nlohmann::ordered_json::parse(line);
  auto it = j.begin();
  EXPECT_EQ(it.key(), "ts");
  EXPECT_EQ((++it).key(), "level");
  EXPECT_EQ((++it).key(), "msg");
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["request_id"], "abc");
  EXPECT_EQ(j["status"], 200);
}

TEST(Log, InvalidUtf8InFieldsDoesNotBreakTheLine) {
  const std::string line = format_log_line(LogFormat::kJson, LogLevel::kWarn, "x", {{"path", std::string("\xff/a")}});
  const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << line;
  EXPECT_EQ(j["path"], "\xEF\xBF\xBD/a");  // replaced by U+FFFD
}

TEST(Log, FieldsCannotShadowTheFixedKeysAndMessagesAreEscaped) {
  const std::string line = format_log_line(LogFormat::kJson, LogLevel::kInfo, "say \"hi\"\n\xff",
                                           {{"msg", "forged"}, {"level", "error"}, {"user", "a\"b"}});
  const auto j = nlohmann::ordered_json::parse(line, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << line;
  EXPECT_EQ(j.size(), 4u) << line;
  EXPECT_EQ(j["msg"], "say \"hi\"\n\xEF\xBF\xBD");
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["user"], "a\"b");
  EXPECT_EQ(line.find('\n'), std::string::npos);  // one line, always
}

TEST(Log, TextFormatIsKeyValue) {
  const std::string line = format_log_line(LogFormat::kText, LogLevel::kError, "boom", {{"code", 7}});
  EXPECT_NE(line.find(" error boom code=7"), std::string::npos) << line;
}

// Issue 13 item 13: a client-controlled string (a path with %0a, a header)
// must never end the text line, forge another one or reach a terminal raw.
TEST(Log, TextFormatEscapesControlCharactersSoNoLineCanBeForged) {
  const std::string forged = "/x\n2026-01-01T00:00:00.000Z error admin login ok\r\x1b[31mred\x1b[0m";
  const std::string line = format_log_line(LogFormat::kText, LogLevel::kInfo, "request\nfake",
                                           {{"path", forged},
                                            {"nul", std::string("a\0b", 3)},
                                            {"c0", "\x01\x07\x7f\t"},
                                            {"c1",
                                             "\xc2\x9b"
                                             "31m\xc2\x85"},
                                            {"key\nx", "v"}});
  for (const char c : line) {
    const auto u = static_cast<unsigned char>(c);
    EXPECT_FALSE(u < 0x20 || u == 0x7f) << "raw control byte " << int(u) << " in: " << line;
  }
  EXPECT_EQ(line.find("\xc2\x9b"), std::string::npos) << line;  // C1 CSI
  EXPECT_EQ(line.find("\xc2\x85"), std::string::npos) << line;  // C1 NEL
  EXPECT_NE(line.find(" info request\\nfake "), std::string::npos) << line;
  EXPECT_NE(line.find("path=\"/x\\n2026-01-01T00:00:00.000Z error admin login ok\\r\\x1b[31mred\\x1b[0m\""),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("nul=a\\x00b"), std::string::npos) << line;
  EXPECT_NE(line.find("c0=\\x01\\x07\\x7f\\t"), std::string::npos) << line;
  EXPECT_NE(line.find("c1=\\u009b31m\\u0085"), std::string::npos) << line;
  EXPECT_NE(line.find("key\\nx=v"), std::string::npos) << line;
}

TEST(Log, TextFormatQuotesValuesThatWouldPoseAsMoreFields) {
  const std::string line = format_log_line(LogFormat::kText, LogLevel::kInfo, "request",
                                           {{"path", "/a status=200 user=\"admin\""}, {"empty", ""}, {"back", "a\\b"}});
  EXPECT_NE(line.find(R"(path="/a status=200 user=\"admin\"")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"(empty="")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"(back=a\\b)"), std::string::npos) << line;
}

TEST(Log, TextFormatKeepsPrintableUnicode) {
  const std::string line = format_log_line(LogFormat::kText, LogLevel::kInfo, "上传", {{"name", "文件.srt"}});
  EXPECT_NE(line.find(" info 上传 name=文件.srt"), std::string::npos) << line;
}

}  // namespace
}  // namespace llmd::observe
