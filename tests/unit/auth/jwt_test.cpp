#include "auth/jwt.h"

#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <nlohmann/json.hpp>

namespace llmd::auth {
namespace {

const std::string kSecret = "0123456789abcdef0123456789abcdef-secret";
constexpr std::int64_t kNow = 1'800'000'000;

std::string hmac(const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

// Builds a token from raw header/payload JSON, signed with `key` (or unsigned).
std::string forge(const nlohmann::json& header, const nlohmann::json& payload, const std::string& key,
                  bool sign = true) {
  const std::string input = base64url_encode(header.dump()) + "." + base64url_encode(payload.dump());
  return input + "." + (sign ? base64url_encode(hmac(key, input)) : "");
}

nlohmann::json good_payload() { return {{"iss", "llmd"}, {"sub", "7"}, {"iat", kNow}, {"exp", kNow + 3600}}; }

TEST(Jwt, SignedTokenVerifies) {
  const std::string t = sign_jwt({"7", kNow, kNow + 3600, 0}, kSecret);
  auto c = verify_jwt(t, kSecret, kNow + 10);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->subject, "7");
  EXPECT_EQ(c->expires_at, kNow + 3600);
}

TEST(Jwt, TheTokenEpochRoundTripsAndDefaultsToZero) {
  auto with_epoch = verify_jwt(sign_jwt(JwtClaims{"7", kNow, kNow + 60, 0, 3}, kSecret), kSecret, kNow);
  ASSERT_TRUE(with_epoch);
  EXPECT_EQ(with_epoch->epoch, 3);
  auto without = verify_jwt(sign_jwt(JwtClaims{"7", kNow, kNow + 60, 0}, kSecret), kSecret, kNow);
  ASSERT_TRUE(without);
  EXPECT_EQ(without->epoch, 0);
  auto payload = good_payload();
  payload["llmd_epoch"] = "1";
  EXPECT_FALSE(verify_jwt(forge({{"alg", "HS256"}}, payload, kSecret), kSecret, kNow)) << "must be an integer";
}

TEST(Jwt, AlgNoneIsRejected) {
  const auto t = forge({{"alg", "none"}, {"typ", "JWT"}}, good_payload(), kSecret, /*sign=*/false);
  EXPECT_FALSE(verify_jwt(t, kSecret, kNow));
  // Even when "signed" with the real secret, alg must be HS256.
  EXPECT_FALSE(verify_jwt(forge({{"alg", "none"}}, good_payload(), kSecret), kSecret, kNow));
}

TEST(Jwt, OtherAlgorithmsAndHeaderTricksAreRejected) {
  for (const auto& header : {nlohmann::json{{"alg", "RS256"}}, nlohmann::json{{"alg", "HS512"}},
                             nlohmann::json{{"alg", "HS256"}, {"crit", {"exp"}}},
                             nlohmann::json{{"alg", "HS256"}, {"jku", "http://evil/keys"}},
                             nlohmann::json{{"alg", "HS256"}, {"jwk", {{"kty", "oct"}}}},
                             nlohmann::json{{"typ", "JWT"}}, nlohmann::json{{"alg", "hs256"}}}) {
    EXPECT_FALSE(verify_jwt(forge(header, good_payload(), kSecret), kSecret, kNow)) << header.dump();
  }
}

TEST(Jwt, TokenSignedWithAnotherSecretIsRejected) {
  const std::string t = sign_jwt({"7", kNow, kNow + 3600, 0}, "another-secret-another-secret-xx");
  auto r = verify_jwt(t, kSecret, kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated);
}

TEST(Jwt, ExpiredAndNotYetValidAreRejected) {
  const std::string t = sign_jwt({"7", kNow, kNow + 60, 0}, kSecret);
  auto expired = verify_jwt(t, kSecret, kNow + 60 + 31);
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.error().reason, "token_expired");
  EXPECT_TRUE(verify_jwt(t, kSecret, kNow + 60 + 29));  // within leeway
  const std::string future = sign_jwt({"7", kNow + 600, kNow + 3600, 0}, kSecret);
  EXPECT_FALSE(verify_jwt(future, kSecret, kNow));
  const std::string nbf = sign_jwt({"7", kNow, kNow + 3600, kNow + 600}, kSecret);
  EXPECT_FALSE(verify_jwt(nbf, kSecret, kNow));
  EXPECT_TRUE(verify_jwt(nbf, kSecret, kNow + 600));
}

TEST(Jwt, MissingOrWrongClaimsAreRejected) {
  auto p = good_payload();
  p["iss"] = "someone-else";
  EXPECT_FALSE(verify_jwt(forge({{"alg", "HS256"}}, p, kSecret), kSecret, kNow));
  p = good_payload();
  p.erase("exp");
  EXPECT_FALSE(verify_jwt(forge({{"alg", "HS256"}}, p, kSecret), kSecret, kNow));
  p = good_payload();
  p["sub"] = "1 OR 1=1";
  EXPECT_FALSE(verify_jwt(forge({{"alg", "HS256"}}, p, kSecret), kSecret, kNow));
  p = good_payload();
  p["exp"] = "never";
  EXPECT_FALSE(verify_jwt(forge({{"alg", "HS256"}}, p, kSecret), kSecret, kNow));
}

TEST(Jwt, TamperedPayloadBreaksTheSignature) {
  std::string t = sign_jwt({"7", kNow, kNow + 3600, 0}, kSecret);
  const auto dot = t.find('.');
  auto forged = good_payload();
  forged["sub"] = "1";
  t = t.substr(0, dot + 1) + base64url_encode(forged.dump()) + t.substr(t.rfind('.'));
  EXPECT_FALSE(verify_jwt(t, kSecret, kNow));
}

TEST(Jwt, GarbageIsRejectedWithoutCrashing) {
  for (const std::string& g : std::vector<std::string>{"", ".", "..", "a.b.c", "a.b.c.d", "eyJ.eyJ.",
                                                       std::string(5000, 'a'), std::string("\xff\xfe.\x00.x", 6)}) {
    EXPECT_FALSE(verify_jwt(g, kSecret, kNow));
  }
}

TEST(Base64Url, RoundTripsAndIsStrict) {
  for (const std::string& s :
       std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\0\xff", 2)}) {
    EXPECT_EQ(base64url_decode(base64url_encode(s)).value(), s);
  }
  EXPECT_FALSE(base64url_decode("Zm9v="));  // padding
  EXPECT_FALSE(base64url_decode("Zm+v"));   // not URL-safe
  EXPECT_FALSE(base64url_decode("Zh"));     // non-canonical trailing bits
}

}  // namespace
}  // namespace llmd::auth
