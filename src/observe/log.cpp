#include "observe/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "core/text.h"

namespace llmd::observe {
namespace {

std::string_view level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace: return "trace";
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
    case LogLevel::kOff: return "off";
  }
  return "info";
}

std::string now_iso8601() {
  const auto now = std::chrono::system_clock::now();
  const auto secs = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

}  // namespace

bool parse_log_level(std::string_view s, LogLevel& out) {
  const std::string l = text::to_lower(s);
  if (l == "trace") out = LogLevel::kTrace;
  else if (l == "debug") out = LogLevel::kDebug;
  else if (l == "info") out = LogLevel::kInfo;
  else if (l == "warn" || l == "warning") out = LogLevel::kWarn;
  else if (l == "error") out = LogLevel::kError;
  else if (l == "off") out = LogLevel::kOff;
  else return false;
  return true;
}

std::string format_log_line(LogFormat format, LogLevel level, std::string_view msg,
                            const nlohmann::json& fields) {
  if (format == LogFormat::kJson) {
    // Written field by field (no intermediate document): ts, level, msg
    // first, then the fields in their (sorted) order. Invalid UTF-8 is
    // replaced rather than thrown on: logs must never fail.
    constexpr auto kReplace = nlohmann::json::error_handler_t::replace;
    std::string out;
    out.reserve(256);
    out += R"({"ts":")";
    out += now_iso8601();
    out += R"(","level":")";
    out += level_name(level);
    out += R"(","msg":)";
    out += nlohmann::json(msg).dump(-1, ' ', false, kReplace);
    if (fields.is_object()) {
      for (const auto& [k, v] : fields.items()) {
        if (k == "ts" || k == "level" || k == "msg") continue;  // never duplicate the fixed keys
        out += ',';
        out += nlohmann::json(k).dump(-1, ' ', false, kReplace);
        out += ':';
        out += v.dump(-1, ' ', false, kReplace);
      }
    }
    out += '}';
    return out;
  }
  std::string out = now_iso8601();
  out += ' ';
  out += level_name(level);
  out += ' ';
  out += msg;
  if (fields.is_object()) {
    for (const auto& [k, v] : fields.items()) {
      out += ' ';
      out += k;
      out += '=';
      out += v.is_string() ? v.get<std::string>()
                           : v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
  }
  return out;
}

Logger::Logger(LogLevel level, LogFormat format, const std::string& file)
    : level_(level), format_(format) {
  spdlog::sink_ptr sink;
  if (file.empty()) {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else {
    sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file, /*truncate=*/false);
  }
  sink_ = std::make_shared<spdlog::logger>("llmd", std::move(sink));
  sink_->set_pattern("%v");  // lines are fully formatted by format_log_line
  sink_->set_level(spdlog::level::trace);
  sink_->flush_on(spdlog::level::warn);
}

Logger Logger::null() { return Logger(); }

bool Logger::enabled(LogLevel level) const {
  return sink_ && level_ != LogLevel::kOff && level >= level_ && level != LogLevel::kOff;
}

void Logger::log(LogLevel level, std::string_view msg, const nlohmann::json& fields) const {
  if (!enabled(level)) return;
  sink_->info(format_log_line(format_, level, msg, fields));
}

void Logger::log(LogLevel level, std::string_view msg) const {
  log(level, msg, nlohmann::json());
}

void Logger::flush() const {
  if (sink_) sink_->flush();
}

}  // namespace llmd::observe
