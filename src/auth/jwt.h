// JSON Web Tokens, HS256 only (RFC 7519 / 7515). The header must be exactly
// alg HS256 (typ JWT optional); `none`, RS*/ES*, `crit`, embedded keys
// (`jwk`, `jku`, `x5u`, `x5c`) are all rejected. exp, iat, nbf, iss and sub
// are checked. Comparison of signatures is constant-time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"

namespace llmd::auth {

inline constexpr std::size_t kMinJwtSecretBytes = 32;
inline constexpr std::string_view kJwtIssuer = "llmd";

struct JwtClaims {
  std::string subject;  // user id, decimal
  std::int64_t issued_at = 0;
  std::int64_t expires_at = 0;
  std::int64_t not_before = 0;  // 0 = not set
  std::int64_t epoch = 0;       // the user's token epoch at issue ("llmd_epoch"; absent = 0)
};

// Signs the claims (with iss = "llmd").
std::string sign_jwt(const JwtClaims& claims, std::string_view secret);

// Verifies signature and claims at time `now` (seconds since epoch), allowing
// `leeway_s` of clock skew. Errors: kUnauthenticated, reason invalid_token or
// token_expired, message safe to show.
Result<JwtClaims> verify_jwt(std::string_view token, std::string_view secret, std::int64_t now,
                             std::int64_t leeway_s = 30);

std::string base64url_encode(std::string_view bytes);
// Strict: no padding, no characters outside the URL-safe alphabet.
Result<std::string> base64url_decode(std::string_view text);

}  // namespace llmd::auth
