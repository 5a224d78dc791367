// WebVTT (.vtt): "WEBVTT" header, optional cue identifiers, cue settings
// after the timing, NOTE/STYLE/REGION blocks, HTML-like entities in text.
#include <array>
#include <string>

#include "tasks/subtitle/detail.h"

namespace llmd::subtitle::detail {
namespace {

bool blank(const Line& line) { return trim(line.text).empty(); }

// "NOTE", "STYLE" or "REGION" alone or followed by white space.
bool is_block_keyword(std::string_view s, std::string_view keyword) {
  return s.starts_with(keyword) &&
         (s.size() == keyword.size() || s[keyword.size()] == ' ' || s[keyword.size()] == '\t');
}

std::string decode_entities(std::string_view s) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 6> kEntities = {{
      {"&amp;", "&"},
      {"&lt;", "<"},
      {"&gt;", ">"},
      {"&nbsp;", "\u00A0"},
      {"&lrm;", "\u200E"},
      {"&rlm;", "\u200F"},
  }};
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '&') {
      bool matched = false;
      for (const auto& [name, value] : kEntities) {
        if (s.substr(i, name.size()) == name) {
          out += value;
          i += name.size() - 1;
          matched = true;
          break;
        }
      }
      if (matched) continue;
    }
    out += s[i];
  }
  return out;
}

// Length of a WebVTT markup tag starting at s[i] ('<'), or 0 when the '<'
// is just text: <i> <b> <u> <c.x> <v Name> <lang en> <ruby> <rt>, their
// closing forms, and timestamp tags <00:01.000>.
std::size_t vtt_tag_length(std::string_view s, std::size_t i) {
  const std::size_t close = s.find('>', i);
  if (close == std::string_view::npos) return 0;
  std::string_view inner = s.substr(i + 1, close - i - 1);
  if (inner.starts_with('/')) inner.remove_prefix(1);
  if (!inner.empty() && inner[0] >= '0' && inner[0] <= '9') return parse_time(inner) ? close - i + 1 : 0;
  std::size_t name_end = 0;
  while (name_end < inner.size() && inner[name_end] != '.' && inner[name_end] != ' ' && inner[name_end] != '\t')
    ++name_end;
  const std::string_view name = inner.substr(0, name_end);
  const std::string_view rest = inner.substr(name_end);
  if (rest.find("--") != std::string_view::npos || rest.find('<') != std::string_view::npos) return 0;
  const bool closing = s[i + 1] == '/';
  // Classes (".x") on any tag; an annotation after a space only on <v> and <lang>.
  const bool annotated = !rest.empty() && rest[0] != '.';
  if (closing && !rest.empty()) return 0;
  for (std::string_view known : {"i", "b", "u", "c", "v", "lang", "ruby", "rt"}) {
    if (name != known) continue;
    if (annotated && known != "v" && known != "lang") return 0;
    if (!annotated && rest.find_first_of(" \t") != std::string_view::npos) return 0;
    return close - i + 1;
  }
  return 0;
}

// <font ...> and </font> are SubRip-only markup; WebVTT would show them.
std::size_t font_tag_length(std::string_view s, std::size_t i) {
  if (!starts_with_ci(s.substr(i), "<font") && !starts_with_ci(s.substr(i), "</font")) return 0;
  const std::size_t close = s.find('>', i);
  return close == std::string_view::npos ? 0 : close - i + 1;
}

}  // namespace

