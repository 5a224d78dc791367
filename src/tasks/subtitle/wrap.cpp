// CJK-aware line wrapping. Text is cut into units that must stay together
// (a Latin word, one CJK character with any closing punctuation after it
// and opening punctuation before it); lines break between units, Latin
// ones only where there was a space. Lines are balanced: the text is laid
// out in as few lines as the limit allows, each about equally long.
// Markup (<i>, {\an8}) counts as zero width and sticks to its neighbour.
#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "tasks/subtitle/detail.h"
#include "tasks/subtitle/subtitle.h"

namespace llmd::subtitle {
namespace {

bool is_cjk(char32_t c) {
  return (c >= 0x1100 && c <= 0x115F) || (c >= 0x2E80 && c <= 0x303E) || (c >= 0x3041 && c <= 0x33FF) ||
         (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xA000 && c <= 0xA4CF) ||
         (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0xFE30 && c <= 0xFE4F) ||
         (c >= 0xFF00 && c <= 0xFF60) || (c >= 0xFFE0 && c <= 0xFFE6) || (c >= 0x20000 && c <= 0x3FFFD);
}

// Never at the start of a line.
bool is_closing(char32_t c) {
  static constexpr std::u32string_view kClosing =
      U",.;:!?)]}%\u2019\u201D\u2026\u2014\u3001\u3002\u3009\u300B\u300D\u300F\u3011\u3015\u3017\u30FC"
      U"\uFF01\uFF09\uFF0C\uFF0E\uFF1A\uFF1B\uFF1F\uFF3D\uFF5D\uFF5E";
  return kClosing.find(c) != std::u32string_view::npos;
}

// Never at the end of a line.
bool is_opening(char32_t c) {
  static constexpr std::u32string_view kOpening =
      U"([{\u2018\u201C\u3008\u300A\u300C\u300E\u3010\u3014\u3016\uFF08\uFF3B\uFF5B";
  return kOpening.find(c) != std::u32string_view::npos;
}

bool is_space(char32_t c) { return c == U' ' || c == U'\t' || c == 0x3000; }

struct Unit {
  std::string text;
  int width = 0;
  bool space_before = false;  // a break here drops one space
};

// Length of markup at s[i]: <...> or {...}, or 0.
std::size_t markup_length(std::string_view s, std::size_t i) {
  const char open = s[i];
  if (open != '<' && open != '{') return 0;
  const char close_char = open == '<' ? '>' : '}';
  const std::size_t close = s.find(close_char, i);
  if (close == std::string_view::npos || close - i > 64) return 0;
  if (open == '<') {
    // Only tag-like: <i>, </i>, <font ...>, <c.x>, <v Name>.
    const char c = i + 1 < s.size() ? s[i + 1] : ' ';
    if (!(std::isalpha(static_cast<unsigned char>(c)) || c == '/')) return 0;
  }
  return close - i + 1;
}

std::vector<Unit> split_units(std::string_view line) {
  std::vector<Unit> units;
  bool pending_space = false;
  bool glue_next = false;  // the previous unit ends with opening punctuation or markup
  bool in_latin_word = false;
  std::size_t i = 0;
  while (i < line.size()) {
    if (const std::size_t m = markup_length(line, i); m > 0) {
      // Markup sticks to the following text (or the previous if at the end).
      if (units.empty() || pending_space || !in_latin_word) {
        units.push_back({std::string(line.substr(i, m)), 0, pending_space && !units.empty()});
        pending_space = false;
        glue_next = true;
        in_latin_word = false;
      } else {
        units.back().text += line.substr(i, m);
      }
      i += m;
      continue;
    }
    const std::size_t at = i;
    const char32_t c = detail::next_code_point(line, i);
    const std::string_view bytes = line.substr(at, i - at);
    if (is_space(c)) {
      pending_space = true;
      in_latin_word = false;
      continue;
    }
    const bool cjk = is_cjk(c);
    const bool attach = !units.empty() && !pending_space && (glue_next || is_closing(c) || (!cjk && in_latin_word));
    if (attach) {
      units.back().text += bytes;
      units.back().width += 1;
    } else {
      units.push_back({std::string(bytes), 1, pending_space && !units.empty()});
    }
    glue_next = is_opening(c);
    in_latin_word = !cjk && !is_closing(c);
    pending_space = false;
  }
  return units;
}

// Greedy fill at `width`; returns the lines as unit index ranges [begin, end).
std::vector<std::pair<std::size_t, std::size_t>> fill(const std::vector<Unit>& units, int width) {
  std::vector<std::pair<std::size_t, std::size_t>> lines;
  std::size_t begin = 0;
  int used = 0;
  for (std::size_t k = 0; k < units.size(); ++k) {
    const int add = (k > begin && units[k].space_before ? 1 : 0) + units[k].width;
    if (k > begin && used + add > width) {
      lines.emplace_back(begin, k);
      begin = k;
      used = units[k].width;
    } else {
      used += add;
    }
  }
  if (begin < units.size()) lines.emplace_back(begin, units.size());
  return lines;
}

}  // namespace

std::string wrap_line(std::string_view line, int max_chars) {
  const std::vector<Unit> units = split_units(line);
  if (units.empty() || max_chars <= 0) return std::string(detail::trim(line));
  int total = 0;
  for (std::size_t k = 0; k < units.size(); ++k) total += units[k].width + (k > 0 && units[k].space_before ? 1 : 0);
  if (total <= max_chars) return std::string(detail::trim(line));
  auto lines = fill(units, max_chars);
  if (lines.size() > 1) {
    // Balance: the narrowest width that still needs no more lines.
    for (int width = (total + static_cast<int>(lines.size()) - 1) / static_cast<int>(lines.size()); width < max_chars;
         ++width) {
      auto balanced = fill(units, width);
      if (balanced.size() <= lines.size()) {
        lines = std::move(balanced);
        break;
      }
    }
  }
  std::string out;
  for (const auto& [begin, end] : lines) {
    if (!out.empty()) out += '\n';
    for (std::size_t k = begin; k < end; ++k) {
      if (k > begin && units[k].space_before) out += ' ';
      out += units[k].text;
    }
  }
  return out;
}

int default_line_chars(std::string_view language) {
  std::string primary;
  for (char c : language) {
    if (c == '-' || c == '_') break;
    primary += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  for (std::string_view cjk : {"zh", "ja", "ko", "yue", "cmn", "wuu", "chinese", "japanese", "korean"}) {
    if (primary == cjk) return 16;
  }
  return 42;
}

}  // namespace llmd::subtitle
