#include "models/anthropic.h"

#include <algorithm>

namespace llmd::models::anthropic {
namespace {

using json = nlohmann::json;

Error invalid(const std::string& what) { return Error(ErrorCode::kInvalidArgument, what, "invalid_request"); }

// A tool_result's content (a string or text blocks) as text.
Result<std::string> result_text(const json& content) {
  if (content.is_null()) return std::string();
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) return std::unexpected(invalid("tool_result.content must be a string or blocks"));
  std::string out;
  for (const json& b : content) {
    if (!b.is_object() || b.value("type", "") != "text" || !b.contains("text") || !b["text"].is_string()) {
      return std::unexpected(invalid("tool_result.content blocks must be text blocks"));
    }
    if (!out.empty()) out += "\n";
    out += b["text"].get<std::string>();
  }
  return out;
}

// system: a string or text blocks.
Result<std::string> system_text(const json& system) {
  if (system.is_string()) return system.get<std::string>();
  if (!system.is_array()) return std::unexpected(invalid("system must be a string or an array of text blocks"));
  std::string out;
  for (const json& b : system) {
    if (!b.is_object() || b.value("type", "") != "text" || !b.contains("text") || !b["text"].is_string()) {
      return std::unexpected(invalid("system blocks must be text blocks"));
    }
    if (!out.empty()) out += "\n\n";
    out += b["text"].get<std::string>();
  }
  return out;
}

// One Messages message as OpenAI messages (tool results become messages of
// their own, before the user's text).
Result<void> add_message(const json& m, json& out) {
  if (!m.is_object()) return std::unexpected(invalid("each message must be an object"));
  const std::string role = m.value("role", "");
  if (role != "user" && role != "assistant") {
    return std::unexpected(invalid("message role must be \"user\" or \"assistant\""));
  }
  const auto content = m.find("content");
  if (content == m.end()) return std::unexpected(invalid("each message needs content"));
  if (content->is_string()) {
    out.push_back({{"role", role}, {"content", *content}});
    return {};
  }
  if (!content->is_array()) return std::unexpected(invalid("message content must be a string or an array of blocks"));
  std::string text;
  std::string thinking;
  json tool_calls = json::array();
  for (const json& b : *content) {
    if (!b.is_object() || !b.contains("type") || !b["type"].is_string()) {
      return std::unexpected(invalid("each content block needs a type"));
    }
    const std::string type = b["type"];
    if (type == "text") {
      if (!b.contains("text") || !b["text"].is_string()) return std::unexpected(invalid("a text block needs text"));
      text += b["text"].get<std::string>();
    } else if (type == "thinking" && role == "assistant") {
      thinking += b.value("thinking", "");
    } else if (type == "redacted_thinking" && role == "assistant") {
      continue;
    } else if (type == "tool_use" && role == "assistant") {
      if (!b.contains("id") || !b["id"].is_string() || !b.contains("name") || !b["name"].is_string()) {
        return std::unexpected(invalid("a tool_use block needs id and name"));
      }
      const json input = b.contains("input") ? b["input"] : json::object();
      tool_calls.push_back(
          {{"id", b["id"]}, {"type", "function"}, {"function", {{"name", b["name"]}, {"arguments", input.dump()}}}});
    } else if (type == "tool_result" && role == "user") {
      if (!b.contains("tool_use_id") || !b["tool_use_id"].is_string()) {
        return std::unexpected(invalid("a tool_result block needs tool_use_id"));
      }
      auto result = result_text(b.contains("content") ? b["content"] : json());
      if (!result) return std::unexpected(result.error());
      if (b.value("is_error", false)) *result = "Error: " + *result;
      out.push_back({{"role", "tool"}, {"tool_call_id", b["tool_use_id"]}, {"content", *result}});
    } else if (type == "image" || type == "document") {
      return std::unexpected(invalid("this server reads text only: " + type + " blocks are not supported"));
    } else {
      return std::unexpected(invalid("content block type \"" + type + "\" is not allowed in a " + role + " message"));
    }
  }
  if (text.empty() && thinking.empty() && tool_calls.empty()) return {};  // only tool results
  json message = {{"role", role}, {"content", text}};
  if (!thinking.empty()) message["reasoning_content"] = thinking;
  if (!tool_calls.empty()) message["tool_calls"] = std::move(tool_calls);
  out.push_back(std::move(message));
  return {};
}

Result<json> tools_of(const json& tools) {
  if (!tools.is_array()) return std::unexpected(invalid("tools must be an array"));
  json out = json::array();
  for (const json& t : tools) {
    if (!t.is_object() || !t.contains("name") || !t["name"].is_string()) {
      return std::unexpected(invalid("each tool needs a name"));
    }
    if (t.contains("type") && t["type"].is_string() && t["type"] != "custom") {
      return std::unexpected(invalid("server tools (" + t["type"].get<std::string>() + ") are not supported"));
    }
    json fn = {{"name", t["name"]}, {"parameters", t.value("input_schema", json{{"type", "object"}})}};
    if (t.contains("description") && t["description"].is_string()) fn["description"] = t["description"];
    out.push_back({{"type", "function"}, {"function", std::move(fn)}});
  }
  return out;
}

Result<json> tool_choice_of(const json& choice) {
  if (!choice.is_object() || !choice.contains("type") || !choice["type"].is_string()) {
    return std::unexpected(invalid("tool_choice must be {\"type\": \"auto\" | \"any\" | \"tool\" | \"none\"}"));
  }
  const std::string type = choice["type"];
  if (type == "auto") return json("auto");
  if (type == "any") return json("required");
  if (type == "none") return json("none");
  if (type == "tool" && choice.contains("name") && choice["name"].is_string()) {
    return json{{"type", "function"}, {"function", {{"name", choice["name"]}}}};
  }
  return std::unexpected(
      invalid("tool_choice must be {\"type\": \"auto\" | \"any\" | \"tool\" (with name) | \"none\"}"));
}

json event_data(const char* type, json fields) {
  fields["type"] = type;
  return fields;
}

}  // namespace

