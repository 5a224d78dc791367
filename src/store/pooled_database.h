// The connection pool both SQL backends share: at most `max_size`
// connections, idle ones reused last-in first-out, new ones made on demand by
// the backend's factory (outside the lock), a caller waiting up to
// `wait` for a free one before getting kUnavailable "database_pool_exhausted"
// (not the busy reason: retrying a transaction would only wait again).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "store/database.h"

namespace llmd::store {

class PooledDatabase : public Database {
 public:
  using ConnectionFactory = std::function<Result<std::unique_ptr<Connection>>()>;

 protected:
  PooledDatabase(int max_size, ConnectionFactory make, std::chrono::seconds wait = std::chrono::seconds(30));

  // Puts an already opened connection into the pool (counts towards
  // max_size), e.g. the first one, opened eagerly so that a bad URL or path
  // fails at start rather than at the first request.
  void add_idle(std::unique_ptr<Connection> c);

  Result<Lease> acquire() final;
  void release(std::unique_ptr<Connection> c) final;

 private:
  const int max_size_;
  const ConnectionFactory make_;
  const std::chrono::seconds wait_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mutex_
  int created_ = 0;                                // guarded by mutex_
};

}  // namespace llmd::store
