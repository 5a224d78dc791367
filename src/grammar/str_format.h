// Internal: a minimal stand-in for std::format, which g++ 12's library lacks.
// sformat("{} has {} items", name, n) replaces each "{}" with the next argument
// (strings as they are, numbers in decimal); "{{" and "}}" write a brace.
#pragma once

#include <concepts>
#include <string>
#include <string_view>
#include <vector>

namespace llmd::grammar::detail {

inline std::string to_piece(std::string_view s) { return std::string(s); }
inline std::string to_piece(const char* s) { return std::string(s); }
inline std::string to_piece(char c) { return std::string(1, c); }
inline std::string to_piece(std::integral auto v) { return std::to_string(v); }

std::string substitute(std::string_view pattern, const std::vector<std::string>& args);

template <typename... Args>
std::string sformat(std::string_view pattern, const Args&... args) {
  return substitute(pattern, std::vector<std::string>{to_piece(args)...});
}

}  // namespace llmd::grammar::detail
