// Text encodings: UTF-8 (with or without BOM), UTF-16LE/BE with BOM, and
// GBK/GB18030 when uchardet recognises it and iconv decodes it cleanly.
// Anything else is an error: a wrong guess would produce garbage that then
// gets translated and billed.
#include <iconv.h>
#include <uchardet.h>

#include <cctype>
#include <cerrno>
#include <memory>
#include <string>

#include "tasks/subtitle/detail.h"
#include "tasks/subtitle/subtitle.h"

namespace llmd::subtitle {
namespace detail {

char32_t next_code_point(std::string_view s, std::size_t& i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  int extra = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if (b0 < 0x80) {
    ++i;
    return b0;
  } else if ((b0 & 0xE0) == 0xC0) {
    extra = 1, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    extra = 2, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    extra = 3, cp = b0 & 0x07, min = 0x10000;
  } else {
    ++i;
    return 0xFFFD;
  }
  if (i + extra >= s.size()) {  // truncated sequence
    ++i;
    return 0xFFFD;
  }
  for (int k = 1; k <= extra; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return 0xFFFD;
  }
  i += extra + 1;
  return cp;
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t at = i;
    const char32_t cp = next_code_point(s, i);
    // A real U+FFFD is three bytes; the error marker advances by one.
    if (cp == 0xFFFD && i - at != 3) return false;
  }
  return true;
}

}  // namespace detail

namespace {

Error bad_encoding(std::string msg) { return Error(ErrorCode::kInvalidArgument, std::move(msg), "invalid_encoding"); }

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

Result<std::string> from_utf16(std::string_view bytes, bool little_endian) {
  if (bytes.size() % 2 != 0) return fail(bad_encoding("UTF-16 text has an odd number of bytes"));
  const auto unit = [&](std::size_t k) -> char32_t {
    const auto a = static_cast<unsigned char>(bytes[k]), b = static_cast<unsigned char>(bytes[k + 1]);
    return little_endian ? (a | (b << 8)) : ((a << 8) | b);
  };
  std::string out;
  out.reserve(bytes.size());
  for (std::size_t k = 0; k < bytes.size(); k += 2) {
    char32_t cp = unit(k);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (k + 2 >= bytes.size()) return fail(bad_encoding("UTF-16 text ends inside a surrogate pair"));
      const char32_t low = unit(k + 2);
      if (low < 0xDC00 || low > 0xDFFF) {
        return fail(bad_encoding("invalid UTF-16 surrogate pair at byte " + std::to_string(k)));
      }
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
      k += 2;
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      return fail(bad_encoding("invalid UTF-16 surrogate at byte " + std::to_string(k)));
    }
    append_utf8(out, cp);
  }
  return out;
}

struct UchardetDeleter {
  void operator()(uchardet* u) const { uchardet_delete(u); }
};

// What uchardet thinks `bytes` are ("" when it has no idea).
std::string detect_charset(std::string_view bytes) {
  std::unique_ptr<uchardet, UchardetDeleter> detector(uchardet_new());
  if (!detector) return {};
  if (uchardet_handle_data(detector.get(), bytes.data(), bytes.size()) != 0) return {};
  uchardet_data_end(detector.get());
  const char* name = uchardet_get_charset(detector.get());
  return name != nullptr ? std::string(name) : std::string();
}

struct IconvCloser {
  iconv_t cd;
  ~IconvCloser() {
    if (cd != reinterpret_cast<iconv_t>(-1)) iconv_close(cd);
  }
};

