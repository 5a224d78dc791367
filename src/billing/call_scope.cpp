#include "billing/call_scope.h"

#include <algorithm>

#include "billing/allowances.h"
#include "core/text.h"

namespace llmd::billing {
namespace {

using store::Connection;
using store::Value;

bool listed(const std::vector<std::string>& list, const std::string& model) {
  return std::find(list.begin(), list.end(), model) != list.end();
}

}  // namespace

Result<void> CallScope::allows(const std::string& model) const {
  const char* refused_by = nullptr;
  if (group_models && !listed(*group_models, model)) {
    refused_by = "your groups";
  } else if (!key_models.empty() && !listed(key_models, model)) {
    refused_by = "this API key";
  }
  if (refused_by == nullptr) return {};
  return fail(ErrorCode::kPermissionDenied, "model '" + model + "' is not allowed for " + refused_by,
              "model_not_allowed");
}

Result<CallScope> resolve_scope(Accounts& accounts, std::int64_t user_id, std::optional<std::int64_t> api_key_id) {
  bool has_allowance = false;
  auto scope = accounts.database().with_connection<CallScope>([&](Connection& c) -> Result<CallScope> {
    CallScope scope;
    auto groups = c.query(
        "SELECT g.models, g.price_ratio, g.tpm, g.allowance_amount FROM user_groups g "
        "JOIN group_members m ON m.group_id = g.id WHERE m.user_id = ?",
        std::vector<Value>{user_id});
    if (!groups) return std::unexpected(groups.error());
    bool every_model = groups->empty();
    std::vector<std::string> allowed;
    for (const auto& g : *groups) {
      const std::vector<std::string> models = text::split_lines(g.text(0));
      if (models.empty()) every_model = true;
      allowed.insert(allowed.end(), models.begin(), models.end());
      scope.price_ratio = &g == &groups->front() ? g.real(1) : std::min(scope.price_ratio, g.real(1));
      if (g.integer(2) > 0 && (scope.tpm == 0 || g.integer(2) < scope.tpm)) scope.tpm = g.integer(2);
      has_allowance |= g.integer(3) > 0;
    }
    if (!every_model) scope.group_models = std::move(allowed);
    if (api_key_id) {
      auto key = c.query("SELECT models FROM api_keys WHERE id = ?", std::vector<Value>{*api_key_id});
      if (!key) return std::unexpected(key.error());
      if (key->empty()) return fail(ErrorCode::kUnauthenticated, "this API key was deleted", "invalid_api_key");
      scope.key_models = text::split_lines(key->front().text(0));
    }
    return scope;
  });
  // An allowance due now is credited before the call reserves, so the call
  // at the start of a period can already spend it.
  if (scope && has_allowance) LLMD_TRY(credit_allowances(accounts.database(), user_id, accounts.options().now()));
  return scope;
}

}  // namespace llmd::billing
