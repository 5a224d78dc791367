#include "api/conversation_routes.h"

#include <ctime>

#include <nlohmann/json.hpp>

#include "api/account_routes.h"
#include "conversations/transfer.h"
#include "core/text.h"
#include "http/json_body.h"

namespace llmd::api {
namespace {

using boost::asio::awaitable;
using conversations::Conversation;
using conversations::markdown_of;
using conversations::message_json;
using conversations::Summary;
using http::RequestContext;
using http::Response;
using json = nlohmann::json;

constexpr const char* kPath = "/api/v1/conversations";
constexpr int kDefaultPageSize = 20;

std::int64_t seconds(std::int64_t ms) { return ms / 1000; }

std::int64_t now_seconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

json summary_json(const Summary& s) {
  return {{"id", s.id},
          {"title", s.title},
          {"model", s.model},
          {"updated_at", seconds(s.updated_at_ms)},
          {"message_count", s.message_count}};
}

Response attachment(Response r, const std::string& file_name) {
  r.headers.set("Content-Disposition", "attachment; filename=\"" + file_name + "\"");
  return r;
}

json conversation_json(const Conversation& c) {
  json j = summary_json(c.summary);
  j["system"] = c.system;
  j["created_at"] = seconds(c.summary.created_at_ms);
  j["messages"] = json::array();
  for (const auto& m : c.messages) j["messages"].push_back(message_json(m, true));
  return j;
}

Result<conversations::Changes> parse_changes(const json& body) {
  conversations::Changes changes;
  for (const char* key : {"title", "system"}) {
    if (!body.contains(key)) continue;
    if (!body[key].is_string()) {
      return fail(ErrorCode::kInvalidArgument, std::string(key) + " must be a string", "invalid_request");
    }
    (std::string_view(key) == "title" ? changes.title : changes.system) = body[key].get<std::string>();
  }
  if (!changes.title && !changes.system) {
    return fail(ErrorCode::kInvalidArgument, "nothing to change: give title and/or system", "invalid_request");
  }
  return changes;
}

class Routes {
 public:
  explicit Routes(ConversationDeps deps) : d_(std::move(deps)) {}

  awaitable<Result<Response>> list(RequestContext& ctx) {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    auto limit = http::query_int(ctx.request, "limit", kDefaultPageSize, 1, 100);
    if (!limit) co_return std::unexpected(limit.error());
    const conversations::ListQuery query{ctx.request.query_param("q").value_or(""), static_cast<int>(*limit),
                                         ctx.request.query_param("cursor").value_or("")};
    const std::int64_t user_id = who->user_id;
    auto page = co_await d_.pool.run([&] { return d_.store.list(user_id, query); });
    if (!page) co_return std::unexpected(page.error());
    json items = json::array();
    for (const auto& s : page->items) items.push_back(summary_json(s));
    co_return Response::json(200, {{"items", std::move(items)},
                                   {"next_cursor", page->next_cursor ? json(*page->next_cursor) : json(nullptr)}});
  }

  awaitable<Result<Response>> create(RequestContext& ctx) {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    auto body = http::parse_json_object(ctx.request.body.empty() ? std::string_view("{}") : ctx.request.body);
    if (!body) co_return std::unexpected(body.error());
    auto title = http::string_field(*body, "title", false);
    auto model = http::string_field(*body, "model", false);
    auto system = http::string_field(*body, "system", false);
    for (const auto* r : {&title, &model, &system}) {
      if (!*r) co_return std::unexpected(r->error());
    }
    const conversations::NewConversation what{*title, *model, *system};
    const std::int64_t user_id = who->user_id;
    auto created = co_await d_.pool.run([&] { return d_.store.create(user_id, what); });
    if (!created) co_return std::unexpected(created.error());
    co_return Response::json(201, conversation_json(*created));
  }

  awaitable<Result<Response>> get(RequestContext& ctx) {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    auto found = co_await fetch(ctx.param("id"), who->user_id);
    if (!found) co_return std::unexpected(found.error());
    co_return Response::json(200, conversation_json(*found));
  }

