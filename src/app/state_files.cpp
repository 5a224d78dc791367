#include "app/state_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "auth/service.h"
#include "core/text.h"

namespace llmd::app {
namespace {

Result<std::string> load_or_create(const std::string& data_dir, const char* name, const std::string& fresh) {
  const auto path = std::filesystem::path(data_dir) / name;
  {
    std::ifstream in(path);
    if (in) {
      std::stringstream ss;
      ss << in.rdbuf();
      std::string value(text::trim(ss.str()));
      if (!value.empty()) return value;
    }
  }
  // O_EXCL: two instances starting at once on one data_dir agree on one value.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string value(text::trim(ss.str()));
    if (!value.empty()) return value;
    return fail(ErrorCode::kUnavailable, std::string("cannot create ") + name + " in server.data_dir", "data_dir");
  }
  const std::string line = fresh + "\n";
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return fail(ErrorCode::kUnavailable, std::string("cannot write ") + name, "data_dir");
  return fresh;
}

}  // namespace

Result<std::string> load_or_create_jwt_secret(const std::string& data_dir) {
  return load_or_create(data_dir, "jwt_secret", auth::generate_secret());
}

Result<std::string> load_or_create_instance_id(const std::string& data_dir) {
  return load_or_create(data_dir, "instance_id", "llmd-" + auth::generate_secret().substr(0, 12));
}

}  // namespace llmd::app
