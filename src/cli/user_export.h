// Everything llmd stores about one user, as one JSON document, for a
// family's or a school's data request (`llmd admin export-user NAME`):
// profile, API keys (never the keys themselves), ledger, usage records,
// uploads and jobs (metadata), and every conversation in the format
// /api/v1/conversations/import takes.
#pragma once

#include <nlohmann/json.hpp>

#include "auth/users.h"
#include "config/config.h"
#include "core/error.h"
#include "store/database.h"

namespace llmd::cli {

Result<nlohmann::json> export_user(store::Database& db, const config::Config& config, const auth::User& user);

}  // namespace llmd::cli
