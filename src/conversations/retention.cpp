#include "conversations/retention.h"

namespace llmd::conversations {

Result<SweepResult> sweep(ConversationStore& store, const RetentionOptions& options, std::int64_t now_ms) {
  SweepResult result;
  if (options.retention_days > 0) {
    const std::int64_t keep_ms = std::int64_t{options.retention_days} * 24 * 3600 * 1000;
    auto removed = store.remove_older_than(now_ms - keep_ms);
    if (!removed) return std::unexpected(removed.error());
    result.conversations_removed = *removed;
  }
  auto failed = store.fail_pending_replies(now_ms - options.pending_timeout.count());
  if (!failed) return std::unexpected(failed.error());
  result.replies_failed = *failed;
  return result;
}

RetentionSweeper::RetentionSweeper(ConversationStore& store, RetentionOptions options, SweepReport report)
    : store_(store), options_(options), report_(std::move(report)), thread_([this] { run(); }) {}

RetentionSweeper::~RetentionSweeper() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void RetentionSweeper::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    const auto now =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    const auto result = sweep(store_, options_, now);
    if (report_) report_(result);
    lock.lock();
    wake_.wait_for(lock, options_.interval, [this] { return stopping_; });
  }
}

}  // namespace llmd::conversations
