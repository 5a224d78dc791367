// Carries one generation's output from the engine thread to the coroutine
// that serves the HTTP request, without ever blocking either side.
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
  // `executor` must be the (strand) executor of the coroutine that calls next().
  static std::shared_ptr<CompletionChannel> create(boost::asio::any_io_executor executor);

  // Callbacks for Engine::submit. With `stream_text` false, text is not
  // forwarded piece by piece (the final Completion carries all of it).
  // The callbacks keep the channel alive.
  GenerateCallbacks callbacks(bool stream_text);

  struct Event {
    std::string text;                        // text produced since the last event
    std::optional<Result<Completion>> done;  // set once, with the final result
    std::optional<Usage> progress;           // usage so far, when it changed since the last event
    std::vector<TokenProb> probs;            // probabilities of the tokens sampled since the last event
    bool timed_out = false;                  // nothing arrived within the timeout
  };

  // Waits until text or the final result is available, or `timeout` passes.
  // Call from the coroutine on the executor given to create(), one at a time.
  boost::asio::awaitable<Event> next(std::chrono::milliseconds timeout);

 private:
  explicit CompletionChannel(boost::asio::any_io_executor executor);
  void push_text(std::string_view text);
  void push_progress(const Usage& so_far);
  void push_done(Result<Completion> result);
  void wake();

  boost::asio::any_io_executor executor_;
  boost::asio::steady_timer timer_;  // only touched on executor_

  std::mutex mu_;
  std::string text_;                         // GUARDED_BY(mu_)
  std::optional<Result<Completion>> done_;   // GUARDED_BY(mu_)
  std::optional<Usage> progress_;            // GUARDED_BY(mu_): not yet taken by next()
  std::vector<TokenProb> probs_;             // GUARDED_BY(mu_): not yet taken by next()
  bool progress_seen_ = false;               // GUARDED_BY(mu_): the first progress woke next()
  bool wake_posted_ = false;                 // GUARDED_BY(mu_): a wake-up is queued
};

}  // namespace llmd::runner
