// A bounded pool of threads for blocking work (database calls, bcrypt, big
// conversions, FFmpeg). I/O threads never block: they `co_await pool.run(f)`,
// which runs f on a pool thread and resumes the caller on its own executor.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace llmd::http {

class WorkerPool {
 public:
  explicit WorkerPool(std::size_t threads) : pool_(threads), threads_(threads) {}
  ~WorkerPool() { pool_.join(); }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs `f()` on a pool thread; its result (or exception) comes back to the
  // awaiting coroutine. Thread-safe.
  template <typename F>
  boost::asio::awaitable<std::invoke_result_t<F>> run(F f) {
    using R = std::invoke_result_t<F>;
    co_return co_await boost::asio::co_spawn(
        pool_.get_executor(),
        [fn = std::move(f)]() mutable -> boost::asio::awaitable<R> { co_return fn(); },
        boost::asio::use_awaitable);
  }

  // Runs `f()` on a pool thread without waiting for it.
  template <typename F>
  void post(F f) {
    boost::asio::post(pool_.get_executor(), std::move(f));
  }

  std::size_t threads() const { return threads_; }
  void stop() { pool_.stop(); }

 private:
  boost::asio::thread_pool pool_;
  std::size_t threads_;
};

}  // namespace llmd::http
