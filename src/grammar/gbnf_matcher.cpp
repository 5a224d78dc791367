#include "grammar/gbnf_matcher.h"

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include "grammar/str_format.h"

namespace llmd::grammar {
namespace {

using llmd::grammar::detail::sformat;
using Kind = GbnfMatcher::Kind;
using Element = GbnfMatcher::Element;
using Rule = std::vector<Element>;

constexpr std::uint64_t kRepetitionLimit = 2000;  // llama.cpp's MAX_REPETITION_THRESHOLD
constexpr std::uint64_t kNoMax = UINT64_MAX;

struct SyntaxError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

bool is_word(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Decodes one UTF-8 sequence; std::nullopt on malformed input.
std::optional<std::pair<std::uint32_t, std::size_t>> decode_utf8(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  std::size_t len = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + len > s.size()) return std::nullopt;
  std::uint32_t cp = len == 1 ? b0 : b0 & (0x7F >> len);
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (b & 0x3F);
  }
  return std::pair{cp, len};
}

class Parser {
 public:
  explicit Parser(std::string_view src) : src_(src) {}

  void parse_all() {
    pos_ = skip_space(0, true);
    while (pos_ < src_.size()) parse_rule();
  }

  std::map<std::string, std::uint32_t> symbols;
  std::vector<Rule> rules;

 private:
  char at(std::size_t i) const { return i < src_.size() ? src_[i] : '\0'; }

  std::size_t skip_space(std::size_t i, bool newline_ok) const {
    while (true) {
      const char c = at(i);
      if (c == ' ' || c == '\t' || (newline_ok && (c == '\r' || c == '\n'))) {
        ++i;
      } else if (c == '#') {
        while (at(i) != '\0' && at(i) != '\r' && at(i) != '\n') ++i;
      } else {
        return i;
      }
    }
  }

  std::uint32_t symbol(const std::string& name) {
    return symbols.emplace(name, static_cast<std::uint32_t>(symbols.size())).first->second;
  }
  std::uint32_t synthesized(const std::string& base) {
    const auto id = static_cast<std::uint32_t>(symbols.size());
    symbols[sformat("{}_{}", base, id)] = id;
    return id;
  }
  void set_rule(std::uint32_t id, Rule rule) {
    if (rules.size() <= id) rules.resize(id + 1);
    rules[id] = std::move(rule);
  }

  std::uint32_t hex(std::size_t& i, int digits) {
    std::uint32_t v = 0;
    for (int k = 0; k < digits; ++k, ++i) {
      const char c = at(i);
      int d = is_digit(c)              ? c - '0'
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                       : -1;
      if (d < 0) throw SyntaxError(sformat("expecting {} hex chars at offset {}", digits, i));
      v = v * 16 + static_cast<std::uint32_t>(d);
    }
    return v;
  }

  std::uint32_t parse_char(std::size_t& i) {
    if (at(i) == '\\') {
      const char e = at(i + 1);
      i += 2;
      switch (e) {
        case 'x': return hex(i, 2);
        case 'u': return hex(i, 4);
        case 'U': return hex(i, 8);
        case 't': return '\t';
        case 'r': return '\r';
        case 'n': return '\n';
        case '\\':
        case '"':
        case '[':
        case ']':
        case '-': return static_cast<unsigned char>(e);
        default: throw SyntaxError(sformat("unknown escape '\\{}' at offset {}", e, i - 2));
      }
    }
    if (at(i) == '\0') throw SyntaxError("unexpected end of input");
    const auto cp = decode_utf8(src_, i);
    if (!cp) throw SyntaxError("invalid UTF-8 in grammar");
    i += cp->second;
    return cp->first;
  }

  std::size_t parse_name(std::size_t i) const {
    const std::size_t start = i;
    while (is_word(at(i))) ++i;
    if (i == start) throw SyntaxError(sformat("expecting name at offset {}", i));
    return i;
  }

  void parse_rule() {
    const std::size_t name_end = parse_name(pos_);
    const std::string name(src_.substr(pos_, name_end - pos_));
    std::size_t i = skip_space(name_end, false);
    if (src_.substr(i, 3) != "::=") throw SyntaxError(sformat("expecting ::= at offset {}", i));
    pos_ = skip_space(i + 3, true);
    const std::uint32_t id = symbol(name);
    if (id < rules.size() && !rules[id].empty()) throw SyntaxError(sformat("rule '{}' defined twice", name));
    parse_alternates(name, id, false);
    if (at(pos_) == '\r') {
      pos_ += at(pos_ + 1) == '\n' ? 2 : 1;
    } else if (at(pos_) == '\n') {
      ++pos_;
    } else if (pos_ < src_.size()) {
      throw SyntaxError(sformat("expecting newline or end at offset {}", pos_));
    }
    pos_ = skip_space(pos_, true);
  }

