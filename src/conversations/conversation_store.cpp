#include "conversations/conversation_store.h"

#include <algorithm>
#include <cctype>
#include <chrono>

#include "core/random_id.h"
#include "core/text.h"

namespace llmd::conversations {
namespace {

using store::Connection;
using store::Dialect;
using store::Row;
using store::Value;

constexpr const char* kSummaryColumns = "id, title, model, message_count, bytes, created_at, updated_at";
constexpr const char* kMessageColumns =
    "id, role, content, reasoning_content, model, prompt_tokens, completion_tokens, tokens_consumed, "
    "finish_reason, created_at";
constexpr int kMaxPageSize = 100;
// Searches shorter than this many characters cannot use the trigram index
// (SQLite) or a word index (MariaDB): they scan the caller's own messages.
constexpr std::size_t kIndexedSearchChars = 3;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Error not_found() { return Error(ErrorCode::kNotFound, "no such conversation", "conversation_not_found"); }

Error changed() {
  return Error(ErrorCode::kConflict, "the conversation changed meanwhile; reload it and try again",
               "conversation_changed");
}

Summary summary_from(const Row& r) {
  return Summary{r.text(0), r.text(1), r.text(2), r.integer(3), r.integer(4), r.integer(5), r.integer(6)};
}

Message message_from(const Row& r) {
  Message m;
  m.id = r.integer(0);
  m.role = r.text(1);
  m.content = r.text(2);
  m.reasoning_content = r.text(3);
  m.model = r.text(4);
  if (!r.is_null(5)) m.prompt_tokens = r.integer(5);
  if (!r.is_null(6)) m.completion_tokens = r.integer(6);
  m.tokens_consumed = r.integer(7);
  if (!r.is_null(8)) m.finish_reason = r.text(8);
  m.created_at_ms = r.integer(9);
  return m;
}

Value optional_value(const std::optional<std::int64_t>& v) { return v ? Value(*v) : Value(nullptr); }
Value optional_value(const std::optional<std::string>& v) { return v ? Value(*v) : Value(nullptr); }

std::size_t characters(std::string_view s) {
  return static_cast<std::size_t>(std::ranges::count_if(s, [](char c) { return (c & 0xC0) != 0x80; }));
}

// `s` cut to at most `max_bytes` without splitting a UTF-8 sequence.
std::string cut_utf8(std::string_view s, std::size_t max_bytes) {
  if (s.size() <= max_bytes) return std::string(s);
  std::size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return std::string(s.substr(0, end));
}

Result<void> check_text(std::string_view field, std::string_view text, std::size_t max_bytes) {
  if (!text::is_valid_utf8(text)) {
    return fail(ErrorCode::kInvalidArgument, std::string(field) + " is not valid UTF-8", "invalid_request");
  }
  if (text.size() > max_bytes) {
    return fail(Error(ErrorCode::kTooLarge,
                      std::string(field) + " is " + std::to_string(text.size()) + " bytes; the limit is " +
                          std::to_string(max_bytes),
                      "message_too_large")
                    .with_detail("limit_bytes", static_cast<std::int64_t>(max_bytes)));
  }
  return {};
}

Error full(std::int64_t limit) {
  return Error(ErrorCode::kConflict,
               "the conversation has reached its limit of " + std::to_string(limit) +
                   " messages; start a new conversation",
               "conversation_full")
      .with_detail("limit", limit);
}

// A LIKE pattern matching `s` anywhere (with '!' as the escape character).
std::string like_anywhere(std::string_view s) {
  std::string out = "%";
  for (char c : s) {
    if (c == '%' || c == '_' || c == '!') out.push_back('!');
    out.push_back(c);
  }
  out.push_back('%');
  return out;
}

// The condition "message m of the caller contains `q`", with its parameters.
// SQLite: the trigram FTS5 index matches any substring of 3+ characters.
// MariaDB: the FULLTEXT index narrows to messages with every word (as a
// prefix), and LIKE keeps those that hold the text as it was typed; words
// shorter than InnoDB's minimum token size, and text without spaces (CJK),
// take the LIKE scan of the caller's messages alone.
std::string message_match(Dialect dialect, const std::string& q, std::vector<Value>& params) {
  if (characters(q) < kIndexedSearchChars) {
    params.emplace_back(like_anywhere(q));
    return "m.content LIKE ? ESCAPE '!'";
  }
  if (dialect == Dialect::kSqlite) {
    std::string phrase = "\"";
    for (char c : q) {
      if (c == '"') phrase.push_back('"');
      phrase.push_back(c);
    }
    phrase.push_back('"');
    params.emplace_back(std::move(phrase));
    return "m.id IN (SELECT rowid FROM conversation_messages_fts WHERE conversation_messages_fts MATCH ?)";
  }
  std::string boolean;
  bool indexable = true;
  for (std::string_view word : text::split(q, ' ')) {
    if (word.empty()) continue;
    const bool plain = std::ranges::all_of(word, [](char c) { return std::isalnum(static_cast<unsigned char>(c)); });
    if (!plain || word.size() < kIndexedSearchChars) indexable = false;
    boolean += "+" + std::string(word) + "* ";
  }
  params.emplace_back(like_anywhere(q));
  if (!indexable || boolean.empty()) return "m.content LIKE ? ESCAPE '!'";
  params.insert(params.end() - 1, Value(boolean));
  return "MATCH(m.content) AGAINST(? IN BOOLEAN MODE) AND m.content LIKE ? ESCAPE '!'";
}

struct Cursor {
  std::int64_t updated_at_ms = 0;
  std::string id;
};

std::string cursor_text(const Summary& s) { return std::to_string(s.updated_at_ms) + "." + s.id; }

Result<Cursor> parse_cursor(std::string_view text) {
  const auto dot = text.find('.');
  const Error bad(ErrorCode::kInvalidArgument, "cursor is not a next_cursor this server gave", "invalid_cursor");
  if (dot == std::string_view::npos) return std::unexpected(bad);
  const auto updated = text::parse_int(text.substr(0, dot));
  const std::string_view id = text.substr(dot + 1);
  if (!updated || id.size() != 32 || !std::ranges::all_of(id, [](char c) { return std::isxdigit(c); })) {
    return std::unexpected(bad);
  }
  return Cursor{*updated, std::string(id)};
}

// Locks the caller's conversation row for the rest of the transaction (the
// whole database on SQLite, whose write transactions are exclusive).
Result<std::optional<Summary>> lock_conversation(Connection& c, const std::string& id, std::int64_t user_id) {
  const std::string sql = std::string("SELECT ") + kSummaryColumns +
                          " FROM conversations WHERE id = ? AND user_id = ?" +
                          (c.dialect() == Dialect::kMysql ? " FOR UPDATE" : "");
  const Value params[] = {id, user_id};
  auto rows = c.query(sql, params);
  if (!rows) return std::unexpected(rows.error());
  if (rows->empty()) return std::optional<Summary>{};
  return summary_from(rows->front());
}

Result<std::vector<Message>> messages_of(Connection& c, const std::string& id) {
  const Value params[] = {id};
  auto rows = c.query(
      std::string("SELECT ") + kMessageColumns + " FROM conversation_messages WHERE conversation_id = ? ORDER BY id",
      params);
  if (!rows) return std::unexpected(rows.error());
  std::vector<Message> out;
  out.reserve(rows->size());
  for (const auto& r : *rows) out.push_back(message_from(r));
  return out;
}

// Recounts a conversation's messages and bytes and marks it updated.
Result<void> touch(Connection& c, const std::string& id, std::int64_t updated_at_ms) {
  const char* bytes = c.dialect() == Dialect::kSqlite
                          ? "LENGTH(CAST(content AS BLOB)) + LENGTH(CAST(reasoning_content AS BLOB))"
                          : "LENGTH(content) + LENGTH(reasoning_content)";
  const std::string sql = std::string(
                              "UPDATE conversations SET "
                              "message_count = (SELECT COUNT(*) FROM conversation_messages WHERE conversation_id = ?), "
                              "bytes = (SELECT COALESCE(SUM(") +
                          bytes +
                          "), 0) FROM conversation_messages WHERE conversation_id = ?), "
                          "updated_at = ? WHERE id = ?";
  const Value params[] = {id, id, updated_at_ms, id};
  auto r = c.exec(sql, params);
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<std::int64_t> insert_message(Connection& c, const std::string& conversation_id, std::int64_t user_id,
                                    const Message& m) {
  const Value params[] = {conversation_id,
                          user_id,
                          m.role,
                          m.content,
                          m.reasoning_content,
                          m.model,
                          optional_value(m.prompt_tokens),
                          optional_value(m.completion_tokens),
                          m.tokens_consumed,
                          optional_value(m.finish_reason),
                          m.created_at_ms};
  auto r = c.exec(
      "INSERT INTO conversation_messages (conversation_id, user_id, role, content, reasoning_content, model, "
      "prompt_tokens, completion_tokens, tokens_consumed, finish_reason, created_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      params);
  if (!r) return std::unexpected(r.error());
  return r->last_insert_id;
}

Result<std::string> insert_conversation(Connection& c, std::int64_t user_id, const Summary& s,
                                        const std::string& system) {
  std::string id = core::random_hex(16);
  const Value params[] = {id, user_id, s.title, s.model, system, s.created_at_ms, s.updated_at_ms};
  auto r = c.exec(
      "INSERT INTO conversations (id, user_id, title, model, system_prompt, message_count, bytes, created_at, "
      "updated_at) VALUES (?, ?, ?, ?, ?, 0, 0, ?, ?)",
      params);
  if (!r) return std::unexpected(r.error());
  return id;
}

Result<void> check_room(Connection& c, std::int64_t user_id, std::int64_t adding, int limit) {
  if (limit <= 0) return {};
  const Value params[] = {user_id};
  auto rows = c.query("SELECT COUNT(*) FROM conversations WHERE user_id = ?", params);
  if (!rows) return std::unexpected(rows.error());
  const std::int64_t have = rows->front().integer(0);
  if (have + adding <= limit) return {};
  return fail(Error(ErrorCode::kConflict,
                    "you have " + std::to_string(have) + " conversations; the limit is " + std::to_string(limit) +
                        ": delete some first",
                    "too_many_conversations")
                  .with_detail("limit", static_cast<std::int64_t>(limit)));
}

// The complete exchanges before a turn: a user message is sent to the model
// only with a reply that has text, so a failed or pending turn leaves no
// unanswered user message (templates that require alternating roles break
// on two in a row).
std::vector<HistoryMessage> history_of(std::span<const Message> messages) {
  std::vector<HistoryMessage> out;
  const Message* held_user = nullptr;
  for (const Message& m : messages) {
    if (m.role == "user") {
      held_user = &m;
      continue;
    }
    const bool answered = !m.content.empty() && m.finish_reason != std::string(kPending);
    if (answered) {
      if (held_user) out.push_back({"user", held_user->content});
      out.push_back({"assistant", m.content});
    }
    held_user = nullptr;
  }
  return out;
}

Result<void> delete_from(Connection& c, const std::string& id, std::int64_t from_message_id) {
  const Value params[] = {id, from_message_id};
  auto r = c.exec("DELETE FROM conversation_messages WHERE conversation_id = ? AND id >= ?", params);
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<void> delete_conversation(Connection& c, const std::string& id) {
  const Value params[] = {id};
  LLMD_TRY(c.exec("DELETE FROM conversation_messages WHERE conversation_id = ?", params));
  LLMD_TRY(c.exec("DELETE FROM conversations WHERE id = ?", params));
  return {};
}

}  // namespace

std::string title_from(std::string_view message, std::size_t max_bytes) {
  std::string collapsed;
  bool space = false;
  for (char c : text::trim(message)) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
      space = true;
      continue;
    }
    if (space && !collapsed.empty()) collapsed.push_back(' ');
    space = false;
    collapsed.push_back(c);
  }
  return cut_utf8(collapsed, max_bytes);
}

ConversationStore::ConversationStore(store::Database& db, Limits limits) : db_(db), limits_(limits) {}

Result<Conversation> ConversationStore::create(std::int64_t user_id, const NewConversation& what) {
  LLMD_TRY(check_text("title", what.title, 4 * limits_.max_title_bytes));
  LLMD_TRY(check_text("model", what.model, 255));
  LLMD_TRY(check_text("system", what.system, limits_.max_system_bytes));
  Conversation out;
  const std::int64_t now = now_ms();
  out.summary = Summary{"", cut_utf8(what.title, limits_.max_title_bytes), what.model, 0, 0, now, now};
  out.system = what.system;
  auto id = db_.transaction<std::string>([&](Connection& c) -> Result<std::string> {
    LLMD_TRY(check_room(c, user_id, 1, limits_.max_conversations));
    return insert_conversation(c, user_id, out.summary, out.system);
  });
  if (!id) return std::unexpected(id.error());
  out.summary.id = *id;
  return out;
}

Result<Page> ConversationStore::list(std::int64_t user_id, const ListQuery& query) {
  if (query.limit < 1 || query.limit > kMaxPageSize) {
    return fail(ErrorCode::kInvalidArgument, "limit must be 1.." + std::to_string(kMaxPageSize), "invalid_request");
  }
  if (!text::is_valid_utf8(query.q) || query.q.size() > 200) {
    return fail(ErrorCode::kInvalidArgument, "q must be UTF-8 text of at most 200 bytes", "invalid_request");
  }
  std::optional<Cursor> after;
  if (!query.cursor.empty()) {
    auto parsed = parse_cursor(query.cursor);
    if (!parsed) return std::unexpected(parsed.error());
    after = *parsed;
  }
  const std::string q(text::trim(query.q));
  auto rows = db_.with_connection<std::vector<Row>>([&](Connection& c) {
    std::vector<Value> params{user_id};
    std::string sql = std::string("SELECT ") + kSummaryColumns + " FROM conversations c WHERE c.user_id = ?";
    if (after) {
      sql += " AND (c.updated_at < ? OR (c.updated_at = ? AND c.id < ?))";
      params.insert(params.end(), {after->updated_at_ms, after->updated_at_ms, after->id});
    }
    if (!q.empty()) {
      params.emplace_back(like_anywhere(q));
      params.emplace_back(user_id);
      const std::string matches = message_match(c.dialect(), q, params);
      sql +=
          " AND (c.title LIKE ? ESCAPE '!' OR c.id IN (SELECT m.conversation_id FROM conversation_messages m "
          "WHERE m.user_id = ? AND " +
          matches + "))";
    }
    sql += " ORDER BY c.updated_at DESC, c.id DESC LIMIT ?";
    params.emplace_back(static_cast<std::int64_t>(query.limit + 1));
    return c.query(sql, params);
  });
  if (!rows) return std::unexpected(rows.error());
  Page page;
  for (const auto& r : *rows) page.items.push_back(summary_from(r));
  if (page.items.size() > static_cast<std::size_t>(query.limit)) {
    page.items.pop_back();
    page.next_cursor = cursor_text(page.items.back());
  }
  return page;
}

Result<Conversation> ConversationStore::get(const std::string& id, std::int64_t user_id) {
  return db_.with_connection<Conversation>([&](Connection& c) -> Result<Conversation> {
    const Value params[] = {id, user_id};
    auto rows = c.query(
        std::string("SELECT ") + kSummaryColumns + ", system_prompt FROM conversations WHERE id = ? AND user_id = ?",
        params);
    if (!rows) return std::unexpected(rows.error());
    if (rows->empty()) return std::unexpected(not_found());
    Conversation out{summary_from(rows->front()), rows->front().text(7), {}};
    auto messages = messages_of(c, id);
    if (!messages) return std::unexpected(messages.error());
    out.messages = std::move(*messages);
    return out;
  });
}

Result<Summary> ConversationStore::update(const std::string& id, std::int64_t user_id, const Changes& changes) {
  if (changes.title) LLMD_TRY(check_text("title", *changes.title, 4 * limits_.max_title_bytes));
  if (changes.system) LLMD_TRY(check_text("system", *changes.system, limits_.max_system_bytes));
  return db_.transaction<Summary>([&](Connection& c) -> Result<Summary> {
    auto found = lock_conversation(c, id, user_id);
    if (!found) return std::unexpected(found.error());
    if (!*found) return std::unexpected(not_found());
    Summary s = **found;
    if (changes.title) {
      s.title = cut_utf8(*changes.title, limits_.max_title_bytes);
      const Value params[] = {s.title, id};
      LLMD_TRY(c.exec("UPDATE conversations SET title = ? WHERE id = ?", params));
    }
    if (changes.system) {
      const Value params[] = {*changes.system, id};
      LLMD_TRY(c.exec("UPDATE conversations SET system_prompt = ? WHERE id = ?", params));
    }
    return s;
  });
}

Result<void> ConversationStore::remove(const std::string& id, std::int64_t user_id) {
  return db_.transaction<void>([&](Connection& c) -> Result<void> {
    auto found = lock_conversation(c, id, user_id);
    if (!found) return std::unexpected(found.error());
    if (!*found) return std::unexpected(not_found());
    return delete_conversation(c, id);
  });
}

Result<std::int64_t> ConversationStore::remove_all(std::int64_t user_id) {
  return db_.transaction<std::int64_t>([&](Connection& c) -> Result<std::int64_t> {
    const Value params[] = {user_id};
    LLMD_TRY(c.exec("DELETE FROM conversation_messages WHERE user_id = ?", params));
    auto gone = c.exec("DELETE FROM conversations WHERE user_id = ?", params);
    if (!gone) return std::unexpected(gone.error());
    return gone->affected_rows;
  });
}

Result<TurnPlan> ConversationStore::plan_turn(std::int64_t user_id, const TurnRequest& request) {
  if (request.kind != TurnKind::kRegenerate) {
    if (text::trim(request.message).empty()) {
      return fail(ErrorCode::kInvalidArgument, "message must be a non-empty string", "invalid_request");
    }
    LLMD_TRY(check_text("message", request.message, limits_.max_message_bytes));
  }
  auto conversation = get(request.conversation_id, user_id);
  if (!conversation) return std::unexpected(conversation.error());
  const std::vector<Message>& messages = conversation->messages;
  TurnPlan plan{request, conversation->system, {}, request.message, 0, 0};
  const bool in_progress = std::ranges::any_of(messages, [](const Message& m) { return m.finish_reason == kPending; });
  if (request.kind != TurnKind::kSend && in_progress) {
    return fail(ErrorCode::kConflict, "a reply in this conversation is still being written; wait for it to end",
                "reply_in_progress");
  }
  std::size_t kept = messages.size();  // the messages that stay before the turn
  if (request.kind == TurnKind::kRegenerate) {
    if (messages.size() < 2 || messages.back().role != "assistant" || messages[messages.size() - 2].role != "user") {
      return fail(ErrorCode::kConflict, "the conversation does not end with a reply to regenerate",
                  "nothing_to_regenerate");
    }
    kept = messages.size() - 2;
    plan.user_text = messages[kept].content;
    plan.keep_user_message_id = messages[kept].id;
    plan.remove_from_id = messages.back().id;
  } else if (request.kind == TurnKind::kEdit) {
    const auto it = std::ranges::find_if(
        messages, [&](const Message& m) { return m.id == request.edit_message_id && m.role == "user"; });
    if (it == messages.end()) {
      return fail(ErrorCode::kNotFound, "edit_message_id is not a user message of this conversation",
                  "message_not_found");
    }
    kept = static_cast<std::size_t>(it - messages.begin());
    plan.remove_from_id = it->id;
  }
  if (limits_.max_messages > 0 && static_cast<std::int64_t>(kept) + 2 > limits_.max_messages) {
    return std::unexpected(full(limits_.max_messages));
  }
  plan.history = history_of(std::span(messages).first(kept));
  return plan;
}

Result<OpenTurn> ConversationStore::open_turn(std::int64_t user_id, const TurnPlan& plan, const std::string& model) {
  const std::string& id = plan.request.conversation_id;
  return db_.transaction<OpenTurn>([&](Connection& c) -> Result<OpenTurn> {
    auto found = lock_conversation(c, id, user_id);
    if (!found) return std::unexpected(found.error());
    if (!*found) return std::unexpected(not_found());
    OpenTurn turn{id, plan.keep_user_message_id, 0, (*found)->title};
    std::int64_t count = (*found)->message_count;
    if (plan.remove_from_id != 0) {
      // What the plan replaces must still be there as it was planned.
      auto messages = messages_of(c, id);
      if (!messages) return std::unexpected(messages.error());
      const auto from = std::ranges::find_if(*messages, [&](const Message& m) { return m.id == plan.remove_from_id; });
      const bool regenerate = plan.request.kind == TurnKind::kRegenerate;
      if (from == messages->end() || (regenerate && from + 1 != messages->end()) ||
          std::ranges::any_of(*messages, [](const Message& m) { return m.finish_reason == kPending; })) {
        return std::unexpected(changed());
      }
      LLMD_TRY(delete_from(c, id, plan.remove_from_id));
      count = from - messages->begin();
    }
    const std::int64_t adding = plan.request.kind == TurnKind::kRegenerate ? 1 : 2;
    if (limits_.max_messages > 0 && count + adding > limits_.max_messages) {
      return std::unexpected(full(limits_.max_messages));
    }
    const std::int64_t now = now_ms();
    if (plan.request.kind != TurnKind::kRegenerate) {
      Message user{0, "user", plan.user_text, "", model, std::nullopt, std::nullopt, 0, std::nullopt, now};
      auto user_id_row = insert_message(c, id, user_id, user);
      if (!user_id_row) return std::unexpected(user_id_row.error());
      turn.user_message_id = *user_id_row;
    }
    Message reply{0, "assistant", "", "", model, std::nullopt, std::nullopt, 0, std::string(kPending), now};
    auto reply_id = insert_message(c, id, user_id, reply);
    if (!reply_id) return std::unexpected(reply_id.error());
    turn.reply_message_id = *reply_id;
    if (turn.title.empty()) {
      turn.title = title_from(plan.user_text, limits_.max_title_bytes);
      const Value params[] = {turn.title, id};
      LLMD_TRY(c.exec("UPDATE conversations SET title = ? WHERE id = ?", params));
    }
    const Value model_params[] = {model, id};
    LLMD_TRY(c.exec("UPDATE conversations SET model = ? WHERE id = ?", model_params));
    LLMD_TRY(touch(c, id, now));
    return turn;
  });
}

Result<void> ConversationStore::close_turn(std::int64_t user_id, const OpenTurn& turn, const TurnEnd& end) {
  return db_.transaction<void>([&](Connection& c) -> Result<void> {
    auto found = lock_conversation(c, turn.conversation_id, user_id);
    if (!found) return std::unexpected(found.error());
    if (!*found) return {};
    const Value params[] = {end.content,         end.reasoning_content, end.prompt_tokens,     end.completion_tokens,
                            end.tokens_consumed, end.finish_reason,     turn.reply_message_id, turn.conversation_id};
    LLMD_TRY(
        c.exec("UPDATE conversation_messages SET content = ?, reasoning_content = ?, prompt_tokens = ?, "
               "completion_tokens = ?, tokens_consumed = ?, finish_reason = ? WHERE id = ? AND conversation_id = ?",
               params));
    return touch(c, turn.conversation_id, now_ms());
  });
}

Result<std::vector<Conversation>> ConversationStore::all_of(std::int64_t user_id) {
  return db_.with_connection<std::vector<Conversation>>([&](Connection& c) -> Result<std::vector<Conversation>> {
    const Value params[] = {user_id};
    auto rows = c.query(std::string("SELECT ") + kSummaryColumns +
                            ", system_prompt FROM conversations WHERE user_id = ? ORDER BY created_at, id",
                        params);
    if (!rows) return std::unexpected(rows.error());
    std::vector<Conversation> out;
    for (const auto& r : *rows) {
      Conversation conv{summary_from(r), r.text(7), {}};
      auto messages = messages_of(c, conv.summary.id);
      if (!messages) return std::unexpected(messages.error());
      conv.messages = std::move(*messages);
      out.push_back(std::move(conv));
    }
    return out;
  });
}

Result<std::vector<std::string>> ConversationStore::import(std::int64_t user_id,
                                                           const std::vector<Conversation>& items) {
  for (std::size_t i = 0; i < items.size(); ++i) {
    const Conversation& conv = items[i];
    const std::string where = "conversations[" + std::to_string(i) + "]";
    LLMD_TRY(check_text(where + ".title", conv.summary.title, 4 * limits_.max_title_bytes));
    LLMD_TRY(check_text(where + ".model", conv.summary.model, 255));
    LLMD_TRY(check_text(where + ".system", conv.system, limits_.max_system_bytes));
    if (limits_.max_messages > 0 && conv.messages.size() > static_cast<std::size_t>(limits_.max_messages)) {
      return std::unexpected(full(limits_.max_messages));
    }
    for (std::size_t j = 0; j < conv.messages.size(); ++j) {
      const Message& m = conv.messages[j];
      const std::string at = where + ".messages[" + std::to_string(j) + "]";
      if (m.role != "user" && m.role != "assistant") {
        return fail(ErrorCode::kInvalidArgument, at + ".role must be user or assistant", "invalid_request");
      }
      LLMD_TRY(check_text(at + ".content", m.content, limits_.max_message_bytes));
      LLMD_TRY(check_text(at + ".reasoning_content", m.reasoning_content, limits_.max_message_bytes));
      LLMD_TRY(check_text(at + ".model", m.model, 255));
    }
  }
  return db_.transaction<std::vector<std::string>>([&](Connection& c) -> Result<std::vector<std::string>> {
    LLMD_TRY(check_room(c, user_id, static_cast<std::int64_t>(items.size()), limits_.max_conversations));
    std::vector<std::string> ids;
    for (const Conversation& conv : items) {
      Summary s = conv.summary;
      s.title = cut_utf8(s.title, limits_.max_title_bytes);
      auto id = insert_conversation(c, user_id, s, conv.system);
      if (!id) return std::unexpected(id.error());
      for (Message m : conv.messages) {
        if (m.finish_reason == kPending) m.finish_reason = std::string(kStopped);
        LLMD_TRY(insert_message(c, *id, user_id, m));
      }
      LLMD_TRY(touch(c, *id, s.updated_at_ms));
      ids.push_back(std::move(*id));
    }
    return ids;
  });
}

Result<UserStats> ConversationStore::stats(std::int64_t user_id) {
  auto rows = db_.with_connection<std::vector<Row>>([&](Connection& c) {
    const Value params[] = {user_id};
    return c.query(
        "SELECT COUNT(*), COALESCE(SUM(message_count), 0), COALESCE(SUM(bytes), 0) FROM conversations "
        "WHERE user_id = ?",
        params);
  });
  if (!rows) return std::unexpected(rows.error());
  const Row& r = rows->front();
  return UserStats{r.integer(0), r.integer(1), r.integer(2)};
}

Result<std::vector<std::pair<std::int64_t, UserStats>>> ConversationStore::stats_of(
    const std::vector<std::int64_t>& user_ids) {
  if (user_ids.size() > 500) return fail(ErrorCode::kInvalidArgument, "at most 500 users at once", "invalid_request");
  if (user_ids.empty()) return std::vector<std::pair<std::int64_t, UserStats>>{};
  std::string placeholders;
  std::vector<Value> params;
  for (const auto id : user_ids) {
    placeholders += placeholders.empty() ? "?" : ", ?";
    params.emplace_back(id);
  }
  auto rows = db_.with_connection<std::vector<Row>>([&](Connection& c) {
    return c.query(
        "SELECT user_id, COUNT(*), COALESCE(SUM(message_count), 0), COALESCE(SUM(bytes), 0) FROM conversations "
        "WHERE user_id IN (" +
            placeholders + ") GROUP BY user_id ORDER BY user_id",
        params);
  });
  if (!rows) return std::unexpected(rows.error());
  std::vector<std::pair<std::int64_t, UserStats>> out;
  for (const Row& r : *rows) out.emplace_back(r.integer(0), UserStats{r.integer(1), r.integer(2), r.integer(3)});
  return out;
}

Result<std::int64_t> ConversationStore::remove_older_than(std::int64_t cutoff_ms) {
  auto old = db_.with_connection<std::vector<Row>>([&](Connection& c) {
    const Value params[] = {cutoff_ms};
    return c.query("SELECT id FROM conversations WHERE updated_at < ?", params);
  });
  if (!old) return std::unexpected(old.error());
  std::int64_t removed = 0;
  for (const Row& r : *old) {
    const std::string id = r.text(0);
    // Each in its own transaction, and only while still old: a conversation
    // written to since the query stays.
    auto gone = db_.transaction<bool>([&](Connection& c) -> Result<bool> {
      const Value params[] = {id, cutoff_ms};
      auto still_old = c.query(std::string("SELECT id FROM conversations WHERE id = ? AND updated_at < ?") +
                                   (c.dialect() == Dialect::kMysql ? " FOR UPDATE" : ""),
                               params);
      if (!still_old) return std::unexpected(still_old.error());
      if (still_old->empty()) return false;
      LLMD_TRY(delete_conversation(c, id));
      return true;
    });
    if (!gone) return std::unexpected(gone.error());
    if (*gone) ++removed;
  }
  return removed;
}

Result<std::int64_t> ConversationStore::fail_pending_replies(std::int64_t before_ms) {
  auto r = db_.with_connection<store::ExecResult>([&](Connection& c) {
    const Value params[] = {std::string(kFailed), std::string(kPending), before_ms};
    return c.exec("UPDATE conversation_messages SET finish_reason = ? WHERE finish_reason = ? AND created_at < ?",
                  params);
  });
  if (!r) return std::unexpected(r.error());
  return r->affected_rows;
}

}  // namespace llmd::conversations
