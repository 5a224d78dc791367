// URLs of the servers llmd talks to (mysql://, redis://):
//   scheme://[user[:password]@]host[:port][/path][?key=value&...]
// User, password, path and parameter values are percent-decoded. Each
// backend maps the parts onto its own settings and names its own errors.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace llmd::store {

struct ServiceUrl {
  bool has_userinfo = false;
  bool has_password = false;  // a ':' in the userinfo
  std::string user;
  std::string password;
  std::string host;         // empty = not given
  std::optional<int> port;  // 1..65535 when given
  std::string path;         // after the first '/', decoded
  std::vector<std::pair<std::string, std::string>> params;
};

// Errors: kInvalidArgument whose message says what is wrong ("not a
// mysql:// URL", "bad port", "bad percent-encoding in ...") and never
// repeats the password.
Result<ServiceUrl> parse_service_url(std::string_view url, std::string_view scheme);

}  // namespace llmd::store