  void parse_alternates(const std::string& rule_name, std::uint32_t id, bool nested) {
    Rule rule;
    parse_sequence(rule_name, rule, nested);
    while (at(pos_) == '|') {
      rule.push_back({Kind::kAlt, 0});
      pos_ = skip_space(pos_ + 1, true);
      parse_sequence(rule_name, rule, nested);
    }
    rule.push_back({Kind::kEnd, 0});
    set_rule(id, std::move(rule));
  }

  void parse_sequence(const std::string& rule_name, Rule& rule, bool nested) {
    std::size_t last_start = rule.size();
    std::uint64_t prev_rules = 1;

    // x{m,n} becomes m inline copies of x plus n-m nested optional helper
    // rules (one looping helper when unbounded), as llama.cpp expands it.
    const auto repeat = [&](std::uint64_t min, std::uint64_t max) {
      if (last_start == rule.size()) throw SyntaxError("expecting preceding item to */+/?/{");
      const Rule item(rule.begin() + static_cast<std::ptrdiff_t>(last_start), rule.end());
      const bool no_max = max == kNoMax;
      std::uint64_t total = 1;
      if (!no_max && max > 0) {
        total = max;
      } else if (min > 0) {
        total = min;
      }
      if (prev_rules * total >= kRepetitionLimit) throw SyntaxError("repetition exceeds llama.cpp's rule limit");
      if (min == 0) {
        rule.resize(last_start);
      } else {
        for (std::uint64_t k = 1; k < min; ++k) rule.insert(rule.end(), item.begin(), item.end());
      }
      const std::uint64_t optional = no_max ? 1 : max - min;
      std::uint32_t previous = 0;
      for (std::uint64_t k = 0; k < optional; ++k) {
        Rule helper = item;
        const std::uint32_t id = synthesized(rule_name);
        if (k > 0 || no_max) helper.push_back({Kind::kRuleRef, no_max ? id : previous});
        helper.push_back({Kind::kAlt, 0});
        helper.push_back({Kind::kEnd, 0});
        set_rule(id, std::move(helper));
        previous = id;
      }
      if (optional > 0) rule.push_back({Kind::kRuleRef, previous});
      prev_rules *= total;
    };

    while (pos_ < src_.size()) {
      const char c = at(pos_);
      if (c == '"') {
        ++pos_;
        last_start = rule.size();
        prev_rules = 1;
        while (at(pos_) != '"') {
          if (at(pos_) == '\0') throw SyntaxError("unexpected end of input in literal");
          rule.push_back({Kind::kChar, parse_char(pos_)});
        }
        pos_ = skip_space(pos_ + 1, nested);
      } else if (c == '[') {
        ++pos_;
        Kind first = Kind::kChar;
        if (at(pos_) == '^') {
          ++pos_;
          first = Kind::kCharNot;
        }
        last_start = rule.size();
        prev_rules = 1;
        while (at(pos_) != ']') {
          if (at(pos_) == '\0') throw SyntaxError("unexpected end of input in class");
          const std::uint32_t lo = parse_char(pos_);
          rule.push_back({last_start < rule.size() ? Kind::kCharAlt : first, lo});
          if (at(pos_) == '-' && at(pos_ + 1) != ']') {
            ++pos_;
            rule.push_back({Kind::kCharRangeUpper, parse_char(pos_)});
          }
        }
        pos_ = skip_space(pos_ + 1, nested);
      } else if (is_word(c)) {
        const std::size_t end = parse_name(pos_);
        const std::uint32_t id = symbol(std::string(src_.substr(pos_, end - pos_)));
        pos_ = skip_space(end, nested);
        last_start = rule.size();
        prev_rules = 1;
        rule.push_back({Kind::kRuleRef, id});
      } else if (c == '(') {
        pos_ = skip_space(pos_ + 1, true);
        const std::size_t before = symbols.size();
        const std::uint32_t id = synthesized(rule_name);
        parse_alternates(rule_name, id, true);
        prev_rules = std::max<std::uint64_t>(1, symbols.size() - before);
        last_start = rule.size();
        rule.push_back({Kind::kRuleRef, id});
        if (at(pos_) != ')') throw SyntaxError(sformat("expecting ')' at offset {}", pos_));
        pos_ = skip_space(pos_ + 1, nested);
      } else if (c == '.') {
        last_start = rule.size();
        prev_rules = 1;
        rule.push_back({Kind::kCharAny, 0});
        pos_ = skip_space(pos_ + 1, nested);
      } else if (c == '*' || c == '+' || c == '?') {
        pos_ = skip_space(pos_ + 1, nested);
        repeat(c == '+' ? 1 : 0, c == '?' ? 1 : kNoMax);
      } else if (c == '{') {
        pos_ = skip_space(pos_ + 1, nested);
        const auto read_int = [&]() {
          const std::size_t start = pos_;
          while (is_digit(at(pos_))) ++pos_;
          if (start == pos_) throw SyntaxError(sformat("expecting an int at offset {}", pos_));
          const std::uint64_t v = std::stoull(std::string(src_.substr(start, pos_ - start)));
          pos_ = skip_space(pos_, nested);
          return v;
        };
        const std::uint64_t min = read_int();
        std::uint64_t max = kNoMax;
        if (at(pos_) == '}') {
          max = min;
        } else if (at(pos_) == ',') {
          pos_ = skip_space(pos_ + 1, nested);
          if (is_digit(at(pos_))) max = read_int();
          if (at(pos_) != '}') throw SyntaxError(sformat("expecting '}}' at offset {}", pos_));
        } else {
          throw SyntaxError(sformat("expecting ',' at offset {}", pos_));
        }
        pos_ = skip_space(pos_ + 1, nested);
        if (min > kRepetitionLimit) throw SyntaxError("repetition minimum exceeds llama.cpp's limit");
        if (max != kNoMax && max > kRepetitionLimit) max = kNoMax;  // llama.cpp silently unbounds it
        repeat(min, max);
      } else {
        break;
      }
    }
  }

