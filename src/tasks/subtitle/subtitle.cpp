// Format names, parse/write dispatch and the pieces every reader shares:
// line splitting, timestamps, error messages.
#include "tasks/subtitle/subtitle.h"

#include <algorithm>
#include <cctype>
#include <string>

#include "tasks/subtitle/detail.h"

namespace llmd::subtitle {
namespace detail {
namespace {

constexpr std::int64_t kMaxHours = 99;

std::string quoted(std::string_view s) {
  // Keep messages short: a garbage line may be up to kMaxLineBytes long.
  constexpr std::size_t kShown = 40;
  std::string out = "'";
  if (s.size() <= kShown) {
    out += s;
  } else {
    std::size_t cut = kShown;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // not inside a code point
    out += s.substr(0, cut);
    out += "...";
  }
  out += "'";
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::int64_t to_int(std::string_view s) {
  std::int64_t v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

}  // namespace

Result<std::vector<Line>> split_lines(std::string_view text) {
  std::vector<Line> lines;
  std::size_t number = 1;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find_first_of("\r\n", pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    if (line.size() > kMaxLineBytes) {
      return fail(invalid(number, 0, "line is longer than " + std::to_string(kMaxLineBytes) + " bytes"));
    }
    lines.push_back({number++, line});
    if (end == text.size()) break;
    pos = end + ((text[end] == '\r' && end + 1 < text.size() && text[end + 1] == '\n') ? 2 : 1);
  }
  return lines;
}

Error invalid(std::size_t line, std::size_t cue, std::string_view what) {
  std::string msg = "line " + std::to_string(line);
  if (cue > 0) msg += " (cue " + std::to_string(cue) + ")";
  msg += ": ";
  msg += what;
  return Error(ErrorCode::kInvalidArgument, std::move(msg), "invalid_subtitle");
}

Error too_many_cues() {
  return Error(ErrorCode::kTooLarge, "the subtitle file has more than " + std::to_string(kMaxCues) + " cues",
               "subtitle_too_large");
}

std::string_view trim(std::string_view s) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\f' || c == '\v'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  }
  return true;
}

Result<std::int64_t> parse_time(std::string_view s) {
  const auto bad = [&](std::string_view why) {
    return fail(ErrorCode::kInvalidArgument, "bad timestamp " + quoted(s) + ": " + std::string(why));
  };
  // [h:]mm:ss[(,|.)fff]
  std::vector<std::string_view> parts;
  std::size_t pos = 0;
  while (true) {
    const std::size_t colon = s.find(':', pos);
    parts.push_back(s.substr(pos, colon == std::string_view::npos ? std::string_view::npos : colon - pos));
    if (colon == std::string_view::npos) break;
    pos = colon + 1;
  }
  if (parts.size() < 2 || parts.size() > 3) return bad("expected [hours:]minutes:seconds.milliseconds");
  std::string_view sec = parts.back();
  std::string_view frac;
  if (const std::size_t dot = sec.find_first_of(",."); dot != std::string_view::npos) {
    frac = sec.substr(dot + 1);
    sec = sec.substr(0, dot);
    if (!all_digits(frac) || frac.size() > 3) return bad("the fraction must be 1 to 3 digits");
  }
  const std::string_view hours = parts.size() == 3 ? parts[0] : std::string_view("0");
  const std::string_view minutes = parts[parts.size() - 2];
  if (!all_digits(hours) || hours.size() > 3 || !all_digits(minutes) || minutes.size() > 2 || !all_digits(sec) ||
      sec.size() > 2) {
    return bad("expected [hours:]minutes:seconds.milliseconds");
  }
  const std::int64_t h = to_int(hours), m = to_int(minutes), sc = to_int(sec);
  if (h > kMaxHours) return bad("hours must be at most 99");
  if (m >= 60) return bad("minutes must be 00-59");
  if (sc >= 60) return bad("seconds must be 00-59");
  std::int64_t ms = 0;
  if (!frac.empty()) {
    ms = to_int(frac);
    for (std::size_t i = frac.size(); i < 3; ++i) ms *= 10;  // ".5" is half a second
  }
  return ((h * 60 + m) * 60 + sc) * 1000 + ms;
}

std::string format_time(std::int64_t ms, TimeStyle style) {
  if (ms < 0) ms = 0;
  constexpr std::int64_t kLast = (kMaxHours + 1) * 3'600'000 - 1;  // 99:59:59.999
  if (ms > kLast) ms = kLast;
  if (style == TimeStyle::kAss) ms = std::min((ms + 5) / 10 * 10, kLast / 10 * 10);  // nearest cs, halves up
  const std::int64_t h = ms / 3'600'000, m = ms / 60'000 % 60, s = ms / 1000 % 60, f = ms % 1000;
  const auto two = [](std::int64_t v) { return std::string(v < 10 ? "0" : "") + std::to_string(v); };
  const auto three = [](std::int64_t v) {
    return std::string(v < 100 ? "0" : "") + std::string(v < 10 ? "0" : "") + std::to_string(v);
  };
  switch (style) {
    case TimeStyle::kSrt: return two(h) + ":" + two(m) + ":" + two(s) + "," + three(f);
    case TimeStyle::kVtt: return two(h) + ":" + two(m) + ":" + two(s) + "." + three(f);
    case TimeStyle::kAss: return std::to_string(h) + ":" + two(m) + ":" + two(s) + "." + two(f / 10);
  }
  return {};
}

bool is_timing_line(std::string_view s) { return s.find("-->") != std::string_view::npos; }

Result<Timing> parse_timing(const Line& line, std::size_t cue) {
  const std::string_view text = trim(line.text);
  const std::size_t arrow = text.find("-->");
  if (arrow == std::string_view::npos) {
    return fail(invalid(line.number, cue, "expected a timing 'start --> end', got " + quoted(text)));
  }
  const std::string_view left = trim(text.substr(0, arrow));
  std::string_view right = trim(text.substr(arrow + 3));
  const std::size_t space = right.find_first_of(" \t");
  const std::string_view end_text = right.substr(0, space);
  const std::string_view settings = space == std::string_view::npos ? std::string_view() : trim(right.substr(space));
  auto start = parse_time(left);
  if (!start) return fail(invalid(line.number, cue, "start: " + start.error().message));
  auto end = parse_time(end_text);
  if (!end) return fail(invalid(line.number, cue, "end: " + end.error().message));
  return Timing{*start, *end, settings};
}

Result<void> check_order(std::int64_t start_ms, std::int64_t end_ms, std::size_t line, std::size_t cue,
                         TimeStyle style) {
  if (end_ms < start_ms) {
    return fail(
        invalid(line, cue, "end " + format_time(end_ms, style) + " is before start " + format_time(start_ms, style)));
  }
  return {};
}

std::string wrap_text(std::string_view raw, int max_chars) {
  // Any CR (alone or before LF) is a line break: a stray CR written out
  // would read back as a line end, and "\r\r" as a blank line ending the cue.
  std::string normalised;
  normalised.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\r') {
      normalised += raw[i];
    } else if (i + 1 >= raw.size() || raw[i + 1] != '\n') {
      normalised += '\n';
    }
  }
  const std::string_view text = normalised;
  if (max_chars <= 0) return normalised;
  std::string out;
  std::size_t pos = 0;
  while (true) {
    const std::size_t nl = text.find('\n', pos);
    if (!out.empty() || pos > 0) out += '\n';
    out += wrap_line(text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos), max_chars);
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return out;
}

std::string tagged_text(const Cue& cue) {
  if (!cue.raw.empty() && ass_plain(cue.raw) == cue.text) return ass_tagged(cue.raw);
  return cue.text;
}

std::string portable_text(const Document& doc, const Cue& cue) {
  return doc.source_format == Format::kVtt ? strip_vtt_markup(cue.text) : tagged_text(cue);
}

}  // namespace detail