std::string strip_vtt_markup(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<') {
      if (const std::size_t n = vtt_tag_length(s, i); n > 0) {
        const std::string_view tag = s.substr(i, n);
        if (tag == "<i>" || tag == "</i>" || tag == "<b>" || tag == "</b>" || tag == "<u>" || tag == "</u>") {
          out += tag;
        }
        i += n - 1;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

namespace {

std::string encode_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    // "{\an8}"-style overrides, common in SubRip files, mean nothing in WebVTT.
    if (c == '{' && i + 1 < s.size() && s[i + 1] == '\\') {
      if (const std::size_t close = s.find('}', i); close != std::string_view::npos) {
        i = close;
        continue;
      }
    }
    if (c == '<') {
      if (const std::size_t n = vtt_tag_length(s, i); n > 0) {
        out += s.substr(i, n);
        i += n - 1;
        continue;
      }
      if (const std::size_t n = font_tag_length(s, i); n > 0) {
        i += n - 1;
        continue;
      }
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else if (c == '&') {
      out += "&amp;";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

Result<Document> parse_vtt(std::string_view text) {
  auto lines_or = split_lines(text);
  if (!lines_or) return fail(lines_or.error());
  const std::vector<Line>& lines = *lines_or;
  const std::size_t n = lines.size();
  std::size_t i = 0;
  while (i < n && blank(lines[i])) ++i;  // tolerated: blank lines before the signature
  if (i == n || !lines[i].text.starts_with("WEBVTT") ||
      (lines[i].text.size() > 6 && lines[i].text[6] != ' ' && lines[i].text[6] != '\t')) {
    return fail(invalid(i < n ? lines[i].number : 1, 0, "a WebVTT file must start with 'WEBVTT'"));
  }
  Document doc;
  doc.source_format = Format::kVtt;
  // The header block (Kind:, Language:, ...) runs to the first blank line.
  ++i;
  while (i < n && !blank(lines[i]) && !is_timing_line(lines[i].text)) ++i;
  while (i < n) {
    if (blank(lines[i])) {
      ++i;
      continue;
    }
    const std::string_view first = trim(lines[i].text);
    if (is_block_keyword(first, "NOTE") || is_block_keyword(first, "STYLE") || is_block_keyword(first, "REGION")) {
      while (i < n && !blank(lines[i])) ++i;
      continue;
    }
    const std::size_t cue_no = doc.cues.size() + 1;
    if (cue_no > kMaxCues) return fail(too_many_cues());
    Cue cue;
    if (!is_timing_line(first)) {
      cue.id = std::string(first);
      ++i;
      if (i >= n || blank(lines[i])) {
        return fail(invalid(lines[i - 1].number, cue_no,
                            "expected a timing 'start --> end' after '" + std::string(first.substr(0, 40)) + "'"));
      }
    }
    auto timing = parse_timing(lines[i], cue_no);
    if (!timing) return fail(timing.error());
    LLMD_TRY(check_order(timing->start_ms, timing->end_ms, lines[i].number, cue_no, TimeStyle::kVtt));
    cue.start_ms = timing->start_ms;
    cue.end_ms = timing->end_ms;
    cue.style = std::string(timing->settings);
    ++i;
    // A line with "-->" cannot be cue text: it starts the next cue (the
    // blank line before it is missing).
    while (i < n && !blank(lines[i]) && !is_timing_line(lines[i].text)) {
      if (!cue.text.empty()) cue.text += '\n';
      std::string_view line = lines[i].text;
      while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
      cue.text += decode_entities(line);
      ++i;
    }
    doc.cues.push_back(std::move(cue));
  }
  return doc;
}

std::string write_vtt(const Document& doc, const WriteOptions& options) {
  std::string out = "WEBVTT\n\n";
  const bool own_settings = doc.source_format == Format::kVtt;
  for (const Cue& cue : doc.cues) {
    // An identifier that would read as something else is left out.
    const std::string_view id = trim(cue.id);
    if (!id.empty() && id.find("-->") == std::string_view::npos && id.find('\n') == std::string_view::npos &&
        id.find('\r') == std::string_view::npos && !is_block_keyword(id, "NOTE") && !is_block_keyword(id, "STYLE") &&
        !is_block_keyword(id, "REGION")) {
      out += id;
      out += '\n';
    }
    out += format_time(cue.start_ms, TimeStyle::kVtt) + " --> " + format_time(cue.end_ms, TimeStyle::kVtt);
    if (own_settings && !cue.style.empty() && cue.style.find_first_of("\r\n") == std::string::npos) {
      out += ' ';
      out += cue.style;
    }
    out += '\n';
    const std::string text = wrap_text(tagged_text(cue), options.max_line_chars);
    std::size_t pos = 0;
    while (pos <= text.size()) {
      std::size_t nl = text.find('\n', pos);
      if (nl == std::string::npos) nl = text.size();
      const std::string_view line(text.data() + pos, nl - pos);
      if (!trim(line).empty()) {
        out += encode_text(line);
        out += '\n';
      }
      pos = nl + 1;
    }
    out += '\n';
  }
  return out;
}

}  // namespace llmd::subtitle::detail
