// Password hashing with bcrypt ($2b$, libxcrypt). Blocking and deliberately
// slow (cost 12 ~ 0.25 s): call from the worker pool.
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"

namespace llmd::auth {

inline constexpr int kMinBcryptCost = 10;
inline constexpr std::size_t kMaxPasswordBytes = 72;  // bcrypt ignores the rest: refuse, never truncate

// Hashes `password` with a fresh random salt. Errors: kInvalidArgument when
// the password is longer than 72 bytes; kInternal if the library fails.
Result<std::string> hash_password(std::string_view password, int cost);

// True when `password` matches `hash`. A malformed hash never matches.
bool verify_password(std::string_view password, const std::string& hash);

}  // namespace llmd::auth
