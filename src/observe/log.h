// Structured logging for operators: one JSON object per line by default
// (`{"ts":..,"level":..,"msg":..,<fields>}`), or `ts level msg k=v ...` text.
//
// Logger is a cheap, copyable handle (it shares one spdlog sink); pass it to
// components that log. Thread-safe. Never log passwords, keys, JWTs or full
// prompts at info level: fields are written as given.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace spdlog {
class logger;
}

namespace llmd::observe {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kOff };
enum class LogFormat { kJson, kText };

// Parses "trace|debug|info|warn|warning|error|off"; nullopt-like false on junk.
bool parse_log_level(std::string_view s, LogLevel& out);

class Logger {
 public:
  // Logs to stderr, or to `file` (appending) when non-empty.
  Logger(LogLevel level, LogFormat format, const std::string& file = {});
  // A logger that drops everything (tests, tools).
  static Logger null();

  bool enabled(LogLevel level) const;
  // `fields` must be a JSON object (or null); its members are added to the line.
  void log(LogLevel level, std::string_view msg, const nlohmann::json& fields) const;
  void log(LogLevel level, std::string_view msg) const;

  void debug(std::string_view msg, const nlohmann::json& fields) const { log(LogLevel::kDebug, msg, fields); }
  void info(std::string_view msg, const nlohmann::json& fields) const { log(LogLevel::kInfo, msg, fields); }
  void warn(std::string_view msg, const nlohmann::json& fields) const { log(LogLevel::kWarn, msg, fields); }
  void error(std::string_view msg, const nlohmann::json& fields) const { log(LogLevel::kError, msg, fields); }
  void info(std::string_view msg) const { log(LogLevel::kInfo, msg); }
  void warn(std::string_view msg) const { log(LogLevel::kWarn, msg); }
  void error(std::string_view msg) const { log(LogLevel::kError, msg); }

  void flush() const;

 private:
  Logger() = default;
  std::shared_ptr<spdlog::logger> sink_;
  LogLevel level_ = LogLevel::kOff;
  LogFormat format_ = LogFormat::kJson;
};

// Renders one log line without the trailing newline (exposed for tests).
std::string format_log_line(LogFormat format, LogLevel level, std::string_view msg, const nlohmann::json& fields);

}  // namespace llmd::observe
