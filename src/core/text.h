// Small text helpers shared by every module.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmd::text {

// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool is_valid_utf8(std::string_view s);

// Byte offset of the first invalid UTF-8 sequence, or nullopt when valid.
std::optional<std::size_t> first_invalid_utf8(std::string_view s);

std::string_view trim(std::string_view s);
std::string to_lower(std::string_view s);
std::vector<std::string_view> split(std::string_view s, char sep);
// A list kept as one item per line (items hold no newline): "" is no items.
std::string join_lines(const std::vector<std::string>& items);
std::vector<std::string> split_lines(std::string_view text);

// Parses a whole string as a base-10 integer; nullopt on any junk or overflow.
std::optional<long long> parse_int(std::string_view s);

}  // namespace llmd::text
