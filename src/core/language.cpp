#include "core/language.h"

#include <algorithm>
#include <cctype>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <unicode/locdspnm.h>
#include <unicode/locid.h>
#include <unicode/unistr.h>

namespace llmd::language {
namespace {

std::string utf8(const icu::UnicodeString& s) {
  std::string out;
  s.toUTF8String(out);
  return out;
}

// Case-folded, trimmed, inner runs of white space as one space: the form
// names are compared in.
std::string comparable(std::string_view s) {
  icu::UnicodeString u = icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
  u.trim();
  u.foldCase();
  icu::UnicodeString out;
  bool space = false;
  for (int32_t i = 0; i < u.length(); ++i) {
    const char16_t c = u.charAt(i);
    if (c == u' ' || c == u'\t' || c == u'\u3000') {
      space = true;
      continue;
    }
    if (space) out.append(u' ');
    space = false;
    out.append(c);
  }
  return utf8(out);
}

std::unique_ptr<icu::LocaleDisplayNames> display_names(const char* in_locale, UDialectHandling style) {
  return std::unique_ptr<icu::LocaleDisplayNames>(
      icu::LocaleDisplayNames::createInstance(icu::Locale(in_locale), style));
}

// Every name ICU has for a language or a locale, in English and in both
// Chinese scripts, mapped to the ICU locale id it names.
struct NameIndex {
  std::unordered_map<std::string, std::string> locale_by_name;
  std::unordered_set<std::string> languages;         // ISO 639 codes ICU has an English name for
  std::unique_ptr<icu::LocaleDisplayNames> english;  // dialect names: "Simplified Chinese"

  NameIndex() : english(display_names("en", ULDN_DIALECT_NAMES)) {
    std::vector<std::string> codes;
    for (const char* const* code = icu::Locale::getISOLanguages(); *code != nullptr; ++code) codes.emplace_back(*code);
    // Two-letter codes first: a name shared with a three-letter code names the common one.
    std::stable_partition(codes.begin(), codes.end(), [](const std::string& c) { return c.size() == 2; });
    for (const auto& code : codes) {
      icu::UnicodeString name;
      english->languageDisplayName(code.c_str(), name);
      if (utf8(name) != code) languages.insert(code);
    }
    int32_t count = 0;
    const icu::Locale* available = icu::Locale::getAvailableLocales(count);
    for (const char* in_locale : {"en", "zh", "zh_Hant"}) {
      for (const UDialectHandling style : {ULDN_DIALECT_NAMES, ULDN_STANDARD_NAMES}) {
        const auto names = display_names(in_locale, style);
        for (const auto& code : codes) {
          if (!languages.contains(code)) continue;
          icu::UnicodeString name;
          names->languageDisplayName(code.c_str(), name);
          add(utf8(name), code, std::string_view(in_locale).starts_with("zh"));
        }
        for (int32_t i = 0; i < count; ++i) {
          icu::UnicodeString name;
          names->localeDisplayName(available[i], name);
          add(utf8(name), available[i].getName(), false);
        }
      }
    }
  }

