#include "tasks/jobs/job_watch.h"

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace llmd::jobs {

namespace net = boost::asio;

net::awaitable<void> JobWatch::wait(std::chrono::milliseconds timeout) {
  // A wake between the caller's last read and this point is not lost: it
  // left pending_ set.
  if (pending_.exchange(false)) co_return;
  timer_.expires_after(timeout);
  boost::system::error_code ec;
  co_await timer_.async_wait(net::redirect_error(net::use_awaitable, ec));
  pending_.store(false);
}

void JobWatch::wake(const std::shared_ptr<JobWatch>& self) {
  self->pending_.store(true);
  // The timer is only touched on its executor (the listener's strand); the
  // cancel runs after the listener's current step, so it cannot slip
  // between the pending_ check and the wait. The handler keeps the watch alive.
  net::post(self->executor_, [self] { self->timer_.cancel(); });
}

std::shared_ptr<JobWatch> JobWatchBoard::watch(const std::string& job_id, net::any_io_executor executor) {
  auto w = std::make_shared<JobWatch>(executor);
  std::lock_guard lock(mutex_);
  auto& list = watches_[job_id];
  std::erase_if(list, [](const auto& weak) { return weak.expired(); });
  list.push_back(w);
  return w;
}

void JobWatchBoard::notify(const std::string& job_id) {
  std::vector<std::shared_ptr<JobWatch>> live;
  {
    std::lock_guard lock(mutex_);
    auto it = watches_.find(job_id);
    if (it == watches_.end()) return;
    std::erase_if(it->second, [](const auto& weak) { return weak.expired(); });
    for (const auto& weak : it->second) {
      if (auto w = weak.lock()) live.push_back(std::move(w));
    }
    if (it->second.empty()) watches_.erase(it);
  }
  for (const auto& w : live) JobWatch::wake(w);
}

}  // namespace llmd::jobs
