#include "tasks/homework/arithmetic.h"

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include <boost/multiprecision/cpp_int.hpp>

namespace llmd::homework {
namespace {

using boost::multiprecision::cpp_int;
using boost::multiprecision::cpp_rational;

// ---------------------------------------------------------------- UTF-8 ---

std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const int n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : -1;
    if (n < 0 || s.size() - i <= static_cast<std::size_t>(n)) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    char32_t cp = n == 0 ? c : c & (0x3F >> n);
    bool ok = true;
    for (int k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
      if ((cc & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    out.push_back(ok ? cp : 0xFFFD);
    i += ok ? static_cast<std::size_t>(n) + 1 : 1;
  }
  return out;
}

std::string encode_utf8(std::u32string_view s) {
  std::string out;
  for (char32_t c : s) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xE0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

// Full-width digits and the many ways of writing an operator, mapped to
// ASCII; everything else unchanged. Brackets [] {} are school-math
// parentheses (中括号, 大括号).
std::u32string normalise(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c >= U'０' && c <= U'９') {
      out += static_cast<char32_t>(U'0' + (c - U'０'));
      continue;
    }
    switch (c) {
      case U'＋': out += U'+'; break;
      case U'－':
      case U'−':
      case U'–':
      case U'﹣': out += U'-'; break;
      case U'×':
      case U'＊':
      case U'∗':
      case U'·':
      case U'⋅':
      case U'✕':
      case U'✖': out += U'*'; break;
      case U'÷':
      case U'／':
      case U'∕': out += U'/'; break;
      case U'（':
      case U'[':
      case U'{':
      case U'［':
      case U'｛': out += U'('; break;
      case U'）':
      case U']':
      case U'}':
      case U'］':
      case U'｝': out += U')'; break;
      case U'＾': out += U'^'; break;
      case U'％': out += U'%'; break;
      case U'．': out += U'.'; break;
      case U'＝': out += U'='; break;
      case U'？': out += U'?'; break;
      case U'：': out += U':'; break;
      case U'，': out += U','; break;
      case U'\u3000':
      case U'\t':
      case U'\n':
      case U'\r': out += U' '; break;
      case U'²': out += U"^2"; break;
      case U'³': out += U"^3"; break;
      default: out += c;
    }
  }
  return out;
}

bool is_space(char32_t c) { return c == U' '; }
bool is_digit(char32_t c) { return c >= U'0' && c <= U'9'; }
bool is_expression_char(char32_t c) {
  return is_digit(c) || c == U'.' || c == U'+' || c == U'-' || c == U'*' || c == U'/' || c == U'^' || c == U'%' ||
         c == U'(' || c == U')' || is_space(c);
}

std::u32string_view trim(std::u32string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool starts_with(std::u32string_view s, std::u32string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::u32string_view s, std::u32string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

std::u32string ascii_lower(std::u32string_view s) {
  std::u32string out(s);
  for (auto& c : out) {
    if (c >= U'A' && c <= U'Z') c = c - U'A' + U'a';
  }
  return out;
}

// Chinese operator words between operands (`3乘以4`, `12除以3`) become
// operators; elsewhere they stay words (and make the question not a bare
// calculation).
std::u32string operator_words(std::u32string_view s) {
  static constexpr std::array<std::pair<std::u32string_view, char32_t>, 7> kWords = {{{U"乘以", U'*'},
                                                                                      {U"除以", U'/'},
                                                                                      {U"加上", U'+'},
                                                                                      {U"减去", U'-'},
                                                                                      {U"乘", U'*'},
                                                                                      {U"加", U'+'},
                                                                                      {U"减", U'-'}}};
  std::u32string out;
  for (std::size_t i = 0; i < s.size();) {
    bool replaced = false;
    for (const auto& [word, op] : kWords) {
      if (!starts_with(s.substr(i), word)) continue;
      std::size_t before = out.size();
      while (before > 0 && is_space(out[before - 1])) --before;
      std::size_t after = i + word.size();
      while (after < s.size() && is_space(s[after])) ++after;
      const bool left = before > 0 && (is_digit(out[before - 1]) || out[before - 1] == U')' || out[before - 1] == U'%');
      const bool right = after < s.size() && (is_digit(s[after]) || s[after] == U'(');
      if (left && right) {
        out += op;
        i += word.size();
        replaced = true;
      }
      break;
    }
    if (!replaced) out += s[i++];
  }
  return out;
}

// ------------------------------------------------------------ evaluator ---

Error eval_error(const char* reason, std::string message) {
  return Error(ErrorCode::kInvalidArgument, std::move(message), reason);
}

std::size_t bit_size(const cpp_int& v) { return v == 0 ? 1 : boost::multiprecision::msb(abs(v)) + 1; }

// Recursive descent over the ASCII expression, evaluating as it parses:
//   expr    := term (('+'|'-') term)*
//   term    := unary (('*'|'/') unary)*
//   unary   := ('+'|'-') unary | power
//   power   := postfix ('^' unary)?          (right associative; -2^2 = -4)
//   postfix := primary '%'*                  (percent: / 100)
//   primary := number | '(' expr ')'
class Evaluator {
 public:
  Evaluator(std::string_view text, const ArithmeticLimits& limits) : s_(text), limits_(limits) {}

  Result<cpp_rational> run() {
    auto v = expr();
    if (!v) return v;
    skip();
    if (pos_ != s_.size()) return fail(eval_error("not_arithmetic", "unexpected character in the expression"));
    return v;
  }

 private:
  void skip() {
    while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
  }
  bool eat(char c) {
    skip();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  Result<cpp_rational> expr() {
    auto v = term();
    if (!v) return v;
    cpp_rational acc = std::move(*v);
    for (;;) {
      const bool plus = eat('+');
      if (!plus && !eat('-')) return acc;
      auto r = term();
      if (!r) return r;
      if (plus) {
        acc += *r;
      } else {
        acc -= *r;
      }
    }
  }

  Result<cpp_rational> term() {
    auto v = unary();
    if (!v) return v;
    cpp_rational acc = std::move(*v);
    for (;;) {
      const bool times = eat('*');
      if (!times && !eat('/')) return acc;
      auto r = unary();
      if (!r) return r;
      if (!times && *r == 0) return fail(eval_error("division_by_zero", "the expression divides by zero"));
      if (times) {
        acc *= *r;
      } else {
        acc /= *r;
      }
    }
  }

  Result<cpp_rational> unary() {
    if (++depth_ > limits_.max_depth) return fail(eval_error("not_arithmetic", "the expression is nested too deeply"));
    Result<cpp_rational> v;
    if (eat('-')) {
      v = unary();
      if (v) *v = -*v;
    } else if (eat('+')) {
      v = unary();
    } else {
      v = power();
    }
    --depth_;
    return v;
  }

  Result<cpp_rational> power() {
    auto base = postfix();
    if (!base || !eat('^')) return base;
    auto exponent = unary();
    if (!exponent) return exponent;
    return raise(*base, *exponent);
  }

  Result<cpp_rational> raise(const cpp_rational& base, const cpp_rational& exponent) {
    if (denominator(exponent) != 1) {
      return fail(eval_error("not_arithmetic", "only whole-number powers are checked exactly"));
    }
    const cpp_int e = numerator(exponent);
    if (base == 0) {
      if (e < 0) return fail(eval_error("division_by_zero", "zero to a negative power divides by zero"));
      if (e == 0) return fail(eval_error("not_arithmetic", "0^0 is undefined"));
      return cpp_rational(0);
    }
    if (base == 1) return cpp_rational(1);
    if (base == -1) return cpp_rational(e % 2 == 0 ? 1 : -1);
    const cpp_int magnitude = abs(e);
    const std::size_t bits = bit_size(numerator(base)) + bit_size(denominator(base));
    if (magnitude > cpp_int(limits_.max_result_bits) ||
        bits * magnitude.convert_to<std::size_t>() > limits_.max_result_bits) {
      return fail(eval_error("too_large", "the power is too large to check exactly"));
    }
    const auto n = magnitude.convert_to<unsigned>();
    cpp_rational r(pow(numerator(base), n), pow(denominator(base), n));
    if (e < 0) r = 1 / r;
    return r;
  }

  Result<cpp_rational> postfix() {
    auto v = primary();
    if (!v) return v;
    while (eat('%')) *v /= 100;
    return v;
  }

  Result<cpp_rational> primary() {
    skip();
    if (eat('(')) {
      if (++depth_ > limits_.max_depth)
        return fail(eval_error("not_arithmetic", "the expression is nested too deeply"));
      auto v = expr();
      --depth_;
      if (!v) return v;
      if (!eat(')')) return fail(eval_error("not_arithmetic", "unbalanced parentheses"));
      return v;
    }
    return number();
  }

  Result<cpp_rational> number() {
    skip();
    cpp_int whole = 0, frac = 0, scale = 1;
    std::size_t digits = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      whole = whole * 10 + (s_[pos_++] - '0');
      ++digits;
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
        frac = frac * 10 + (s_[pos_++] - '0');
        scale *= 10;
        ++digits;
      }
    }
    if (digits == 0) return fail(eval_error("not_arithmetic", "a number was expected"));
    return cpp_rational(whole) + cpp_rational(frac, scale);
  }

  std::string_view s_;
  const ArithmeticLimits& limits_;
  std::size_t pos_ = 0;
  int depth_ = 0;
};

// `14`, `-0.75`, `5/6`: integers as integers, terminating fractions of up
// to 12 decimals as decimals, the rest as reduced fractions.
std::string format(const cpp_rational& v) {
  const cpp_int num = numerator(v), den = denominator(v);
  if (den == 1) return num.str();
  cpp_int d = den;
  int twos = 0, fives = 0;
  while (d % 2 == 0) d /= 2, ++twos;
  while (d % 5 == 0) d /= 5, ++fives;
  const int places = std::max(twos, fives);
  if (d == 1 && places <= 12) {
    cpp_int scaled = abs(num) * pow(cpp_int(10), static_cast<unsigned>(places)) / den;
    std::string digits = scaled.str();
    if (digits.size() <= static_cast<std::size_t>(places)) digits.insert(0, places + 1 - digits.size(), '0');
    digits.insert(digits.size() - places, ".");
    return (num < 0 ? "-" : "") + digits;
  }
  return num.str() + "/" + den.str();
}

// -------------------------------------------------------- the question ---

// Words that may surround a bare calculation (longest first).
constexpr std::u32string_view kFillers[] = {U"直接写出得数",
                                            U"the value of",
                                            U"what is",
                                            U"calculate",
                                            U"what's",
                                            U"evaluate",
                                            U"work out",
                                            U"compute",
                                            U"please",
                                            U"简便计算",
                                            U"脱式计算",
                                            U"等于多少",
                                            U"等于几",
                                            U"是多少",
                                            U"得多少",
                                            U"算一算",
                                            U"写出得数",
                                            U"的结果",
                                            U"计算",
                                            U"口算",
                                            U"笔算",
                                            U"简算",
                                            U"下面",
                                            U"下列",
                                            U"各题",
                                            U"结果",
                                            U"的值",
                                            U"等于",
                                            U"多少",
                                            U"得数",
                                            U"答案",
                                            U"是几",
                                            U"请",
                                            U"求",
                                            U"值",
                                            U"是",
                                            U"的",
                                            U"find",
                                            U"value",
                                            U"of",
                                            U"算",
                                            U"=",
                                            U"?",
                                            U":",
                                            U",",
                                            U"。",
                                            U"."};

bool only_fillers(std::u32string s) {
  s = ascii_lower(s);
  std::u32string rest;
  for (std::size_t i = 0; i < s.size();) {
    if (is_space(s[i]) || s[i] == U'!' || s[i] == U'！' || s[i] == U'、' || s[i] == U'_' || s[i] == U'□') {
      ++i;
      continue;
    }
    bool matched = false;
    for (auto f : kFillers) {
      if (starts_with(std::u32string_view(s).substr(i), f)) {
        i += f.size();
        matched = true;
        break;
      }
    }
    if (!matched) return false;
  }
  return true;
}

bool has_operator(std::string_view e) {
  std::size_t i = 0;
  while (i < e.size() && (e[i] == '-' || e[i] == '+' || e[i] == '(' || e[i] == ' ')) ++i;
  return e.find_first_of("+-*/^%", i) != std::string_view::npos;
}

// ---------------------------------------------------------- the answer ---

int cn_digit(char32_t c) {
  switch (c) {
    case U'零':
    case U'〇': return 0;
    case U'一':
    case U'壹': return 1;
    case U'二':
    case U'贰':
    case U'两': return 2;
    case U'三':
    case U'叁': return 3;
    case U'四':
    case U'肆': return 4;
    case U'五':
    case U'伍': return 5;
    case U'六':
    case U'陆': return 6;
    case U'七':
    case U'柒': return 7;
    case U'八':
    case U'捌': return 8;
    case U'九':
    case U'玖': return 9;
    default: return -1;
  }
}
int cn_unit(char32_t c) {
  switch (c) {
    case U'十':
    case U'拾': return 10;
    case U'百':
    case U'佰': return 100;
    case U'千':
    case U'仟': return 1000;
    default: return 0;
  }
}
int cn_big(char32_t c) { return c == U'万' || c == U'萬' ? 4 : c == U'亿' || c == U'億' ? 8 : 0; }

// An unsigned decimal in Arabic digits (`12`, `1.5`), the whole string.
std::optional<cpp_rational> arabic(std::u32string_view s) {
  if (s.empty() || s.size() > 64) return std::nullopt;
  std::string ascii;
  for (char32_t c : s) {
    if (!is_digit(c) && c != U'.') return std::nullopt;
    ascii += static_cast<char>(c);
  }
  if (std::count(ascii.begin(), ascii.end(), '.') > 1 || ascii.front() == '.' || ascii.back() == '.') {
    return std::nullopt;
  }
  ArithmeticLimits limits;
  auto v = Evaluator(ascii, limits).run();
  return v ? std::optional(*v) : std::nullopt;
}

// A non-negative number in Chinese numerals, possibly mixed with Arabic
// digits: `十四`, `一百零五`, `两千`, `3万`, `一二三`, `三点一四`.
std::optional<cpp_rational> chinese(std::u32string_view s) {
  if (s.empty() || s.size() > 64) return std::nullopt;
  if (auto a = arabic(s)) return a;
  if (const auto dot = s.find(U'点'); dot != std::u32string_view::npos) {
    auto whole = chinese(s.substr(0, dot));
    const auto frac_text = s.substr(dot + 1);
    if (!whole || frac_text.empty()) return std::nullopt;
    cpp_int frac = 0, scale = 1;
    for (char32_t c : frac_text) {
      const int d = is_digit(c) ? static_cast<int>(c - U'0') : cn_digit(c);
      if (d < 0) return std::nullopt;
      frac = frac * 10 + d;
      scale *= 10;
    }
    return *whole + cpp_rational(frac, scale);
  }
  const bool has_units = std::any_of(s.begin(), s.end(), [](char32_t c) { return cn_unit(c) || cn_big(c); });
  if (!has_units) {  // digit by digit: 一二三 = 123
    cpp_int v = 0;
    for (char32_t c : s) {
      const int d = is_digit(c) ? static_cast<int>(c - U'0') : cn_digit(c);
      if (d < 0) return std::nullopt;
      v = v * 10 + d;
    }
    return cpp_rational(v);
  }
  cpp_rational total = 0, section = 0;
  std::optional<cpp_rational> pending;
  for (std::size_t i = 0; i < s.size();) {
    if (is_digit(s[i])) {
      std::size_t j = i;
      while (j < s.size() && (is_digit(s[j]) || s[j] == U'.')) ++j;
      pending = arabic(s.substr(i, j - i));
      if (!pending) return std::nullopt;
      i = j;
      continue;
    }
    const char32_t c = s[i++];
    if (const int d = cn_digit(c); d >= 0) {
      pending = cpp_rational(d);
    } else if (const int u = cn_unit(c)) {
      section += pending.value_or(1) * u;
      pending.reset();
    } else if (const int b = cn_big(c)) {
      const cpp_rational scale = b == 4 ? cpp_rational(10000) : cpp_rational(100000000);
      if (b == 4) {
        total += (section + pending.value_or(0)) * scale;
      } else {
        total = (total + section + pending.value_or(0)) * scale;
      }
      section = 0;
      pending.reset();
    } else {
      return std::nullopt;
    }
  }
  return total + section + pending.value_or(0);
}

// One value, the whole string: an optional sign (`-`, `负`), then `a/b`,
// `a%`, `百分之a`, `b分之a` or a plain number.
std::optional<cpp_rational> value_of(std::u32string_view s) {
  s = trim(s);
  bool negative = false;
  if (starts_with(s, U"-") || starts_with(s, U"负")) {
    negative = true;
    s.remove_prefix(1);
    if (starts_with(s, U"的")) s.remove_prefix(1);
  } else if (starts_with(s, U"+") || starts_with(s, U"正")) {
    s.remove_prefix(1);
  }
  s = trim(s);
  std::optional<cpp_rational> v;
  if (starts_with(s, U"百分之")) {
    if (auto p = chinese(s.substr(3))) v = *p / 100;
  } else if (const auto fen = s.find(U"分之"); fen != std::u32string_view::npos) {
    auto den = chinese(s.substr(0, fen));
    auto num = chinese(s.substr(fen + 2));
    if (den && num && *den != 0) v = *num / *den;
  } else if (const auto slash = s.find(U'/'); slash != std::u32string_view::npos) {
    auto num = arabic(trim(s.substr(0, slash)));
    auto den = arabic(trim(s.substr(slash + 1)));
    if (num && den && *den != 0) v = *num / *den;
  } else if (ends_with(s, U"%")) {
    if (auto p = arabic(trim(s.substr(0, s.size() - 1)))) v = *p / 100;
  } else {
    v = chinese(s);
  }
  if (v && negative) *v = -*v;
  return v;
}

constexpr std::u32string_view kAnswerPrefixes[] = {U"the answer is",
                                                   U"answer is",
                                                   U"answer:",
                                                   U"answer",
                                                   U"result:",
                                                   U"equals",
                                                   U"it is",
                                                   U"it's",
                                                   U"答案是",
                                                   U"答案为",
                                                   U"答案:",
                                                   U"答案",
                                                   U"结果是",
                                                   U"结果为",
                                                   U"结果:",
                                                   U"结果",
                                                   U"得数是",
                                                   U"等于",
                                                   U"答:",
                                                   U"答",
                                                   U"解:",
                                                   U"解",
                                                   U"得",
                                                   U"是",
                                                   U"为",
                                                   U"=",
                                                   U":",
                                                   U"约",
                                                   U"≈",
                                                   U"is"};

constexpr std::u32string_view kUnitSuffixes[] = {U"厘米", U"千米", U"千克", U"平方米", U"个", U"只", U"元", U"块",
                                                 U"米",   U"克",   U"人",   U"本",     U"支", U"条", U"张", U"次",
                                                 U"天",   U"岁",   U"分",   U"度",     U"。", U".",  U"!",  U"！"};

std::u32string_view strip_affixes(std::u32string_view s) {
  for (bool changed = true; changed;) {
    changed = false;
    s = trim(s);
    const std::u32string lower = ascii_lower(s);
    for (auto p : kAnswerPrefixes) {
      if (starts_with(lower, p)) {
        s.remove_prefix(p.size());
        changed = true;
        break;
      }
    }
  }
  for (bool changed = true; changed;) {
    changed = false;
    s = trim(s);
    for (auto u : kUnitSuffixes) {
      if (s.size() > u.size() && ends_with(s, u)) {
        s.remove_suffix(u.size());
        changed = true;
        break;
      }
    }
  }
  return s;
}

bool is_numeral_char(char32_t c) {
  return is_digit(c) || c == U'.' || c == U'/' || c == U'%' || c == U'-' || c == U'+' || cn_digit(c) >= 0 ||
         cn_unit(c) || cn_big(c) || c == U'负' || c == U'点' || c == U'分' || c == U'之' || c == U'百';
}

// The longest leading run of numeral characters that reads as a value.
std::optional<cpp_rational> leading_value(std::u32string_view s) {
  s = strip_affixes(s);
  std::size_t n = 0;
  while (n < s.size() && n < 64 && is_numeral_char(s[n])) ++n;
  for (; n > 0; --n) {
    if (auto v = value_of(s.substr(0, n))) return v;
  }
  return std::nullopt;
}

std::optional<cpp_rational> read_answer(std::u32string_view answer) {
  if (auto whole = value_of(strip_affixes(answer))) return whole;
  if (const auto eq = answer.rfind(U'='); eq != std::u32string_view::npos) {
    if (auto after = leading_value(answer.substr(eq + 1))) return after;
  }
  return leading_value(answer);
}

Result<cpp_rational> evaluate(std::string_view expression, const ArithmeticLimits& limits) {
  return Evaluator(expression, limits).run();
}

}  // namespace

std::string_view verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kMatch: return "match";
    case Verdict::kMismatch: return "mismatch";
    case Verdict::kUnparseableAnswer: return "unparseable_answer";
    case Verdict::kDivisionByZero: return "division_by_zero";
    case Verdict::kNotArithmetic: return "not_arithmetic";
  }
  return "not_arithmetic";
}

