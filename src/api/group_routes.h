// HTTP glue for groups (classes), their members, pools, exam keys and
// redemption codes (SPEC §4.5b). Teachers and administrators only, except
// POST /api/v1/auth/redeem (any user).
#pragma once

#include <string>

#include "auth/service.h"
#include "billing/groups.h"
#include "http/router.h"
#include "http/worker_pool.h"
#include "observe/log.h"

namespace llmd::api {

struct GroupDeps {
  billing::Groups& groups;
  auth::AuthService& auth;
  http::WorkerPool& pool;
  observe::Logger log;
  std::string time_zone;                // a new group's default (groups.time_zone)
  std::function<std::int64_t()> clock;  // unix seconds, for keys' budget periods
};

void add_group_routes(http::Router& router, GroupDeps deps);

}  // namespace llmd::api
