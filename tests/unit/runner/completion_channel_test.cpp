#include "runner/completion_channel.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace llmd::runner {
namespace {

namespace net = boost::asio;

TokenProb prob_of(llama_token token) {
  TokenProb p;
  p.token = token;
  p.logprob = -0.5f;
  return p;
}

// Drains every event the channel holds until the final result, as the HTTP
// stream does, on one io_context thread.
std::vector<CompletionChannel::Event> drain(net::io_context& io, CompletionChannel& channel) {
  auto fut = net::co_spawn(
      io,
      [&]() -> net::awaitable<std::vector<CompletionChannel::Event>> {
        std::vector<CompletionChannel::Event> events;
        while (events.empty() || !events.back().done) {
          auto ev = co_await channel.next(std::chrono::milliseconds(200));
          if (ev.timed_out) break;
          events.push_back(std::move(ev));
        }
        co_return events;
      },
      net::use_future);
  io.run();
  io.restart();
  return fut.get();
}

TEST(CompletionChannel, AReaderThatFellBehindStillGetsOneTokenAndItsTextPerEvent) {
  net::io_context io;
  auto channel = CompletionChannel::create(io.get_executor());
  GenerateCallbacks cb = channel->callbacks(/*stream_text=*/true);
  // Three tokens arrive before the reader looks; the middle one's text is
  // held back (say, a possible stop string) and goes out with the third's.
  cb.on_token_prob(prob_of(11));
  cb.on_text("Hel");
  cb.on_progress(Usage{4, 0, 1});
  cb.on_token_prob(prob_of(12));
  cb.on_progress(Usage{4, 0, 2});
  cb.on_token_prob(prob_of(13));
  cb.on_text("lo!");
  cb.on_progress(Usage{4, 0, 3});
  Completion done;
  done.text = "Hello!";
  done.usage = Usage{4, 0, 3};
  cb.on_done(done);

  const auto events = drain(io, *channel);
  ASSERT_EQ(events.size(), 3u);
  const std::vector<llama_token> tokens{11, 12, 13};
  const std::vector<std::string> texts{"Hel", "", "lo!"};
  for (std::size_t i = 0; i < 3; ++i) {
    ASSERT_EQ(events[i].probs.size(), 1u) << i;
    EXPECT_EQ(events[i].probs[0].token, tokens[i]);
    EXPECT_EQ(events[i].text, texts[i]);
  }
  // The usage and the result come with the last token, not ahead of it.
  EXPECT_FALSE(events[0].progress);
  EXPECT_FALSE(events[0].done);
  ASSERT_TRUE(events[2].progress);
  EXPECT_EQ(events[2].progress->completion_tokens, 3);
  ASSERT_TRUE(events[2].done);
  EXPECT_EQ((*events[2].done)->text, "Hello!");
}

TEST(CompletionChannel, WithoutProbabilitiesTextIsCoalescedIntoOneEvent) {
  net::io_context io;
  auto channel = CompletionChannel::create(io.get_executor());
  GenerateCallbacks cb = channel->callbacks(/*stream_text=*/true);
  cb.on_text("a");
  cb.on_text("b");
  cb.on_text("c");
  cb.on_done(Completion{});
  const auto events = drain(io, *channel);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].text, "abc");
  EXPECT_TRUE(events[0].done);
}

}  // namespace
}  // namespace llmd::runner