Result<nlohmann::json> to_chat(const json& request, bool need_max_tokens) {
  if (!request.is_object()) return std::unexpected(invalid("the body must be a JSON object"));
  json chat = json::object();
  if (!request.contains("model") || !request["model"].is_string()) return std::unexpected(invalid("model is required"));
  chat["model"] = request["model"];
  if (request.contains("max_tokens")) {
    if (!request["max_tokens"].is_number_integer() || request["max_tokens"].get<std::int64_t>() < 1) {
      return std::unexpected(invalid("max_tokens must be a positive integer"));
    }
    chat["max_tokens"] = request["max_tokens"];
  } else if (need_max_tokens) {
    return std::unexpected(invalid("max_tokens is required"));
  }
  json messages = json::array();
  if (request.contains("system") && !request["system"].is_null()) {
    auto system = system_text(request["system"]);
    if (!system) return std::unexpected(system.error());
    messages.push_back({{"role", "system"}, {"content", *system}});
  }
  if (!request.contains("messages") || !request["messages"].is_array() || request["messages"].empty()) {
    return std::unexpected(invalid("messages must be a non-empty array"));
  }
  for (const json& m : request["messages"]) {
    auto added = add_message(m, messages);
    if (!added) return std::unexpected(added.error());
  }
  chat["messages"] = std::move(messages);
  if (request.contains("stop_sequences") && !request["stop_sequences"].is_null()) {
    const json& stops = request["stop_sequences"];
    if (!stops.is_array() || !std::all_of(stops.begin(), stops.end(), [](const json& s) { return s.is_string(); })) {
      return std::unexpected(invalid("stop_sequences must be an array of strings"));
    }
    chat["stop"] = stops;
  }
  for (const char* k : {"temperature", "top_p", "top_k"}) {
    if (!request.contains(k) || request[k].is_null()) continue;
    if (!request[k].is_number()) return std::unexpected(invalid(std::string(k) + " must be a number"));
    chat[k] = request[k];
  }
  if (request.contains("tools") && !request["tools"].is_null()) {
    auto tools = tools_of(request["tools"]);
    if (!tools) return std::unexpected(tools.error());
    if (!tools->empty()) chat["tools"] = std::move(*tools);
  }
  if (request.contains("tool_choice") && !request["tool_choice"].is_null()) {
    auto choice = tool_choice_of(request["tool_choice"]);
    if (!choice) return std::unexpected(choice.error());
    chat["tool_choice"] = std::move(*choice);
    if (request["tool_choice"].value("disable_parallel_tool_use", false)) chat["parallel_tool_calls"] = false;
  }
  if (request.contains("thinking") && !request["thinking"].is_null()) {
    const json& thinking = request["thinking"];
    const std::string type = thinking.is_object() ? thinking.value("type", "") : "";
    if (type != "enabled" && type != "disabled") {
      return std::unexpected(invalid("thinking must be {\"type\": \"enabled\" | \"disabled\"}"));
    }
    chat["chat_template_kwargs"] = {{"enable_thinking", type == "enabled"}};
    // The budget is the runner's own reasoning budget: the end of thinking
    // is forced after that many tokens.
    if (type == "enabled" && thinking.contains("budget_tokens")) {
      if (!thinking["budget_tokens"].is_number_integer() || thinking["budget_tokens"].get<std::int64_t>() < 1) {
        return std::unexpected(invalid("thinking.budget_tokens must be a positive integer"));
      }
      chat["reasoning_budget_tokens"] = thinking["budget_tokens"];
    }
  }
  // llama.cpp's sampling extensions, as llama-server's own Messages API
  // takes them (an SDK sends them as extra body fields).
  for (const char* k : {"seed", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty", "logit_bias"}) {
    if (request.contains(k) && !request[k].is_null()) chat[k] = request[k];
  }
  if (request.contains("stream")) {
    if (!request["stream"].is_boolean()) return std::unexpected(invalid("stream must be a boolean"));
    chat["stream"] = request["stream"];
  }
  return chat;
}

std::string stop_reason(const std::string& finish_reason) {
  if (finish_reason == "length") return "max_tokens";
  if (finish_reason == "tool_calls") return "tool_use";
  return "end_turn";
}

nlohmann::json from_chat(const json& completion, const std::string& id, const std::string& model) {
  json content = json::array();
  std::string finish = "stop";
  if (completion.contains("choices") && completion["choices"].is_array() && !completion["choices"].empty()) {
    const json& choice = completion["choices"][0];
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) finish = choice["finish_reason"];
    const json message = choice.value("message", json::object());
    if (message.contains("reasoning_content") && message["reasoning_content"].is_string() &&
        !message["reasoning_content"].get<std::string>().empty()) {
      content.push_back({{"type", "thinking"}, {"thinking", message["reasoning_content"]}, {"signature", ""}});
    }
    if (message.contains("content") && message["content"].is_string() &&
        !message["content"].get<std::string>().empty()) {
      content.push_back({{"type", "text"}, {"text", message["content"]}});
    }
    if (message.contains("tool_calls") && message["tool_calls"].is_array()) {
      for (const json& call : message["tool_calls"]) {
        const json fn = call.value("function", json::object());
        json input = json::parse(fn.value("arguments", "{}"), nullptr, false);
        if (input.is_discarded() || !input.is_object()) input = json::object();
        content.push_back({{"type", "tool_use"},
                           {"id", call.value("id", "")},
                           {"name", fn.value("name", "")},
                           {"input", std::move(input)}});
      }
    }
  }
  if (content.empty()) content.push_back({{"type", "text"}, {"text", ""}});
  const json usage = completion.value("usage", json::object());
  return {{"id", id},
          {"type", "message"},
          {"role", "assistant"},
          {"model", model},
          {"content", std::move(content)},
          {"stop_reason", stop_reason(finish)},
          {"stop_sequence", nullptr},
          {"usage",
           {{"input_tokens", usage.value("prompt_tokens", std::int64_t{0})},
            {"output_tokens", usage.value("completion_tokens", std::int64_t{0})}}}};
}

