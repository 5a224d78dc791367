// What bounds one caller's model call besides the balance (SPEC §4.5b):
// the price ratio and model allowlists of the user's groups, the key's own
// model list, and the groups' tokens-per-minute limit. Resolved once per
// metered call, by MeteredCall::open(), which is the one path every
// model-using route goes through. Blocking (database). Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "billing/accounts.h"
#include "core/error.h"

namespace llmd::billing {

struct CallScope {
  double price_ratio = 1.0;  // the lowest of the user's groups' (1.0 outside any group)
  // Models the user's groups allow together (a model any of them allows);
  // nullopt when one of them (or no group) leaves every model open.
  std::optional<std::vector<std::string>> group_models;
  std::vector<std::string> key_models;  // the key's list; empty = any
  std::int64_t tpm = 0;                 // the lowest of the groups' tokens per minute; 0 = none

  // Whether `model` may be used: kPermissionDenied (model_not_allowed,
  // naming the model and which list refused it) when not.
  Result<void> allows(const std::string& model) const;
};

// The scope of `user_id` calling with `api_key_id` (or a session). Credits
// the user's allowances due now on the way (billing/allowances.h), so a
// call at the start of a period already has the new one.
Result<CallScope> resolve_scope(Accounts& accounts, std::int64_t user_id, std::optional<std::int64_t> api_key_id);

}  // namespace llmd::billing
