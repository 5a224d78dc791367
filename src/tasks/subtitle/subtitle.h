// Subtitle documents (SPEC §6 Subtitle): cues with millisecond timings, read
// from and written to SRT, WebVTT and ASS/SSA. Reading is tolerant (BOM,
// CRLF, missing final blank line, extra blank lines, `,`/`.` millisecond
// separators, VTT cue settings, ASS styles and override tags kept) and
// detects the text encoding (UTF-8, UTF-16 with BOM, GBK/GB18030);
// impossible timings are errors that name the line and cue. Output is
// always UTF-8. No HTTP, no FFmpeg here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace llmd::subtitle {

enum class Format { kSrt, kVtt, kAss };

// "srt" | "vtt" | "webvtt" | "ass" | "ssa" (case-insensitive); else kInvalidArgument.
Result<Format> parse_format(std::string_view name);
std::string_view format_name(Format format);    // "srt" | "vtt" | "ass"
std::string_view content_type(Format format);   // with "; charset=utf-8"
std::string_view file_extension(Format format); // ".srt" | ".vtt" | ".ass"

struct Cue {
  std::int64_t start_ms = 0;
  std::int64_t end_ms = 0;
  std::string text;    // plain text, lines separated by '\n' (UTF-8)
  // Format-specific extras, kept so a same-format write loses nothing:
  std::string style;   // ASS style name ("Default"); VTT cue settings ("align:start ...")
  std::string raw;     // ASS: the original Text field with override tags; empty otherwise
  std::string id;      // VTT cue identifier, if any
};

struct Document {
  std::vector<Cue> cues;
  Format source_format = Format::kSrt;
  std::string ass_header;  // ASS: [Script Info] + [V4+ Styles] sections as read (empty = write defaults)
};

// Parses `bytes` in any supported encoding. `format` empty = detect from the
// content. Errors: kInvalidArgument (reason "invalid_subtitle") whose message
// names the line and cue, e.g. "line 7 (cue 2): end 00:00:01,000 is before start".
Result<Document> parse(std::string_view bytes, std::optional<Format> format = std::nullopt);

// The text of `bytes` as UTF-8 (BOM removed): UTF-8, UTF-16LE/BE with BOM,
// else GB18030/GBK when that decodes cleanly. Errors: kInvalidArgument.
Result<std::string> to_utf8(std::string_view bytes);

struct WriteOptions {
  int max_line_chars = 0;  // > 0: wrap each cue line at this many characters (CJK-aware)
};

// Serialises `doc` in `format` (UTF-8, LF line ends; ASS uses the kept header or defaults).
std::string write(const Document& doc, Format format, const WriteOptions& options = {});

// Wraps one line of text at `max_chars` display characters: Latin text at
// spaces, CJK text between characters (never inside a word or before
// closing punctuation).
std::string wrap_line(std::string_view line, int max_chars);

// The default characters per line for a language code: 16 for zh/ja/ko, 42 otherwise.
int default_line_chars(std::string_view language);

}  // namespace llmd::subtitle
