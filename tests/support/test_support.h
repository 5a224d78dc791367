// Helpers for tests: temporary directories and free loopback ports.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace llmd::testing {

// A fresh directory under /tmp, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, close).
int free_port();

// Reads a whole file; empty string when it does not exist.
std::string read_file(const std::filesystem::path& p);
void write_file(const std::filesystem::path& p, const std::string& content);
// The file's inode number (0 when it does not exist): the same number before
// and after an operation means the file was moved, not copied.
std::uint64_t inode_of(const std::filesystem::path& p);

}  // namespace llmd::testing