std::string error_type(int status) {
  switch (status) {
    case 400:
    case 413:
    case 415:
    case 422: return status == 413 ? "request_too_large" : "invalid_request_error";
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 503:
    case 529: return "overloaded_error";
    case 504: return "timeout_error";
    default: return "api_error";
  }
}

nlohmann::json error_body(int status, const std::string& message) {
  return {{"type", "error"}, {"error", {{"type", error_type(status)}, {"message", message}}}};
}

void StreamTranslator::start(std::vector<Event>& out) {
  if (started_) return;
  started_ = true;
  const json message = {{"id", id_},
                        {"type", "message"},
                        {"role", "assistant"},
                        {"model", model_},
                        {"content", json::array()},
                        {"stop_reason", nullptr},
                        {"stop_sequence", nullptr},
                        {"usage", {{"input_tokens", prompt_tokens_}, {"output_tokens", 0}}}};
  out.push_back({"message_start", event_data("message_start", {{"message", message}}).dump()});
}

void StreamTranslator::open_block(std::vector<Event>& out, Block kind, json block) {
  close_block(out);
  block_ = kind;
  ++index_;
  out.push_back({"content_block_start",
                 event_data("content_block_start", {{"index", index_}, {"content_block", std::move(block)}}).dump()});
}

void StreamTranslator::close_block(std::vector<Event>& out) {
  if (block_ == Block::kNone) return;
  out.push_back({"content_block_stop", event_data("content_block_stop", {{"index", index_}}).dump()});
  block_ = Block::kNone;
}