Result<Format> parse_format(std::string_view name) {
  std::string lower;
  for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "srt") return Format::kSrt;
  if (lower == "vtt" || lower == "webvtt") return Format::kVtt;
  if (lower == "ass" || lower == "ssa") return Format::kAss;
  return fail(ErrorCode::kInvalidArgument,
              "unknown subtitle format '" + std::string(name.substr(0, 20)) + "' (use srt, vtt or ass)");
}

std::string_view format_name(Format format) {
  switch (format) {
    case Format::kSrt: return "srt";
    case Format::kVtt: return "vtt";
    case Format::kAss: return "ass";
  }
  return "srt";
}

std::string_view content_type(Format format) {
  switch (format) {
    case Format::kSrt: return "application/x-subrip; charset=utf-8";
    case Format::kVtt: return "text/vtt; charset=utf-8";
    case Format::kAss: return "text/x-ssa; charset=utf-8";
  }
  return "text/plain; charset=utf-8";
}

std::string_view file_extension(Format format) {
  switch (format) {
    case Format::kSrt: return ".srt";
    case Format::kVtt: return ".vtt";
    case Format::kAss: return ".ass";
  }
  return ".srt";
}

namespace {

// WebVTT starts with "WEBVTT"; ASS with a [Section] header; SRT has a
// timing arrow early on.
Result<Format> detect_format(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && (text[i] == '\n' || text[i] == '\r' || text[i] == ' ' || text[i] == '\t')) ++i;
  const std::string_view rest = text.substr(i);
  if (rest.starts_with("WEBVTT")) return Format::kVtt;
  if (rest.starts_with("[")) return Format::kAss;
  if (rest.substr(0, 4096).find("-->") != std::string_view::npos) return Format::kSrt;
  return fail(ErrorCode::kInvalidArgument, "not a recognised subtitle file (SRT, WebVTT or ASS/SSA)",
              "invalid_subtitle");
}

}  // namespace

Result<Document> parse(std::string_view bytes, std::optional<Format> format) {
  if (bytes.size() > kMaxInputBytes) {
    return fail(ErrorCode::kTooLarge,
                "the subtitle file is " + std::to_string(bytes.size()) + " bytes; the limit is " +
                    std::to_string(kMaxInputBytes),
                "subtitle_too_large");
  }
  auto text = to_utf8(bytes);
  if (!text) return fail(text.error());
  Format f;
  if (format) {
    f = *format;
  } else {
    auto detected = detect_format(*text);
    if (!detected) return fail(detected.error());
    f = *detected;
  }
  Result<Document> doc = [&] {
    switch (f) {
      case Format::kVtt: return detail::parse_vtt(*text);
      case Format::kAss: return detail::parse_ass(*text);
      case Format::kSrt: break;
    }
    return detail::parse_srt(*text);
  }();
  if (!doc) return doc;
  if (doc->cues.empty()) {
    return fail(ErrorCode::kInvalidArgument, "the subtitle file has no cues", "invalid_subtitle");
  }
  doc->source_format = f;
  return doc;
}

std::string write(const Document& doc, Format format, const WriteOptions& options) {
  switch (format) {
    case Format::kVtt: return detail::write_vtt(doc, options);
    case Format::kAss: return detail::write_ass(doc, options);
    case Format::kSrt: break;
  }
  return detail::write_srt(doc, options);
}

}  // namespace llmd::subtitle
