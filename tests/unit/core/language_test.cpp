#include "core/language.h"

#include <gtest/gtest.h>

namespace llmd::language {
namespace {

struct Spelling {
  const char* written;
  const char* tag;
  const char* english_name;
};

// Codes, English names and Chinese names (both scripts, both the 语 and 文
// forms) of the languages people translate subtitles between.
constexpr Spelling kSpellings[] = {
    {"en", "en", "English"},
    {"EN", "en", "English"},
    {"English", "en", "English"},
    {"  english ", "en", "English"},
    {"英文", "en", "English"},
    {"英语", "en", "English"},
    {"en-GB", "en-GB", "British English"},
    {"en_us", "en-US", "American English"},
    {"zh", "zh-Hans", "Simplified Chinese"},
    {"zh-CN", "zh-Hans", "Simplified Chinese"},
    {"zh_cn", "zh-Hans", "Simplified Chinese"},
    {"zh-Hans", "zh-Hans", "Simplified Chinese"},
    {"zh-TW", "zh-Hant", "Traditional Chinese"},
    {"zh-HK", "zh-Hant", "Traditional Chinese"},
    {"zh-Hant", "zh-Hant", "Traditional Chinese"},
    {"Chinese", "zh-Hans", "Simplified Chinese"},
    {"Simplified Chinese", "zh-Hans", "Simplified Chinese"},
    {"traditional chinese", "zh-Hant", "Traditional Chinese"},
    {"中文", "zh-Hans", "Simplified Chinese"},
    {"简体中文", "zh-Hans", "Simplified Chinese"},
    {"簡體中文", "zh-Hans", "Simplified Chinese"},
    {"繁體中文", "zh-Hant", "Traditional Chinese"},
    {"繁体中文", "zh-Hant", "Traditional Chinese"},
    {"ja", "ja", "Japanese"},
    {"Japanese", "ja", "Japanese"},
    {"日语", "ja", "Japanese"},
    {"日文", "ja", "Japanese"},
    {"ko", "ko", "Korean"},
    {"韩语", "ko", "Korean"},
    {"韩文", "ko", "Korean"},
    {"韓文", "ko", "Korean"},
    {"French", "fr", "French"},
    {"法语", "fr", "French"},
    {"法文", "fr", "French"},
    {"de", "de", "German"},
    {"德语", "de", "German"},
    {"Spanish", "es", "Spanish"},
    {"西班牙语", "es", "Spanish"},
    {"ru", "ru", "Russian"},
    {"俄语", "ru", "Russian"},
    {"pt-BR", "pt-BR", "Brazilian Portuguese"},
    {"巴西葡萄牙语", "pt-BR", "Brazilian Portuguese"},
    {"Cantonese", "yue", "Cantonese"},
    {"粤语", "yue", "Cantonese"},
    {"Vietnamese", "vi", "Vietnamese"},
    {"越南语", "vi", "Vietnamese"},
    {"ar", "ar", "Arabic"},
    {"阿拉伯语", "ar", "Arabic"},
    {"sr-Latn", "sr-Latn", "Serbian (Latin)"},
    {"en-Latn", "en", "English"},
};

TEST(Language, EverySpellingResolvesToOneCanonicalLanguage) {
  for (const auto& s : kSpellings) {
    auto lang = resolve(s.written);
    ASSERT_TRUE(lang.has_value()) << s.written << ": " << lang.error().message;
    EXPECT_EQ(lang->tag, s.tag) << s.written;
    EXPECT_EQ(lang->english_name, s.english_name) << s.written;
  }
}

TEST(Language, NonsenseIsRefusedWithExamples) {
  for (const char* bad :
       {"", "   ", "xx", "qq-ZZ", "Klingonese", "en-QQ", "中文中文", "english!", "zh-Xyzw", "\xff\xfe", "a", "1234"}) {
    auto lang = resolve(bad);
    ASSERT_FALSE(lang.has_value()) << bad << " resolved to " << lang->tag;
    EXPECT_EQ(lang.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(lang.error().reason, "invalid_language");
    EXPECT_NE(lang.error().message.find("简体中文"), std::string::npos) << lang.error().message;
    EXPECT_NE(lang.error().message.find("en"), std::string::npos);
  }
}

TEST(Language, LongHostileInputIsClippedInTheMessage) {
  const std::string hostile(10000, 'x');
  auto lang = resolve(hostile);
  ASSERT_FALSE(lang.has_value());
  EXPECT_LT(lang.error().message.size(), 400u);
}

TEST(Language, EnglishNameFallsBackToTheTagAndPrimarySubtagIsLowerCase) {
  EXPECT_EQ(english_name("zh-Hans"), "Simplified Chinese");
  EXPECT_EQ(english_name("en"), "English");
  EXPECT_EQ(english_name("not-a-language"), "not-a-language");
  EXPECT_EQ(primary_subtag("zh-Hans"), "zh");
  EXPECT_EQ(primary_subtag("EN_us"), "en");
  EXPECT_EQ(primary_subtag(""), "");
}

}  // namespace
}  // namespace llmd::language
