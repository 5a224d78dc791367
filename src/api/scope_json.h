// JSON of scoped API keys and groups (SPEC §4.5b), shared by the account
// and group routes: request bodies to typed scopes and settings, and the
// objects the API shows.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "auth/users.h"
#include "billing/groups.h"
#include "core/error.h"

namespace llmd::api {

// {expires_at?, budget?, budget_period?, models?, subnets?, rpm?}: each
// absent or null means no limit. Subnets must parse as CIDR networks.
// Errors: kInvalidArgument naming the field.
Result<auth::KeyScopes> key_scopes_from_json(const nlohmann::json& body);

// A key as listed: its scopes, and budget_used / budget_resets_at in the
// budget period current at `now` (in `time_zone`).
nlohmann::json key_json(const auth::ApiKeyInfo& key, const std::string& time_zone, std::int64_t now);

// `base` with the fields `body` has replaced: name, models (null = all),
// price_ratio, rpm, tpm, allowance ({amount, period} or null), time_zone.
Result<billing::GroupSettings> group_settings_from_json(const nlohmann::json& body, billing::GroupSettings base);

// {id, name, owner:{id, username}, models, price_ratio, rpm, tpm, allowance, time_zone, pool, members, created_at}
nlohmann::json group_json(const billing::Group& group);

}  // namespace llmd::api
