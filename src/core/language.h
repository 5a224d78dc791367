// Language names as people write them, resolved through ICU's locale data
// (CLDR display names; Debian libicu-dev): a code ("en", "zh-CN", "zh_Hant",
// "ja"), an English name ("English", "Simplified Chinese", "Brazilian
// Portuguese") or a Chinese one ("英文", "英语", "中文", "简体中文", "繁體中文",
// "日语", "日文", "法语") all name one language, and the prompt always names it
// the same way (ICU's English name of the canonical tag).
//
//   auto lang = language::resolve("英文");   // {tag "en", english_name "English"}
//   if (!lang) return lang.error();          // kInvalidArgument, reason invalid_language
//
// Chinese written without a script ("zh", "中文", "Chinese", "zh-CN") is
// Simplified Chinese, "zh-TW"/"zh-HK" Traditional: ICU's likely scripts.
// Thread-safe; the name index is built once, on first use (immutable after).
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"

namespace llmd::language {

struct Language {
  std::string tag;           // canonical BCP 47: "en", "zh-Hans", "zh-Hant", "en-GB", "pt-BR"
  std::string english_name;  // "English", "Simplified Chinese", "British English"
};

// Errors: kInvalidArgument (reason invalid_language) with a message that
// gives examples of what is accepted.
Result<Language> resolve(std::string_view spelling);

// The English name of `tag` when it resolves, else `tag` itself (a job
// stored before names were resolved).
std::string english_name(std::string_view tag);

// The primary language subtag, lower case ("zh" for "zh-Hans", "" for "").
std::string primary_subtag(std::string_view tag);

}  // namespace llmd::language
