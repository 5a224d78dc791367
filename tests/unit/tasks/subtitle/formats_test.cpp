// SRT / WebVTT / ASS readers and writers: tolerant reading, golden output in
// every format, each validation error's message, limits, round trips.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <random>
#include <string>

#include "tasks/subtitle/subtitle.h"
#include "unit/tasks/subtitle/golden_util.h"

namespace llmd::subtitle {
namespace {

using testing::expect_golden;
using testing::golden_dir;
using testing::read_bytes;

Cue cue_at(std::int64_t start_ms, std::int64_t end_ms, std::string text) {
  Cue c;
  c.start_ms = start_ms;
  c.end_ms = end_ms;
  c.text = std::move(text);
  return c;
}

Document parse_file(const std::string& name) {
  auto doc = parse(read_bytes(golden_dir() / name));
  EXPECT_TRUE(doc) << name << ": " << (doc ? "" : doc.error().message);
  return doc ? *doc : Document{};
}

// Each tolerant input, written in each format, matches its golden output.
void expect_outputs(const std::string& name) {
  const Document doc = parse_file(name);
  for (Format f : {Format::kSrt, Format::kVtt, Format::kAss}) {
    expect_golden(golden_dir() / (name + ".out" + std::string(file_extension(f))), write(doc, f));
  }
}

TEST(SubtitleFormat, NamesAndContentTypes) {
  EXPECT_EQ(parse_format("SRT").value(), Format::kSrt);
  EXPECT_EQ(parse_format("webvtt").value(), Format::kVtt);
  EXPECT_EQ(parse_format("Vtt").value(), Format::kVtt);
  EXPECT_EQ(parse_format("ssa").value(), Format::kAss);
  EXPECT_EQ(parse_format("ass").value(), Format::kAss);
  auto bad = parse_format("sub");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(content_type(Format::kVtt), "text/vtt; charset=utf-8");
  EXPECT_EQ(content_type(Format::kSrt), "application/x-subrip; charset=utf-8");
  EXPECT_EQ(content_type(Format::kAss), "text/x-ssa; charset=utf-8");
  EXPECT_EQ(file_extension(Format::kAss), ".ass");
  EXPECT_EQ(format_name(Format::kVtt), "vtt");
}

TEST(SrtReader, ToleratesBomCrlfBlankLinesSeparatorsAndMissingNumbers) {
  const Document doc = parse_file("tolerant.srt");
  EXPECT_EQ(doc.source_format, Format::kSrt);
  ASSERT_EQ(doc.cues.size(), 5u);
  EXPECT_EQ(doc.cues[0].start_ms, 1000);
  EXPECT_EQ(doc.cues[0].end_ms, 2500);
  EXPECT_EQ(doc.cues[0].text, "Hello, <i>world</i>!\nSecond line");
  EXPECT_EQ(doc.cues[1].start_ms, 3000);
  EXPECT_EQ(doc.cues[1].end_ms, 4250);
  EXPECT_EQ(doc.cues[1].text, "Dots as separators & an ampersand");
  EXPECT_EQ(doc.cues[2].start_ms, 5500);  // "0:00:05,5": half a second
  EXPECT_EQ(doc.cues[2].end_ms, 6750);    // "00:06,75": hours left out
  EXPECT_EQ(doc.cues[2].text, "No blank line before me; short fractions");
  EXPECT_EQ(doc.cues[3].start_ms, 7000);
  EXPECT_EQ(doc.cues[3].text, "A cue without its number");
  EXPECT_EQ(doc.cues[4].start_ms, 60000);
  EXPECT_EQ(doc.cues[4].text, "Last cue, no final line end");
  expect_outputs("tolerant.srt");
}

TEST(VttReader, SkipsHeaderNotesStylesRegionsAndKeepsIdsAndSettings) {
  const Document doc = parse_file("tolerant.vtt");
  EXPECT_EQ(doc.source_format, Format::kVtt);
  ASSERT_EQ(doc.cues.size(), 3u);
  EXPECT_EQ(doc.cues[0].id, "intro");
  EXPECT_EQ(doc.cues[0].start_ms, 1000);
  EXPECT_EQ(doc.cues[0].end_ms, 2500);
  EXPECT_EQ(doc.cues[0].style, "align:start position:10%");
  EXPECT_EQ(doc.cues[0].text, "<v Roger>Hi & welcome <3</v>\n<i>second line</i>");
  EXPECT_EQ(doc.cues[1].id, "");
  EXPECT_EQ(doc.cues[1].style, "");
  EXPECT_EQ(doc.cues[2].id, "42");
  EXPECT_EQ(doc.cues[2].start_ms, 3'605'000);
  EXPECT_EQ(doc.cues[2].style, "line:0");
  // WebVTT-only markup does not leak into SubRip; italics do carry over.
  EXPECT_NE(write(doc, Format::kSrt).find("\nHi & welcome <3\n<i>second line</i>\n"), std::string::npos);
  expect_outputs("tolerant.vtt");
}

TEST(AssReader, FollowsTheFormatLineAndKeepsOverrideTagsInRaw) {
  const Document doc = parse_file("tolerant.ass");
  EXPECT_EQ(doc.source_format, Format::kAss);
  ASSERT_EQ(doc.cues.size(), 3u);  // the Comment line and the [Fonts] line are not cues
  EXPECT_EQ(doc.cues[0].start_ms, 1000);
  EXPECT_EQ(doc.cues[0].end_ms, 2500);
  EXPECT_EQ(doc.cues[0].style, "Default");
  EXPECT_EQ(doc.cues[0].raw, "{\\i1}Italic{\\i0} and plain, with a comma");
  EXPECT_EQ(doc.cues[0].text, "Italic and plain, with a comma");
  EXPECT_EQ(doc.cues[1].start_ms, 3050);
  EXPECT_EQ(doc.cues[1].end_ms, 4100);
  EXPECT_EQ(doc.cues[1].style, "Sign");
  EXPECT_EQ(doc.cues[1].text, "Top\nSecond line\u00A0hard space");
  EXPECT_EQ(doc.cues[2].start_ms, 3'723'450);
  EXPECT_EQ(doc.cues[2].text, "Positioned");
  EXPECT_NE(doc.ass_header.find("[V4+ Styles]"), std::string::npos);
  EXPECT_NE(doc.ass_header.find("Style: Sign,"), std::string::npos);
  EXPECT_EQ(doc.ass_header.find("[Events]"), std::string::npos);
  expect_outputs("tolerant.ass");
}

TEST(AssReader, ReadsSsaV4Files) {
  const Document doc = parse_file("legacy.ssa");
  ASSERT_EQ(doc.cues.size(), 1u);
  EXPECT_EQ(doc.cues[0].start_ms, 1200);
  EXPECT_EQ(doc.cues[0].end_ms, 3400);
  EXPECT_EQ(doc.cues[0].text, "Old style\ntwo lines");
  const std::string out = write(doc, Format::kAss);
  EXPECT_NE(out.find("Format: Marked, Start,"), std::string::npos) << out;
  EXPECT_NE(out.find("Dialogue: Marked=0,0:00:01.20,0:00:03.40,Default,,0000,0000,0000,,Old style\\Ntwo lines"),
            std::string::npos)
      << out;
  expect_outputs("legacy.ssa");
}

TEST(AssWriter, SameFormatWriteKeepsOverridesStylesAndHeader) {
  const Document doc = parse_file("tolerant.ass");
  const std::string out = write(doc, Format::kAss);
  EXPECT_NE(out.find("Style: Sign,Arial,16"), std::string::npos);
  EXPECT_NE(
      out.find("Dialogue: 0,0:00:03.05,0:00:04.10,Sign,Bob,0,0,0,,{\\an8\\b1}Top{\\b0}\\NSecond line\\hhard space\n"),
      std::string::npos)
      << out;
  EXPECT_NE(out.find("Dialogue: 1,1:02:03.45,"), std::string::npos) << out;  // Layer kept
  auto again = parse(out);
  ASSERT_TRUE(again) << again.error().message;
  ASSERT_EQ(again->cues.size(), doc.cues.size());
  for (std::size_t i = 0; i < doc.cues.size(); ++i) {
    EXPECT_EQ(again->cues[i].raw, doc.cues[i].raw);
    EXPECT_EQ(again->cues[i].start_ms, doc.cues[i].start_ms);
  }
  EXPECT_EQ(write(*again, Format::kAss), out);
}

TEST(AssWriter, ItalicsTravelBetweenTagsAndOverrides) {
  auto srt = parse("1\n00:00:01,000 --> 00:00:02,000\n<i>slanted</i> and <b>bold</b>\n");
  ASSERT_TRUE(srt);
  const std::string ass = write(*srt, Format::kAss);
  EXPECT_NE(ass.find(",,{\\i1}slanted{\\i0} and {\\b1}bold{\\b0}\n"), std::string::npos) << ass;
  auto back = parse(ass);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->cues[0].text, "slanted and bold");  // override tags are stripped from text
  EXPECT_EQ(write(*back, Format::kSrt), "1\n00:00:01,000 --> 00:00:02,000\n<i>slanted</i> and <b>bold</b>\n\n");
}

TEST(AssWriter, RoundsMillisecondsToTheNearestCentisecond) {
  Document doc;
  doc.cues.push_back(cue_at(1004, 1005, "a"));
  doc.cues.push_back(cue_at(2994, 59'995, "b"));
  const std::string ass = write(doc, Format::kAss);
  EXPECT_NE(ass.find("Dialogue: 0,0:00:01.00,0:00:01.01,"), std::string::npos) << ass;
  EXPECT_NE(ass.find("Dialogue: 0,0:00:02.99,0:01:00.00,"), std::string::npos) << ass;
}

TEST(VttWriter, EscapesTextAndKeepsMarkup) {
  Document doc;
  doc.cues.push_back(cue_at(1000, 2000, "Tom & Jerry <i>x</i> a<b --> c"));
  const std::string vtt = write(doc, Format::kVtt);
  EXPECT_EQ(vtt, "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nTom &amp; Jerry <i>x</i> a&lt;b --&gt; c\n\n");
  auto back = parse(vtt);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->cues[0].text, doc.cues[0].text);
}

TEST(SubtitleWriter, SrtPositionOverridesWorkInAssAndVanishInVtt) {
  auto srt = parse("1\n00:00:01,000 --> 00:00:02,000\n{\\an8}On top\n");
  ASSERT_TRUE(srt);
  EXPECT_EQ(srt->cues[0].text, "{\\an8}On top");
  EXPECT_NE(write(*srt, Format::kAss).find(",,{\\an8}On top\n"), std::string::npos);
  EXPECT_EQ(write(*srt, Format::kVtt), "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nOn top\n\n");
  EXPECT_EQ(write(*srt, Format::kSrt), "1\n00:00:01,000 --> 00:00:02,000\n{\\an8}On top\n\n");
}

TEST(SubtitleWriter, WrapsLongLinesWhenAsked) {
  Document doc;
  doc.cues.push_back(cue_at(0, 1000, "The quick brown fox jumps over the lazy dog"));
  // Three lines are needed at 20; they are balanced rather than filled greedily.
  EXPECT_EQ(write(doc, Format::kSrt, {.max_line_chars = 20}),
            "1\n00:00:00,000 --> 00:00:01,000\nThe quick brown\nfox jumps over\nthe lazy dog\n\n");
  const std::string ass = write(doc, Format::kAss, {.max_line_chars = 25});
  EXPECT_NE(ass.find(",,The quick brown fox\\Njumps over the lazy dog\n"), std::string::npos) << ass;
}

TEST(SubtitleWriter, DropsBlankLinesInsideCueText) {
  Document doc;
  doc.cues.push_back(cue_at(0, 1000, "one\n\ntwo"));
  EXPECT_EQ(write(doc, Format::kSrt), "1\n00:00:00,000 --> 00:00:01,000\none\ntwo\n\n");
}

// Model output may hold carriage returns: each is a line break, never a
// blank line that would end the cue and shift the rest (seen in a real run:
// a translated line "x\r\r..." broke the VTT that was written).
TEST(SubtitleWriter, CarriageReturnsInTextNeverSplitACue) {
  Document doc;
  doc.cues.push_back(cue_at(0, 1000, "a\r\rb\r\nc\r"));
  doc.cues.push_back(cue_at(1000, 2000, "next"));
  for (const Format f : {Format::kSrt, Format::kVtt, Format::kAss}) {
    const std::string written = write(doc, f);
    EXPECT_EQ(written.find('\r'), std::string::npos) << format_name(f);
    auto back = parse(written, f);
    ASSERT_TRUE(back) << format_name(f) << ": " << back.error().message << "\n" << written;
    ASSERT_EQ(back->cues.size(), 2u) << format_name(f) << "\n" << written;
    // SRT and VTT cannot hold a blank line inside a cue, ASS can (\N\N).
    EXPECT_EQ(back->cues[0].text, f == Format::kAss ? "a\n\nb\nc\n" : "a\nb\nc") << format_name(f);
    EXPECT_EQ(back->cues[1].text, "next") << format_name(f);
  }
}

// Every file under golden/errors fails with exactly the message listed in
// golden/errors/expected.txt ("file: code: message").
TEST(SubtitleValidation, EachErrorNamesLineAndCue) {
  std::string listing;
  std::map<std::string, std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(golden_dir() / "errors")) {
    const std::string name = entry.path().filename().string();
    if (name == "expected.txt") continue;
    files[name] = read_bytes(entry.path());
  }
  ASSERT_GE(files.size(), 15u);
  for (const auto& [name, bytes] : files) {
    // The extension names the format (as a client's output_format would);
    // .txt leaves it to detection.
    const std::string ext = std::filesystem::path(name).extension().string().substr(1);
    auto format = parse_format(ext);
    auto doc = parse(bytes, format ? std::optional<Format>(*format) : std::nullopt);
    EXPECT_FALSE(doc) << name << " parsed without error";
    if (!doc) {
      listing += name + ": " + std::string(doc.error().reason_or_default()) + ": " + doc.error().message + "\n";
    }
  }
  expect_golden(golden_dir() / "errors" / "expected.txt", listing);
}

TEST(SubtitleValidation, ForcedFormatMustMatch) {
  auto doc = parse("1\n00:00:01,000 --> 00:00:02,000\nx\n", Format::kVtt);
  ASSERT_FALSE(doc);
  EXPECT_EQ(doc.error().message, "line 1: a WebVTT file must start with 'WEBVTT'");
  auto as_srt = parse("WEBVTT\n\n00:01.000 --> 00:02.000\nx\n", Format::kSrt);
  ASSERT_FALSE(as_srt);  // the header line is garbage where a cue is due
  EXPECT_EQ(as_srt.error().message, "line 1 (cue 1): expected a cue number or a timing, got 'WEBVTT'");
}

TEST(SubtitleLimits, RejectsTooLargeInput) {
  const std::string big(kMaxInputBytes + 1, 'a');
  auto doc = parse(big);
  ASSERT_FALSE(doc);
  EXPECT_EQ(doc.error().code, ErrorCode::kTooLarge);
  EXPECT_EQ(doc.error().reason, "subtitle_too_large");
}

TEST(SubtitleLimits, RejectsTooManyCues) {
  std::string srt;
  for (std::size_t i = 0; i <= kMaxCues; ++i) srt += "00:00:01,000 --> 00:00:02,000\nx\n\n";
  auto doc = parse(srt);
  ASSERT_FALSE(doc);
  EXPECT_EQ(doc.error().code, ErrorCode::kTooLarge);
  EXPECT_NE(doc.error().message.find("20000 cues"), std::string::npos) << doc.error().message;
}

TEST(SubtitleLimits, RejectsOverlongLines) {
  const std::string srt = "1\n00:00:01,000 --> 00:00:02,000\n" + std::string(kMaxLineBytes + 1, 'x') + "\n";
  auto doc = parse(srt);
  ASSERT_FALSE(doc);
  EXPECT_EQ(doc.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(doc.error().message, "line 3: line is longer than 4096 bytes");
}

// Random documents with 10 ms timings and text with markup-sensitive
// characters survive SRT -> VTT -> ASS -> SRT byte for byte.
TEST(SubtitleRoundTrip, SrtVttAssSrtIsExactForCentisecondTimings) {
  std::mt19937 rng(20261127);
  const std::vector<std::string> words = {"hello", "world", "Tom & Jerry", "a < b",       "<i>tilted</i>", "中文",
                                          "字幕",  "x > y", "caf\u00e9",   "<b>loud</b>", "50%",           "\u00A0"};
  for (int iteration = 0; iteration < 50; ++iteration) {
    Document doc;
    std::int64_t t = std::uniform_int_distribution<std::int64_t>(0, 10'000)(rng) * 10;
    const int n = std::uniform_int_distribution<int>(1, 40)(rng);
    for (int i = 0; i < n; ++i) {
      Cue cue;
      cue.start_ms = t;
      cue.end_ms = t + std::uniform_int_distribution<std::int64_t>(0, 500)(rng) * 10;
      t = cue.end_ms + std::uniform_int_distribution<std::int64_t>(0, 300)(rng) * 10;
      const int lines = std::uniform_int_distribution<int>(1, 3)(rng);
      for (int l = 0; l < lines; ++l) {
        if (l > 0) cue.text += '\n';
        const int count = std::uniform_int_distribution<int>(1, 5)(rng);
        for (int w = 0; w < count; ++w) {
          if (w > 0) cue.text += ' ';
          cue.text += words[std::uniform_int_distribution<std::size_t>(0, words.size() - 1)(rng)];
        }
      }
      doc.cues.push_back(std::move(cue));
    }
    const std::string srt = write(doc, Format::kSrt);
    auto a = parse(srt);
    ASSERT_TRUE(a) << a.error().message << "\n" << srt;
    auto b = parse(write(*a, Format::kVtt));
    ASSERT_TRUE(b) << b.error().message;
    auto c = parse(write(*b, Format::kAss));
    ASSERT_TRUE(c) << c.error().message;
    ASSERT_EQ(c->cues.size(), doc.cues.size());
    for (std::size_t i = 0; i < doc.cues.size(); ++i) {
      EXPECT_EQ(c->cues[i].start_ms, doc.cues[i].start_ms) << "iteration " << iteration << " cue " << i;
      EXPECT_EQ(c->cues[i].end_ms, doc.cues[i].end_ms) << "iteration " << iteration << " cue " << i;
    }
    ASSERT_EQ(write(*c, Format::kSrt), srt) << "iteration " << iteration;
  }
}

TEST(SubtitleRoundTrip, MillisecondTimingsAreExactBetweenSrtAndVtt) {
  Document doc;
  doc.cues.push_back(cue_at(1, 999, "a"));
  doc.cues.push_back(cue_at(3'599'999, 359'999'999, "b"));  // up to 99:59:59.999
  auto vtt = parse(write(doc, Format::kVtt));
  ASSERT_TRUE(vtt) << vtt.error().message;
  auto srt = parse(write(*vtt, Format::kSrt));
  ASSERT_TRUE(srt);
  EXPECT_EQ(srt->cues[0].start_ms, 1);
  EXPECT_EQ(srt->cues[0].end_ms, 999);
  EXPECT_EQ(srt->cues[1].end_ms, 359'999'999);
}

}  // namespace
}  // namespace llmd::subtitle

namespace llmd::subtitle {
namespace {

// Randomly damaged inputs never crash (ASan/UBSan builds run this); what
// still parses writes out in every format and reads back with the same
// cues and timings.
TEST(SubtitleRobustness, DamagedInputsFailCleanlyOrRoundTrip) {
  std::mt19937 rng(7);
  int parsed = 0, rejected = 0;
  for (const char* name : {"tolerant.srt", "tolerant.vtt", "tolerant.ass", "legacy.ssa", "gbk.srt", "utf16le.srt"}) {
    const std::string original = testing::read_bytes(testing::golden_dir() / name);
    for (int iteration = 0; iteration < 300; ++iteration) {
      std::string bytes = original;
      const int edits = std::uniform_int_distribution<int>(1, 6)(rng);
      for (int e = 0; e < edits && !bytes.empty(); ++e) {
        const std::size_t at = std::uniform_int_distribution<std::size_t>(0, bytes.size() - 1)(rng);
        const char c =
            "\n\r ,.:->0123456789{}<>\\&WEBVTTNOTE\xE4\xB8\xAD\xFF"[std::uniform_int_distribution<int>(0, 37)(rng)];
        switch (std::uniform_int_distribution<int>(0, 2)(rng)) {
          case 0: bytes[at] = c; break;
          case 1: bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(at), c); break;
          default: bytes.erase(at, 1); break;
        }
      }
      auto doc = parse(bytes);
      if (!doc) {
        ++rejected;
        EXPECT_FALSE(doc.error().message.empty());
        continue;
      }
      ++parsed;
      for (Format f : {Format::kSrt, Format::kVtt, Format::kAss}) {
        const std::string out = write(*doc, f);
        auto back = parse(out, f);
        ASSERT_TRUE(back) << name << " iteration " << iteration << " as " << format_name(f) << ": "
                          << back.error().message << "\n"
                          << out;
        ASSERT_EQ(back->cues.size(), doc->cues.size()) << name << " iteration " << iteration << "\n" << out;
        for (std::size_t i = 0; i < doc->cues.size(); ++i) {
          const std::int64_t tolerance = f == Format::kAss ? 5 : 0;
          EXPECT_LE(std::abs(back->cues[i].start_ms - doc->cues[i].start_ms), tolerance);
          EXPECT_LE(std::abs(back->cues[i].end_ms - doc->cues[i].end_ms), tolerance);
        }
      }
    }
  }
  EXPECT_GT(parsed, 100);
  EXPECT_GT(rejected, 100);
}

}  // namespace
}  // namespace llmd::subtitle
