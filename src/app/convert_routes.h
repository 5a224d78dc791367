// /api/v1/tasks/formats and /api/v1/tasks/convert (SPEC §4.4, §6 Convert):
// exact conversion by parsers, charged per SPEC §5 from the bytes in and out.
#pragma once

#include "app/account_routes.h"
#include "billing/accounts.h"

namespace llmd::app {

struct ConvertDeps {
  billing::Accounts& accounts;
  const billing::Pricing& pricing;
  http::WorkerPool& pool;
  observe::Logger log;
};

void add_convert_routes(http::Router& router, ConvertDeps deps);

}  // namespace llmd::app