// Strict conversion: any invalid or incomplete sequence is an error.
Result<std::string> from_gb18030(std::string_view bytes) {
  IconvCloser conv{iconv_open("UTF-8", "GB18030")};
  if (conv.cd == reinterpret_cast<iconv_t>(-1)) {
    return fail(ErrorCode::kInternal, "GB18030 decoding is not available (iconv)");
  }
  std::string out(bytes.size() * 2 + 16, '\0');
  char* in = const_cast<char*>(bytes.data());  // iconv's signature; it does not write the input
  std::size_t in_left = bytes.size();
  char* dst = out.data();
  std::size_t out_left = out.size();
  while (in_left > 0) {
    if (iconv(conv.cd, &in, &in_left, &dst, &out_left) == static_cast<std::size_t>(-1)) {
      if (errno == E2BIG) {
        const std::size_t used = out.size() - out_left;
        out.resize(out.size() * 2);
        dst = out.data() + used;
        out_left = out.size() - used;
        continue;
      }
      return fail(bad_encoding("the text is neither UTF-8 nor valid GBK/GB18030 (bad byte sequence at byte " +
                               std::to_string(bytes.size() - in_left) + ")"));
    }
  }
  out.resize(out.size() - out_left);
  return out;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool is_gb_charset(const std::string& name) {
  return name == "GB18030" || name == "GBK" || name == "GB2312" || name == "CP936" || name == "EUC-CN";
}

// uchardet's answers for short Chinese text are unreliable: it has called a
// two-line GBK file ISO-8859-16, WINDOWS-1252, UTF-8 or nothing. Those
// answers leave the question open; any other (WINDOWS-1251, SHIFT_JIS,
// BIG5, EUC-KR, ...) is a confident "not GBK".
bool is_inconclusive(const std::string& name) {
  return name.empty() || name == "ASCII" || name == "UTF-8" || name == "WINDOWS-1252" || name.starts_with("ISO-8859-");
}

// True when every non-ASCII byte pair is a GB2312 character (lead 0xA1-0xF7,
// trail 0xA1-0xFE) and most of them stand in runs of two or more, as Chinese
// text does. Latin-1 text fails: its accented letters stand alone between
// ASCII letters, and most are followed by a byte GB2312 never uses as a trail.
bool looks_like_gb2312_text(std::string_view bytes) {
  std::size_t pairs = 0, in_runs = 0, run = 0;
  const auto end_run = [&] {
    if (run >= 2) in_runs += run;
    run = 0;
  };
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const auto lead = static_cast<unsigned char>(bytes[i]);
    if (lead < 0x80) {
      end_run();
      continue;
    }
    if (i + 1 >= bytes.size()) return false;
    const auto trail = static_cast<unsigned char>(bytes[i + 1]);
    if (lead < 0xA1 || lead > 0xF7 || trail < 0xA1 || trail > 0xFE) return false;
    ++pairs;
    ++run;
    ++i;
  }
  end_run();
  return pairs >= 2 && in_runs * 4 >= pairs * 3;  // at least 75% in runs
}

Result<std::string> without_nul(std::string text) {
  if (text.find('\0') != std::string::npos) {
    return fail(bad_encoding("the text contains NUL characters (UTF-16 without a byte order mark is not supported)"));
  }
  return text;
}

}  // namespace

Result<std::string> to_utf8(std::string_view bytes) {
  if (bytes.starts_with("\xEF\xBB\xBF")) {
    bytes.remove_prefix(3);
    if (!detail::valid_utf8(bytes))
      return fail(bad_encoding("the text has a UTF-8 byte order mark but is not valid UTF-8"));
    return without_nul(std::string(bytes));
  }
  if (bytes.starts_with("\xFF\xFE")) {
    auto text = from_utf16(bytes.substr(2), true);
    if (!text) return text;
    return without_nul(std::move(*text));
  }
  if (bytes.starts_with("\xFE\xFF")) {
    auto text = from_utf16(bytes.substr(2), false);
    if (!text) return text;
    return without_nul(std::move(*text));
  }
  if (detail::valid_utf8(bytes)) return without_nul(std::string(bytes));
  const std::string charset = upper(detect_charset(bytes));
  if (!is_gb_charset(charset) && !(is_inconclusive(charset) && looks_like_gb2312_text(bytes))) {
    return fail(bad_encoding("the text is not UTF-8, UTF-16 with a byte order mark or GBK/GB18030" +
                             (charset.empty() ? std::string() : " (it looks like " + charset + ")")));
  }
  auto text = from_gb18030(bytes);
  if (!text) return text;
  return without_nul(std::move(*text));
}

}  // namespace llmd::subtitle
