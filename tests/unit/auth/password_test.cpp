#include "auth/password.h"

#include <gtest/gtest.h>

#include "auth/limiter.h"
#include "auth/service.h"
#include "auth/users.h"

namespace llmd::auth {
namespace {

TEST(Password, HashVerifiesAndIsBcrypt2b) {
  auto h = hash_password("correct horse", 10);
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_TRUE(h->starts_with("$2b$10$"));
  EXPECT_TRUE(verify_password("correct horse", *h));
  EXPECT_FALSE(verify_password("correct horsE", *h));
  EXPECT_NE(*h, hash_password("correct horse", 10).value());  // fresh salt
}

TEST(Password, LongerThan72BytesIsRefusedNotTruncated) {
  const std::string p72(72, 'a'), p73(73, 'a');
  EXPECT_TRUE(hash_password(p72, 10));
  auto r = hash_password(p73, 10);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, "password_too_long");
  EXPECT_FALSE(check_password(p73));
}

TEST(Password, MalformedHashNeverMatches) {
  EXPECT_FALSE(verify_password("x", ""));
  EXPECT_FALSE(verify_password("x", "$1$abc$def"));
  EXPECT_FALSE(verify_password("x", "*0"));
}

TEST(Fields, UsernameEmailPasswordRules) {
  EXPECT_TRUE(check_username("alice_01.b-c"));
  EXPECT_FALSE(check_username("al"));
  EXPECT_FALSE(check_username(std::string(33, 'a')));
  EXPECT_FALSE(check_username("alice'; DROP TABLE users;--"));
  EXPECT_FALSE(check_username("名字名字"));
  EXPECT_TRUE(check_email("a@b.cn"));
  EXPECT_FALSE(check_email("a@b"));
  EXPECT_FALSE(check_email("@b.cn"));
  EXPECT_FALSE(check_email("a@@b.cn"));
  EXPECT_FALSE(check_email("a b@c.cn"));
  EXPECT_FALSE(check_password("short"));
  EXPECT_TRUE(check_password("long enough"));
}

TEST(ApiKey, FormatAndHash) {
  const std::string k = generate_api_key();
  EXPECT_TRUE(k.starts_with("sk-"));
  EXPECT_EQ(k.size(), 46u);
  EXPECT_NE(k, generate_api_key());
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Like, WildcardsAreEscaped) { EXPECT_EQ(escape_like("50%_a\\b"), "50\\%\\_a\\\\b"); }

TEST(RateLimiter, AllowsBurstThenRefusesWithRetryAfter) {
  MemoryRateLimiter limiter;
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(limiter.take("k", 5)) << i;
  auto wait = limiter.take("k", 5);
  ASSERT_TRUE(wait);
  EXPECT_GE(*wait, 1);
  EXPECT_LE(*wait, 12);
  EXPECT_FALSE(limiter.take("other", 5));  // keys are independent
  EXPECT_FALSE(limiter.take("k", 0));      // 0 = unlimited
}

TEST(LoginThrottle, BlocksANameAfterTooManyFailures) {
  LoginThrottle t(3, std::chrono::seconds(60));
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(t.blocked("Alice", "10.0.0.1"));
    t.failed("Alice", "10.0.0.1");
  }
  EXPECT_TRUE(t.blocked("alice", "10.0.0.2"));  // by name, case-insensitive
  EXPECT_FALSE(t.blocked("bob", "10.0.0.1"));   // the IP has more room
  t.succeeded("alice");
  EXPECT_FALSE(t.blocked("alice", "10.0.0.1"));
}

}  // namespace
}  // namespace llmd::auth
