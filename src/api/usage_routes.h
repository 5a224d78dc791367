// Usage records, newest first, as {records, total}:
//   GET /api/v1/auth/usage   the caller's own (what the web UI's dashboard charts)
//   GET /api/v1/admin/usage  anyone's (admin; adds user_id and instance; ?user_id=)
// Query: since, until (unix seconds), task, model, limit (1..1000; default
// 200 for the caller's view, 50 for the admin's), offset.
#pragma once

#include "api/account_routes.h"
#include "http/router.h"

namespace llmd::api {

void add_usage_routes(http::Router& router, AccountDeps deps);

}  // namespace llmd::api
