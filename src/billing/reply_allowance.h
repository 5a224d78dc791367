// Keeps a task's reservation ahead of its model's reply while the reply
// streams, so a call reserves about what it will be charged instead of its
// worst case (SPEC §5):
//
//   ReplyAllowance allowance(pool, cover_with(meter), reserved_base, max_completion);
//   auto reply = co_await models.chat_streamed(request, tag, allowance.watch(billed_before_reply));
//   if (allowance.stopped()) ...   // the balance ran out: the reply was cut there
//
// The reservation pays for `reserved_base` base tokens. When a reply comes
// within kGrowMargin tokens of that, the reservation grows by kGrowStep (one
// database update, on the pool; never past the call's max_completion), or
// by what the balance still pays; when it pays not even the next token, the
// generation stops there. What is billed (the tokens the worker reported)
// never passes what was reserved.
#pragma once

#include <cstdint>
#include <functional>

#include "billing/meter.h"
#include "core/error.h"
#include "http/worker_pool.h"
#include "inference/model_client.h"

namespace llmd::billing {

// The completion tokens a task's reply is first reserved for; the
// allowance grows from there as the reply streams.
inline constexpr std::int64_t kFirstReplyAllowance = 128;

// Opens a task's metered call for its floor (what.worst_base_tokens) before
// the user's content is counted: counting may start the model, which a
// caller who cannot pay the floor must not make happen. Grow it with
// MeteredCall::grow once the content is counted.
boost::asio::awaitable<Result<MeteredCall>> open_floor(http::WorkerPool& pool, Accounts& accounts,
                                                       const Pricing& pricing, MeterOpen what);

// The Grow of a ReplyAllowance for `meter` (MeteredCall::cover).
inline std::function<Result<std::int64_t>(std::int64_t, std::int64_t)> cover_with(MeteredCall& meter) {
  return [&meter](std::int64_t wanted, std::int64_t needed) { return meter.cover(wanted, needed); };
}

// Releases a call that will not go on; `why` is the caller's answer.
template <typename T>
boost::asio::awaitable<Result<T>> refused(http::WorkerPool& pool, MeteredCall& meter, Error why) {
  co_await pool.run([&] { return meter.release(); });
  co_return std::unexpected(std::move(why));
}

class ReplyAllowance {
 public:
  static constexpr std::int64_t kGrowStep = 64;
  static constexpr std::int64_t kGrowMargin = 8;

  // Grows the reservation to pay for `wanted` base tokens, or as many as
  // the balance pays if that is at least `needed`; returns the base tokens
  // it pays for (MeteredCall::cover). Runs on the pool.
  using Grow = std::function<Result<std::int64_t>(std::int64_t wanted, std::int64_t needed)>;

  ReplyAllowance(http::WorkerPool& pool, Grow grow, std::int64_t reserved_base, std::int64_t max_completion)
      : pool_(pool), grow_(std::move(grow)), reserved_base_(reserved_base), max_completion_(max_completion) {}
  ReplyAllowance(const ReplyAllowance&) = delete;
  ReplyAllowance& operator=(const ReplyAllowance&) = delete;

  // The progress observer of one call whose billed tokens before its reply
  // (what earlier calls used and this call's billed prompt) are
  // `base_before`. It refers to this object: keep it alive until the call
  // ends.
  inference::Progress watch(std::int64_t base_before);

  // A growth was refused: a reply was cut short for the balance.
  bool stopped() const { return stopped_; }
  // The base tokens the reservation pays for now.
  std::int64_t reserved_base() const { return reserved_base_; }

 private:
  boost::asio::awaitable<bool> keep_ahead(std::int64_t base_before, std::int64_t completion);

  http::WorkerPool& pool_;
  Grow grow_;
  std::int64_t reserved_base_;
  std::int64_t max_completion_;
  bool balance_short_ = false;
  bool stopped_ = false;
};

}  // namespace llmd::billing
