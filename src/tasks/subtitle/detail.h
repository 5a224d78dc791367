// Internals shared by the subtitle readers and writers (not a public API).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "tasks/subtitle/subtitle.h"

namespace llmd::subtitle::detail {

// One line of the input with its 1-based line number (line ends removed).
struct Line {
  std::size_t number = 0;
  std::string_view text;
};

// Splits UTF-8 text at LF, CRLF or a lone CR. Errors (invalid_subtitle) when
// a line is longer than kMaxLineBytes.
Result<std::vector<Line>> split_lines(std::string_view text);

// "line N (cue M): what" / "line N: what" (cue 0 = not inside a cue).
Error invalid(std::size_t line, std::size_t cue, std::string_view what);

// Cue settings for the caller: the most cues and the longest line accepted.
Error too_many_cues();

std::string_view trim(std::string_view s);
bool starts_with_ci(std::string_view s, std::string_view prefix);

// How a timestamp is spelled: SRT "HH:MM:SS,mmm", VTT "[HH:]MM:SS.mmm",
// ASS "H:MM:SS.cc". Readers accept ',' or '.', 1-3 fraction digits (read as
// a decimal fraction of a second) and optional hours in all three.
enum class TimeStyle { kSrt, kVtt, kAss };

// Parses one timestamp; the error text says what is wrong (no line prefix).
Result<std::int64_t> parse_time(std::string_view s);
std::string format_time(std::int64_t ms, TimeStyle style);

// Parses "start --> end[ settings]"; `settings` receives what follows end.
struct Timing {
  std::int64_t start_ms = 0;
  std::int64_t end_ms = 0;
  std::string_view settings;
};
// Errors name the line and cue. `is_timing_line` only looks for the arrow.
Result<Timing> parse_timing(const Line& line, std::size_t cue);
bool is_timing_line(std::string_view s);

// Checks start <= end (and a sane upper bound) for one cue.
Result<void> check_order(std::int64_t start_ms, std::int64_t end_ms, std::size_t line, std::size_t cue,
                         TimeStyle style);

Result<Document> parse_srt(std::string_view text);
Result<Document> parse_vtt(std::string_view text);
Result<Document> parse_ass(std::string_view text);

std::string write_srt(const Document& doc, const WriteOptions& options);
std::string write_vtt(const Document& doc, const WriteOptions& options);
std::string write_ass(const Document& doc, const WriteOptions& options);

// ASS text field helpers. `ass_plain` strips override blocks and turns \N,
// \n into newlines and \h into U+00A0; `ass_tagged` does the same but keeps
// italic/bold/underline/strike-out as <i>/<b>/<u>/<s>; `ass_from_text` is
// the inverse of ass_tagged for text from SRT/VTT.
std::string ass_plain(std::string_view raw);
std::string ass_tagged(std::string_view raw);
std::string ass_from_text(std::string_view text);

// The cue's text for an SRT/VTT writer: ASS cues whose raw field still
// matches `text` contribute their <i>/<b>/<u>/<s> styling.
std::string tagged_text(const Cue& cue);

// The text an SRT or ASS writer starts from: tagged_text without WebVTT-only
// markup when the document came from WebVTT.
std::string portable_text(const Document& doc, const Cue& cue);

// WebVTT-only markup (<v Name>, <c.x>, <lang>, <ruby>, timestamps) removed,
// <i>/<b>/<u> kept: for writing VTT cue text as SRT or ASS.
std::string strip_vtt_markup(std::string_view text);

// Applies WriteOptions wrapping to every line of `text`.
std::string wrap_text(std::string_view text, int max_chars);

// Decodes one UTF-8 code point at `i` (advancing it); invalid bytes yield
// U+FFFD and advance by one.
char32_t next_code_point(std::string_view s, std::size_t& i);
bool valid_utf8(std::string_view s);

}  // namespace llmd::subtitle::detail
