#include "auth/jwt.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <nlohmann/json.hpp>

#include "core/text.h"

namespace llmd::auth {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

Error invalid(std::string message = "invalid token") {
  return Error(ErrorCode::kUnauthenticated, std::move(message), "invalid_token");
}

const nlohmann::json kHeader = {{"alg", "HS256"}, {"typ", "JWT"}};

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    if (rest == 2) out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

Result<std::string> base64url_decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
  };
  if (text.size() % 4 == 1) return std::unexpected(invalid());
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (char c : text) {
    const int v = value(c);
    if (v < 0) return std::unexpected(invalid());
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  // Leftover bits must be zero (canonical encoding only).
  if (bits > 0 && (buffer & ((1u << bits) - 1)) != 0) return std::unexpected(invalid());
  return out;
}

std::string sign_jwt(const JwtClaims& c, std::string_view secret) {
  nlohmann::json payload = {{"iss", kJwtIssuer}, {"sub", c.subject}, {"iat", c.issued_at}, {"exp", c.expires_at}};
  if (c.not_before != 0) payload["nbf"] = c.not_before;
  if (c.epoch != 0) payload["llmd_epoch"] = c.epoch;
  const std::string signing_input = base64url_encode(kHeader.dump()) + "." + base64url_encode(payload.dump());
  return signing_input + "." + base64url_encode(hmac_sha256(secret, signing_input));
}

Result<JwtClaims> verify_jwt(std::string_view token, std::string_view secret, std::int64_t now, std::int64_t leeway_s) {
  if (token.size() > 4096) return std::unexpected(invalid());
  const auto first = token.find('.');
  const auto second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    return std::unexpected(invalid());
  }
  const std::string_view header_b64 = token.substr(0, first);
  const std::string_view payload_b64 = token.substr(first + 1, second - first - 1);
  const std::string_view signature_b64 = token.substr(second + 1);

  // Verify the signature before looking at anything the token claims.
  auto signature = base64url_decode(signature_b64);
  if (!signature) return std::unexpected(invalid());
  const std::string expected = hmac_sha256(secret, token.substr(0, second));
  if (signature->size() != expected.size() || CRYPTO_memcmp(signature->data(), expected.data(), expected.size()) != 0) {
    return std::unexpected(invalid());
  }

  auto header_text = base64url_decode(header_b64);
  auto payload_text = base64url_decode(payload_b64);
  if (!header_text || !payload_text) return std::unexpected(invalid());
  const auto header = nlohmann::json::parse(*header_text, nullptr, false);
  const auto payload = nlohmann::json::parse(*payload_text, nullptr, false);
  if (!header.is_object() || !payload.is_object()) return std::unexpected(invalid());
  for (const auto& [k, v] : header.items()) {
    if (k == "alg") {
      if (v != "HS256") return std::unexpected(invalid("unsupported token algorithm"));
    } else if (k == "typ") {
      if (v != "JWT") return std::unexpected(invalid());
    } else if (k != "kid") {  // crit, jwk, jku, x5u, x5c, b64, zip ... are refused
      return std::unexpected(invalid());
    }
  }
  if (!header.contains("alg")) return std::unexpected(invalid());

  auto int_claim = [&](const char* name, bool required, std::int64_t& out) -> bool {
    if (!payload.contains(name)) return !required;
    if (!payload[name].is_number_integer()) return false;
    out = payload[name].get<std::int64_t>();
    return true;
  };
  JwtClaims c;
  if (!payload.contains("iss") || payload["iss"] != kJwtIssuer) return std::unexpected(invalid());
  if (!payload.contains("sub") || !payload["sub"].is_string()) return std::unexpected(invalid());
  c.subject = payload["sub"].get<std::string>();
  if (!text::parse_int(c.subject)) return std::unexpected(invalid());
  if (!int_claim("iat", true, c.issued_at) || !int_claim("exp", true, c.expires_at) ||
      !int_claim("nbf", false, c.not_before) || !int_claim("llmd_epoch", false, c.epoch)) {
    return std::unexpected(invalid());
  }
  if (now >= c.expires_at + leeway_s) {
    return fail(ErrorCode::kUnauthenticated, "token expired; log in again", "token_expired");
  }
  if (c.issued_at > now + leeway_s || (c.not_before != 0 && c.not_before > now + leeway_s)) {
    return std::unexpected(invalid("token not valid yet"));
  }
  return c;
}

}  // namespace llmd::auth
