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

TEST(LoginThrottle, BlocksThePairAfterTooManyFailures) {
  LoginThrottle t(3, std::chrono::seconds(60));
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(t.blocked("Alice", "10.0.0.1"));
    t.failed("Alice", "10.0.0.1");
  }
  auto wait = t.blocked("alice", "10.0.0.1");  // case-insensitive
  ASSERT_TRUE(wait);
  EXPECT_GE(*wait, 1);
  EXPECT_LE(*wait, 60);
  EXPECT_FALSE(t.blocked("bob", "10.0.0.1"));  // the address has more room
  t.succeeded("alice", "10.0.0.1");
  EXPECT_FALSE(t.blocked("alice", "10.0.0.1"));
}

// Issue 13 item 11: 10 wrong passwords from an attacker's address used to
// lock the name out everywhere for the whole window.
TEST(LoginThrottle, AnAttackersFailuresDoNotBlockTheOwnerElsewhere) {
  LoginThrottle t(LoginThrottleOptions{10, 50, 50, std::chrono::seconds(300)});
  for (int i = 0; i < 10; ++i) t.failed("admin", "203.0.113.7");
  EXPECT_TRUE(t.blocked("admin", "203.0.113.7"));
  EXPECT_FALSE(t.blocked("admin", "198.51.100.1")) << "the owner's own address is not blocked";
}

TEST(LoginThrottle, ManyAddressesSlowTheAccountButNeverLockACleanAddress) {
  LoginThrottle t(LoginThrottleOptions{10, 50, 50, std::chrono::seconds(300)});
  // A distributed guesser: 60 addresses, one failure each (over the account cap of 50).
  for (int i = 0; i < 60; ++i) {
    const std::string ip = "10.1.0." + std::to_string(i);
    ASSERT_FALSE(t.blocked("admin", ip)) << i;
    t.failed("admin", ip);
  }
  // Each guessing address now waits window / pair_failures (30 s) per try instead of getting 10 quick ones...
  auto wait = t.blocked("admin", "10.1.0.3");
  ASSERT_TRUE(wait);
  EXPECT_GE(*wait, 25);
  EXPECT_LE(*wait, 30);
  // ...while an address that never failed on the account (the owner) goes straight through.
  EXPECT_FALSE(t.blocked("admin", "192.0.2.10"));
  // Other accounts are untouched.
  EXPECT_FALSE(t.blocked("alice", "10.1.0.3"));
}

TEST(LoginThrottle, OneAddressGuessingManyNamesIsCappedAsAnAddress) {
  LoginThrottle t(LoginThrottleOptions{10, 50, 50, std::chrono::seconds(300)});
  for (int i = 0; i < 50; ++i) t.failed("user" + std::to_string(i), "10.2.0.1");
  EXPECT_TRUE(t.blocked("someone-else", "10.2.0.1"));
  EXPECT_FALSE(t.blocked("someone-else", "10.2.0.2"));
}

TEST(RateLimiter, APeriodOtherThanAMinute) {
  MemoryRateLimiter limiter;
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(limiter.take("r", 3, std::chrono::hours(1))) << i;
  auto wait = limiter.take("r", 3, std::chrono::hours(1));
  ASSERT_TRUE(wait);
  EXPECT_GT(*wait, 60) << "3 per hour refills one every 20 minutes";
  EXPECT_LE(*wait, 1200);
}

}  // namespace
}  // namespace llmd::auth
