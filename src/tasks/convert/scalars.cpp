// Scalar helpers shared by all formats: number literals, type inference,
// double formatting, error construction.
#include <charconv>
#include <cmath>
#include <string>

#include "tasks/convert/detail.h"

namespace llmd::convert::detail {

std::pair<std::size_t, std::size_t> line_column(std::string_view text, std::size_t offset) {
  if (offset > text.size()) offset = text.size();
  std::size_t line = 1, column = 1;
  for (std::size_t i = 0; i < offset; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++line;
      column = 1;
    } else if ((c & 0xC0) != 0x80) {  // count characters, not continuation bytes
      ++column;
    }
  }
  return {line, column};
}

Error parse_error(std::string_view format, std::size_t line, std::size_t column, std::string_view what) {
  return input_error(ErrorCode::kInvalidArgument, "parse_error", std::string(format) + " parse", line, column, what);
}

Error input_error(ErrorCode code, std::string_view reason, std::string_view format, std::size_t line,
                  std::size_t column, std::string_view what) {
  std::string msg(format);
  msg += " error at line " + std::to_string(line) + ", column " + std::to_string(column) + ": ";
  msg += what;
  return Error(code, std::move(msg), std::string(reason));
}

Error unrepresentable(std::string_view format, std::string_view what) {
  return Error(ErrorCode::kUnprocessable, "cannot write " + std::string(format) + ": " + std::string(what),
               "unrepresentable");
}

std::string Budget::depth_message() const {
  return "nesting deeper than the limit of " + std::to_string(limits_.max_depth) + " levels";
}

// Over the node limit wins over cancellation: it is the input's fault.
ErrorCode Budget::nodes_code() const {
  return nodes_ > limits_.max_nodes ? ErrorCode::kUnprocessable : ErrorCode::kUnavailable;
}

std::string_view Budget::nodes_reason() const { return nodes_ > limits_.max_nodes ? "node_limit" : "cancelled"; }

std::string Budget::nodes_message() const {
  if (nodes_ <= limits_.max_nodes && cancelled(limits_)) return cancelled_error().message;
  return "document has more than the limit of " + std::to_string(limits_.max_nodes) +
         " values (after expanding aliases)";
}

Error cancelled_error() {
  return Error(ErrorCode::kUnavailable, "the conversion was cancelled (the service is shutting down)", "cancelled");
}

std::size_t count_nodes(const Value& v) {
  std::size_t n = 1;
  if (v.is_array()) {
    for (const auto& item : v.as_array()) n += count_nodes(item);
  } else if (v.is_object()) {
    for (const auto& [k, item] : v.as_object()) n += count_nodes(item);
  }
  return n;
}

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Length of a run of digits starting at `i`.
std::size_t digits_at(std::string_view s, std::size_t i) {
  std::size_t n = 0;
  while (i + n < s.size() && is_digit(s[i + n])) ++n;
  return n;
}

}  // namespace

std::optional<Value> parse_integer(std::string_view s) {
  std::size_t i = (!s.empty() && s[0] == '-') ? 1 : 0;
  std::size_t n = digits_at(s, i);
  if (n == 0 || i + n != s.size()) return std::nullopt;
  if (s[i] == '0' && n > 1) return std::nullopt;  // "01730" is not a number here
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc() && ptr == s.data() + s.size()) return Value(v);
  if (ec == std::errc::result_out_of_range) return Value(BigInt{std::string(s)});
  return std::nullopt;
}

std::optional<double> parse_decimal_double(std::string_view s) {
  std::size_t i = (!s.empty() && s[0] == '-') ? 1 : 0;
  std::size_t n = digits_at(s, i);
  if (n == 0 || (s[i] == '0' && n > 1)) return std::nullopt;
  i += n;
  bool has_fraction_or_exponent = false;
  if (i < s.size() && s[i] == '.') {
    std::size_t f = digits_at(s, i + 1);
    if (f == 0) return std::nullopt;
    i += 1 + f;
    has_fraction_or_exponent = true;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    std::size_t e = digits_at(s, i);
    if (e == 0) return std::nullopt;
    i += e;
    has_fraction_or_exponent = true;
  }
  if (i != s.size() || !has_fraction_or_exponent) return std::nullopt;
  double d = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(d)) return std::nullopt;
  return d;
}

Value infer_scalar(std::string_view text) {
  if (text == "true") return Value(true);
  if (text == "false") return Value(false);
  if (text == "null") return Value();
  if (text == "-0") return Value(std::string(text));  // would print back as "0"
  if (auto i = parse_integer(text)) return std::move(*i);
  if (auto d = parse_decimal_double(text)) {
    // Only when the number prints back the same way; "1.50" stays text.
    if (format_double(*d) == text) return Value(*d);
  }
  return Value(std::string(text));
}

std::string format_double(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, d);
  std::string s(buf, ptr);
  auto e = s.find('e');
  if (s.find('.') == std::string::npos) {
    // Keep it a float in every reader: "1" -> "1.0", "1e+21" -> "1.0e+21"
    // (YAML 1.1 readers need the dot to see a float).
    if (e == std::string::npos)
      s += ".0";
    else
      s.insert(e, ".0");
  }
  return s;
}

std::string scalar_text(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kNull: return {};
    case Value::Kind::kBool: return v.as_bool() ? "true" : "false";
    case Value::Kind::kInt: return std::to_string(v.as_int());
    case Value::Kind::kBigInt: return v.as_big_int().digits;
    case Value::Kind::kDouble: return format_double(v.as_double());
    case Value::Kind::kString: return v.as_string();
    default: return {};
  }
}

std::size_t special_sequence_length(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u; };
  if (b(0) == 0xC2 && b(1) >= 0x80 && b(1) <= 0x9F) return 2;
  if (b(0) == 0xE2 && b(1) == 0x80 && (b(2) == 0xA8 || b(2) == 0xA9)) return 3;
  if (b(0) == 0xEF && b(1) == 0xBB && b(2) == 0xBF) return 3;
  if (b(0) == 0xEF && b(1) == 0xBF && (b(2) == 0xBE || b(2) == 0xBF)) return 3;
  return 0;
}

void append_quoted(std::string& out, std::string_view s, bool strict) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  auto hex4 = [&](unsigned cp) {
    out += "\\u";
    for (int d = 3; d >= 0; --d) out += kHex[(cp >> (4 * d)) & 0xF];
  };
  out += '"';
  std::size_t run = 0;  // start of the pending run of bytes that need no escape
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t special = 0;
    if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7F) {
      if (!strict || c < 0x80 || (special = special_sequence_length(s, i)) == 0) continue;
    } else if (c == 0x7F && !strict) {
      continue;
    }
    out.append(s.data() + run, i - run);
    run = i + (special ? special : 1);
    if (special) {
      auto cont = [&](std::size_t k) { return static_cast<unsigned>(static_cast<unsigned char>(s[i + k]) & 0x3Fu); };
      hex4(special == 2 ? ((c & 0x1Fu) << 6) | cont(1) : ((c & 0x0Fu) << 12) | (cont(1) << 6) | cont(2));
      i += special - 1;
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default: hex4(c);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

}  // namespace llmd::convert::detail
