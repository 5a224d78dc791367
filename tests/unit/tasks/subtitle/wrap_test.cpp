// CJK-aware line wrapping.
#include <gtest/gtest.h>

#include <string>

#include "tasks/subtitle/subtitle.h"

namespace llmd::subtitle {
namespace {

std::size_t chars(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

void expect_lines_within(const std::string& wrapped, std::size_t max) {
  std::size_t pos = 0;
  while (pos <= wrapped.size()) {
    std::size_t nl = wrapped.find('\n', pos);
    if (nl == std::string::npos) nl = wrapped.size();
    EXPECT_LE(chars(wrapped.substr(pos, nl - pos)), max) << wrapped;
    pos = nl + 1;
  }
}

TEST(WrapLine, ShortLinesAreUnchanged) {
  EXPECT_EQ(wrap_line("Hello there", 42), "Hello there");
  EXPECT_EQ(wrap_line("你好世界", 16), "你好世界");
}

TEST(WrapLine, EnglishBreaksAtSpacesIntoBalancedLines) {
  const std::string s = "I never thought I would see the day when the river ran backwards again";
  const std::string w = wrap_line(s, 42);
  EXPECT_EQ(w, "I never thought I would see the day\nwhen the river ran backwards again");
  expect_lines_within(w, 42);
}

TEST(WrapLine, LongWordsAreNeverCut) {
  EXPECT_EQ(wrap_line("supercalifragilisticexpialidocious is long", 10), "supercalifragilisticexpialidocious\nis long");
}

TEST(WrapLine, ChineseBreaksBetweenCharactersButNotBeforeClosingPunctuation) {
  const std::string s = "我们今天晚上一起去看电影吧，你觉得怎么样？我请客。";  // 25 characters
  const std::string w = wrap_line(s, 16);
  expect_lines_within(w, 16);
  EXPECT_EQ(w, "我们今天晚上一起去看电影\n吧，你觉得怎么样？我请客。");
  // No line starts with closing punctuation, even when the limit falls just before it.
  const std::string tight = wrap_line("一二三四五，六七八九十。", 5);
  EXPECT_EQ(tight, "一二三四\n五，六七\n八九十。");  // three balanced lines of 4
  for (const char* bad : {"\n，", "\n。"}) EXPECT_EQ(tight.find(bad), std::string::npos) << tight;
}

TEST(WrapLine, OpeningPunctuationStaysWithTheNextCharacter) {
  const std::string w = wrap_line("他说了一句话「我们走吧」然后离开", 8);
  expect_lines_within(w, 8);
  EXPECT_EQ(w.find("「\n"), std::string::npos) << w;
}

TEST(WrapLine, MixedScriptsKeepLatinWordsWhole) {
  const std::string w = wrap_line("我最喜欢的电影是Star Wars和The Matrix这两部", 12);
  expect_lines_within(w, 12);
  EXPECT_EQ(w, "我最喜欢的电影是Star\nWars和The\nMatrix这两部");
  EXPECT_EQ(w.find("Sta\n"), std::string::npos);
}

TEST(WrapLine, MarkupHasNoWidthAndIsNotSplit) {
  const std::string w = wrap_line("<i>one two three four</i>", 9);
  EXPECT_EQ(w, "<i>one two\nthree\nfour</i>");
}

TEST(WrapLine, DefaultsDependOnLanguage) {
  EXPECT_EQ(default_line_chars("zh"), 16);
  EXPECT_EQ(default_line_chars("zh-CN"), 16);
  EXPECT_EQ(default_line_chars("ja"), 16);
  EXPECT_EQ(default_line_chars("ko_KR"), 16);
  EXPECT_EQ(default_line_chars("en"), 42);
  EXPECT_EQ(default_line_chars("fr"), 42);
  EXPECT_EQ(default_line_chars(""), 42);
}

}  // namespace
}  // namespace llmd::subtitle
