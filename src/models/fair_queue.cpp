#include "models/fair_queue.h"

#include <algorithm>

namespace llmd::models {

FairQueue::Ticket FairQueue::join(const std::string& caller) {
  const Ticket t = next_ticket_++;
  waiting_.push_back({t, caller});
  return t;
}

std::optional<std::size_t> FairQueue::pick(const std::deque<Waiter>& waiting,
                                           const std::map<std::string, std::uint64_t>& last_served) {
  // The first waiter (in arrival order) of the caller served longest ago;
  // scanning in arrival order makes ties go to the earliest arrival.
  std::optional<std::size_t> best;
  std::uint64_t best_turn = 0;
  for (std::size_t k = 0; k < waiting.size(); ++k) {
    const auto it = last_served.find(waiting[k].caller);
    const std::uint64_t turn = it == last_served.end() ? 0 : it->second;
    if (!best || turn < best_turn) {
      best = k;
      best_turn = turn;
      if (turn == 0) break;  // nobody goes before a caller never served
    }
  }
  return best;
}

std::optional<FairQueue::Ticket> FairQueue::next() const {
  const auto k = pick(waiting_, last_served_);
  if (!k) return std::nullopt;
  return waiting_[*k].ticket;
}

void FairQueue::served(Ticket t) {
  const auto it = std::find_if(waiting_.begin(), waiting_.end(), [t](const Waiter& w) { return w.ticket == t; });
  if (it == waiting_.end()) return;
  last_served_[it->caller] = ++turn_;
  waiting_.erase(it);
  forget_if_idle();
}

void FairQueue::leave(Ticket t) {
  std::erase_if(waiting_, [t](const Waiter& w) { return w.ticket == t; });
  forget_if_idle();
}

// Turns matter only among the waiting: once nobody waits, they start over
// (and the map does not grow with every caller ever seen).
void FairQueue::forget_if_idle() {
  if (waiting_.empty()) {
    last_served_.clear();
    turn_ = 0;
  }
}

std::size_t FairQueue::position(Ticket t) const {
  // Serve a copy until `t` comes up.
  std::deque<Waiter> waiting = waiting_;
  std::map<std::string, std::uint64_t> last = last_served_;
  std::uint64_t turn = turn_;
  for (std::size_t place = 1; !waiting.empty(); ++place) {
    const std::size_t k = *pick(waiting, last);
    if (waiting[k].ticket == t) return place;
    last[waiting[k].caller] = ++turn;
    waiting.erase(waiting.begin() + static_cast<std::ptrdiff_t>(k));
  }
  return 0;
}

}  // namespace llmd::models
