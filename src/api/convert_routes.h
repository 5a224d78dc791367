// /api/v1/tasks/formats and /api/v1/tasks/convert (SPEC §4.4, §6 Convert):
// exact conversion by parsers, charged per SPEC §5 from the bytes in and out.
//
// A conversion costs work only when the caller can pay: the lowest possible
// charge (the input alone) is reserved first, the exact one settled after.
// Conversions run on their own pool (task_pool), cancelled at shutdown, and
// one user runs at most `heavy_per_user` large ones at once (more -> 429).
#pragma once

#include <string>

#include "api/account_routes.h"
#include "billing/accounts.h"
#include "inference/model_client.h"

namespace llmd::api {

struct ConvertDeps {
  billing::Accounts& accounts;
  const billing::Pricing& pricing;
  http::WorkerPool& pool;       // database calls
  http::WorkerPool& task_pool;  // the conversions themselves
  std::size_t heavy_per_user;   // large conversions (kHeavyInputBytes and up) one user may run at once
  observe::Logger log;
  // The repair path (options.repair): the model that recovers data from
  // input the parsers refuse. Empty model = repair unavailable (503).
  inference::ModelClient& models;
  std::string repair_model;
};

void add_convert_routes(http::Router& router, ConvertDeps deps);

}  // namespace llmd::api
