#include "runner/completion_channel.h"

#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace llmd::runner {

namespace net = boost::asio;

CompletionChannel::CompletionChannel(net::any_io_executor executor)
    : executor_(executor), timer_(executor) {}

std::shared_ptr<CompletionChannel> CompletionChannel::create(net::any_io_executor executor) {
  return std::shared_ptr<CompletionChannel>(new CompletionChannel(std::move(executor)));
}

GenerateCallbacks CompletionChannel::callbacks(bool stream_text) {
  GenerateCallbacks cb;
  auto self = shared_from_this();
  if (stream_text) {
    cb.on_text = [self](std::string_view text) {
      self->push_text(text);
      return true;
    };
  }
  if (stream_text) cb.on_progress = [self](const Usage& so_far) { self->push_progress(so_far); };
  if (stream_text) {
    // Probabilities ride along with the next text; they never wake the reader.
    cb.on_token_prob = [self](const TokenProb& prob) {
      std::lock_guard lock(self->mu_);
      self->probs_.push_back(prob);
    };
  }
  cb.on_done = [self](Result<Completion> r) { self->push_done(std::move(r)); };
  return cb;
}

void CompletionChannel::push_text(std::string_view text) {
  {
    std::lock_guard lock(mu_);
    text_ += text;
  }
  wake();
}

void CompletionChannel::push_progress(const Usage& so_far) {
  bool first = false;
  {
    std::lock_guard lock(mu_);
    progress_ = so_far;
    first = !std::exchange(progress_seen_, true);
  }
  // Later progress rides along with the next text; the first one wakes the
  // reader so the prompt's size is known before any text can be sent.
  if (first) wake();
}

void CompletionChannel::push_done(Result<Completion> result) {
  {
    std::lock_guard lock(mu_);
    done_ = std::move(result);
  }
  wake();
}

void CompletionChannel::wake() {
  {
    std::lock_guard lock(mu_);
    // One queued wake-up is enough: it runs after everything pushed so far.
    if (wake_posted_) return;
    wake_posted_ = true;
  }
  net::post(executor_, [self = shared_from_this()] {
    {
      std::lock_guard lock(self->mu_);
      self->wake_posted_ = false;
    }
    self->timer_.cancel();
  });
}

net::awaitable<CompletionChannel::Event> CompletionChannel::next(std::chrono::milliseconds timeout) {
  bool waited = false;
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (!text_.empty() || done_ || progress_) {
        Event ev;
        ev.text.swap(text_);
        ev.probs.swap(probs_);
        ev.progress = std::exchange(progress_, std::nullopt);
        if (done_) {
          ev.done = std::move(done_);
          done_.reset();
        }
        co_return ev;
      }
    }
    if (waited) {
      Event ev;
      ev.timed_out = true;
      co_return ev;
    }
    // Anything pushed after the check above posts a wake-up that can only
    // run once this coroutine is suspended in the wait, so it cancels it.
    timer_.expires_after(timeout);
    auto [ec] = co_await timer_.async_wait(net::as_tuple(net::use_awaitable));
    waited = !ec;  // cancelled = woken; expired = timed out (recheck once)
  }
}

}  // namespace llmd::runner