std::vector<Event> StreamTranslator::feed(const json& chunk) {
  std::vector<Event> out;
  if (!chunk.is_object()) return out;
  if (auto t = chunk.find("timings"); t != chunk.end() && t->is_object() && !started_) {
    prompt_tokens_ = t->value("cache_n", std::int64_t{0}) + t->value("prompt_n", std::int64_t{0});
  }
  const auto choices = chunk.find("choices");
  if (choices == chunk.end() || !choices->is_array() || choices->empty()) return out;
  start(out);
  const json& choice = (*choices)[0];
  if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) finish_reason_ = choice["finish_reason"];
  const json delta = choice.value("delta", json::object());
  const auto delta_event = [&](json d) {
    out.push_back({"content_block_delta",
                   event_data("content_block_delta", {{"index", index_}, {"delta", std::move(d)}}).dump()});
  };
  if (delta.contains("reasoning_content") && delta["reasoning_content"].is_string() &&
      !delta["reasoning_content"].get<std::string>().empty()) {
    if (block_ != Block::kThinking)
      open_block(out, Block::kThinking, {{"type", "thinking"}, {"thinking", ""}, {"signature", ""}});
    delta_event({{"type", "thinking_delta"}, {"thinking", delta["reasoning_content"]}});
  }
  if (delta.contains("content") && delta["content"].is_string() && !delta["content"].get<std::string>().empty()) {
    if (block_ != Block::kText) open_block(out, Block::kText, {{"type", "text"}, {"text", ""}});
    delta_event({{"type", "text_delta"}, {"text", delta["content"]}});
  }
  if (delta.contains("tool_calls") && delta["tool_calls"].is_array()) {
    for (const json& piece : delta["tool_calls"]) {
      if (!piece.is_object()) continue;
      const int call = static_cast<int>(piece.value("index", 0));
      const json fn = piece.value("function", json::object());
      if (block_ != Block::kTool || call != tool_call_) {
        open_block(out, Block::kTool,
                   {{"type", "tool_use"},
                    {"id", piece.value("id", "")},
                    {"name", fn.value("name", "")},
                    {"input", json::object()}});
        tool_call_ = call;
      }
      const std::string arguments = fn.value("arguments", "");
      if (!arguments.empty()) delta_event({{"type", "input_json_delta"}, {"partial_json", arguments}});
    }
  }
  return out;
}

std::vector<Event> StreamTranslator::finish(std::int64_t input_tokens, std::int64_t output_tokens) {
  std::vector<Event> out;
  prompt_tokens_ = input_tokens;
  start(out);
  close_block(out);
  out.push_back({"message_delta",
                 event_data("message_delta",
                            {{"delta", {{"stop_reason", stop_reason(finish_reason_)}, {"stop_sequence", nullptr}}},
                             {"usage", {{"input_tokens", input_tokens}, {"output_tokens", output_tokens}}}})
                     .dump()});
  out.push_back({"message_stop", event_data("message_stop", json::object()).dump()});
  return out;
}

}  // namespace llmd::models::anthropic
