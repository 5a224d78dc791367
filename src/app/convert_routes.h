// /api/v1/tasks/formats and /api/v1/tasks/convert (SPEC §4.4, §6 Convert):
// exact conversion by parsers, charged per SPEC §5 from the bytes in and out.
#pragma once

#include <functional>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "app/account_routes.h"
#include "billing/accounts.h"
#include "models/manager.h"

namespace llmd::app {

struct ConvertDeps {
  billing::Accounts& accounts;
  const billing::Pricing& pricing;
  http::WorkerPool& pool;
  observe::Logger log;
  // The repair path (options.repair): the model that recovers data from
  // input the parsers refuse. Empty model = repair unavailable (503).
  models::Manager& models;
  std::string repair_model;
  std::function<boost::asio::any_io_executor()> executor;
};

void add_convert_routes(http::Router& router, ConvertDeps deps);

}  // namespace llmd::app
