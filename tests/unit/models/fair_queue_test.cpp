// FairQueue: callers take turns; each caller's requests keep their order.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "models/fair_queue.h"

namespace llmd::models {
namespace {

// Serves the whole queue and returns the labels in the order served.
std::vector<std::string> drain(FairQueue& q, const std::map<FairQueue::Ticket, std::string>& label) {
  std::vector<std::string> order;
  while (auto t = q.next()) {
    order.push_back(label.at(*t));
    q.served(*t);
  }
  return order;
}

TEST(FairQueue, OneCallersRequestsGoInArrivalOrder) {
  FairQueue q;
  std::map<FairQueue::Ticket, std::string> label;
  for (const char* l : {"a1", "a2", "a3"}) label[q.join("user:1")] = l;
  EXPECT_EQ(drain(q, label), (std::vector<std::string>{"a1", "a2", "a3"}));
  EXPECT_TRUE(q.empty());
}

TEST(FairQueue, ALateCallerGoesBeforeTheRestOfAnEarlyCallersRequests) {
  FairQueue q;
  std::map<FairQueue::Ticket, std::string> label;
  for (const char* l : {"a1", "a2", "a3", "a4"}) label[q.join("A")] = l;
  label[q.join("B")] = "b1";
  EXPECT_EQ(drain(q, label), (std::vector<std::string>{"a1", "b1", "a2", "a3", "a4"}));
}

TEST(FairQueue, CallersTakeTurnsRoundRobin) {
  FairQueue q;
  std::map<FairQueue::Ticket, std::string> label;
  for (const char* l : {"a1", "a2", "a3"}) label[q.join("A")] = l;
  for (const char* l : {"b1", "b2"}) label[q.join("B")] = l;
  label[q.join("C")] = "c1";
  EXPECT_EQ(drain(q, label), (std::vector<std::string>{"a1", "b1", "c1", "a2", "b2", "a3"}));
}

TEST(FairQueue, ACallerJoiningMidwayWaitsForNoOneAlreadyServed) {
  FairQueue q;
  std::map<FairQueue::Ticket, std::string> label;
  for (const char* l : {"a1", "a2", "a3"}) label[q.join("A")] = l;
  q.served(*q.next());  // a1
  label[q.join("B")] = "b1";
  EXPECT_EQ(label.at(*q.next()), "b1");
}

TEST(FairQueue, PositionIsThePlaceInTheServingOrder) {
  FairQueue q;
  const auto a1 = q.join("A");
  const auto a2 = q.join("A");
  const auto a3 = q.join("A");
  const auto b1 = q.join("B");
  EXPECT_EQ(q.position(a1), 1u);
  EXPECT_EQ(q.position(b1), 2u);
  EXPECT_EQ(q.position(a2), 3u);
  EXPECT_EQ(q.position(a3), 4u);
  q.leave(a1);  // gave up: everyone moves up
  EXPECT_EQ(q.position(a2), 1u);
  EXPECT_EQ(q.position(b1), 2u);
  EXPECT_EQ(q.position(a1), 0u);
  EXPECT_EQ(q.size(), 3u);
}

TEST(FairQueue, LeavingOrServingAnUnknownTicketChangesNothing) {
  FairQueue q;
  const auto a1 = q.join("A");
  q.leave(a1 + 100);
  q.served(a1 + 100);
  EXPECT_EQ(q.next(), a1);
  EXPECT_EQ(q.size(), 1u);
}

TEST(FairQueue, TurnsStartOverOnceNobodyWaits) {
  FairQueue q;
  q.served(q.join("A"));  // A served, queue empty: forgotten
  const auto b1 = q.join("B");
  q.join("A");
  EXPECT_EQ(q.next(), b1);  // arrival order again, A is not held back
}

}  // namespace
}  // namespace llmd::models
