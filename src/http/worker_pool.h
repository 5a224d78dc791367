// A bounded pool of threads for blocking work (database calls, bcrypt, big
// conversions, FFmpeg). I/O threads never block: they `co_await pool.run(f)`,
// which runs f on a pool thread and resumes the caller on its own executor.
//
// Shutdown: stop() asks running jobs to give up (through stop_token(), which
// long jobs check) and drops queued ones; join() then waits only for the
// running jobs. A dropped job's awaiting coroutine is destroyed through its
// executor, so stop, join and destroy a pool while the I/O context that its
// callers run on still exists.
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <stop_token>
#include <type_traits>
#include <utility>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
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
  // awaiting coroutine, on the coroutine's executor. Thread-safe.
  //
  // Pass lambdas that capture by reference only: g++ 12 destroys temporaries
  // of a full-expression containing co_await twice (a lambda capturing a
  // std::string by value was freed twice under ASan). The referents live in
  // the awaiting coroutine's frame, which outlives the call.
  template <typename Fn>
  boost::asio::awaitable<std::invoke_result_t<Fn&>> run(Fn&& fn_ref) {
    using F = std::decay_t<Fn>;
    using R = std::invoke_result_t<F&>;
    F f(std::forward<Fn>(fn_ref));
    if constexpr (std::is_void_v<R>) {
      co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(std::exception_ptr)>(
          [this](auto handler, F fn) {
            boost::asio::post(pool_, [h = std::move(handler), fn = std::move(fn)]() mutable {
              std::exception_ptr e;
              try {
                fn();
              } catch (...) {
                e = std::current_exception();
              }
              auto ex = boost::asio::get_associated_executor(h);
              boost::asio::dispatch(ex, [h = std::move(h), e]() mutable { std::move(h)(e); });
            });
          },
          boost::asio::use_awaitable, std::move(f));
    } else {
      std::optional<R> result = co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&,
                                                                     void(std::exception_ptr, std::optional<R>)>(
          [this](auto handler, F fn) {
            boost::asio::post(pool_, [h = std::move(handler), fn = std::move(fn)]() mutable {
              std::exception_ptr e;
              std::optional<R> r;
              try {
                r.emplace(fn());
              } catch (...) {
                e = std::current_exception();
              }
              auto ex = boost::asio::get_associated_executor(h);
              boost::asio::dispatch(
                  ex, [h = std::move(h), e, r = std::move(r)]() mutable { std::move(h)(e, std::move(r)); });
            });
          },
          boost::asio::use_awaitable, std::move(f));
      co_return std::move(*result);
    }
  }

  // Runs `f()` on a pool thread without waiting for it.
  template <typename F>
  void post(F f) {
    boost::asio::post(pool_, std::move(f));
  }

  std::size_t threads() const { return threads_; }

  // Requested by stop(); long jobs check it and return early (e.g. as
  // convert::Limits::cancel).
  std::stop_token stop_token() const { return stop_.get_token(); }
  // Requests stop of running jobs and drops the queued ones. Thread-safe.
  void stop() {
    stop_.request_stop();
    pool_.stop();
  }
  // Waits for the pool's threads: after stop(), for the jobs that were
  // running; otherwise for every queued job too.
  void join() { pool_.join(); }

 private:
  boost::asio::thread_pool pool_;
  std::size_t threads_;
  std::stop_source stop_;
};

}  // namespace llmd::http