  void add(const std::string& name, const std::string& locale_id, bool chinese_language_name) {
    if (name.empty() || name == locale_id) return;
    locale_by_name.emplace(comparable(name), locale_id);
    // Chinese names a language "X语" (spoken, as ICU's zh data does) or "X文"
    // (written, as its zh_Hant data and everyday usage do): both are meant.
    constexpr std::string_view kSpoken = "语", kWritten = "文";
    if (chinese_language_name && name.ends_with(kSpoken)) {
      locale_by_name.emplace(comparable(name.substr(0, name.size() - kSpoken.size()) + std::string(kWritten)),
                             locale_id);
    }
  }
};

const NameIndex& names() {
  static const NameIndex kIndex;
  return kIndex;
}

Error unknown(std::string_view spelling) {
  std::string shown(spelling.substr(0, 40));
  return Error(ErrorCode::kInvalidArgument,
               "unknown language \"" + shown +
                   "\": give a code (en, zh-Hans, zh-Hant, ja), an English name (English, Simplified Chinese, "
                   "Japanese) or a Chinese one (英语, 英文, 简体中文, 繁體中文, 日语)",
               "invalid_language");
}

bool known_script(const std::string& script) {
  icu::UnicodeString name;
  names().english->scriptDisplayName(script.c_str(), name);
  return utf8(name) != script;
}

bool known_region(const std::string& region) {
  icu::UnicodeString name;
  names().english->regionDisplayName(region.c_str(), name);
  return utf8(name) != region;
}

std::string likely_script(const icu::Locale& locale) {
  UErrorCode status = U_ZERO_ERROR;
  icu::Locale likely(locale);
  likely.addLikelySubtags(status);
  return U_SUCCESS(status) ? likely.getScript() : "";
}

// The canonical language of an ICU locale: its language, the script when
// it is not the language's likely one (always for Chinese: simplified and
// traditional are different written languages), and the region (Chinese:
// folded into its script).
Result<Language> canonical(const icu::Locale& locale, std::string_view spelling) {
  const std::string lang = locale.getLanguage();
  if (!names().languages.contains(lang)) return std::unexpected(unknown(spelling));
  std::string script = locale.getScript();
  std::string region = locale.getCountry();
  if (!script.empty() && !known_script(script)) return std::unexpected(unknown(spelling));
  if (!region.empty() && !known_region(region)) return std::unexpected(unknown(spelling));

  if (lang == "zh") {
    if (script.empty()) script = likely_script(locale);  // zh-TW: Hant
    region.clear();
  } else if (script == likely_script(icu::Locale(lang.c_str()))) {
    script.clear();  // en-Latn is English
  }
  Language out;
  out.tag = lang;
  std::string id = lang;
  for (const std::string* part : {&script, &region}) {
    if (part->empty()) continue;
    out.tag += "-" + *part;
    id += "_" + *part;
  }
  icu::UnicodeString name;
  names().english->localeDisplayName(id.c_str(), name);
  out.english_name = utf8(name);
  return out;
}

// "en", "zh-CN", "zh_Hant", "pt-BR": letters, then subtags after - or _.
bool looks_like_code(std::string_view s) {
  std::size_t letters = 0;
  while (letters < s.size() && std::isalpha(static_cast<unsigned char>(s[letters]))) ++letters;
  if (letters < 2 || letters > 3) return false;
  for (std::size_t i = letters; i < s.size(); ++i) {
    const char c = s[i];
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return letters == s.size() || s[letters] == '-' || s[letters] == '_';
}

}  // namespace

Result<Language> resolve(std::string_view spelling) {
  const std::string key = comparable(spelling);
  if (key.empty() || key.size() > 100) return std::unexpected(unknown(spelling));
  if (looks_like_code(key)) {
    std::string tag = key;
    std::replace(tag.begin(), tag.end(), '_', '-');
    UErrorCode status = U_ZERO_ERROR;
    const icu::Locale locale = icu::Locale::forLanguageTag(tag, status);
    if (U_SUCCESS(status) && !locale.isBogus() && names().languages.contains(locale.getLanguage())) {
      return canonical(locale, spelling);
    }
  }
  // A name ("Ewe" also looks like a code that is not one).
  const auto it = names().locale_by_name.find(key);
  if (it == names().locale_by_name.end()) return std::unexpected(unknown(spelling));
  return canonical(icu::Locale(it->second.c_str()), spelling);
}

std::string english_name(std::string_view tag) {
  auto resolved = resolve(tag);
  return resolved ? resolved->english_name : std::string(tag);
}

std::string primary_subtag(std::string_view tag) {
  std::string out;
  for (char c : tag) {
    if (c == '-' || c == '_') break;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

}  // namespace llmd::language
