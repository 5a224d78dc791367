// Why the gateway refused or failed a model call: the one place that reads
// the reason strings the manager (manager.cpp) and the HTTP client
// (http/client.cpp) put in their errors.
#pragma once

#include "core/error.h"

namespace llmd::models {

enum class Refusal {
  kModelNotFound,  // no such model
  kModelStarting,  // loading: retry shortly
  kModelError,     // it failed to load
  kMaxLoaded,      // no room to load it
  kQueueTimeout,   // busy: no slot came free while the request waited
  kInsufficientMemory,
  kNoHealthyInstance,
  kShuttingDown,
  kUnreachable,     // the worker could not be reached
  kTimeout,         // no (complete) reply in time
  kWorkerFailed,    // the worker answered 5xx or broke off
  kWorkerRejected,  // the worker answered 4xx (the request itself)
};

// The refusal an error of the manager or of the HTTP client stands for.
Refusal refusal_of(const Error& e);

// True for the refusals the manager gives before any worker is called.
constexpr bool is_manager_refusal(Refusal r) {
  return r == Refusal::kModelNotFound || r == Refusal::kModelStarting || r == Refusal::kModelError ||
         r == Refusal::kMaxLoaded || r == Refusal::kQueueTimeout || r == Refusal::kInsufficientMemory ||
         r == Refusal::kNoHealthyInstance || r == Refusal::kShuttingDown;
}

}  // namespace llmd::models
