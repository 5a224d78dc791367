// The periodic upkeep of the conversations table, on a thread of its own:
// conversations not updated for `retention_days` are deleted (0 = kept), and
// replies still "pending" long after their turn began (the instance that was
// writing them stopped) are marked failed, so they no longer block
// regenerate and edit.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "conversations/conversation_store.h"

namespace llmd::conversations {

struct RetentionOptions {
  int retention_days = 0;
  std::chrono::milliseconds interval{std::chrono::minutes(10)};
  // A reply pending this long is taken for one whose writer is gone.
  std::chrono::milliseconds pending_timeout{std::chrono::hours(1)};
};

struct SweepResult {
  std::int64_t conversations_removed = 0;
  std::int64_t replies_failed = 0;
};

// Told each sweep's result, or its error message.
using SweepReport = std::function<void(const Result<SweepResult>&)>;

// One sweep at `now_ms` (unix milliseconds).
Result<SweepResult> sweep(ConversationStore& store, const RetentionOptions& options, std::int64_t now_ms);

class RetentionSweeper {
 public:
  // Sweeps at once, then every options.interval, until destroyed.
  RetentionSweeper(ConversationStore& store, RetentionOptions options, SweepReport report);
  ~RetentionSweeper();
  RetentionSweeper(const RetentionSweeper&) = delete;
  RetentionSweeper& operator=(const RetentionSweeper&) = delete;

 private:
  void run();

  ConversationStore& store_;
  RetentionOptions options_;
  SweepReport report_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace llmd::conversations
