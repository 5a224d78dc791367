// Operational endpoints: GET /health (always 200 while the process runs, with
// a JSON summary), GET /ready (200 only when the database answers and the
// schema is current), GET /metrics (Prometheus text), and
// POST /api/v1/debug/echo (returns the JSON body it was sent; used by the
// gateway benchmark and by operators checking a proxy in front of llmd).
#pragma once

#include <chrono>
#include <functional>

#include <nlohmann/json.hpp>

#include "http/router.h"
#include "http/worker_pool.h"
#include "observe/metrics.h"
#include "store/database.h"

namespace llmd::api {

struct OpsDeps {
  store::Database& database;
  http::WorkerPool& pool;
  observe::Registry& metrics;
  std::chrono::steady_clock::time_point started;
  // The host's compute devices and each local instance's placement, as
  // /health shows them (empty: not shown).
  std::function<nlohmann::json()> hardware;
};

void add_ops_routes(http::Router& router, OpsDeps deps);

}  // namespace llmd::api