  awaitable<Result<Response>> update(RequestContext& ctx) {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    auto body = http::parse_json_object(ctx.request.body);
    if (!body) co_return std::unexpected(body.error());
    auto changes = parse_changes(*body);
    if (!changes) co_return std::unexpected(changes.error());
    const std::string id = ctx.param("id");
    const std::int64_t user_id = who->user_id;
    auto updated = co_await d_.pool.run([&] { return d_.store.update(id, user_id, *changes); });
    if (!updated) co_return std::unexpected(updated.error());
    co_return Response::json(200, summary_json(*updated));
  }

  awaitable<Result<Response>> remove(RequestContext& ctx) {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    const std::string id = ctx.param("id");
    const std::int64_t user_id = who->user_id;
    auto removed = co_await d_.pool.run([&] { return d_.store.remove(id, user_id); });
    if (!removed) co_return std::unexpected(removed.error());
    co_return Response::json(200, {{"deleted", true}, {"id", id}});
  }

  awaitable<Result<Response>> remove_all(RequestContext& ctx) {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    const std::int64_t user_id = who->user_id;
    auto removed = co_await d_.pool.run([&] { return d_.store.remove_all(user_id); });
    if (!removed) co_return std::unexpected(removed.error());
    co_return Response::json(200, {{"deleted", *removed}});
  }

  awaitable<Result<Response>> export_one(RequestContext& ctx) {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    const std::string format = ctx.request.query_param("format").value_or("json");
    if (format != "json" && format != "md") {
      co_return fail(ErrorCode::kInvalidArgument, "format must be md or json", "invalid_query");
    }
    auto found = co_await fetch(ctx.param("id"), who->user_id);
    if (!found) co_return std::unexpected(found.error());
    const std::string name = "conversation-" + found->summary.id;
    if (format == "md") {
      co_return attachment(Response::text(200, markdown_of(*found), "text/markdown; charset=utf-8"), name + ".md");
    }
    co_return attachment(Response::json(200, conversations::export_json({*found}, now_seconds())), name + ".json");
  }

  awaitable<Result<Response>> export_all(RequestContext& ctx) {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    const std::int64_t user_id = who->user_id;
    auto all = co_await d_.pool.run([&] { return d_.store.all_of(user_id); });
    if (!all) co_return std::unexpected(all.error());
    co_return attachment(Response::json(200, conversations::export_json(*all, now_seconds())), "conversations.json");
  }

  // Admin: how much each user keeps, never what (SPEC §4.5c).
  // ?user_ids=1,2,3 (at most 500).
  awaitable<Result<Response>> user_stats(RequestContext& ctx) {
    auto who = require_admin(ctx);
    if (!who) co_return std::unexpected(who.error());
    std::vector<std::int64_t> ids;
    const std::string list = ctx.request.query_param("user_ids").value_or("");
    for (const auto part : text::split(list, ',')) {
      const auto id = text::parse_int(text::trim(part));
      if (!id || *id <= 0) {
        co_return fail(ErrorCode::kInvalidArgument, "user_ids must be user ids separated by commas", "invalid_query");
      }
      ids.push_back(*id);
    }
    auto stats = co_await d_.pool.run([&] { return d_.store.stats_of(ids); });
    if (!stats) co_return std::unexpected(stats.error());
    json users = json::array();
    for (const auto& [user_id, s] : *stats) {
      users.push_back(
          {{"user_id", user_id}, {"conversations", s.conversations}, {"messages", s.messages}, {"bytes", s.bytes}});
    }
    co_return Response::json(200, {{"users", std::move(users)}});
  }

  awaitable<Result<Response>> import(RequestContext& ctx) {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    auto body = http::parse_json_object(ctx.request.body);
    if (!body) co_return std::unexpected(body.error());
    auto items = conversations::parse_export(*body, now_seconds() * 1000);
    if (!items) co_return std::unexpected(items.error());
    const std::int64_t user_id = who->user_id;
    auto ids = co_await d_.pool.run([&] { return d_.store.import(user_id, *items); });
    if (!ids) co_return std::unexpected(ids.error());
    co_return Response::json(201, {{"id", ids->front()}, {"ids", *ids}});
  }

 private:
  ConversationDeps d_;

