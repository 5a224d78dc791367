// The requests waiting for a busy model, served fairly by caller: the caller
// whose last request was let through longest ago goes next (one who has not
// been served yet goes first), each caller's own requests in arrival order.
// One user's fifty queued requests therefore take turns with another user's
// one instead of going before it.
//
// Pure logic, no locking (the Manager's mutex guards it).
//   FairQueue q;
//   auto t = q.join("user:7");      // q.position(t): 1 = next
//   if (q.next() == t && free_slot) q.served(t);   // else wait; q.leave(t) on giving up
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>

namespace llmd::models {

class FairQueue {
 public:
  using Ticket = std::uint64_t;

  // Queues one request of `caller` ("" is a caller too: the anonymous one).
  Ticket join(const std::string& caller);
  // The ticket to serve next; nullopt when nobody waits.
  std::optional<Ticket> next() const;
  // Takes `t` out as served: its caller goes to the back of the turn order.
  void served(Ticket t);
  // Takes `t` out unserved (its wait ended otherwise). Unknown tickets: no-op.
  void leave(Ticket t);
  // `t`'s place in the serving order as it stands: 1 = next; 0 = not waiting.
  std::size_t position(Ticket t) const;
  std::size_t size() const { return waiting_.size(); }
  bool empty() const { return waiting_.empty(); }

 private:
  struct Waiter {
    Ticket ticket = 0;
    std::string caller;
  };
  // The index in `waiting` of the next waiter, given when each caller was last served.
  static std::optional<std::size_t> pick(const std::deque<Waiter>& waiting,
                                         const std::map<std::string, std::uint64_t>& last_served);
  void forget_if_idle();

  std::deque<Waiter> waiting_;                        // arrival order
  std::map<std::string, std::uint64_t> last_served_;  // caller -> turn of their last service (absent: never)
  std::uint64_t turn_ = 0;
  Ticket next_ticket_ = 1;
};

}  // namespace llmd::models
