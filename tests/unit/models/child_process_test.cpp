// ChildProcess: a signal sent to a child the instant it is spawned must never
// run the parent's signal handlers (issue 13, item 1: a SIGTERM that reached a
// worker between fork() and execv() ran serve's inherited Asio handler, which
// wrote into the shared signal pipe and shut the whole backend down).
#include "models/child_process.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

namespace llmd::models {
namespace {

TEST(ChildProcess, SignalAtSpawnNeverReachesParentHandlers) {
  // The same handler serve installs: Asio's signal_set (a process-wide
  // handler that writes into a pipe the io_context reads).
  boost::asio::io_context io;
  boost::asio::signal_set signals(io, SIGTERM);
  std::atomic<int> delivered{0};
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) ++delivered;
  });

  constexpr int kIterations = 300;
  int killed_by_term = 0;
  for (int i = 0; i < kIterations; ++i) {
    auto child = ChildProcess::spawn({"/bin/sleep", "5"}, nullptr);
    ASSERT_TRUE(child.has_value());
    (*child)->signal(SIGTERM);  // as a model stop racing its start does
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!(*child)->exit_code() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_TRUE((*child)->exit_code().has_value()) << "iteration " << i;
    // Whether it died before or after exec, SIGTERM's default action ended it.
    if (*(*child)->exit_code() == 128 + SIGTERM) ++killed_by_term;
    io.poll();
    ASSERT_EQ(delivered.load(), 0) << "the parent's SIGTERM handler ran at iteration " << i;
  }
  EXPECT_EQ(killed_by_term, kIterations);
  signals.cancel();
  io.poll();
}

}  // namespace
}  // namespace llmd::models
