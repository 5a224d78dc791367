// Chat conversations kept per user in the database (SPEC §4.5c): the web
// chat's history, searched through a database index (SQLite FTS5 trigram /
// MariaDB FULLTEXT), with per-user limits and a retention sweep.
//
// Every lookup is by id AND owner: another user's conversation is
// indistinguishable from a missing one (kNotFound "conversation_not_found").
// A chat turn is three steps so that nothing is written before the call is
// admitted and paid for:
//
//   auto plan = store.plan_turn(user, {id, TurnKind::kSend, "hello"});  // reads, checks limits
//   ... admit the model call with plan->system + plan->history + plan->user_text ...
//   auto turn = store.open_turn(user, *plan, model);   // stores the user message and a pending reply
//   ... generate ...
//   store.close_turn(user, *turn, {text, reasoning, usage, charged, "stop"});
//
// Messages keep their insertion order (ids ascend): a turn's user message and
// its reply are written together, so two chats racing into one conversation
// store both turns whole, one after the other.
//
// Thread-safety: all methods are thread-safe and block on the database:
// call them on the worker pool.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "store/database.h"

namespace llmd::conversations {

struct Limits {
  int max_conversations = 1000;               // per user; 0 = no limit
  int max_messages = 500;                     // per conversation, replies included; 0 = no limit
  std::size_t max_message_bytes = 64 * 1024;  // one message's text (what a user writes or imports)
  std::size_t max_title_bytes = 200;          // longer titles are cut at a character boundary
  std::size_t max_system_bytes = 16 * 1024;   // a conversation's system prompt
};

// finish_reason of a reply being generated, and of one whose server stopped
// before it ended (set by fail_pending_replies at start).
inline constexpr std::string_view kPending = "pending";
inline constexpr std::string_view kStopped = "stopped";  // the client went away or pressed stop
inline constexpr std::string_view kFailed = "error";

struct Message {
  std::int64_t id = 0;
  std::string role;  // user | assistant
  std::string content;
  std::string reasoning_content;
  std::string model;
  std::optional<std::int64_t> prompt_tokens;  // replies only
  std::optional<std::int64_t> completion_tokens;
  std::int64_t tokens_consumed = 0;
  std::optional<std::string> finish_reason;  // replies only
  std::int64_t created_at_ms = 0;
};

struct Summary {
  std::string id;  // random, 32 hex digits
  std::string title;
  std::string model;
  std::int64_t message_count = 0;
  std::int64_t bytes = 0;  // the text of its messages
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

struct Conversation {
  Summary summary;
  std::string system;
  std::vector<Message> messages;  // in order
};

struct ListQuery {
  std::string q;       // searches titles and message text; empty = all
  int limit = 20;      // 1..100
  std::string cursor;  // next_cursor of the previous page; empty = the first
};

struct Page {
  std::vector<Summary> items;  // newest (updated) first
  std::optional<std::string> next_cursor;
};

struct NewConversation {
  std::string title;
  std::string model;
  std::string system;
};

struct Changes {
  std::optional<std::string> title;
  std::optional<std::string> system;
};

enum class TurnKind {
  kSend,        // a new user message at the end
  kRegenerate,  // the last reply again, for the user message before it
  kEdit,        // a user message replaced; every message after it goes
};

struct TurnRequest {
  std::string conversation_id;
  TurnKind kind = TurnKind::kSend;
  std::string message;               // kSend, kEdit
  std::int64_t edit_message_id = 0;  // kEdit
};

struct HistoryMessage {
  std::string role;
  std::string content;
};

// What the model is asked, read from the conversation; nothing written yet.
struct TurnPlan {
  TurnRequest request;
  std::string system;                     // "" = none
  std::vector<HistoryMessage> history;    // before the user message
  std::string user_text;                  // the user message the reply answers
  std::int64_t keep_user_message_id = 0;  // kRegenerate: the stored user message
  std::int64_t remove_from_id = 0;        // kRegenerate/kEdit: this message and all after it go
};

struct OpenTurn {
  std::string conversation_id;
  std::int64_t user_message_id = 0;
  std::int64_t reply_message_id = 0;
  std::string title;
};

struct TurnEnd {
  std::string content;
  std::string reasoning_content;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t tokens_consumed = 0;
  std::string finish_reason;  // stop | length | stopped | error | ...
};

// What an administrator may see of one user's conversations: sizes, no text.
struct UserStats {
  std::int64_t conversations = 0;
  std::int64_t messages = 0;
  std::int64_t bytes = 0;
};

class ConversationStore {
 public:
  ConversationStore(store::Database& db, Limits limits);

  // Errors: kInvalidArgument (text not valid UTF-8, too large),
  // kConflict "too_many_conversations".
  Result<Conversation> create(std::int64_t user_id, const NewConversation& what);
  // Errors: kInvalidArgument "invalid_cursor" / "invalid_request" (limit).
  Result<Page> list(std::int64_t user_id, const ListQuery& query);
  Result<Conversation> get(const std::string& id, std::int64_t user_id);
  Result<Summary> update(const std::string& id, std::int64_t user_id, const Changes& changes);
  // The conversation and its messages are gone from the database.
  Result<void> remove(const std::string& id, std::int64_t user_id);
  // All of the user's; returns how many conversations went.
  Result<std::int64_t> remove_all(std::int64_t user_id);

  // Errors: kNotFound; kInvalidArgument "message_too_large"/"invalid_request";
  // kConflict "conversation_full", "nothing_to_regenerate", "reply_in_progress"
  // (regenerate/edit while a reply of the conversation is being generated).
  Result<TurnPlan> plan_turn(std::int64_t user_id, const TurnRequest& request);
  // Stores the plan's user message (unless it regenerates) and a pending
  // reply of `model`, removing what an edit or regenerate replaces, and sets
  // the title from the first message. Errors: kNotFound; kConflict
  // "conversation_changed" when what the plan replaces changed meanwhile,
  // "conversation_full".
  Result<OpenTurn> open_turn(std::int64_t user_id, const TurnPlan& plan, const std::string& model);
  // Writes the reply as it ended. A conversation deleted meanwhile is not an
  // error (the reply has nowhere to go).
  Result<void> close_turn(std::int64_t user_id, const OpenTurn& turn, const TurnEnd& end);

  // Every conversation of the user with its messages, oldest first (export).
  Result<std::vector<Conversation>> all_of(std::int64_t user_id);
  // Stores `items` as new conversations of the user (new ids; titles, times
  // and messages as given), all or none. Errors: as create() and the
  // message limits, kInvalidArgument naming the item.
  Result<std::vector<std::string>> import(std::int64_t user_id, const std::vector<Conversation>& items);

  Result<UserStats> stats(std::int64_t user_id);
  // The same for several users at once (at most 500); users without
  // conversations are left out.
  Result<std::vector<std::pair<std::int64_t, UserStats>>> stats_of(const std::vector<std::int64_t>& user_ids);

  // Removes conversations not updated since `cutoff_ms` (retention); returns
  // how many went.
  Result<std::int64_t> remove_older_than(std::int64_t cutoff_ms);
  // Marks replies still "pending" whose turn began before `before_ms` as
  // failed (a server that stopped mid-reply); returns how many.
  Result<std::int64_t> fail_pending_replies(std::int64_t before_ms);

  const Limits& limits() const { return limits_; }

 private:
  store::Database& db_;
  Limits limits_;
};

// The title a conversation gets from its first message: its first line-ish
// text, whitespace collapsed, cut at `max_bytes` on a character boundary.
std::string title_from(std::string_view message, std::size_t max_bytes);

}  // namespace llmd::conversations
