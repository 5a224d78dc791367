#include "store/pooled_database.h"

namespace llmd::store {

PooledDatabase::PooledDatabase(int max_size, ConnectionFactory make, std::chrono::seconds wait)
    : max_size_(max_size < 1 ? 1 : max_size), make_(std::move(make)), wait_(wait) {}

void PooledDatabase::add_idle(std::unique_ptr<Connection> c) {
  {
    std::lock_guard lock(mutex_);
    ++created_;
    idle_.push_back(std::move(c));
  }
  available_.notify_one();
}

Result<Database::Lease> PooledDatabase::acquire() {
  std::unique_lock lock(mutex_);
  if (!available_.wait_for(lock, wait_, [&] { return !idle_.empty() || created_ < max_size_; })) {
    return fail(ErrorCode::kUnavailable, "no database connection available", "database_pool_exhausted");
  }
  if (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    return Lease(this, std::move(c));
  }
  ++created_;
  lock.unlock();
  auto made = make_();
  if (!made) {
    {
      std::lock_guard relock(mutex_);
      --created_;
    }
    available_.notify_one();
    return std::unexpected(made.error());
  }
  return Lease(this, std::move(*made));
}

void PooledDatabase::release(std::unique_ptr<Connection> c) {
  {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(c));
  }
  available_.notify_one();
}

}  // namespace llmd::store