  std::string_view src_;
  std::size_t pos_ = 0;
};

bool is_end(const Element* e) { return e->kind == Kind::kEnd || e->kind == Kind::kAlt; }

// Rules that can match the empty string, then a search for a rule that can
// reach itself without consuming a character (llama.cpp refuses those).
void check_left_recursion(const std::vector<Rule>& rules, const std::map<std::string, std::uint32_t>& symbols) {
  std::vector<bool> nullable(rules.size(), false);
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t r = 0; r < rules.size(); ++r) {
      if (nullable[r]) continue;
      bool alt_nullable = true, rule_nullable = false;
      for (const Element& e : rules[r]) {
        if (is_end(&e)) {
          rule_nullable = rule_nullable || alt_nullable;
          alt_nullable = true;
          continue;
        }
        if (e.kind != Kind::kRuleRef || !nullable[e.value]) alt_nullable = false;
      }
      if (rule_nullable) {
        nullable[r] = true;
        changed = true;
      }
    }
  }
  std::vector<std::vector<std::uint32_t>> left_edges(rules.size());
  for (std::size_t r = 0; r < rules.size(); ++r) {
    bool at_left = true;
    for (const Element& e : rules[r]) {
      if (is_end(&e)) {
        at_left = true;
        continue;
      }
      if (!at_left) continue;
      if (e.kind == Kind::kRuleRef) {
        left_edges[r].push_back(e.value);
        if (!nullable[e.value]) at_left = false;
      } else {
        at_left = false;
      }
    }
  }
  std::vector<int> state(rules.size(), 0);  // 0 new, 1 on path, 2 done
  const std::function<void(std::uint32_t)> visit = [&](std::uint32_t r) {
    state[r] = 1;
    for (std::uint32_t next : left_edges[r]) {
      if (state[next] == 1) {
        std::string name = "?";
        for (const auto& [n, id] : symbols) {
          if (id == next) name = n;
        }
        throw SyntaxError(sformat("left recursion through rule '{}'", name));
      }
      if (state[next] == 0) visit(next);
    }
    state[r] = 2;
  };
  for (std::uint32_t r = 0; r < rules.size(); ++r) {
    if (state[r] == 0) visit(r);
  }
}

}  // namespace

