// Conversations as files: the JSON export that /import takes back (from this
// install or another), and a Markdown rendering to read.
//
//   {"format": "llmd.conversations", "version": 1, "exported_at": <unix s>,
//    "conversations": [{title, model, system, created_at, updated_at,
//                       messages: [{role, content, reasoning_content?, model, usage, tokens_consumed,
//                                   finish_reason, created_at}]}]}
//
// Times are unix seconds. An export imported and exported again is the same
// file but for exported_at.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "conversations/conversation_store.h"
#include "core/error.h"

namespace llmd::conversations {

// A message as the API and the export show it (the export without its id).
nlohmann::json message_json(const Message& m, bool with_id);

nlohmann::json export_json(const std::vector<Conversation>& items, std::int64_t exported_at);

// The conversations of an export, checked whole before anything is stored;
// missing times become `now_ms`. Errors: kInvalidArgument "invalid_import"
// naming the field.
Result<std::vector<Conversation>> parse_export(const nlohmann::json& body, std::int64_t now_ms);

std::string markdown_of(const Conversation& c);

}  // namespace llmd::conversations
