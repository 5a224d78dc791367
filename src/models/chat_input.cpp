#include "models/chat_input.h"

namespace llmd::models {
namespace {

using json = nlohmann::json;

std::unexpected<Error> invalid(const std::string& message) {
  return fail(ErrorCode::kInvalidArgument, message, "invalid_request");
}

bool is_nonempty_string(const json& body, const char* key) {
  return body.contains(key) && body[key].is_string() && !body[key].get<std::string>().empty();
}

bool present(const json& body, const char* key) { return body.contains(key) && !body[key].is_null(); }

Result<ChatTurn> parse_turn(const json& in) {
  if (!is_nonempty_string(in, "conversation_id")) return invalid("conversation_id must be a non-empty string");
  for (const char* k : {"history", "system"}) {
    if (present(in, k)) {
      return invalid(std::string(k) + " cannot be given with conversation_id: the conversation holds it");
    }
  }
  ChatTurn turn;
  turn.conversation_id = in["conversation_id"].get<std::string>();
  const bool regenerate = present(in, "regenerate");
  if (regenerate && !in["regenerate"].is_boolean()) return invalid("regenerate must be a boolean");
  if (regenerate && in["regenerate"].get<bool>()) {
    if (present(in, "message") || present(in, "edit_message_id")) {
      return invalid("regenerate takes no message nor edit_message_id");
    }
    turn.kind = ChatTurn::Kind::kRegenerate;
    return turn;
  }
  if (!is_nonempty_string(in, "message")) return invalid("message must be a non-empty string");
  turn.message = in["message"].get<std::string>();
  if (present(in, "edit_message_id")) {
    if (!in["edit_message_id"].is_number_integer() || in["edit_message_id"].get<std::int64_t>() <= 0) {
      return invalid("edit_message_id must be a positive integer (the id of a user message)");
    }
    turn.kind = ChatTurn::Kind::kEdit;
    turn.edit_message_id = in["edit_message_id"].get<std::int64_t>();
  }
  return turn;
}

Result<json> parse_messages(const json& in) {
  if (!is_nonempty_string(in, "message")) return invalid("message must be a non-empty string");
  json messages = json::array();
  if (present(in, "system")) {
    if (!in["system"].is_string()) return invalid("system must be a string");
    messages.push_back({{"role", "system"}, {"content", in["system"]}});
  }
  if (present(in, "history")) {
    if (!in["history"].is_array()) return invalid("history must be an array");
    for (const auto& h : in["history"]) {
      if (!h.is_object() || !h.contains("role") || !h["role"].is_string() || !h.contains("content") ||
          !h["content"].is_string() || (h["role"] != "user" && h["role"] != "assistant" && h["role"] != "system")) {
        return invalid("history entries are {role: user|assistant|system, content: string}");
      }
      messages.push_back({{"role", h["role"]}, {"content", h["content"]}});
    }
  }
  messages.push_back({{"role", "user"}, {"content", in["message"]}});
  return messages;
}

}  // namespace

Result<ChatInput> parse_chat_input(const json& in) {
  if (!in.is_object()) return fail(ErrorCode::kInvalidArgument, "the body is not a JSON object", "invalid_json");
  ChatInput out;
  if (present(in, "conversation_id")) {
    auto turn = parse_turn(in);
    if (!turn) return std::unexpected(turn.error());
    out.turn = std::move(*turn);
  } else {
    for (const char* k : {"regenerate", "edit_message_id"}) {
      if (present(in, k)) return invalid(std::string(k) + " needs a conversation_id");
    }
    auto messages = parse_messages(in);
    if (!messages) return std::unexpected(messages.error());
    out.messages = std::move(*messages);
  }
  out.options = json::object();
  for (const char* k : {"max_tokens", "temperature", "top_p", "top_k", "seed"}) {
    if (in.contains(k)) out.options[k] = in[k];
  }
  if (present(in, "stream") && !in["stream"].is_boolean()) return invalid("stream must be a boolean");
  out.stream = in.value("stream", false);
  return out;
}

json chat_messages(const ChatContext& context) {
  json messages = json::array();
  if (!context.system.empty()) messages.push_back({{"role", "system"}, {"content", context.system}});
  for (const auto& [role, content] : context.history) messages.push_back({{"role", role}, {"content", content}});
  messages.push_back({{"role", "user"}, {"content", context.user_text}});
  return messages;
}

}  // namespace llmd::models