std::optional<std::string> extract_expression(std::string_view question, const ArithmeticLimits& limits) {
  if (question.size() > limits.max_question_bytes) return std::nullopt;
  std::u32string s = operator_words(normalise(decode_utf8(question)));
  // Blanks to fill in (`( )`, `（ ）`) are not part of the expression.
  for (auto pos = s.find(U"( )"); pos != std::u32string::npos; pos = s.find(U"( )")) s.erase(pos, 3);
  for (auto pos = s.find(U"()"); pos != std::u32string::npos; pos = s.find(U"()")) s.erase(pos, 2);
  std::optional<std::pair<std::size_t, std::size_t>> run;
  for (std::size_t i = 0; i < s.size();) {
    if (!is_expression_char(s[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    bool digits = false;
    while (j < s.size() && is_expression_char(s[j])) digits |= is_digit(s[j++]);
    if (digits) {
      if (run) return std::nullopt;  // two expressions: not a bare calculation
      run = {i, j};
    }
    i = j;
  }
  if (!run) return std::nullopt;
  while (is_space(s[run->first])) ++run->first;
  while (is_space(s[run->second - 1])) --run->second;
  // A letter touching the expression makes it algebra (`2x+1`), not arithmetic.
  const auto letter = [](char32_t c) { return (c >= U'a' && c <= U'z') || (c >= U'A' && c <= U'Z'); };
  if ((run->first > 0 && letter(s[run->first - 1])) || (run->second < s.size() && letter(s[run->second]))) {
    return std::nullopt;
  }
  const std::u32string rest = s.substr(0, run->first) + U" " + s.substr(run->second);
  if (!only_fillers(rest)) return std::nullopt;
  const std::string expression = encode_utf8(trim(std::u32string_view(s).substr(run->first, run->second - run->first)));
  if (!has_operator(expression)) return std::nullopt;
  return expression;
}

Result<std::string> evaluate_expression(std::string_view expression, const ArithmeticLimits& limits) {
  auto v = evaluate(expression, limits);
  if (!v) return std::unexpected(v.error());
  return format(*v);
}

std::optional<std::string> answer_value(std::string_view answer, const ArithmeticLimits& limits) {
  if (answer.size() > limits.max_answer_bytes) return std::nullopt;
  auto v = read_answer(normalise(decode_utf8(answer)));
  return v ? std::optional(format(*v)) : std::nullopt;
}

Check check_arithmetic(std::string_view question, std::string_view answer, const ArithmeticLimits& limits) {
  Check c;
  auto expression = extract_expression(question, limits);
  if (!expression) {
    c.detail = "no bare arithmetic expression found in the question; graded by the model alone";
    return c;
  }
  c.expression = *expression;
  auto expected = evaluate(*expression, limits);
  if (!expected) {
    if (expected.error().reason == "division_by_zero") {
      c.verdict = Verdict::kDivisionByZero;
      c.expected = "undefined";
      c.detail = "the question's expression divides by zero, so it has no value; graded by the model alone";
    } else {
      c.detail = expected.error().message + "; graded by the model alone";
    }
    return c;
  }
  c.expected = format(*expected);
  std::optional<cpp_rational> student;
  if (answer.size() <= limits.max_answer_bytes) student = read_answer(normalise(decode_utf8(answer)));
  if (!student) {
    c.verdict = Verdict::kUnparseableAnswer;
    c.detail = "no numeric value could be read from the answer; expected " + c.expected;
    return c;
  }
  c.student = format(*student);
  if (*student == *expected) {
    c.verdict = Verdict::kMatch;
    c.detail = "the answer equals the exact value " + c.expected;
  } else {
    c.verdict = Verdict::kMismatch;
    c.detail = "the answer " + c.student + " differs from the exact value " + c.expected;
  }
  return c;
}

}  // namespace llmd::homework
