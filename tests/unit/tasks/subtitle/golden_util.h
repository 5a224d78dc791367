// Golden-file helpers for the subtitle tests. Set LLMD_UPDATE_GOLDEN=1 to
// rewrite the expected files from the current output (then review the diff).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace llmd::subtitle::testing {

inline std::filesystem::path golden_dir() {
  return std::filesystem::path(LLMD_SOURCE_DIR) / "tests/unit/tasks/subtitle/golden";
}

inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot read " << path;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline bool updating_golden() {
  const char* v = std::getenv("LLMD_UPDATE_GOLDEN");
  return v != nullptr && std::string(v) == "1";
}

// Compares `actual` with the golden file (or rewrites it when updating).
inline void expect_golden(const std::filesystem::path& path, const std::string& actual) {
  if (updating_golden()) {
    std::ofstream(path, std::ios::binary) << actual;
    return;
  }
  ASSERT_TRUE(std::filesystem::exists(path)) << "missing golden file " << path;
  EXPECT_EQ(read_bytes(path), actual) << "differs from " << path;
}

}  // namespace llmd::subtitle::testing
