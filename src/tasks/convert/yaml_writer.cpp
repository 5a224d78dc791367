// YAML writer: block style, written by hand so that every quoting decision is
// ours. A string is left plain only when no YAML 1.1 or 1.2 reader could take
// it for anything else; everything else is double-quoted with escapes, which
// is exact for any UTF-8 text (newlines included).
#include <array>
#include <cmath>

#include "tasks/convert/detail.h"

namespace llmd::convert::detail {
namespace {

bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

// Words YAML 1.1 or 1.2 resolves to booleans or null, compared case-insensitively.
constexpr std::array<std::string_view, 9> kReservedWords = {"y",   "n",    "yes",   "no",  "on",
                                                            "off", "true", "false", "null"};

bool is_reserved_word(std::string_view s) {
  if (s.size() > 5) return false;
  std::string lower(s);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (auto w : kReservedWords)
    if (lower == w) return true;
  return false;
}

bool can_be_plain(std::string_view s) {
  if (s.empty() || is_reserved_word(s)) return false;
  auto first = static_cast<unsigned char>(s.front());
  // Digits, signs and dots could start a number, date or .inf; indicators
  // (- ? : , [ ] { } # & * ! | > ' " % @ `) change the meaning.
  if (!(is_alpha(first) || first == '_' || first == '/' || first >= 0x80)) return false;
  if (s.back() == ' ') return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      if (special_sequence_length(s, i) != 0) return false;
      continue;
    }
    if (is_alpha(c) || is_digit(c)) continue;
    switch (c) {
      case ' ':
      case '_':
      case '-':
      case '.':
      case '/':
      case '(':
      case ')':
      case '+':
      case '@': continue;
      default: return false;
    }
  }
  return true;
}

void append_string(std::string& out, std::string_view s) {
  if (can_be_plain(s))
    out += s;
  else
    append_quoted(out, s, /*strict=*/true);
}

class Writer {
 public:
  Writer(const ConvertOptions& o, std::string& out)
      : indent_(static_cast<std::size_t>(o.indent)), limits_(o.limits), out_(out) {}

  void top(const Value& v) {
    if (v.is_object() && !v.as_object().empty())
      object(v.as_object(), 0, false);
    else if (v.is_array() && !v.as_array().empty())
      array(v.as_array(), 0, false);
    else {
      scalar(v);
      out_ += '\n';
    }
  }

 private:
  // `continue_line`: the first entry goes after an already written "- ".
  void object(const Object& o, std::size_t col, bool continue_line) {
    bool first = true;
    for (const auto& [k, v] : o) {
      if (cancelled(limits_)) return;  // write_yaml() reports it
      if (!(first && continue_line)) out_.append(col, ' ');
      first = false;
      append_string(out_, k);
      out_ += ':';
      if (v.is_object() && !v.as_object().empty()) {
        out_ += '\n';
        object(v.as_object(), col + indent_, false);
      } else if (v.is_array() && !v.as_array().empty()) {
        out_ += '\n';
        array(v.as_array(), col + indent_, false);
      } else {
        out_ += ' ';
        scalar(v);
        out_ += '\n';
      }
    }
  }

  void array(const Array& a, std::size_t col, bool continue_line) {
    bool first = true;
    for (const auto& v : a) {
      if (cancelled(limits_)) return;  // write_yaml() reports it
      if (!(first && continue_line)) out_.append(col, ' ');
      first = false;
      out_ += "- ";
      if (v.is_object() && !v.as_object().empty()) {
        object(v.as_object(), col + 2, true);
      } else if (v.is_array() && !v.as_array().empty()) {
        array(v.as_array(), col + 2, true);
      } else {
        scalar(v);
        out_ += '\n';
      }
    }
  }

  void scalar(const Value& v) {
    switch (v.kind()) {
      case Value::Kind::kNull: out_ += "null"; break;
      case Value::Kind::kBool: out_ += v.as_bool() ? "true" : "false"; break;
      case Value::Kind::kInt: out_ += std::to_string(v.as_int()); break;
      case Value::Kind::kBigInt: out_ += v.as_big_int().digits; break;
      case Value::Kind::kDouble: {
        double d = v.as_double();
        if (std::isnan(d))
          out_ += ".nan";
        else if (std::isinf(d))
          out_ += d < 0 ? "-.inf" : ".inf";
        else
          out_ += format_double(d);
        break;
      }
      case Value::Kind::kString: append_string(out_, v.as_string()); break;
      case Value::Kind::kArray: out_ += "[]"; break;   // only reached when empty
      case Value::Kind::kObject: out_ += "{}"; break;  // only reached when empty
    }
  }

  std::size_t indent_;
  const Limits& limits_;
  std::string& out_;
};

}  // namespace

Result<std::string> write_yaml(const Value& v, const ConvertOptions& o) {
  std::string out;
  Writer(o, out).top(v);
  if (cancelled(o.limits)) return fail(cancelled_error());
  return out;
}

}  // namespace llmd::convert::detail
