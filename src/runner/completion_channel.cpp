#include "runner/completion_channel.h"

#include <algorithm>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace llmd::runner {

namespace net = boost::asio;

CompletionChannel::CompletionChannel(net::any_io_executor executor, std::size_t choices)
    : executor_(executor), timer_(executor), pending_(std::max<std::size_t>(choices, 1)) {}

std::shared_ptr<CompletionChannel> CompletionChannel::create(net::any_io_executor executor, std::size_t choices) {
  return std::shared_ptr<CompletionChannel>(new CompletionChannel(std::move(executor), choices));
}

GenerateCallbacks CompletionChannel::callbacks(bool stream_text, std::size_t choice) {
  GenerateCallbacks cb;
  auto self = shared_from_this();
  if (stream_text) {
    cb.on_text = [self, choice](std::string_view text) {
      self->push_text(choice, text);
      return true;
    };
    cb.on_progress = [self, choice](const Usage& so_far) { self->push_progress(choice, so_far); };
    // Probabilities ride along with the next text; they never wake the reader.
    cb.on_token_prob = [self, choice](const TokenProb& prob) {
      std::lock_guard lock(self->mu_);
      Pending& p = self->pending_[choice];
      p.probs.push_back(prob);
      p.prob_marks.push_back(p.text.size());
    };
  }
  cb.on_done = [self, choice](Result<Completion> r) { self->push_done(choice, std::move(r)); };
  return cb;
}

void CompletionChannel::push_text(std::size_t choice, std::string_view text) {
  {
    std::lock_guard lock(mu_);
    pending_[choice].text += text;
  }
  wake();
}

void CompletionChannel::push_progress(std::size_t choice, const Usage& so_far) {
  bool first = false;
  {
    std::lock_guard lock(mu_);
    pending_[choice].progress = so_far;
    first = !std::exchange(pending_[choice].progress_seen, true);
  }
  // Later progress rides along with the next text; the first one wakes the
  // reader so the prompt's size is known before any text can be sent.
  if (first) wake();
}

void CompletionChannel::push_done(std::size_t choice, Result<Completion> result) {
  {
    std::lock_guard lock(mu_);
    pending_[choice].done = std::move(result);
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
      for (std::size_t i = 0; i < pending_.size(); ++i) {
        const std::size_t choice = (turn_ + i) % pending_.size();
        Pending& p = pending_[choice];
        if (!p.any()) continue;
        turn_ = (choice + 1) % pending_.size();
        Event ev;
        ev.choice = choice;
        if (p.probs.size() > 1) {
          // The first token alone: its text ends where the next token's
          // begins; progress and the result wait for the last token.
          const std::size_t cut = p.prob_marks[1];
          ev.text = p.text.substr(0, cut);
          p.text.erase(0, cut);
          ev.probs.push_back(std::move(p.probs.front()));
          p.probs.erase(p.probs.begin());
          p.prob_marks.erase(p.prob_marks.begin());
          for (auto& mark : p.prob_marks) mark -= cut;
          co_return ev;
        }
        p.prob_marks.clear();
        ev.text.swap(p.text);
        ev.probs.swap(p.probs);
        ev.progress = std::exchange(p.progress, std::nullopt);
        ev.done = std::exchange(p.done, std::nullopt);
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
