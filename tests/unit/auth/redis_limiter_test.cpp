// The shared rate limiter against a private redis-server.
#include "auth/redis_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "support/redis_server.h"

namespace llmd::auth {
namespace {

using store::redis::RedisClient;

std::unique_ptr<RedisRateLimiter> limiter_for(const testing::RedisServer& server, const std::string& prefix,
                                              RedisRateLimiter::Warn warn = {}) {
  auto url = store::redis::parse_redis_url(server.url());
  EXPECT_TRUE(url);
  return std::make_unique<RedisRateLimiter>(std::make_unique<RedisClient>(*url, RedisClient::Options{}),
                                            std::move(warn), prefix);
}

TEST(RedisUrl, ParsesHostPortPasswordAndDatabase) {
  auto u = store::redis::parse_redis_url("redis://:s3cret@cache.local:6380/2");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "cache.local");
  EXPECT_EQ(u->port, 6380);
  EXPECT_EQ(u->password, "s3cret");
  EXPECT_EQ(u->db, 2);
  auto d = store::redis::parse_redis_url("redis://localhost");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->port, 6379);
  EXPECT_EQ(d->db, 0);
  for (const char* bad : {"http://x", "redis://h:0/0", "redis://h:1/x"}) {
    EXPECT_FALSE(store::redis::parse_redis_url(bad)) << bad;
  }
}

class RedisLimiterTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.started()) << server_.error(); }
  testing::RedisServer server_;
};

TEST_F(RedisLimiterTest, InstancesShareOneBucket) {
  auto a = limiter_for(server_, "t1:");
  auto b = limiter_for(server_, "t1:");
  EXPECT_FALSE(a->take("ip:1.2.3.4", 5));
  EXPECT_FALSE(b->take("ip:1.2.3.4", 5));
  EXPECT_FALSE(a->take("ip:1.2.3.4", 5));
  EXPECT_FALSE(b->take("ip:1.2.3.4", 5));
  EXPECT_FALSE(a->take("ip:1.2.3.4", 5));
  auto refused = b->take("ip:1.2.3.4", 5);
  ASSERT_TRUE(refused);
  EXPECT_GE(*refused, 1);
  EXPECT_LE(*refused, 12);  // one token per 12 s at 5 per minute
  EXPECT_FALSE(a->take("ip:5.6.7.8", 5)) << "another key has its own bucket";
}

TEST_F(RedisLimiterTest, ParallelTakesNeverExceedTheLimit) {
  auto a = limiter_for(server_, "t2:");
  auto b = limiter_for(server_, "t2:");
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        if (!(t % 2 ? a : b)->take("user:7", 30)) ++allowed;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(allowed.load(), 30);  // 80 tries within well under 2 s: refill < 1
}

TEST_F(RedisLimiterTest, BucketRefillsOverTime) {
  auto a = limiter_for(server_, "t3:");
  for (int i = 0; i < 120; ++i) ASSERT_FALSE(a->take("k", 120)) << i;
  auto refused = a->take("k", 120);
  ASSERT_TRUE(refused);
  EXPECT_EQ(*refused, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // 2 per second
  EXPECT_FALSE(a->take("k", 120));
}

TEST_F(RedisLimiterTest, UnlimitedNeedsNoRedis) {
  auto a = limiter_for(server_, "t4:");
  server_.kill();
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(a->take("k", 0));
}

TEST_F(RedisLimiterTest, RedisDownFallsBackToPerInstanceLimitsAndWarnsOnce) {
  std::atomic<int> warnings{0};
  auto a = limiter_for(server_, "t5:", [&](const std::string&) { ++warnings; });
  EXPECT_FALSE(a->take("k", 3));  // through Redis
  server_.kill();
  const auto start = std::chrono::steady_clock::now();
  // The API stays up: the in-memory bucket decides now (a fresh one: 3 more).
  EXPECT_FALSE(a->take("k", 3));
  EXPECT_FALSE(a->take("k", 3));
  EXPECT_FALSE(a->take("k", 3));
  EXPECT_TRUE(a->take("k", 3));
  EXPECT_EQ(warnings.load(), 1);
  // ...and does not wait on the dead server for every request.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

}  // namespace
}  // namespace llmd::auth
