#include "cli/user_export.h"

#include <ctime>

#include "billing/accounts.h"
#include "conversations/conversation_store.h"
#include "conversations/transfer.h"
#include "tasks/jobs/job_store.h"
#include "tasks/uploads/upload_store.h"

namespace llmd::cli {
namespace {

using json = nlohmann::json;

// Rows are read in pages until one comes back short.
constexpr int kPage = 1000;

Result<json> ledger_of(billing::Accounts& accounts, std::int64_t user_id) {
  auto entries = accounts.ledger(user_id, 1'000'000);
  if (!entries) return std::unexpected(entries.error());
  json out = json::array();
  for (const auto& e : *entries) {
    out.push_back({{"delta", e.delta},
                   {"reason", e.reason},
                   {"request_id", e.request_id},
                   {"task", e.task},
                   {"model", e.model},
                   {"created_at", e.created_at}});
  }
  return out;
}

Result<json> usage_of(billing::Accounts& accounts, std::int64_t user_id) {
  json out = json::array();
  billing::UsageFilter filter;
  filter.user_id = user_id;
  filter.limit = kPage;
  for (;; filter.offset += kPage) {
    auto page = accounts.usage(filter);
    if (!page) return std::unexpected(page.error());
    for (const auto& row : page->first) {
      const auto& r = row.record;
      out.push_back({{"request_id", r.request_id},
                     {"route", r.route},
                     {"task", r.task},
                     {"model", r.model},
                     {"prompt_tokens", r.prompt_tokens},
                     {"completion_tokens", r.completion_tokens},
                     {"charged", r.charged},
                     {"status", r.status},
                     {"latency_ms", r.latency_ms},
                     {"created_at", row.created_at}});
    }
    if (page->first.size() < static_cast<std::size_t>(kPage)) return out;
  }
}

Result<json> keys_of(auth::UserStore& users, std::int64_t user_id) {
  auto keys = users.keys(user_id);
  if (!keys) return std::unexpected(keys.error());
  json out = json::array();
  for (const auto& k : *keys) {
    const auto optional = [](const std::optional<std::int64_t>& v) { return v ? json(*v) : json(nullptr); };
    out.push_back({{"name", k.name},
                   {"prefix", k.prefix},
                   {"created_at", k.created_at},
                   {"last_used_at", optional(k.last_used_at)},
                   {"expires_at", optional(k.scopes.expires_at)},
                   {"budget", optional(k.scopes.budget)},
                   {"budget_period", k.scopes.budget_period},
                   {"budget_used", k.budget_used},
                   {"models", k.scopes.models},
                   {"subnets", k.scopes.subnets},
                   {"rpm", k.scopes.rpm},
                   {"group_id", optional(k.scopes.group_id)}});
  }
  return out;
}

Result<json> uploads_of(store::Database& db, const config::Config& config, std::int64_t user_id) {
  uploads::UploadStore store(db, config.uploads.dir);
  auto list = store.list(user_id);
  if (!list) return std::unexpected(list.error());
  json out = json::array();
  for (const auto& u : *list) {
    out.push_back({{"id", u.id},
                   {"name", u.original_name},
                   {"content_type", u.content_type},
                   {"size", u.size},
                   {"sha256", u.sha256},
                   {"created_at", u.created_at}});
  }
  return out;
}

Result<json> jobs_of(store::Database& db, std::int64_t user_id) {
  jobs::JobStore store(db);
  auto list = store.list(user_id, 1'000'000);
  if (!list) return std::unexpected(list.error());
  json out = json::array();
  for (const auto& j : *list) {
    out.push_back({{"id", j.id},
                   {"kind", j.kind},
                   {"status", std::string(jobs::status_name(j.status))},
                   {"input", j.input},
                   {"error", j.error},
                   {"tokens_charged", j.tokens_charged},
                   {"created_at", j.created_at},
                   {"updated_at", j.updated_at}});
  }
  return out;
}

// Rows of `sql` (one `?`: the user) as objects named by `columns`.
Result<json> rows_of(store::Database& db, const std::string& sql, const std::vector<std::string>& columns,
                     std::int64_t user_id) {
  auto rows = db.with_connection<std::vector<store::Row>>(
      [&](store::Connection& c) { return c.query(sql, std::vector<store::Value>{user_id}); });
  if (!rows) return std::unexpected(rows.error());
  json out = json::array();
  for (const auto& r : *rows) {
    json row = json::object();
    for (std::size_t i = 0; i < columns.size(); ++i) {
      if (r.is_null(i)) {
        row[columns[i]] = nullptr;
      } else if (std::holds_alternative<std::string>(r.columns[i])) {
        row[columns[i]] = r.text(i);
      } else {
        row[columns[i]] = r.integer(i);
      }
    }
    out.push_back(std::move(row));
  }
  return out;
}

// Groups, allowances and codes (SPEC §4.5b): what the user belongs to and
// was credited.
Result<json> groups_of(store::Database& db, std::int64_t user_id) {
  auto groups =
      rows_of(db,
              "SELECT g.id, g.name, m.created_at FROM group_members m JOIN user_groups g ON g.id = m.group_id "
              "WHERE m.user_id = ? ORDER BY g.id",
              {"id", "name", "joined_at"}, user_id);
  auto credits = rows_of(db,
                         "SELECT group_id, period_key, amount, remaining, state, created_at FROM allowance_credits "
                         "WHERE user_id = ? ORDER BY id",
                         {"group_id", "period_start", "amount", "remaining", "state", "created_at"}, user_id);
  auto codes = rows_of(db,
                       "SELECT prefix, amount, group_id, redeemed_at FROM redemption_codes WHERE redeemed_by = ? "
                       "ORDER BY id",
                       {"prefix", "amount", "group_id", "redeemed_at"}, user_id);
  auto owned = rows_of(db, "SELECT id, name, pool, created_at FROM user_groups WHERE owner_id = ? ORDER BY id",
                       {"id", "name", "pool", "created_at"}, user_id);
  for (const auto* part : {&groups, &credits, &codes, &owned}) {
    if (!*part) return std::unexpected(part->error());
  }
  return json{{"member_of", *groups}, {"allowance_credits", *credits}, {"redeemed_codes", *codes}, {"owns", *owned}};
}

}  // namespace

Result<json> export_user(store::Database& db, const config::Config& config, const auth::User& user) {
  auth::UserStore users(db);
  billing::Accounts accounts(db, "admin-cli");
  conversations::ConversationStore conversation_store(db, {});
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  json out = {{"format", "llmd.user-export"},
              {"version", 1},
              {"exported_at", now},
              {"profile",
               {{"id", user.id},
                {"username", user.username},
                {"email", user.email},
                {"role", user.role},
                {"disabled", user.disabled},
                {"tokens", user.available_tokens()},
                {"created_at", user.created_at}}}};
  auto keys = keys_of(users, user.id);
  auto ledger = ledger_of(accounts, user.id);
  auto usage = usage_of(accounts, user.id);
  auto uploaded = uploads_of(db, config, user.id);
  auto job_list = jobs_of(db, user.id);
  auto groups = groups_of(db, user.id);
  for (const auto& [name, part] :
       {std::pair{"api_keys", &keys}, std::pair{"ledger", &ledger}, std::pair{"usage", &usage},
        std::pair{"uploads", &uploaded}, std::pair{"jobs", &job_list}, std::pair{"groups", &groups}}) {
    if (!*part) return std::unexpected(part->error());
    out[name] = std::move(**part);
  }
  auto conversations = conversation_store.all_of(user.id);
  if (!conversations) return std::unexpected(conversations.error());
  out["conversations"] = conversations::export_json(*conversations, now);
  return out;
}

}  // namespace llmd::cli
