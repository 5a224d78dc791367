#include "api/scope_json.h"

#include "billing/calendar.h"
#include "http/client_address.h"
#include "http/json_body.h"

namespace llmd::api {
namespace {

using nlohmann::json;

Error invalid(const std::string& field, const std::string& message) {
  return Error(ErrorCode::kInvalidArgument, field + " " + message, "invalid_field");
}

// An integer field that may be absent or null (nullopt).
Result<std::optional<std::int64_t>> optional_int(const json& body, const char* name, std::int64_t min,
                                                 std::int64_t max) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<std::int64_t>();
  auto v = http::int_field(body, name, true, 0, min, max);
  if (!v) return std::unexpected(v.error());
  return std::optional<std::int64_t>(*v);
}

// A list of strings that may be absent or null (nullopt).
Result<std::optional<std::vector<std::string>>> optional_strings(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<std::vector<std::string>>();
  if (!it->is_array() || it->size() > 100)
    return std::unexpected(invalid(name, "must be a list of at most 100 strings"));
  std::vector<std::string> out;
  for (const auto& v : *it) {
    if (!v.is_string()) return std::unexpected(invalid(name, "must be a list of strings"));
    out.push_back(v.get<std::string>());
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

json optional_json(const std::optional<std::int64_t>& v) { return v ? json(*v) : json(nullptr); }

constexpr std::int64_t kMaxTokens = std::int64_t{1} << 40;

}  // namespace

Result<auth::KeyScopes> key_scopes_from_json(const json& body) {
  auth::KeyScopes s;
  auto expires = optional_int(body, "expires_at", 0, std::int64_t{1} << 40);
  if (!expires) return std::unexpected(expires.error());
  s.expires_at = *expires;
  auto budget = optional_int(body, "budget", 0, kMaxTokens);
  if (!budget) return std::unexpected(budget.error());
  s.budget = *budget;
  if (auto it = body.find("budget_period"); it != body.end() && !it->is_null()) {
    if (!it->is_string() || !billing::parse_period(it->get<std::string>())) {
      return std::unexpected(invalid("budget_period", "must be day, week or month"));
    }
    s.budget_period = it->get<std::string>();
  }
  auto models = optional_strings(body, "models");
  if (!models) return std::unexpected(models.error());
  s.models = models->value_or(std::vector<std::string>{});
  auto subnets = optional_strings(body, "subnets");
  if (!subnets) return std::unexpected(subnets.error());
  s.subnets = subnets->value_or(std::vector<std::string>{});
  for (const auto& net : s.subnets) {
    if (auto parsed = http::Network::parse(net); !parsed) {
      return std::unexpected(invalid("subnets", "has '" + net.substr(0, 64) + "', which is not a network (CIDR)"));
    }
  }
  auto rpm = http::int_field(body, "rpm", false, 0, 0, 1000000);
  if (!rpm) return std::unexpected(rpm.error());
  s.rpm = *rpm;
  return s;
}

json key_json(const auth::ApiKeyInfo& k, const std::string& time_zone, std::int64_t now) {
  const auth::KeyScopes& s = k.scopes;
  json j = {{"id", k.id},
            {"name", k.name},
            {"prefix", k.prefix},
            {"created_at", k.created_at},
            {"last_used_at", optional_json(k.last_used_at)},
            {"expires_at", optional_json(s.expires_at)},
            {"budget", optional_json(s.budget)},
            {"budget_period", s.budget_period.empty() ? json(nullptr) : json(s.budget_period)},
            {"models", s.models.empty() ? json(nullptr) : json(s.models)},
            {"subnets", s.subnets.empty() ? json(nullptr) : json(s.subnets)},
            {"rpm", s.rpm},
            {"group_id", optional_json(s.group_id)}};
  std::int64_t used = k.budget_used;
  json resets_at = nullptr;
  if (const auto period = billing::parse_period(s.budget_period)) {
    if (auto span = billing::period_at(*period, time_zone, now)) {
      if (span->key != k.budget_period_key) used = 0;  // a new period that no call has opened yet
      resets_at = span->end;
    }
  }
  j["budget_used"] = used;
  j["budget_reserved"] = k.budget_reserved;
  j["budget_resets_at"] = resets_at;
  return j;
}

Result<billing::GroupSettings> group_settings_from_json(const json& body, billing::GroupSettings s) {
  if (body.contains("name")) {
    auto name = http::string_field(body, "name", true);
    if (!name) return std::unexpected(name.error());
    s.name = *name;
  }
  if (body.contains("models")) {
    auto models = optional_strings(body, "models");
    if (!models) return std::unexpected(models.error());
    s.models = *models;
  }
  if (auto it = body.find("price_ratio"); it != body.end()) {
    if (!it->is_number()) return std::unexpected(invalid("price_ratio", "must be a number"));
    s.price_ratio = it->get<double>();
  }
  auto rpm = http::int_field(body, "rpm", false, s.rpm, 0, 1000000);
  if (!rpm) return std::unexpected(rpm.error());
  s.rpm = *rpm;
  auto tpm = http::int_field(body, "tpm", false, s.tpm, 0, kMaxTokens);
  if (!tpm) return std::unexpected(tpm.error());
  s.tpm = *tpm;
  if (auto it = body.find("allowance"); it != body.end()) {
    if (it->is_null()) {
      s.allowance_amount = 0;
      s.allowance_period.clear();
    } else if (!it->is_object()) {
      return std::unexpected(invalid("allowance", "must be {amount, period} or null"));
    } else {
      auto amount = http::int_field(*it, "amount", true, 0, 0, kMaxTokens);
      if (!amount) return std::unexpected(amount.error());
      auto period = http::string_field(*it, "period", true);
      if (!period) return std::unexpected(period.error());
      s.allowance_amount = *amount;
      s.allowance_period = *period;
    }
  }
  if (body.contains("time_zone")) {
    auto zone = http::string_field(body, "time_zone", true);
    if (!zone) return std::unexpected(zone.error());
    s.time_zone = *zone;
  }
  return s;
}

json group_json(const billing::Group& g) {
  const billing::GroupSettings& s = g.settings;
  return {{"id", g.id},
          {"name", s.name},
          {"owner", {{"id", g.owner_id}, {"username", g.owner_name}}},
          {"models", s.models ? json(*s.models) : json(nullptr)},
          {"price_ratio", s.price_ratio},
          {"rpm", s.rpm},
          {"tpm", s.tpm},
          {"allowance", s.allowance_amount > 0 ? json{{"amount", s.allowance_amount}, {"period", s.allowance_period}}
                                               : json(nullptr)},
          {"time_zone", s.time_zone},
          {"pool", g.pool},
          {"members", g.members},
          {"created_at", g.created_at}};
}

}  // namespace llmd::api
