#pragma once

#include <string_view>

namespace llmd {

#ifndef LLMD_VERSION
#define LLMD_VERSION "0.0.0-dev"
#endif
inline constexpr std::string_view kVersion = LLMD_VERSION;

}  // namespace llmd
