// Unguessable identifiers from the OS random generator (OpenSSL RAND_bytes).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace llmd::core {

// `bytes` random bytes as lower-case hex (2 * bytes characters). Throws
// std::runtime_error when the OS generator fails: no safe id exists then.
std::string random_hex(std::size_t bytes);

// Lower-case hex SHA-256 of `data`: what is stored of a secret (API keys,
// redemption codes) so that the database never holds one.
std::string sha256_hex(std::string_view data);

}  // namespace llmd::core
