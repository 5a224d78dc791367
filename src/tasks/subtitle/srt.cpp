// SubRip (.srt): numbered cues "N\nHH:MM:SS,mmm --> HH:MM:SS,mmm\ntext...\n\n".
#include <algorithm>
#include <string>

#include "tasks/subtitle/detail.h"

namespace llmd::subtitle::detail {
namespace {

bool blank(const Line& line) { return trim(line.text).empty(); }

bool is_number(std::string_view s) {
  s = trim(s);
  return !s.empty() && s.size() <= 9 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string_view rtrim(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<Document> parse_srt(std::string_view text) {
  auto lines_or = split_lines(text);
  if (!lines_or) return fail(lines_or.error());
  const std::vector<Line>& lines = *lines_or;
  Document doc;
  doc.source_format = Format::kSrt;
  std::size_t i = 0;
  const std::size_t n = lines.size();
  // A cue starts at "N" followed by a timing, or (tolerated) at a timing alone.
  const auto starts_cue = [&](std::size_t k) {
    return is_timing_line(lines[k].text) ||
           (is_number(lines[k].text) && k + 1 < n && is_timing_line(lines[k + 1].text));
  };
  while (i < n) {
    if (blank(lines[i])) {
      ++i;
      continue;
    }
    const std::size_t cue_no = doc.cues.size() + 1;
    if (cue_no > kMaxCues) return fail(too_many_cues());
    if (is_number(lines[i].text)) {
      ++i;
      if (i >= n || blank(lines[i])) {
        return fail(invalid(lines[i - 1].number, cue_no, "cue number is not followed by a timing"));
      }
    } else if (!is_timing_line(lines[i].text)) {
      return fail(
          invalid(lines[i].number, cue_no,
                  "expected a cue number or a timing, got '" + std::string(trim(lines[i].text).substr(0, 40)) + "'"));
    }
    auto timing = parse_timing(lines[i], cue_no);
    if (!timing) return fail(timing.error());
    LLMD_TRY(check_order(timing->start_ms, timing->end_ms, lines[i].number, cue_no, TimeStyle::kSrt));
    ++i;
    Cue cue;
    cue.start_ms = timing->start_ms;
    cue.end_ms = timing->end_ms;
    // Text runs to the next blank line, or to the next cue when the blank
    // line between two cues is missing.
    while (i < n && !blank(lines[i]) && !starts_cue(i)) {
      if (!cue.text.empty()) cue.text += '\n';
      cue.text += rtrim(lines[i].text);
      ++i;
    }
    doc.cues.push_back(std::move(cue));
  }
  return doc;
}

std::string write_srt(const Document& doc, const WriteOptions& options) {
  std::string out;
  std::size_t index = 1;
  for (const Cue& cue : doc.cues) {
    out += std::to_string(index++);
    out += '\n';
    out += format_time(cue.start_ms, TimeStyle::kSrt) + " --> " + format_time(cue.end_ms, TimeStyle::kSrt) + "\n";
    const std::string text = wrap_text(portable_text(doc, cue), options.max_line_chars);
    std::size_t pos = 0;
    while (pos <= text.size()) {
      std::size_t nl = text.find('\n', pos);
      if (nl == std::string::npos) nl = text.size();
      const std::string_view line(text.data() + pos, nl - pos);
      // A blank line would end the cue early, and SubRip has no escape for
      // an arrow: "-->" in text would read as a timing, so it becomes "->".
      if (!trim(line).empty()) {
        std::string safe(line);
        for (std::size_t at = 0; (at = safe.find("-->", at)) != std::string::npos;) safe.erase(at, 1);
        out += safe;
        out += '\n';
      }
      pos = nl + 1;
    }
    out += '\n';
  }
  return out;
}

}  // namespace llmd::subtitle::detail
