#include "grammar/gbnf_builder.h"

#include <algorithm>
#include <cassert>
#include "grammar/str_format.h"

#include "grammar/json_schema.h"
#include "grammar/schema_support.h"

namespace llmd::grammar::detail {
namespace {

bool is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

bool is_rule_name(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_word_char); }

std::string join_alternatives(const std::vector<std::string>& alts) {
  if (alts.size() == 1) return alts.front();
  std::string out = "(";
  for (std::size_t i = 0; i < alts.size(); ++i) {
    if (i > 0) out += " | ";
    out += alts[i].empty() ? "\"\"" : alts[i];
  }
  return out + ")";
}

std::string join_sequence(std::initializer_list<std::string> parts) {
  std::string out;
  for (const auto& p : parts) {
    if (p.empty()) continue;
    if (!out.empty()) out += ' ';
    out += p;
  }
  return out;
}

std::string any_digits(std::size_t n) {
  if (n == 0) return {};
  return n == 1 ? "[0-9]" : detail::sformat("[0-9]{{{}}}", n);
}

std::string digit_class(char lo, char hi) {
  if (lo == hi) return detail::sformat("\"{}\"", lo);
  return detail::sformat("[{}-{}]", lo, hi);
}

bool all_of_char(std::string_view s, char c) {
  return std::all_of(s.begin(), s.end(), [c](char x) { return x == c; });
}

// Digit strings of equal length n with a <= s <= b (lexicographic = numeric).
std::string same_length_range(std::string_view a, std::string_view b) {
  const std::size_t n = a.size();
  if (n == 0) return {};
  if (a == b) return gbnf_literal(a);
  const std::string_view a_rest = a.substr(1), b_rest = b.substr(1);
  if (a[0] == b[0]) return join_sequence({gbnf_literal(a.substr(0, 1)), same_length_range(a_rest, b_rest)});
  std::vector<std::string> alts;
  // Fold the first/last leading digit into the middle block when its tail
  // covers the whole span anyway ("0..0" below or "9..9" above).
  char mid_lo = a[0] + 1, mid_hi = b[0] - 1;
  if (all_of_char(a_rest, '0')) {
    mid_lo = a[0];
  } else {
    alts.push_back(join_sequence({gbnf_literal(a.substr(0, 1)), same_length_range(a_rest, std::string(n - 1, '9'))}));
  }
  const bool fold_hi = all_of_char(b_rest, '9');
  if (fold_hi) mid_hi = b[0];
  if (mid_lo <= mid_hi) alts.push_back(join_sequence({digit_class(mid_lo, mid_hi), any_digits(n - 1)}));
  if (!fold_hi) {
    alts.push_back(join_sequence({gbnf_literal(b.substr(0, 1)), same_length_range(std::string(n - 1, '0'), b_rest)}));
  }
  return join_alternatives(alts);
}

std::uint64_t pow10(std::size_t n) {
  std::uint64_t p = 1;
  while (n-- > 0) p *= 10;
  return p;
}

// Decimal numerals without leading zeros in [lo, hi], 0 <= lo <= hi.
std::string natural_range(std::uint64_t lo, std::uint64_t hi) {
  const std::string lo_s = std::to_string(lo), hi_s = std::to_string(hi);
  std::vector<std::string> alts;
  for (std::size_t d = lo_s.size(); d <= hi_s.size(); ++d) {
    const std::uint64_t sub_lo = d == lo_s.size() ? lo : pow10(d - 1);
    const std::uint64_t sub_hi = d == hi_s.size() ? hi : pow10(d) - 1;
    alts.push_back(same_length_range(std::to_string(sub_lo), std::to_string(sub_hi)));
  }
  return join_alternatives(alts);
}

// Magnitudes m with lo <= m <= hi where lo, hi are integers: an integer part in
// [lo, hi-1] with any fraction, or exactly hi with an all-zero fraction.
std::string magnitude_range(std::uint64_t lo, std::uint64_t hi) {
  const std::string any_fraction = detail::sformat("(\".\" [0-9]{{1,{}}})?", kMaxFractionDigits);
  const std::string zero_fraction = detail::sformat("(\".\" \"0\"{{1,{}}})?", kMaxFractionDigits);
  std::vector<std::string> alts;
  if (lo < hi) alts.push_back(join_sequence({natural_range(lo, hi - 1), any_fraction}));
  alts.push_back(join_sequence({gbnf_literal(std::to_string(hi)), zero_fraction}));
  return join_alternatives(alts);
}

std::string sanitize(std::string_view hint) {
  std::string out;
  for (char c : hint) {
    const char w = is_word_char(c) ? c : '-';
    if (w == '-' && (out.empty() || out.back() == '-')) continue;
    out += w;
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  if (out.size() > 40) out.resize(40);
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? std::string("r") : out;
}

}  // namespace

std::string gbnf_literal(std::string_view text) {
  std::string out = "\"";
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          constexpr char kHex[] = "0123456789ABCDEF";
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

std::string integer_range_expr(std::int64_t lo, std::int64_t hi) {
  assert(lo <= hi);
  std::vector<std::string> alts;
  if (lo < 0) {
    const std::uint64_t mag_lo = hi < 0 ? static_cast<std::uint64_t>(-hi) : 1;
    const std::uint64_t mag_hi = static_cast<std::uint64_t>(-lo);
    alts.push_back(join_sequence({"\"-\"", natural_range(mag_lo, mag_hi)}));
  }
  if (hi >= 0) alts.push_back(natural_range(static_cast<std::uint64_t>(std::max<std::int64_t>(lo, 0)), hi));
  return join_alternatives(alts);
}

std::string number_range_expr(std::int64_t lo, std::int64_t hi) {
  assert(lo <= hi);
  std::vector<std::string> alts;
  if (lo < 0) {
    const std::uint64_t mag_lo = hi < 0 ? static_cast<std::uint64_t>(-hi) : 0;
    alts.push_back(join_sequence({"\"-\"", magnitude_range(mag_lo, static_cast<std::uint64_t>(-lo))}));
  }
  if (hi >= 0) alts.push_back(magnitude_range(static_cast<std::uint64_t>(std::max<std::int64_t>(lo, 0)), hi));
  return join_alternatives(alts);
}

const std::vector<PrimitiveRule>& primitive_rules() {
  // Bodies use only constructs llama.cpp's parser accepts; `ws` is bounded so
  // sampling cannot spin on whitespace (see json_schema.h).
  static const std::vector<PrimitiveRule> kRules = {
      {"value",
       "object | array | string | number | boolean | null",
       {"object", "array", "string", "number", "boolean", "null"}},
      {"object", "\"{\" ws ( member ( ws \",\" ws member )* ws )? \"}\"", {"ws", "member"}},
      {"member", "string ws \":\" ws value", {"string", "ws", "value"}},
      {"array", "\"[\" ws ( value ( ws \",\" ws value )* ws )? \"]\"", {"ws", "value"}},
      {"string", "\"\\\"\" char* \"\\\"\"", {"char"}},
      {"char", "[^\"\\\\\\x00-\\x1F] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4} )", {}},
      {"number", "\"-\"? ( \"0\" | [1-9] [0-9]{0,15} ) ( \".\" [0-9]{1,16} )? ( [eE] [+\\-]? [0-9]{1,3} )?", {}},
      {"integer", "\"-\"? ( \"0\" | [1-9] [0-9]{0,15} )", {}},
      {"boolean", "\"true\" | \"false\"", {}},
      {"null", "\"null\"", {}},
      {"ws", "( \" \" | \"\\n\" [ \\t]{0,16} )?", {}},
  };
  return kRules;
}

GbnfBuilder::GbnfBuilder() {
  taken_.insert("root");
  for (const auto& p : primitive_rules()) taken_.insert(std::string(p.name));
}

std::string GbnfBuilder::fresh_name(std::string_view hint) {
  const std::string base = sanitize(hint);
  std::string name = base;
  for (int i = 2; taken_.contains(name); ++i) name = detail::sformat("{}-{}", base, i);
  taken_.insert(name);
  return name;
}

void GbnfBuilder::define(const std::string& name, std::string body) { rules_.emplace_back(name, std::move(body)); }

std::string GbnfBuilder::as_rule(std::string expr, std::string_view hint) {
  if (is_rule_name(expr)) return expr;
  std::string name = fresh_name(hint);
  define(name, std::move(expr));
  return name;
}

std::string GbnfBuilder::primitive(std::string_view name) {
  const auto& all = primitive_rules();
  const auto it = std::find_if(all.begin(), all.end(), [&](const PrimitiveRule& p) { return p.name == name; });
  assert(it != all.end());
  if (primitives_used_.insert(std::string(name)).second) {
    for (auto dep : it->uses) primitive(dep);
  }
  return std::string(name);
}

std::string GbnfBuilder::chunk_of(const std::string& item) {
  if (auto it = chunks_.find(item); it != chunks_.end()) return it->second;
  std::string name = fresh_name(detail::sformat("{}-x{}", item, kRepeatChunk));
  define(name, detail::sformat("{}{{{}}}", item, kRepeatChunk));
  chunks_.emplace(item, name);
  return name;
}

std::string GbnfBuilder::exact(const std::string& item, std::uint64_t n) {
  if (n == 0) return {};
  if (n == 1) return item;
  if (n <= kRepeatChunk) return detail::sformat("{}{{{}}}", item, n);
  return join_sequence({exact(chunk_of(item), n / kRepeatChunk), exact(item, n % kRepeatChunk)});
}

std::string GbnfBuilder::up_to(const std::string& item, std::uint64_t n) {
  if (n == 0) return {};
  if (n == 1) return item + "?";
  if (n <= kRepeatChunk) return detail::sformat("{}{{0,{}}}", item, n);
  // n = q*K + r: either exactly q chunks and at most r items, or fewer than q
  // chunks and at most K-1 items — together every count in [0, n], once.
  const std::uint64_t q = n / kRepeatChunk, r = n % kRepeatChunk;
  const std::string chunk = chunk_of(item);
  return join_alternatives({join_sequence({exact(chunk, q), up_to(item, r)}),
                            join_sequence({up_to(chunk, q - 1), up_to(item, kRepeatChunk - 1)})});
}

std::string GbnfBuilder::repeat(const std::string& item, std::uint64_t min, std::optional<std::uint64_t> max) {
  if (!max) return join_sequence({exact(item, min), item + "*"});
  return join_sequence({exact(item, min), up_to(item, *max - min)});
}

std::string GbnfBuilder::render(const std::string& root_body) const {
  std::string out = detail::sformat("root ::= {}\n", root_body);
  for (const auto& [name, body] : rules_) out += detail::sformat("{} ::= {}\n", name, body);
  for (const auto& p : primitive_rules()) {
    if (primitives_used_.contains(std::string(p.name))) out += detail::sformat("{} ::= {}\n", p.name, p.body);
  }
  return out;
}

}  // namespace llmd::grammar::detail
