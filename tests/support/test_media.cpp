#include "support/test_media.h"

#include <gtest/gtest.h>

#include <chrono>

#include "support/process.h"
#include "support/test_support.h"

namespace llmd::testing {
namespace {

// A PGS segment: "PG", PTS and DTS (90 kHz), type, payload size, payload.
std::string pgs_segment(std::uint32_t pts, unsigned char type, const std::string& payload) {
  std::string s = "PG";
  for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>((pts >> (8 * i)) & 0xff));
  s.append(4, '\0');  // DTS
  s.push_back(static_cast<char>(type));
  s.push_back(static_cast<char>((payload.size() >> 8) & 0xff));
  s.push_back(static_cast<char>(payload.size() & 0xff));
  return s + payload;
}

// A presentation composition segment (1920x1080, epoch start, no objects)
// followed by an end-of-display-set segment: a valid, empty PGS display set.
std::string pgs_display_set(std::uint32_t pts, unsigned short composition) {
  std::string pcs;
  pcs += std::string("\x07\x80\x04\x38", 4);  // width 1920, height 1080
  pcs.push_back(0x10);                        // frame rate code
  pcs.push_back(static_cast<char>(composition >> 8));
  pcs.push_back(static_cast<char>(composition & 0xff));
  pcs.push_back(static_cast<char>(0x80));  // composition state: epoch start
  pcs.push_back(0);                        // palette update flag
  pcs.push_back(0);                        // palette id
  pcs.push_back(0);                        // number of composition objects
  return pgs_segment(pts, 0x16, pcs) + pgs_segment(pts, 0x80, "");
}

}  // namespace

bool run_ffmpeg(const std::filesystem::path& dir, const std::vector<std::string>& args) {
  std::vector<std::string> argv{"/usr/bin/ffmpeg", "-nostdin", "-y", "-loglevel", "error"};
  argv.insert(argv.end(), args.begin(), args.end());
  Process p(argv, dir, dir / "ffmpeg.log");
  const auto code = p.wait(std::chrono::seconds(60));
  if (code != 0) ADD_FAILURE() << "ffmpeg failed: " << p.log();
  return code == 0;
}

std::filesystem::path make_test_media(const std::filesystem::path& dir, TestMedia kind) {
  write_file(dir / "cues.srt", kTestSrt);
  const std::vector<std::string> video{"-f", "lavfi", "-i", "color=c=blue:s=64x48:r=10:d=5"};
  const std::vector<std::string> sine{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=5"};
  auto join = [](std::initializer_list<std::vector<std::string>> parts) {
    std::vector<std::string> all;
    for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
    return all;
  };
  std::filesystem::path out;
  std::vector<std::string> args;
  switch (kind) {
    case TestMedia::kMp4MovText:
      out = dir / "movtext.mp4";
      args = join({video,
                   sine,
                   {"-i", "cues.srt", "-map", "0", "-map", "1", "-map", "2", "-c:v", "mpeg4", "-c:a", "aac", "-c:s",
                    "mov_text", "-metadata:s:s:0", "language=eng", out.string()}});
      break;
    case TestMedia::kMkvSubrip:
      out = dir / "subrip.mkv";
      // PCM audio: AAC's priming delay would make the Matroska muxer shift
      // every stream by 23 ms (MP4 hides it in an edit list instead).
      args = join({video,
                   sine,
                   {"-i", "cues.srt", "-map", "0", "-map", "1", "-map", "2", "-c:v", "mpeg4", "-c:a", "pcm_s16le",
                    "-c:s", "srt", "-metadata:s:s:0", "language=fre", out.string()}});
      break;
    case TestMedia::kMkvAss:
      out = dir / "ass.mkv";
      args = join({video, {"-i", "cues.srt", "-map", "0", "-map", "1", "-c:v", "mpeg4", "-c:s", "ass", out.string()}});
      break;
    case TestMedia::kMkvWebvtt:
      out = dir / "webvtt.mkv";
      args =
          join({video, {"-i", "cues.srt", "-map", "0", "-map", "1", "-c:v", "mpeg4", "-c:s", "webvtt", out.string()}});
      break;
    case TestMedia::kMp4NoSubtitles:
      out = dir / "plain.mp4";
      args = join({video, sine, {"-map", "0", "-map", "1", "-c:v", "mpeg4", "-c:a", "aac", out.string()}});
      break;
    case TestMedia::kAudioOnly:
      out = dir / "sine.m4a";
      args = join({sine, {"-ac", "2", "-c:a", "aac", out.string()}});
      break;
    case TestMedia::kPgsSup: {
      // ffmpeg cannot render text into bitmaps, so the PGS stream is
      // written by hand: two well-formed (empty) display sets.
      out = dir / "bitmap.sup";
      write_file(out, pgs_display_set(90000, 0) + pgs_display_set(180000, 1));
      return out;
    }
    case TestMedia::kMkvPgs: {
      const auto sup = make_test_media(dir, TestMedia::kPgsSup);
      out = dir / "pgs.mkv";
      args =
          join({video, {"-i", sup.string(), "-map", "0", "-map", "1", "-c:v", "mpeg4", "-c:s", "copy", out.string()}});
      break;
    }
  }
  if (!run_ffmpeg(dir, args)) return {};
  return out;
}

}  // namespace llmd::testing
