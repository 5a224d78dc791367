// Caps how many units of heavy work each user runs at once, so that one
// account cannot fill a shared pool and make everyone else wait.
//
//   auto slots = UserSlots::create(2);
//   auto slot = slots->try_acquire(user_id);   // nullopt: this user is at the cap
//   ... work ...                               // the slot is given back when it goes
//
// A Slot keeps its UserSlots alive (shared ownership), so it may outlive the
// object that created the UserSlots (a coroutine frame destroyed at
// shutdown). Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace llmd {

class UserSlots : public std::enable_shared_from_this<UserSlots> {
 public:
  // One held slot; movable, gives the slot back when destroyed.
  class Slot {
   public:
    Slot(Slot&& other) noexcept : owner_(std::move(other.owner_)), user_id_(other.user_id_) {}
    Slot& operator=(Slot&&) = delete;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() {
      if (owner_) owner_->give_back(user_id_);
    }

   private:
    friend class UserSlots;
    Slot(std::shared_ptr<UserSlots> owner, std::int64_t user_id) : owner_(std::move(owner)), user_id_(user_id) {}
    std::shared_ptr<UserSlots> owner_;
    std::int64_t user_id_;
  };

  // `per_user` slots for each user (at least 1).
  static std::shared_ptr<UserSlots> create(std::size_t per_user) {
    return std::shared_ptr<UserSlots>(new UserSlots(per_user < 1 ? 1 : per_user));
  }

  // A slot for `user_id`, or nullopt when the user already holds per_user().
  std::optional<Slot> try_acquire(std::int64_t user_id) {
    std::lock_guard lock(mutex_);
    auto& held = held_[user_id];
    if (held >= per_user_) return std::nullopt;
    ++held;
    return Slot(shared_from_this(), user_id);
  }

  std::size_t per_user() const { return per_user_; }
  // Slots `user_id` holds now.
  std::size_t held(std::int64_t user_id) const {
    std::lock_guard lock(mutex_);
    auto it = held_.find(user_id);
    return it == held_.end() ? 0 : it->second;
  }

 private:
  explicit UserSlots(std::size_t per_user) : per_user_(per_user) {}
  void give_back(std::int64_t user_id) {
    std::lock_guard lock(mutex_);
    auto it = held_.find(user_id);
    if (it != held_.end() && --it->second == 0) held_.erase(it);  // no entry stays for an idle user
  }

  const std::size_t per_user_;
  mutable std::mutex mutex_;
  std::unordered_map<std::int64_t, std::size_t> held_;  // guarded by mutex_; entries > 0 only
};

}  // namespace llmd
