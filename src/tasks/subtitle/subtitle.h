// Subtitle documents (SPEC §6 Subtitle): cues with millisecond timings, read
// from and written to SRT, WebVTT and ASS/SSA. Reading is tolerant (BOM,
// CRLF, missing final blank line, extra blank lines, `,`/`.` millisecond
// separators, VTT cue settings, ASS styles and override tags kept) and
// detects the text encoding (UTF-8, UTF-16 with BOM, GBK/GB18030);
// impossible timings are errors that name the line and cue. Output is
// always UTF-8. No HTTP, no FFmpeg here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace llmd::subtitle {

enum class Format { kSrt, kVtt, kAss };

// Bounds on what parse() accepts; past them it fails (never truncates):
// input larger than kMaxInputBytes or with more than kMaxCues cues is
// kTooLarge (reason "subtitle_too_large"); a line longer than kMaxLineBytes
// is invalid_subtitle naming the line. Timestamps must be below 100 hours.
inline constexpr std::size_t kMaxInputBytes = 16 * 1024 * 1024;
inline constexpr std::size_t kMaxCues = 20'000;
inline constexpr std::size_t kMaxLineBytes = 4096;

// "srt" | "vtt" | "webvtt" | "ass" | "ssa" (case-insensitive); else kInvalidArgument.
Result<Format> parse_format(std::string_view name);
std::string_view format_name(Format format);     // "srt" | "vtt" | "ass"
std::string_view content_type(Format format);    // with "; charset=utf-8"
std::string_view file_extension(Format format);  // ".srt" | ".vtt" | ".ass"

struct Cue {
  std::int64_t start_ms = 0;
  std::int64_t end_ms = 0;
  // The cue text, lines separated by '\n' (UTF-8). SRT/VTT markup such as
  // <i>...</i> stays in it (VTT entities are decoded: "&amp;" reads as "&");
  // for ASS it is the Text field without override blocks, \N and \n as
  // '\n' and \h as U+00A0.
  std::string text;
  // Format-specific extras, kept so a same-format write loses nothing:
  std::string style;       // ASS style name ("Default"); VTT cue settings ("align:start ...")
  std::string raw;         // ASS: the original Text field with override tags; empty otherwise
  std::string id;          // VTT cue identifier, if any
  std::string ass_fields;  // ASS: "Layer,Name,MarginL,MarginR,MarginV,Effect" as read (SSA: Marked first)
};

struct Document {
  std::vector<Cue> cues;
  Format source_format = Format::kSrt;
  std::string ass_header;  // ASS: [Script Info] + [V4+ Styles] sections as read (empty = write defaults)
};

// Parses `bytes` in any supported encoding. `format` empty = detect from the
// content ("WEBVTT" -> VTT, a leading "[Section]" -> ASS, a "-->" -> SRT).
// Errors: kInvalidArgument (reason "invalid_subtitle") whose message names
// the line and cue, e.g. "line 7 (cue 2): end 00:00:01,000 is before start
// 00:00:05,000" or "line 2 (cue 1): start: bad timestamp '99:99:99,999':
// minutes must be 00-59"; also for a file without cues. Encoding errors as
// to_utf8; size limits as kTooLarge (see kMaxInputBytes).
Result<Document> parse(std::string_view bytes, std::optional<Format> format = std::nullopt);

// The text of `bytes` as UTF-8 (BOM removed): UTF-8, UTF-16LE/BE with BOM,
// else GB18030/GBK when iconv decodes every byte and either uchardet says
// GB18030 or (uchardet being unsure, as it is on short files) the bytes are
// GB2312 pairs standing in runs the way Chinese text does.
// Anything else (Latin-1, UTF-16 without BOM, broken bytes) is an error,
// never a guess: kInvalidArgument, reason "invalid_encoding".
Result<std::string> to_utf8(std::string_view bytes);

struct WriteOptions {
  int max_line_chars = 0;  // > 0: wrap each cue line at this many characters (CJK-aware)
};

// Serialises `doc` in `format` (UTF-8, LF line ends; ASS uses the kept header
// or defaults). Timings: SRT and VTT keep milliseconds exactly; ASS has
// centiseconds, so each timestamp is rounded to the nearest centisecond,
// halves up (1005 ms -> 0:00:01.01). SRT -> VTT -> ASS -> SRT is therefore
// exact for timings that are multiples of 10 ms (and for plain text and
// <i>/<b>/<u>, which become {\i1}... in ASS). Lossy by necessity: "-->" in
// SRT text is written "->"; WebVTT-only markup (<v Name>, <c.x>) is dropped
// in SRT/ASS; override blocks ({\an8}) are dropped in VTT, and an ASS
// source's overrides other than italic/bold/underline/strike-out in SRT;
// VTT settings and ASS styles only survive a write in their own format.
std::string write(const Document& doc, Format format, const WriteOptions& options = {});

// Wraps one line of text at `max_chars` characters (code points; markup such
// as <i> counts zero): Latin text at spaces, CJK text between characters,
// never inside a Latin word, never before closing punctuation ("，。！？)")
// or after opening punctuation. The lines are balanced (as many as needed
// at `max_chars`, each about equally long). A word longer than the limit
// stays whole on its own line. A line that fits is returned as is.
std::string wrap_line(std::string_view line, int max_chars);

// The default characters per line for a language code: 16 for zh/ja/ko, 42 otherwise.
int default_line_chars(std::string_view language);

}  // namespace llmd::subtitle
