// Balancer: distribution per strategy, passive failure marking, probes.
#include <gtest/gtest.h>

#include <map>

#include "models/balancer.h"

namespace llmd::models {
namespace {

using namespace std::chrono_literals;
const auto kT0 = Balancer::Clock::time_point{} + 1000s;

std::map<std::string, int> run(Balancer& b, int n) {
  std::map<std::string, int> count;
  for (int i = 0; i < n; ++i) {
    auto id = b.acquire(kT0);
    EXPECT_TRUE(id);
    ++count[*id];
    b.release(*id, true, kT0);
  }
  return count;
}

TEST(Balancer, ParsesStrategyNames) {
  EXPECT_EQ(parse_strategy("round_robin"), Strategy::kRoundRobin);
  EXPECT_EQ(parse_strategy("weighted_round_robin"), Strategy::kWeightedRoundRobin);
  EXPECT_EQ(parse_strategy("least_connections"), Strategy::kLeastConnections);
  EXPECT_FALSE(parse_strategy("random"));
}

TEST(Balancer, RoundRobinRotatesEvenlyIgnoringWeights) {
  Balancer b(Strategy::kRoundRobin, {});
  b.add("a", 5);
  b.add("b", 1);
  b.add("c", 1);
  auto c = run(b, 300);
  EXPECT_EQ(c["a"], 100);
  EXPECT_EQ(c["b"], 100);
  EXPECT_EQ(c["c"], 100);
}

TEST(Balancer, WeightedRoundRobinFollowsWeights) {
  Balancer b(Strategy::kWeightedRoundRobin, {});
  b.add("a", 3);
  b.add("b", 1);
  auto c = run(b, 400);
  EXPECT_EQ(c["a"], 300);
  EXPECT_EQ(c["b"], 100);
}

TEST(Balancer, WeightedRoundRobinInterleavesSmoothly) {
  Balancer b(Strategy::kWeightedRoundRobin, {});
  b.add("a", 5);
  b.add("b", 1);
  b.add("c", 1);
  std::string seq;
  for (int i = 0; i < 7; ++i) {
    auto id = b.acquire(kT0);
    seq += *id;
    b.release(*id, true, kT0);
  }
  EXPECT_EQ(seq, "aabacaa");  // nginx's documented sequence for 5:1:1
}

TEST(Balancer, APeekBetweenPicksLeavesTheRotationAndCountsAsTheyAre) {
  Balancer b(Strategy::kWeightedRoundRobin, {});
  b.add("a", 5);
  b.add("b", 1);
  b.add("c", 1);
  std::string seq;
  for (int i = 0; i < 7; ++i) {
    EXPECT_TRUE(b.peek(kT0));  // a prompt counted before each request
    auto id = b.acquire(kT0);
    seq += *id;
    b.release(*id, true, kT0);
  }
  EXPECT_EQ(seq, "aabacaa");
  // The least busy instance; nothing in flight or picked for the peek.
  ASSERT_TRUE(b.acquire(kT0));  // a
  ASSERT_TRUE(b.acquire(kT0));  // a
  EXPECT_EQ(b.peek(kT0), "b");
  EXPECT_EQ(b.peek(kT0, {"b"}), "c");
  std::uint64_t picks = 0;
  for (const auto& v : b.snapshot(kT0)) picks += v.picks;
  EXPECT_EQ(picks, 9u);
  b.set_probe_result("a", false);
  b.set_probe_result("b", false);
  b.set_probe_result("c", false);
  EXPECT_FALSE(b.peek(kT0));
}

TEST(Balancer, LeastConnectionsPicksFewestInFlight) {
  Balancer b(Strategy::kLeastConnections, {});
  b.add("a", 1);
  b.add("b", 1);
  auto first = b.acquire(kT0);
  auto second = b.acquire(kT0);
  EXPECT_NE(*first, *second);  // spread while both are busy
  b.release(*first, true, kT0);
  EXPECT_EQ(*b.acquire(kT0), *first);  // the one that became free
}

TEST(Balancer, LeastConnectionsBreaksTiesByWeight) {
  Balancer b(Strategy::kLeastConnections, {});
  b.add("light", 1);
  b.add("heavy", 4);
  for (int i = 0; i < 10; ++i) {
    auto id = b.acquire(kT0);
    EXPECT_EQ(*id, "heavy");
    b.release(*id, true, kT0);
  }
}

TEST(Balancer, AFullInstanceGetsNoMoreUntilASlotFrees) {
  for (auto strategy : {Strategy::kRoundRobin, Strategy::kWeightedRoundRobin, Strategy::kLeastConnections}) {
    Balancer b(strategy, {});
    b.add("a", 1, 2);  // two slots
    b.add("b", 1, 1);  // one slot
    std::map<std::string, int> taken;
    for (int i = 0; i < 3; ++i) ++taken[*b.acquire(kT0)];
    EXPECT_EQ(taken, (std::map<std::string, int>{{"a", 2}, {"b", 1}}));
    EXPECT_FALSE(b.acquire(kT0)) << "every slot is taken";
    EXPECT_TRUE(b.has_eligible(kT0)) << "full is not unhealthy";
    EXPECT_FALSE(b.has_eligible(kT0, {"a", "b"}));
    EXPECT_TRUE(b.peek(kT0)) << "a side call needs no slot";
    b.release("b", true, kT0);
    EXPECT_EQ(b.acquire(kT0), "b");
  }
}

TEST(Balancer, CapacityZeroMeansNoLimit) {
  Balancer b(Strategy::kRoundRobin, {});
  b.add("remote", 1);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(b.acquire(kT0), "remote");
}

TEST(Balancer, FailuresTripAnInstanceUntilCooldownEnds) {
  Balancer b(Strategy::kRoundRobin, {.fail_threshold = 2, .cooldown = 10s});
  b.add("a", 1);
  b.add("b", 1);
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(*b.acquire(kT0, {"b"}), "a");
    b.release("a", false, kT0);
  }
  EXPECT_EQ(b.snapshot(kT0)[0].health, Health::kCooling);
  for (int i = 0; i < 5; ++i) {
    auto id = b.acquire(kT0 + 1s);
    EXPECT_EQ(*id, "b");
    b.release(*id, true, kT0 + 1s);
  }
  EXPECT_FALSE(b.acquire(kT0 + 1s, {"b"}));  // only the tripped one left
  auto later = b.acquire(kT0 + 11s, {"b"});  // cooldown over: it gets traffic again
  ASSERT_TRUE(later);
  EXPECT_EQ(*later, "a");
  b.release("a", true, kT0 + 11s);
  EXPECT_EQ(b.snapshot(kT0 + 11s)[0].consecutive_failures, 0);
}

TEST(Balancer, OneMoreFailureAfterCooldownTripsAgain) {
  Balancer b(Strategy::kRoundRobin, {.fail_threshold = 3, .cooldown = 10s});
  b.add("a", 1);
  for (int i = 0; i < 3; ++i) b.release(*b.acquire(kT0), false, kT0);
  EXPECT_FALSE(b.has_eligible(kT0 + 5s));
  b.release(*b.acquire(kT0 + 10s), false, kT0 + 10s);
  EXPECT_FALSE(b.has_eligible(kT0 + 15s));
  EXPECT_TRUE(b.has_eligible(kT0 + 20s));
}

TEST(Balancer, ProbeMarksDownAndBackUp) {
  Balancer b(Strategy::kLeastConnections, {});
  b.add("a", 1);
  b.add("b", 1);
  b.set_probe_result("a", false);
  for (int i = 0; i < 5; ++i) {
    auto id = b.acquire(kT0);
    EXPECT_EQ(*id, "b");
    b.release(*id, true, kT0);
  }
  EXPECT_EQ(b.snapshot(kT0)[0].health, Health::kDown);
  b.set_probe_result("a", true);
  auto c = run(b, 10);
  EXPECT_GT(c["a"], 0);
}

TEST(Balancer, NoInstancesMeansNoPick) {
  Balancer b(Strategy::kWeightedRoundRobin, {});
  EXPECT_FALSE(b.acquire(kT0));
  b.add("a", 1);
  b.remove("a");
  EXPECT_FALSE(b.acquire(kT0));
  EXPECT_EQ(b.size(), 0u);
}

}  // namespace
}  // namespace llmd::models
