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

// Appends `s` to `out` with every control character escaped, so a string
// field can never end the line, start a fake one or reach a terminal as an
// escape sequence: C0 controls, DEL and the C1 controls (U+0080..U+009F,
// which some terminals obey like ESC) become \n \r \t or \xHH / \u00HH,
// and a backslash is doubled so an escape in the output is never ambiguous.
// With `quote` the value is wrapped in double quotes (inner ones escaped)
// when it is empty or has a space, '=' or '"', so one field cannot pose as
// several (logfmt's convention).
void append_escaped(std::string& out, std::string_view s, bool quote) {
  static constexpr char kHex[] = "0123456789abcdef";
  const bool quoted = quote && (s.empty() || s.find_first_of(" =\"") != std::string_view::npos);
  if (quoted) out += '"';
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"' && quoted) {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(s[i + 1]) <= 0x9f) {
      const auto c1 = static_cast<unsigned char>(s[++i]);
      out += "\\u00";
      out += kHex[c1 >> 4];
      out += kHex[c1 & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (quoted) out += '"';
}

}  // namespace

bool parse_log_level(std::string_view s, LogLevel& out) {
  const std::string l = text::to_lower(s);
  if (l == "trace")
    out = LogLevel::kTrace;
  else if (l == "debug")
    out = LogLevel::kDebug;
  else if (l == "info")
    out = LogLevel::kInfo;
  else if (l == "warn" || l == "warning")
    out = LogLevel::kWarn;
  else if (l == "error")
    out = LogLevel::kError;
  else if (l == "off")
    out = LogLevel::kOff;
  else
    return false;
  return true;
}

std::string format_log_line(LogFormat format, LogLevel level, std::string_view msg, const nlohmann::json& fields) {
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
  // Text format: every string that may come from a client (the message,
  // field names and values) is escaped; one call is always one line.
  append_escaped(out, msg, /*quote=*/false);
  if (fields.is_object()) {
    for (const auto& [k, v] : fields.items()) {
      out += ' ';
      append_escaped(out, k, /*quote=*/false);
      out += '=';
      if (v.is_string()) {
        append_escaped(out, v.get_ref<const std::string&>(), /*quote=*/true);
      } else {
        // JSON already escapes control characters inside strings.
        out += v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      }
    }
  }
  return out;
}

Logger::Logger(LogLevel level, LogFormat format, const std::string& file) : level_(level), format_(format) {
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

void Logger::log(LogLevel level, std::string_view msg) const { log(level, msg, nlohmann::json()); }

void Logger::flush() const {
  if (sink_) sink_->flush();
}

}  // namespace llmd::observe
