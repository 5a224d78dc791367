// Test media made with the Debian `ffmpeg` command: a 5-second colour video
// with the subtitles of kTestSrt muxed in various ways, one without
// subtitles, an audio-only sine, and a PGS (bitmap) subtitle stream.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace llmd::testing {

// Three cues (0.5-1.8 s, 2.0-3.25 s with two lines, 3.5-4.9 s in italics).
inline constexpr const char* kTestSrt =
    "1\n00:00:00,500 --> 00:00:01,800\nHello, world\n\n"
    "2\n00:00:02,000 --> 00:00:03,250\nSecond cue\nwith two lines\n\n"
    "3\n00:00:03,500 --> 00:00:04,900\n<i>Third</i> cue\n\n";

enum class TestMedia {
  kMp4MovText,      // video + sine audio + mov_text subtitles (MP4)
  kMkvSubrip,       // video + sine audio (PCM) + subrip subtitles (Matroska)
  kMkvAss,          // video + ass subtitles (Matroska)
  kMkvWebvtt,       // video + webvtt subtitles (Matroska)
  kMp4NoSubtitles,  // video + sine audio, no subtitles
  kAudioOnly,       // 5 s 440 Hz sine, AAC in M4A, 44.1 kHz stereo
  kPgsSup,          // two HDMV PGS display sets (a raw .sup stream; bitmap subtitles)
  kMkvPgs,          // video + that PGS stream (Matroska)
};

// Creates the file in `dir` (named after the kind) and returns its path;
// fails the current test (ADD_FAILURE) and returns {} if ffmpeg fails.
std::filesystem::path make_test_media(const std::filesystem::path& dir, TestMedia kind);

// Runs `/usr/bin/ffmpeg -y -loglevel error <args>` (Debian package ffmpeg) in
// `dir`; true on exit 0, else fails the current test with ffmpeg's output.
bool run_ffmpeg(const std::filesystem::path& dir, const std::vector<std::string>& args);

}  // namespace llmd::testing
