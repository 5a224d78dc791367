#include "core/random_id.h"

#include <array>
#include <iterator>
#include <stdexcept>
#include <vector>

#include <openssl/rand.h>
#include <openssl/sha.h>

namespace llmd::core {
namespace {

template <typename Bytes>
std::string hex_of(const Bytes& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(std::size(bytes) * 2);
  for (unsigned char b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

}  // namespace

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
    throw std::runtime_error("the OS random generator failed");
  }
  return hex_of(raw);
}

std::string sha256_hex(std::string_view data) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
  return hex_of(digest);
}

}  // namespace llmd::core
