// Unguessable identifiers from the OS random generator (OpenSSL RAND_bytes).
#pragma once

#include <cstddef>
#include <string>

namespace llmd::core {

// `bytes` random bytes as lower-case hex (2 * bytes characters). Throws
// std::runtime_error when the OS generator fails: no safe id exists then.
std::string random_hex(std::size_t bytes);

}  // namespace llmd::core
