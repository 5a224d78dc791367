#include "models/refusal.h"

#include <string_view>

namespace llmd::models {

Refusal refusal_of(const Error& e) {
  const std::string_view r = e.reason;
  if (r == "model_not_found") return Refusal::kModelNotFound;
  if (r == "model_starting") return Refusal::kModelStarting;
  if (r == "model_error") return Refusal::kModelError;
  if (r == "max_loaded" || r == "max_loaded_pinned") return Refusal::kMaxLoaded;
  if (r == "queue_timeout") return Refusal::kQueueTimeout;
  if (r == "insufficient_memory") return Refusal::kInsufficientMemory;
  if (r == "no_healthy_instance") return Refusal::kNoHealthyInstance;
  if (r == "shutting_down") return Refusal::kShuttingDown;
  if (r == "upstream_unreachable") return Refusal::kUnreachable;
  if (e.code == ErrorCode::kDeadlineExceeded) return Refusal::kTimeout;
  return Refusal::kWorkerFailed;
}

}  // namespace llmd::models