  awaitable<Result<Conversation>> fetch(const std::string& id, std::int64_t user_id) {
    co_return co_await d_.pool.run([&] { return d_.store.get(id, user_id); });
  }
};

// Between plan() and open() of one chat turn, in the request context.
struct PlannedTurn {
  std::int64_t user_id = 0;
  conversations::TurnPlan plan;
};

// Between open() and close(): whose conversation the reply goes to.
struct TurnOwner {
  std::int64_t user_id = 0;
};

conversations::TurnKind kind_of(models::ChatTurn::Kind k) {
  switch (k) {
    case models::ChatTurn::Kind::kRegenerate: return conversations::TurnKind::kRegenerate;
    case models::ChatTurn::Kind::kEdit: return conversations::TurnKind::kEdit;
    case models::ChatTurn::Kind::kSend: break;
  }
  return conversations::TurnKind::kSend;
}

class StoredChatMemory final : public models::ChatMemory {
 public:
  explicit StoredChatMemory(ConversationDeps deps) : d_(std::move(deps)) {}

  awaitable<Result<models::ChatContext>> plan(RequestContext& ctx, const models::ChatTurn& turn) override {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    const std::int64_t user_id = who->user_id;
    const conversations::TurnRequest request{turn.conversation_id, kind_of(turn.kind), turn.message,
                                             turn.edit_message_id};
    auto plan = co_await d_.pool.run([&] { return d_.store.plan_turn(user_id, request); });
    if (!plan) co_return std::unexpected(plan.error());
    models::ChatContext context{plan->system, {}, plan->user_text};
    for (const auto& h : plan->history) context.history.emplace_back(h.role, h.content);
    ctx.set(PlannedTurn{user_id, std::move(*plan)});
    co_return context;
  }

  awaitable<Result<models::StoredTurn>> open(RequestContext& ctx, const std::string& model) override {
    const std::optional<PlannedTurn> planned = ctx.take<PlannedTurn>();
    if (!planned) co_return fail(ErrorCode::kInternal, "a chat turn was opened without a plan");
    auto opened = co_await d_.pool.run([&] { return d_.store.open_turn(planned->user_id, planned->plan, model); });
    if (!opened) co_return std::unexpected(opened.error());
    ctx.set(TurnOwner{planned->user_id});
    co_return models::StoredTurn{opened->conversation_id, opened->user_message_id, opened->reply_message_id,
                                 opened->title};
  }

  awaitable<void> close(RequestContext& ctx, const models::StoredTurn& turn,
                        const models::TurnEnding& ending) override {
    const TurnOwner* owner = ctx.get<TurnOwner>();
    if (owner == nullptr) co_return;
    const std::int64_t user_id = owner->user_id;
    const conversations::OpenTurn open{turn.conversation_id, turn.user_message_id, turn.reply_message_id, turn.title};
    const conversations::TurnEnd end{
        ending.content,         ending.reasoning_content, ending.usage.prompt_tokens, ending.usage.completion_tokens,
        ending.tokens_consumed, ending.finish_reason};
    auto closed = co_await d_.pool.run([&] { return d_.store.close_turn(user_id, open, end); });
    if (!closed) {
      d_.log.error("storing a chat reply failed", {{"request_id", ctx.request_id},
                                                   {"conversation_id", turn.conversation_id},
                                                   {"error", closed.error().message}});
    }
  }

 private:
  ConversationDeps d_;
};

}  // namespace

void add_conversation_routes(http::Router& router, ConversationDeps deps) {
  auto r = std::make_shared<Routes>(std::move(deps));
  const std::string base = kPath;
  router.get(base, [r](RequestContext& c) { return r->list(c); });
  router.post(base, [r](RequestContext& c) { return r->create(c); });
  router.del(base, [r](RequestContext& c) { return r->remove_all(c); });
  router.get(base + "/export", [r](RequestContext& c) { return r->export_all(c); });
  router.post(base + "/import", [r](RequestContext& c) { return r->import(c); });
  router.get(base + "/{id}", [r](RequestContext& c) { return r->get(c); });
  router.add("PATCH", base + "/{id}", http::ResultHandler([r](RequestContext& c) { return r->update(c); }));
  router.del(base + "/{id}", [r](RequestContext& c) { return r->remove(c); });
  router.get(base + "/{id}/export", [r](RequestContext& c) { return r->export_one(c); });
  router.get("/api/v1/admin/conversations", [r](RequestContext& c) { return r->user_stats(c); });
}

std::shared_ptr<models::ChatMemory> make_chat_memory(ConversationDeps deps) {
  return std::make_shared<StoredChatMemory>(std::move(deps));
}

}  // namespace llmd::api
