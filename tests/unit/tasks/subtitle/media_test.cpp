// Media extraction on files made by the real `ffmpeg` command (see
// support/test_media.h): stream lists, text subtitle cues with exact
// timings, refusals (bitmap, none, bad index, not media), audio to 16 kHz
// mono WAV, and media path resolution against roots.
#include "tasks/subtitle/media.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "support/test_media.h"
#include "support/test_support.h"

namespace llmd::subtitle {
namespace {

namespace fs = std::filesystem;
using testing::make_test_media;
using testing::TempDir;
using testing::TestMedia;

void expect_test_cues(const std::vector<Cue>& cues) {
  ASSERT_EQ(cues.size(), 3u);
  EXPECT_EQ(cues[0].start_ms, 500);
  EXPECT_EQ(cues[0].end_ms, 1800);
  EXPECT_EQ(cues[0].text, "Hello, world");
  EXPECT_EQ(cues[1].start_ms, 2000);
  EXPECT_EQ(cues[1].end_ms, 3250);
  EXPECT_EQ(cues[1].text, "Second cue\nwith two lines");
  EXPECT_EQ(cues[2].start_ms, 3500);
  EXPECT_EQ(cues[2].end_ms, 4900);
  EXPECT_EQ(cues[2].text, "Third cue");  // <i> became an ASS override tag, then stripped
}

TEST(Media, ProbeListsStreamsOfAnMp4WithMovText) {
  TempDir dir;
  const auto file = make_test_media(dir.path(), TestMedia::kMp4MovText);
  auto streams = probe(file);
  ASSERT_TRUE(streams) << streams.error().message;
  ASSERT_EQ(streams->size(), 3u);
  EXPECT_EQ((*streams)[0].kind, "video");
  EXPECT_EQ((*streams)[0].codec, "mpeg4");
  EXPECT_EQ((*streams)[1].kind, "audio");
  EXPECT_EQ((*streams)[1].codec, "aac");
  EXPECT_EQ((*streams)[2].kind, "subtitle");
  EXPECT_EQ((*streams)[2].codec, "mov_text");
  EXPECT_TRUE((*streams)[2].text_subtitle);
  EXPECT_FALSE((*streams)[2].bitmap_subtitle);
  EXPECT_EQ((*streams)[2].language, "eng");
  EXPECT_NEAR((*streams)[0].duration_seconds, 5.0, 0.2);
}

TEST(Media, ExtractsMovTextCuesWithExactTimings) {
  TempDir dir;
  auto cues = extract_subtitles(make_test_media(dir.path(), TestMedia::kMp4MovText), std::nullopt);
  ASSERT_TRUE(cues) << cues.error().message;
  expect_test_cues(*cues);
}

TEST(Media, ExtractsSubripFromMatroska) {
  TempDir dir;
  const auto file = make_test_media(dir.path(), TestMedia::kMkvSubrip);
  auto streams = probe(file);
  ASSERT_TRUE(streams);
  ASSERT_EQ(streams->size(), 3u);
  EXPECT_EQ((*streams)[2].codec, "subrip");
  EXPECT_EQ((*streams)[2].language, "fre");
  auto cues = extract_subtitles(file, 2);
  ASSERT_TRUE(cues) << cues.error().message;
  expect_test_cues(*cues);
}

TEST(Media, ExtractsAssFromMatroskaKeepingStyleAndRawText) {
  TempDir dir;
  const auto file = make_test_media(dir.path(), TestMedia::kMkvAss);
  auto cues = extract_subtitles(file, std::nullopt);
  ASSERT_TRUE(cues) << cues.error().message;
  expect_test_cues(*cues);
  EXPECT_EQ((*cues)[0].style, "Default");
  EXPECT_EQ((*cues)[1].raw, "Second cue\\Nwith two lines");
  EXPECT_EQ((*cues)[2].raw, "{\\i1}Third{\\i0} cue");
}

TEST(Media, ExtractsWebvttFromMatroska) {
  TempDir dir;
  const auto file = make_test_media(dir.path(), TestMedia::kMkvWebvtt);
  auto streams = probe(file);
  ASSERT_TRUE(streams);
  ASSERT_EQ(streams->size(), 2u);
  EXPECT_EQ((*streams)[1].codec, "webvtt");
  EXPECT_TRUE((*streams)[1].text_subtitle);
  auto cues = extract_subtitles(file, std::nullopt);
  ASSERT_TRUE(cues) << cues.error().message;
  expect_test_cues(*cues);
}

TEST(Media, NoSubtitleStreamIsNotFound) {
  TempDir dir;
  auto cues = extract_subtitles(make_test_media(dir.path(), TestMedia::kMp4NoSubtitles), std::nullopt);
  ASSERT_FALSE(cues);
  EXPECT_EQ(cues.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(cues.error().reason, "no_subtitle_stream");
}

TEST(Media, StreamIndexOutOfRangeOrNotSubtitlesIsInvalid) {
  TempDir dir;
  const auto file = make_test_media(dir.path(), TestMedia::kMkvSubrip);
  for (int index : {3, -1, 99, 0, 1}) {  // 0 is video, 1 is audio
    auto cues = extract_subtitles(file, index);
    ASSERT_FALSE(cues) << index;
    EXPECT_EQ(cues.error().code, ErrorCode::kInvalidArgument) << index;
    EXPECT_EQ(cues.error().reason, "bad_stream_index") << index;
  }
}

TEST(Media, BitmapSubtitlesAreRefusedBecauseOcrIsNotSupported) {
  TempDir dir;
  for (auto kind : {TestMedia::kPgsSup, TestMedia::kMkvPgs}) {
    const auto file = make_test_media(dir.path(), kind);
    auto streams = probe(file);
    ASSERT_TRUE(streams) << streams.error().message;
    const auto& sub = streams->back();
    EXPECT_EQ(sub.codec, "hdmv_pgs_subtitle");
    EXPECT_TRUE(sub.bitmap_subtitle);
    EXPECT_FALSE(sub.text_subtitle);
    auto cues = extract_subtitles(file, std::nullopt);
    ASSERT_FALSE(cues);
    EXPECT_EQ(cues.error().code, ErrorCode::kUnprocessable);
    EXPECT_EQ(cues.error().reason, "bitmap_subtitles");
    EXPECT_NE(cues.error().message.find("OCR is not supported"), std::string::npos) << cues.error().message;
    auto chosen = extract_subtitles(file, sub.index);
    ASSERT_FALSE(chosen);
    EXPECT_EQ(chosen.error().reason, "bitmap_subtitles");
  }
}

TEST(Media, SubtitleCodecsAreClassifiedByDescriptor) {
  for (const char* text : {"subrip", "mov_text", "ass", "ssa", "webvtt"}) {
    EXPECT_EQ(subtitle_codec_kind(text), SubtitleCodecKind::kText) << text;
  }
  for (const char* bitmap : {"hdmv_pgs_subtitle", "dvd_subtitle", "dvb_subtitle", "xsub"}) {
    EXPECT_EQ(subtitle_codec_kind(bitmap), SubtitleCodecKind::kBitmap) << bitmap;
  }
  for (const char* other : {"aac", "h264", "no_such_codec", ""}) {
    EXPECT_EQ(subtitle_codec_kind(other), SubtitleCodecKind::kNone) << other;
  }
}

TEST(Media, AssDialogueTextDropsFieldsAndOverrideTags) {
  EXPECT_EQ(ass_dialogue_text("0,0,Default,,0,0,0,,Hello, world"), "Hello, world");
  EXPECT_EQ(ass_dialogue_text("3,1,Top,Bob,10,10,20,fx,{\\pos(10,20)\\b1}Line one\\Nline\\htwo{\\b0}"),
            "Line one\nline two");
  EXPECT_EQ(ass_dialogue_text("1,0,Default,,0,0,0,,a\\nb\\N"), "a\nb");
  EXPECT_EQ(ass_dialogue_text("not enough fields"), "");
}

TEST(Media, NotAMediaFileIsInvalidArgument) {
  TempDir dir;
  std::string junk = "this is not a media file";
  for (int i = 0; i < 4096; ++i) junk.push_back(static_cast<char>((i * 7919) & 0xff));
  testing::write_file(dir / "junk.bin", junk);
  auto streams = probe(dir / "junk.bin");
  ASSERT_FALSE(streams);
  EXPECT_EQ(streams.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(streams.error().message.find(dir.path().string()), std::string::npos) << "message names the path";
  auto cues = extract_subtitles(dir / "junk.bin", std::nullopt);
  ASSERT_FALSE(cues);
  EXPECT_EQ(cues.error().code, ErrorCode::kInvalidArgument);
  auto missing = probe(dir / "missing.mp4");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

struct WavHeader {
  std::string riff, wave, fmt, data;
  int format = 0, channels = 0, rate = 0, bits = 0;
  std::uint32_t data_bytes = 0, riff_bytes = 0;
};

WavHeader read_wav_header(const std::string& w) {
  auto u32 = [&](std::size_t at) {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(w[at + i]);
    return v;
  };
  auto u16 = [&](std::size_t at) { return static_cast<int>(u32(at) & 0xffff); };
  WavHeader h;
  h.riff = w.substr(0, 4);
  h.riff_bytes = u32(4);
  h.wave = w.substr(8, 4);
  h.fmt = w.substr(12, 4);
  h.format = u16(20);
  h.channels = u16(22);
  h.rate = static_cast<int>(u32(24));
  h.bits = u16(34);
  h.data = w.substr(36, 4);
  h.data_bytes = u32(40);
  return h;
}

void expect_five_seconds_of_16k_mono(const std::string& wav) {
  ASSERT_GT(wav.size(), 44u);
  const auto h = read_wav_header(wav);
  EXPECT_EQ(h.riff, "RIFF");
  EXPECT_EQ(h.wave, "WAVE");
  EXPECT_EQ(h.fmt, "fmt ");
  EXPECT_EQ(h.format, 1);
  EXPECT_EQ(h.channels, 1);
  EXPECT_EQ(h.rate, 16000);
  EXPECT_EQ(h.bits, 16);
  EXPECT_EQ(h.data, "data");
  EXPECT_EQ(h.data_bytes, wav.size() - 44);
  EXPECT_EQ(h.riff_bytes, wav.size() - 8);
  const auto samples = static_cast<long>(h.data_bytes / 2);
  // 5 s at 16 kHz, give or take one AAC frame (1024 samples at 44.1 kHz = 372 at 16 kHz).
  EXPECT_NEAR(samples, 80000, 372) << samples;
  // A 440 Hz sine is not silence.
  int peak = 0;
  for (std::size_t i = 44; i + 1 < wav.size(); i += 2) {
    const auto v =
        static_cast<std::int16_t>(static_cast<unsigned char>(wav[i]) | (static_cast<unsigned char>(wav[i + 1]) << 8));
    peak = std::max(peak, std::abs(static_cast<int>(v)));
  }
  EXPECT_GT(peak, 1000);
}

TEST(Media, AudioOnlyFileBecomes16kMonoWav) {
  TempDir dir;
  auto wav = audio_as_wav16k(make_test_media(dir.path(), TestMedia::kAudioOnly));
  ASSERT_TRUE(wav) << wav.error().message;
  expect_five_seconds_of_16k_mono(*wav);
}

TEST(Media, AudioTrackOfAVideoBecomes16kMonoWav) {
  TempDir dir;
  auto wav = audio_as_wav16k(make_test_media(dir.path(), TestMedia::kMp4NoSubtitles));
  ASSERT_TRUE(wav) << wav.error().message;
  expect_five_seconds_of_16k_mono(*wav);
}

TEST(Media, AudioLongerThanTheLimitIsRefused) {
  TempDir dir;
  auto wav = audio_as_wav16k(make_test_media(dir.path(), TestMedia::kAudioOnly), 2.0);
  ASSERT_FALSE(wav);
  EXPECT_EQ(wav.error().code, ErrorCode::kUnprocessable);
  EXPECT_EQ(wav.error().reason, "audio_too_long");
}

TEST(Media, PcmAudioTrackOfAMatroskaFileBecomes16kMonoWav) {
  TempDir dir;
  auto wav = audio_as_wav16k(make_test_media(dir.path(), TestMedia::kMkvSubrip));
  ASSERT_TRUE(wav) << wav.error().message;
  expect_five_seconds_of_16k_mono(*wav);
}

TEST(Media, VideoWithoutAudioHasNoAudioStream) {
  TempDir dir;
  auto wav = audio_as_wav16k(make_test_media(dir.path(), TestMedia::kMkvAss));
  ASSERT_FALSE(wav);
  EXPECT_EQ(wav.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(wav.error().reason, "no_audio_stream");
}

// A media root with a file inside, a sibling directory sharing the root's
// name as a prefix, and a secret outside.
class MediaPath : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(root_ / "sub");
    fs::create_directories(evil_);
    testing::write_file(root_ / "movie.mkv", "inside");
    testing::write_file(root_ / "sub" / "clip.mp4", "inside too");
    testing::write_file(evil_ / "x.mkv", "outside");
    testing::write_file(dir_ / "secret.txt", "secret");
  }
  void expect_refused(const std::string& path) {
    auto r = resolve_media_path(path, roots_);
    ASSERT_FALSE(r) << path << " resolved to " << r->string();
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << path;
    EXPECT_EQ(r.error().reason, "path_not_allowed") << path;
  }
  TempDir dir_;
  fs::path root_ = dir_ / "uploads";
  fs::path evil_ = dir_ / "uploads-evil";
  std::vector<std::string> roots_{root_.string()};
};

TEST_F(MediaPath, AcceptsFilesInsideTheRoot) {
  auto abs = resolve_media_path((root_ / "movie.mkv").string(), roots_);
  ASSERT_TRUE(abs) << abs.error().message;
  EXPECT_EQ(*abs, fs::canonical(root_ / "movie.mkv"));
  auto rel = resolve_media_path("sub/clip.mp4", roots_);
  ASSERT_TRUE(rel) << rel.error().message;
  EXPECT_EQ(*rel, fs::canonical(root_ / "sub" / "clip.mp4"));
}

TEST_F(MediaPath, ParentDirectoryEscapesAreRefused) {
  expect_refused("../../etc/passwd");
  expect_refused("../secret.txt");
  expect_refused("sub/../movie.mkv");
  expect_refused((root_ / ".." / "secret.txt").string());
}

TEST_F(MediaPath, AbsolutePathsOutsideTheRootsAreRefused) {
  expect_refused("/etc/passwd");
  expect_refused((dir_ / "secret.txt").string());
}

TEST_F(MediaPath, SymlinkInsideTheRootPointingOutsideIsRefused) {
  fs::create_symlink(dir_ / "secret.txt", root_ / "link.mkv");
  fs::create_directory_symlink("/etc", root_ / "etc");
  expect_refused((root_ / "link.mkv").string());
  expect_refused("link.mkv");
  expect_refused("etc/passwd");
  // A symlink that stays inside is fine.
  fs::create_symlink(root_ / "movie.mkv", root_ / "alias.mkv");
  auto ok = resolve_media_path("alias.mkv", roots_);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(*ok, fs::canonical(root_ / "movie.mkv"));
}

TEST_F(MediaPath, RootPrefixTrickIsRefused) {
  expect_refused((evil_ / "x.mkv").string());
  expect_refused(root_.string() + "-evil/x.mkv");
}

TEST_F(MediaPath, RootsThemselvesDirectoriesAndMissingFilesAreRefused) {
  expect_refused(root_.string());
  expect_refused("sub");
  expect_refused("missing.mkv");
  expect_refused("");
  expect_refused(std::string("movie.mkv\0x", 11));
  auto none = resolve_media_path("movie.mkv", {});
  EXPECT_FALSE(none);
}

}  // namespace
}  // namespace llmd::subtitle