Result<GbnfMatcher> GbnfMatcher::parse(std::string_view gbnf, std::string_view root_rule) {
  Parser parser(gbnf);
  try {
    parser.parse_all();
    for (const auto& [name, id] : parser.symbols) {
      if (id >= parser.rules.size() || parser.rules[id].empty())
        throw SyntaxError(sformat("undefined rule identifier '{}'", name));
    }
    check_left_recursion(parser.rules, parser.symbols);
  } catch (const SyntaxError& e) {
    return fail(ErrorCode::kInvalidArgument, e.what());
  }
  const auto root = parser.symbols.find(std::string(root_rule));
  if (root == parser.symbols.end()) return fail(ErrorCode::kInvalidArgument, "grammar has no root rule");
  GbnfMatcher m;
  m.rules_ = std::move(parser.rules);
  m.root_ = root->second;
  return m;
}

void GbnfMatcher::advance(const Stack& stack, std::vector<Stack>& out) const {
  std::vector<Stack> todo{stack};
  std::set<Stack> seen;
  while (!todo.empty()) {
    Stack s = std::move(todo.back());
    todo.pop_back();
    if (!seen.insert(s).second) continue;
    if (s.empty()) {
      out.push_back(std::move(s));
      continue;
    }
    const Element* top = s.back();
    if (top->kind != Kind::kRuleRef) {
      out.push_back(std::move(s));
      continue;
    }
    const Element* alt = rules_[top->value].data();
    while (true) {
      Stack next(s.begin(), s.end() - 1);
      if (!is_end(top + 1)) next.push_back(top + 1);
      if (!is_end(alt)) next.push_back(alt);
      todo.push_back(std::move(next));
      while (!is_end(alt)) ++alt;
      if (alt->kind != Kind::kAlt) break;
      ++alt;
    }
  }
}

std::vector<GbnfMatcher::Stack> GbnfMatcher::initial_stacks() const {
  std::vector<Stack> out;
  const Element* alt = rules_[root_].data();
  while (true) {
    Stack s;
    if (!is_end(alt)) s.push_back(alt);
    advance(s, out);
    while (!is_end(alt)) ++alt;
    if (alt->kind != Kind::kAlt) break;
    ++alt;
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<GbnfMatcher::Stack> GbnfMatcher::step(const std::vector<Stack>& stacks, std::uint32_t cp) const {
  std::vector<Stack> out;
  for (const Stack& s : stacks) {
    if (s.empty()) continue;
    const Element* pos = s.back();
    const bool positive = pos->kind == Kind::kChar || pos->kind == Kind::kCharAny;
    bool found = false;
    do {
      if (pos[1].kind == Kind::kCharRangeUpper) {
        found = found || (pos->value <= cp && cp <= pos[1].value);
        pos += 2;
      } else if (pos->kind == Kind::kCharAny) {
        found = true;
        pos += 1;
      } else {
        found = found || pos->value == cp;
        pos += 1;
      }
    } while (pos->kind == Kind::kCharAlt);
    if (found != positive) continue;
    Stack next(s.begin(), s.end() - 1);
    if (!is_end(pos)) next.push_back(pos);
    advance(next, out);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<GbnfMatcher::Stack> GbnfMatcher::consume(std::string_view text) const {
  std::vector<Stack> stacks = initial_stacks();
  for (std::size_t i = 0; i < text.size();) {
    const auto cp = decode_utf8(text, i);
    if (!cp) return {};
    stacks = step(stacks, cp->first);
    if (stacks.empty()) return {};
    i += cp->second;
  }
  return stacks;
}

bool GbnfMatcher::accepts_prefix(std::string_view text) const { return !consume(text).empty(); }

bool GbnfMatcher::accepts(std::string_view text) const {
  const std::vector<Stack> stacks = consume(text);
  return std::any_of(stacks.begin(), stacks.end(), [](const Stack& s) { return s.empty(); });
}

Result<void> check_gbnf(std::string_view gbnf, std::size_t max_bytes) {
  if (gbnf.size() > max_bytes) {
    return fail(ErrorCode::kInvalidArgument,
                sformat("grammar is {} bytes; at most {} are accepted", gbnf.size(), max_bytes), "invalid_grammar");
  }
  // The parsers recurse once per nesting level: bound it before parsing.
  // Parentheses inside literals count too, which only errs on the safe side.
  int depth = 0;
  for (char c : gbnf) {
    if (c == '(' && ++depth > 64) {
      return fail(ErrorCode::kInvalidArgument, "grammar nests parentheses more than 64 deep", "invalid_grammar");
    }
    if (c == ')' && depth > 0) --depth;
  }
  auto parsed = GbnfMatcher::parse(gbnf, "root");
  if (!parsed)
    return fail(ErrorCode::kInvalidArgument, "invalid grammar: " + parsed.error().message, "invalid_grammar");
  return {};
}

}  // namespace llmd::grammar
