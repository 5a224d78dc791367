// /api/v1/conversations (SPEC §4.5c): the caller's chat conversations kept
// on the server; another user's id is a 404 for every verb.
//   GET    /api/v1/conversations?q=&limit=&cursor=  -> {items, next_cursor}
//   POST   /api/v1/conversations {title?, model?, system?} -> 201 the conversation
//   GET    /api/v1/conversations/{id}                -> the conversation with its messages
//   PATCH  /api/v1/conversations/{id} {title?, system?} -> the summary
//   DELETE /api/v1/conversations/{id}, DELETE /api/v1/conversations (all of mine)
//   GET    /api/v1/conversations/{id}/export?format=md|json, GET /api/v1/conversations/export (all, JSON)
//   POST   /api/v1/conversations/import (an export's JSON) -> 201 {id, ids}
//   GET    /api/v1/admin/conversations?user_ids=1,2 (admin) -> {users: [{user_id, conversations, messages, bytes}]}:
//          sizes, never text
// and the conversation memory of POST /api/v1/models/{name}/chat.
#pragma once

#include <memory>

#include "conversations/conversation_store.h"
#include "http/router.h"
#include "http/worker_pool.h"
#include "models/hooks.h"
#include "observe/log.h"

namespace llmd::api {

struct ConversationDeps {
  conversations::ConversationStore& store;
  http::WorkerPool& pool;
  observe::Logger log;
};

void add_conversation_routes(http::Router& router, ConversationDeps deps);

// The chat route's memory over `store` (models::ModelRoutesDeps::memory).
std::shared_ptr<models::ChatMemory> make_chat_memory(ConversationDeps deps);

}  // namespace llmd::api
