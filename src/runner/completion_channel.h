// Carries one generation's output (or several choices of one prompt) from
// the engine thread to the coroutine that serves the HTTP request, without
// ever blocking either side.
//
//   auto ch = CompletionChannel::create(co_await asio::this_coro::executor);
//   auto handle = engine.submit(req, ch->callbacks(/*stream_text=*/true));
//   while (true) {
//     auto ev = co_await ch->next(std::chrono::seconds(5));
//     ... ev.text, ev.done, ev.timed_out ...
//   }
//
// The engine's callbacks append to a mutex-guarded buffer and post a wake-up
// to the coroutine's executor (a connection strand), where it cancels the
// timer the coroutine waits on. The coroutine checks the buffer before every
// wait and the wake-up runs on the same strand, so no wake-up is lost.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/error.h"
#include "runner/engine.h"

namespace llmd::runner {

class CompletionChannel : public std::enable_shared_from_this<CompletionChannel> {
 public:
  // `executor` must be the (strand) executor of the coroutine that calls
  // next(); `choices`: how many generations it carries (Engine::submit_choices).
  static std::shared_ptr<CompletionChannel> create(boost::asio::any_io_executor executor, std::size_t choices = 1);

  // Callbacks for Engine::submit (or one choice of submit_choices). With
  // `stream_text` false, text is not forwarded piece by piece (the final
  // Completion carries all of it). The callbacks keep the channel alive.
  GenerateCallbacks callbacks(bool stream_text, std::size_t choice = 0);

  struct Event {
    std::size_t choice = 0;                  // which generation it is about
    std::string text;                        // text produced since the last event
    std::optional<Result<Completion>> done;  // set once, with the final result
    std::optional<Usage> progress;           // usage so far, when it changed since the last event
    std::vector<TokenProb> probs;            // probabilities of the tokens sampled since the last event
    bool timed_out = false;                  // nothing arrived within the timeout
  };

  // Waits until text or a final result of some choice is available (the
  // choices take turns), or `timeout` passes. While token probabilities are
  // carried, an event holds one token's (with its text), as llama-server's
  // chunks do, however far the reader has fallen behind. Call from the coroutine on
  // the executor given to create(), one at a time.
  boost::asio::awaitable<Event> next(std::chrono::milliseconds timeout);

 private:
  // What one choice produced that next() has not taken yet.
  struct Pending {
    std::string text;
    std::optional<Result<Completion>> done;
    std::optional<Usage> progress;
    std::vector<TokenProb> probs;
    std::vector<std::size_t> prob_marks;  // text.size() when each of `probs` arrived
    bool progress_seen = false;           // the first progress woke next()
    bool any() const { return !text.empty() || done || progress; }
  };

  CompletionChannel(boost::asio::any_io_executor executor, std::size_t choices);
  void push_text(std::size_t choice, std::string_view text);
  void push_progress(std::size_t choice, const Usage& so_far);
  void push_done(std::size_t choice, Result<Completion> result);
  void wake();

  boost::asio::any_io_executor executor_;
  boost::asio::steady_timer timer_;  // only touched on executor_

  std::mutex mu_;
  std::vector<Pending> pending_;  // GUARDED_BY(mu_): one per choice
  std::size_t turn_ = 0;          // GUARDED_BY(mu_): the choice next() looks at first
  bool wake_posted_ = false;      // GUARDED_BY(mu_): a wake-up is queued
};

}  // namespace llmd::runner
