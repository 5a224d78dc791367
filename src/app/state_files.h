// Small generated state kept in server.data_dir: the JWT secret and this
// instance's id. Created once (mode 0600), read on every start.
#pragma once

#include <string>

#include "core/error.h"

namespace llmd::app {

// data_dir/jwt_secret, generated (32 random bytes, base64url) when missing.
Result<std::string> load_or_create_jwt_secret(const std::string& data_dir);

// data_dir/instance_id, a random name for this backend instance.
Result<std::string> load_or_create_instance_id(const std::string& data_dir);

}  // namespace llmd::app
