#include "billing/reply_allowance.h"

#include <algorithm>

namespace llmd::billing {

boost::asio::awaitable<Result<MeteredCall>> open_floor(http::WorkerPool& pool, Accounts& accounts,
                                                       const Pricing& pricing, MeterOpen what) {
  co_return co_await pool.run([&] { return MeteredCall::open(accounts, pricing, what); });
}

inference::Progress ReplyAllowance::watch(std::int64_t base_before) {
  return
      [this, base_before](const inference::Usage& so_far) { return keep_ahead(base_before, so_far.completion_tokens); };
}

boost::asio::awaitable<bool> ReplyAllowance::keep_ahead(std::int64_t base_before, std::int64_t completion) {
  const std::int64_t ceiling = base_before + max_completion_;  // the worker stops there by itself
  if (base_before + completion + kGrowMargin <= reserved_base_ || reserved_base_ >= ceiling) co_return true;
  const std::int64_t wanted = std::min(ceiling, base_before + completion + kGrowStep);
  const std::int64_t needed = std::min(ceiling, base_before + completion + 1);
  // The balance was short of a whole step last time: ask again only when
  // the next token needs it.
  if (balance_short_ && needed <= reserved_base_) co_return true;
  const Result<std::int64_t> grown = co_await pool_.run([&] { return grow_(wanted, needed); });
  if (grown) {
    balance_short_ = *grown < wanted;
    reserved_base_ = std::max(reserved_base_, *grown);
    co_return true;
  }
  // What is reserved still pays for the tokens reported so far; stop before
  // the reply passes it.
  stopped_ = true;
  co_return false;
}

}  // namespace llmd::billing
