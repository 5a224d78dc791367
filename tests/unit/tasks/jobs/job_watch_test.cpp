#include "tasks/jobs/job_watch.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <thread>

namespace llmd::jobs {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Runs one wait(timeout) on a strand of a fresh io_context while `poke`
// runs on another thread; returns how long the wait took.
template <typename Poke>
Clock::duration timed_wait(JobWatchBoard& board, const std::string& job, std::chrono::milliseconds timeout, Poke poke,
                           bool poke_first = false) {
  net::io_context io;
  auto strand = net::make_strand(io);
  auto watch = board.watch(job, strand);
  if (poke_first) poke();
  Clock::duration waited{};
  net::co_spawn(
      strand,
      [&]() -> net::awaitable<void> {
        const auto start = Clock::now();
        co_await watch->wait(timeout);
        waited = Clock::now() - start;
      },
      net::detached);
  std::thread poker;
  if (!poke_first)
    poker = std::thread([&] {
      std::this_thread::sleep_for(50ms);
      poke();
    });
  io.run();
  if (poker.joinable()) poker.join();
  return waited;
}

TEST(JobWatch, NotifyWakesTheWaiterBeforeItsTimeout) {
  JobWatchBoard board;
  const auto waited = timed_wait(board, "job-1", 10s, [&] { board.notify("job-1"); });
  EXPECT_LT(waited, 5s);
}

TEST(JobWatch, ANotifyBeforeTheWaitIsNotLost) {
  JobWatchBoard board;
  const auto waited = timed_wait(
      board, "job-1", 10s, [&] { board.notify("job-1"); }, /*poke_first=*/true);
  EXPECT_LT(waited, 5s);
}

TEST(JobWatch, AnotherJobsNotifyDoesNotWakeIt) {
  JobWatchBoard board;
  const auto waited = timed_wait(board, "job-1", 300ms, [&] { board.notify("job-2"); });
  EXPECT_GE(waited, 300ms);
}

TEST(JobWatch, ADroppedWatchIsForgotten) {
  JobWatchBoard board;
  net::io_context io;
  { auto w = board.watch("job-1", io.get_executor()); }
  board.notify("job-1");  // nothing to wake, nothing crashes
  SUCCEED();
}

}  // namespace
}  // namespace llmd::jobs
