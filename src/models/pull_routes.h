// HTTP routes for getting and removing models on `llmd serve` (admin only):
//   POST   /api/v1/admin/models/pull            {source, name?, sha256?} -> 202 {pull}
//   GET    /api/v1/admin/models/pulls           -> {pulls: [...]}, newest first
//   GET    /api/v1/admin/models/pulls/{id}      -> {pull}
//   GET    /api/v1/admin/models/pulls/{id}/events  SSE: "progress" events, then
//          one of "done" / "failed" / "cancelled" with the pull, and the end
//   DELETE /api/v1/admin/models/pulls/{id}      cancel -> {pull}
//   GET    /api/v1/admin/models/hub?repo=hf:OWNER/REPO
//          -> the repository's GGUF quantisations with sizes (for the dialog)
//   DELETE /api/v1/admin/models/{name}          -> {deleted, name}; 409 while in use
// A pull is {id, source, state, files, model, done, total, resumed_from,
// bytes_per_second, eta_seconds, error, created_at}; see PullJobs.
#pragma once

#include <memory>

#include "http/router.h"
#include "http/worker_pool.h"
#include "models/hooks.h"
#include "models/hub.h"
#include "models/manager.h"
#include "models/pull_jobs.h"
#include "observe/log.h"

namespace llmd::models {

struct PullRoutesDeps {
  PullJobs& jobs;  // outlive the routes' requests
  Manager& manager;
  http::WorkerPool& pool;            // blocking work (the Hub's API, deleting files)
  std::shared_ptr<CallHooks> hooks;  // require_admin
  HubAccess hub;
  observe::Logger log;
};

void add_model_pull_routes(http::Router& router, PullRoutesDeps deps);

}  // namespace llmd::models
