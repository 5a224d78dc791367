// The body of POST /api/v1/models/{name}/chat, taken apart:
//   {message, max_tokens?, history?, system?, stream?, temperature?, top_p?, top_k?, seed?}
// or, in a conversation kept on the server (SPEC §4.5c),
//   {conversation_id, message | regenerate: true | edit_message_id + message, max_tokens?, stream?, ...}
// where the history and the system prompt come from the stored conversation.
#pragma once

#include <optional>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/hooks.h"

namespace llmd::models {

struct ChatInput {
  std::optional<ChatTurn> turn;  // set: a conversation kept on the server
  nlohmann::json messages;       // without a turn: system + history + the message
  nlohmann::json options;        // max_tokens and the sampling fields, as given
  bool stream = false;
};

// Errors: kInvalidArgument naming the field.
Result<ChatInput> parse_chat_input(const nlohmann::json& body);

// The OpenAI messages of a turn read from its conversation.
nlohmann::json chat_messages(const ChatContext& context);

}  // namespace llmd::models
