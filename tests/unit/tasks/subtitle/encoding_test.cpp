// Text encodings: UTF-8 with/without BOM, UTF-16LE/BE with BOM, GBK and
// GB18030 (bytes made here with iconv), and the inputs that must fail.
#include <gtest/gtest.h>
#include <iconv.h>

#include <string>
#include <utility>
#include <vector>

#include "tasks/subtitle/subtitle.h"
#include "unit/tasks/subtitle/golden_util.h"

namespace llmd::subtitle {
namespace {

using testing::golden_dir;
using testing::read_bytes;

const std::string kChineseSrt =
    "1\n00:00:01,000 --> 00:00:02,500\n你好，世界！这是一个测试字幕文件。\n\n"
    "2\n00:00:03,000 --> 00:00:04,000\n我们今天去北京看电影，好吗？\n\n";

// `utf8` re-encoded with iconv (the test's own conversion, independent of
// the reader's).
std::string encode(const std::string& utf8, const char* charset) {
  iconv_t cd = iconv_open(charset, "UTF-8");
  EXPECT_NE(cd, reinterpret_cast<iconv_t>(-1));
  std::string out(utf8.size() * 4 + 16, '\0');
  char* in = const_cast<char*>(utf8.data());
  std::size_t in_left = utf8.size();
  char* dst = out.data();
  std::size_t out_left = out.size();
  EXPECT_NE(iconv(cd, &in, &in_left, &dst, &out_left), static_cast<std::size_t>(-1));
  iconv_close(cd);
  out.resize(out.size() - out_left);
  return out;
}

TEST(SubtitleEncoding, Utf8WithAndWithoutBom) {
  EXPECT_EQ(to_utf8("héllo").value(), "héllo");
  EXPECT_EQ(to_utf8("\xEF\xBB\xBFhéllo").value(), "héllo");
}

TEST(SubtitleEncoding, Utf16LittleAndBigEndianWithBom) {
  const std::string text = kChineseSrt + "3\n00:00:05,000 --> 00:00:06,000\nsmile 😀\n";  // a surrogate pair
  const std::string le = "\xFF\xFE" + encode(text, "UTF-16LE");
  const std::string be = "\xFE\xFF" + encode(text, "UTF-16BE");
  EXPECT_EQ(to_utf8(le).value(), text);
  EXPECT_EQ(to_utf8(be).value(), text);
  auto doc = parse(le);
  ASSERT_TRUE(doc) << doc.error().message;
  ASSERT_EQ(doc->cues.size(), 3u);
  EXPECT_EQ(doc->cues[1].text, "我们今天去北京看电影，好吗？");
  EXPECT_EQ(doc->cues[2].text, "smile 😀");
}

TEST(SubtitleEncoding, Utf16GoldenFilesParse) {
  for (const char* name : {"utf16le.srt", "utf16be.vtt"}) {
    const std::string bytes = read_bytes(golden_dir() / name);
    auto doc = parse(bytes);
    ASSERT_TRUE(doc) << name << ": " << doc.error().message;
    ASSERT_EQ(doc->cues.size(), 2u) << name;
    EXPECT_EQ(doc->cues[0].text, "你好，世界！") << name;
    EXPECT_EQ(doc->cues[1].text, "Zweite Zeile: Grüße") << name;
    EXPECT_EQ(doc->cues[1].end_ms, 4000) << name;
  }
}

TEST(SubtitleEncoding, Utf16Errors) {
  auto odd = to_utf8("\xFF\xFE\x41");
  ASSERT_FALSE(odd);
  EXPECT_EQ(odd.error().message, "UTF-16 text has an odd number of bytes");
  auto lone = to_utf8(std::string("\xFF\xFE\x00\xD8\x41\x00", 6));  // high surrogate, then 'A'
  ASSERT_FALSE(lone);
  EXPECT_EQ(lone.error().message, "invalid UTF-16 surrogate pair at byte 0");
  // UTF-16 without a BOM is valid "UTF-8" full of NULs: refused, not garbage.
  auto no_bom = to_utf8(encode("1\n00:00:01,000 --> 00:00:02,000\nhi\n", "UTF-16LE"));
  ASSERT_FALSE(no_bom);
  EXPECT_NE(no_bom.error().message.find("NUL"), std::string::npos);
}

TEST(SubtitleEncoding, GbkSrtIsDecodedToUtf8) {
  const std::string gbk = encode(kChineseSrt, "GBK");
  ASSERT_NE(gbk, kChineseSrt);
  auto text = to_utf8(gbk);
  ASSERT_TRUE(text) << text.error().message;
  EXPECT_EQ(*text, kChineseSrt);
  auto doc = parse(gbk);
  ASSERT_TRUE(doc) << doc.error().message;
  ASSERT_EQ(doc->cues.size(), 2u);
  EXPECT_EQ(doc->cues[0].text, "你好，世界！这是一个测试字幕文件。");
  // Output is always UTF-8.
  EXPECT_NE(write(*doc, Format::kSrt).find("你好，世界！"), std::string::npos);
}

TEST(SubtitleEncoding, Gb18030FourByteCharactersDecode) {
  // U+20BB7 (𠮷) exists only in GB18030's four-byte range, not in GBK.
  const std::string utf8 = kChineseSrt + "3\n00:00:05,000 --> 00:00:06,000\n𠮷野家的牛肉饭很好吃。\n";
  const std::string gb = encode(utf8, "GB18030");
  auto text = to_utf8(gb);
  ASSERT_TRUE(text) << text.error().message;
  EXPECT_EQ(*text, utf8);
}

TEST(SubtitleEncoding, CommittedGbkFileParses) {
  auto doc = parse(read_bytes(golden_dir() / "gbk.srt"));
  ASSERT_TRUE(doc) << doc.error().message;
  ASSERT_EQ(doc->cues.size(), 3u);
  EXPECT_EQ(doc->cues[2].text, "我们明天见。");
}

TEST(SubtitleEncoding, Latin1IsAnErrorNotGarbage) {
  // Valid ISO-8859-1, invalid UTF-8, and not Chinese.
  const std::string latin1 =
      encode("1\n00:00:01,000 --> 00:00:02,000\nCafé crème à la française, très élégant.\n", "ISO-8859-1");
  auto text = to_utf8(latin1);
  ASSERT_FALSE(text) << "decoded as: " << *text;
  EXPECT_EQ(text.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(text.error().reason, "invalid_encoding");
  EXPECT_NE(text.error().message.find("not UTF-8, UTF-16 with a byte order mark or GBK/GB18030"), std::string::npos)
      << text.error().message;
}

// uchardet alone misnames these (ISO-8859-16, WINDOWS-1252, nothing).
TEST(SubtitleEncoding, ShortGbkFilesDecode) {
  for (const std::string text :
       {"1\n00:00:01,000 --> 00:00:02,000\n你好\n", "1\n00:00:01,000 --> 00:00:02,000\n我爱你\n",
        "1\n00:00:01,000 --> 00:00:02,000\n是的\n\n2\n00:00:03,000 --> 00:00:04,000\n走吧\n"}) {
    auto utf8 = to_utf8(encode(text, "GBK"));
    ASSERT_TRUE(utf8) << text << ": " << utf8.error().message;
    EXPECT_EQ(*utf8, text);
  }
}

TEST(SubtitleEncoding, OtherEightBitTextIsRejected) {
  for (const auto& [text, charset] : std::vector<std::pair<std::string, const char*>>{
           {"1\n00:00:01,000 --> 00:00:02,000\nDie Größe der Straße\n", "ISO-8859-1"},
           {"1\n00:00:01,000 --> 00:00:02,000\nНу что, пойдём домой? Уже поздно, друзья мои.\n", "CP1251"},
           {"1\n00:00:01,000 --> 00:00:02,000\n日本語の字幕ファイルです。今日は良い天気ですね。\n", "SHIFT_JIS"}}) {
    auto utf8 = to_utf8(encode(text, charset));
    EXPECT_FALSE(utf8) << charset << " decoded as: " << (utf8 ? *utf8 : "");
  }
}

TEST(SubtitleEncoding, BrokenBytesAreAnError) {
  EXPECT_FALSE(to_utf8("\xEF\xBB\xBFok \xC3 broken"));        // BOM says UTF-8, bytes disagree
  EXPECT_FALSE(to_utf8("abc \xFF\xFF\xFF\xFF\x80\x80 def"));  // neither UTF-8 nor GB18030
  EXPECT_FALSE(to_utf8("over\xC0\xAFlong"));                  // overlong '/' is not UTF-8
  EXPECT_FALSE(to_utf8("\xED\xA0\x80 surrogate"));            // UTF-8-encoded surrogate
}

}  // namespace
}  // namespace llmd::subtitle
