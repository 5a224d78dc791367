// Media files (SPEC §6 Subtitle, extraction): streams listed with
// libavformat, text subtitle streams (subrip, mov_text, ass, webvtt) decoded
// into cues with libavcodec, audio decoded and resampled to 16 kHz mono
// (libswresample) for speech recognition. Bitmap subtitles (PGS, VobSub)
// are refused (kUnprocessable, reason "bitmap_subtitles"). Blocking: run on
// the worker pool.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "tasks/subtitle/subtitle.h"

namespace llmd::subtitle {

struct StreamInfo {
  int index = 0;
  std::string kind;   // "video" | "audio" | "subtitle" | "other"
  std::string codec;  // FFmpeg codec name: "mov_text", "subrip", "hdmv_pgs_subtitle", "aac", ...
  bool text_subtitle = false;
  bool bitmap_subtitle = false;
  std::string language;  // from stream metadata, may be empty
  double duration_seconds = 0;
};

// Lists the streams. Errors: kInvalidArgument (not a media file), kNotFound.
Result<std::vector<StreamInfo>> probe(const std::filesystem::path& file);

// Decodes the chosen (or first) text subtitle stream into cues. Errors:
// kUnprocessable "bitmap_subtitles" (OCR not supported), kNotFound
// "no_subtitle_stream", kInvalidArgument for a bad stream_index.
Result<std::vector<Cue>> extract_subtitles(const std::filesystem::path& file, std::optional<int> stream_index);

// The first audio stream as a 16 kHz mono 16-bit PCM WAV file image.
// Errors: kNotFound "no_audio_stream", kInvalidArgument, kUnprocessable (too long).
Result<std::string> audio_as_wav16k(const std::filesystem::path& file, double max_seconds = 4 * 3600);

// What an FFmpeg subtitle codec carries, from its codec descriptor:
// "subrip", "mov_text", "ass", "ssa", "webvtt" -> kText; "hdmv_pgs_subtitle",
// "dvd_subtitle", "dvb_subtitle" -> kBitmap; anything else -> kNone.
enum class SubtitleCodecKind { kNone, kText, kBitmap };
SubtitleCodecKind subtitle_codec_kind(std::string_view codec_name);

// The plain text of a decoded ASS event ("ReadOrder,Layer,Style,Name,
// MarginL,MarginR,MarginV,Effect,Text", as FFmpeg's subtitle decoders emit):
// override blocks ({\i1}) removed, \N and \n -> newline, \h -> space.
std::string ass_dialogue_text(std::string_view dialogue);

// Resolves `path` (symlinks followed) and accepts it only when it lies inside
// one of `roots` (also resolved) and names a regular file. A relative path is
// taken relative to each root in turn; any `..` component is refused.
// Anything else -> kInvalidArgument "path_not_allowed" without saying what
// exists. Only metadata is touched (realpath, stat), never file contents.
Result<std::filesystem::path> resolve_media_path(const std::string& path, const std::vector<std::string>& roots);

}  // namespace llmd::subtitle
