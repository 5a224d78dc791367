#include "auth/password.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <memory>

namespace llmd::auth {

Result<std::string> hash_password(std::string_view password, int cost) {
  if (password.size() > kMaxPasswordBytes) {
    return fail(ErrorCode::kInvalidArgument, "password must be at most 72 bytes", "password_too_long");
  }
  if (password.find('\0') != std::string_view::npos) {
    return fail(ErrorCode::kInvalidArgument, "password must not contain NUL characters", "invalid_password");
  }
  unsigned char random[16];
  if (RAND_bytes(random, sizeof random) != 1) return fail(ErrorCode::kInternal, "no randomness available");
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn("$2b$", static_cast<unsigned long>(cost < kMinBcryptCost ? kMinBcryptCost : cost),
                       reinterpret_cast<const char*>(random), sizeof random, salt, sizeof salt) == nullptr) {
    return fail(ErrorCode::kInternal, "cannot create a bcrypt salt");
  }
  auto data = std::make_unique<crypt_data>();
  const std::string pw(password);
  const char* out = crypt_rn(pw.c_str(), salt, data.get(), sizeof(crypt_data));
  if (out == nullptr || out[0] == '*') return fail(ErrorCode::kInternal, "bcrypt failed");
  std::string hash(out);
  OPENSSL_cleanse(data.get(), sizeof(crypt_data));
  return hash;
}

bool verify_password(std::string_view password, const std::string& hash) {
  if (password.size() > kMaxPasswordBytes || !hash.starts_with("$2b$") ||
      password.find('\0') != std::string_view::npos) {
    return false;
  }
  auto data = std::make_unique<crypt_data>();
  const std::string pw(password);
  const char* out = crypt_rn(pw.c_str(), hash.c_str(), data.get(), sizeof(crypt_data));
  if (out == nullptr || out[0] == '*') return false;
  const std::string computed(out);
  OPENSSL_cleanse(data.get(), sizeof(crypt_data));
  return computed.size() == hash.size() && CRYPTO_memcmp(computed.data(), hash.data(), hash.size()) == 0;
}

}  // namespace llmd::auth
