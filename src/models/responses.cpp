#include "models/responses.h"

#include <algorithm>

namespace llmd::models::responses {
namespace {

using json = nlohmann::json;

Error invalid(const std::string& what) { return Error(ErrorCode::kInvalidArgument, what, "invalid_request"); }

// A message item's content (a string or input_text / output_text parts) as text.
Result<std::string> content_text(const json& content) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) return std::unexpected(invalid("message content must be a string or an array of parts"));
  std::string out;
  for (const json& part : content) {
    const std::string type = part.is_object() ? part.value("type", "") : "";
    if (type == "input_text" || type == "output_text" || type == "text") {
      if (!part.contains("text") || !part["text"].is_string())
        return std::unexpected(invalid("a text part needs text"));
      out += part["text"].get<std::string>();
    } else if (type == "input_image" || type == "input_file" || type == "input_audio") {
      return std::unexpected(invalid("this server reads text only: " + type + " parts are not supported"));
    } else if (type != "refusal") {
      return std::unexpected(invalid("content part type \"" + type + "\" is not supported"));
    }
  }
  return out;
}

// Adds one input item to the chat messages.
Result<void> add_item(const json& item, json& messages) {
  if (!item.is_object()) return std::unexpected(invalid("each input item must be an object"));
  const std::string type = item.value("type", item.contains("role") ? "message" : "");
  if (type == "message") {
    std::string role = item.value("role", "");
    if (role == "developer") role = "system";
    if (role != "system" && role != "user" && role != "assistant") {
      return std::unexpected(invalid("message role must be user, assistant, system or developer"));
    }
    auto text = content_text(item.contains("content") ? item["content"] : json(""));
    if (!text) return std::unexpected(text.error());
    messages.push_back({{"role", role}, {"content", *text}});
    return {};
  }
  if (type == "function_call") {
    if (!item.contains("call_id") || !item["call_id"].is_string() || !item.contains("name") ||
        !item["name"].is_string()) {
      return std::unexpected(invalid("a function_call item needs call_id and name"));
    }
    const json call = {{"id", item["call_id"]},
                       {"type", "function"},
                       {"function", {{"name", item["name"]}, {"arguments", item.value("arguments", "{}")}}}};
    // Calls of one turn go on the assistant message before them.
    if (!messages.empty() && messages.back()["role"] == "assistant") {
      json& last = messages.back();
      if (!last.contains("tool_calls")) last["tool_calls"] = json::array();
      last["tool_calls"].push_back(call);
    } else {
      messages.push_back({{"role", "assistant"}, {"content", ""}, {"tool_calls", json::array({call})}});
    }
    return {};
  }
  if (type == "function_call_output") {
    if (!item.contains("call_id") || !item["call_id"].is_string()) {
      return std::unexpected(invalid("a function_call_output item needs call_id"));
    }
    auto output = content_text(item.contains("output") ? item["output"] : json(""));
    if (!output) return std::unexpected(output.error());
    messages.push_back({{"role", "tool"}, {"tool_call_id", item["call_id"]}, {"content", *output}});
    return {};
  }
  if (type == "reasoning") return {};  // the model's own earlier thinking: not sent back to it
  if (type == "item_reference") {
    return std::unexpected(invalid("item references need stored responses, which llmd does not keep"));
  }
  return std::unexpected(invalid("input item type \"" + type + "\" is not supported"));
}

json usage_of(std::int64_t input, std::int64_t output) {
  return {{"input_tokens", input},
          {"input_tokens_details", {{"cached_tokens", 0}}},
          {"output_tokens", output},
          {"output_tokens_details", {{"reasoning_tokens", 0}}},
          {"total_tokens", input + output}};
}

// The response object around `output`, echoing the request's settings.
json response_object(const Ids& ids, const json& request, const std::string& status, json output, json usage,
                     json incomplete) {
  const auto echo = [&](const char* key, json fallback) {
    return request.contains(key) && !request[key].is_null() ? request[key] : fallback;
  };
  return {{"id", ids.response},
          {"object", "response"},
          {"created_at", ids.created_at},
          {"status", status},
          {"error", nullptr},
          {"incomplete_details", std::move(incomplete)},
          {"instructions", echo("instructions", nullptr)},
          {"max_output_tokens", echo("max_output_tokens", nullptr)},
          {"model", echo("model", "")},
          {"output", std::move(output)},
          {"parallel_tool_calls", echo("parallel_tool_calls", true)},
          {"previous_response_id", nullptr},
          {"reasoning", echo("reasoning", json{{"effort", nullptr}, {"summary", nullptr}})},
          {"store", false},
          {"temperature", echo("temperature", 1.0)},
          {"text", echo("text", json{{"format", {{"type", "text"}}}})},
          {"tool_choice", echo("tool_choice", "auto")},
          {"tools", echo("tools", json::array())},
          {"top_p", echo("top_p", 1.0)},
          {"truncation", "disabled"},
          {"usage", std::move(usage)},
          {"metadata", echo("metadata", json::object())}};
}

// A response's id with another prefix, for its items: resp_X -> msg_X.
std::string derived_id(const std::string& response_id, const std::string& prefix, int n) {
  const std::string tail = response_id.starts_with("resp_") ? response_id.substr(5) : response_id;
  return prefix + tail + (n > 0 ? "_" + std::to_string(n) : "");
}

json message_item(const std::string& id, const std::string& text, const char* status) {
  return {{"type", "message"},
          {"id", id},
          {"status", status},
          {"role", "assistant"},
          {"content", json::array({{{"type", "output_text"}, {"text", text}, {"annotations", json::array()}}})}};
}

json reasoning_item(const std::string& id, const std::string& text) {
  return {{"type", "reasoning"},
          {"id", id},
          {"summary", json::array()},
          {"content", json::array({{{"type", "reasoning_text"}, {"text", text}}})}};
}

json call_item(const std::string& id, const std::string& call_id, const std::string& name, const std::string& arguments,
               const char* status) {
  return {{"type", "function_call"}, {"id", id},        {"call_id", call_id}, {"name", name},
          {"arguments", arguments},  {"status", status}};
}

}  // namespace

Result<nlohmann::json> to_chat(const json& request) {
  if (!request.is_object()) return std::unexpected(invalid("the body must be a JSON object"));
  for (const char* k : {"previous_response_id", "conversation"}) {
    if (request.contains(k) && !request[k].is_null()) {
      return std::unexpected(invalid(std::string(k) + " is not supported: llmd keeps no responses (store is false); "
                                                      "send the whole conversation as input"));
    }
  }
  if (!request.contains("model") || !request["model"].is_string()) return std::unexpected(invalid("model is required"));
  json chat = {{"model", request["model"]}};
  json messages = json::array();
  if (request.contains("instructions") && request["instructions"].is_string()) {
    messages.push_back({{"role", "system"}, {"content", request["instructions"]}});
  }
  const json input = request.value("input", json());
  if (input.is_string()) {
    messages.push_back({{"role", "user"}, {"content", input}});
  } else if (input.is_array()) {
    for (const json& item : input) {
      auto added = add_item(item, messages);
      if (!added) return std::unexpected(added.error());
    }
  } else {
    return std::unexpected(invalid("input must be a string or an array of items"));
  }
  if (messages.empty()) return std::unexpected(invalid("input must not be empty"));
  chat["messages"] = std::move(messages);
  if (request.contains("tools") && !request["tools"].is_null()) {
    if (!request["tools"].is_array()) return std::unexpected(invalid("tools must be an array"));
    json tools = json::array();
    for (const json& t : request["tools"]) {
      if (!t.is_object() || t.value("type", "") != "function") {
        return std::unexpected(invalid("only function tools are supported (built-in tools such as " +
                                       (t.is_object() ? t.value("type", std::string("?")) : std::string("?")) +
                                       " are not)"));
      }
      if (!t.contains("name") || !t["name"].is_string())
        return std::unexpected(invalid("a function tool needs a name"));
      json fn = {{"name", t["name"]}, {"parameters", t.value("parameters", json{{"type", "object"}})}};
      if (t.contains("description") && t["description"].is_string()) fn["description"] = t["description"];
      tools.push_back({{"type", "function"}, {"function", std::move(fn)}});
    }
    if (!tools.empty()) chat["tools"] = std::move(tools);
  }
  if (request.contains("tool_choice") && !request["tool_choice"].is_null()) {
    const json& c = request["tool_choice"];
    if (c.is_string()) {
      chat["tool_choice"] = c;
    } else if (c.is_object() && c.value("type", "") == "function" && c.contains("name") && c["name"].is_string()) {
      chat["tool_choice"] = {{"type", "function"}, {"function", {{"name", c["name"]}}}};
    } else {
      return std::unexpected(
          invalid("tool_choice must be auto, none, required or {\"type\":\"function\",\"name\":...}"));
    }
  }
  if (request.contains("parallel_tool_calls") && request["parallel_tool_calls"].is_boolean()) {
    chat["parallel_tool_calls"] = request["parallel_tool_calls"];
  }
  if (const json format = request.value("text", json::object()).value("format", json()); format.is_object()) {
    const std::string type = format.value("type", "text");
    if (type == "json_object") {
      chat["response_format"] = {{"type", "json_object"}};
    } else if (type == "json_schema") {
      if (!format.contains("schema")) return std::unexpected(invalid("text.format json_schema needs a schema"));
      chat["response_format"] = {{"type", "json_schema"},
                                 {"json_schema",
                                  {{"name", format.value("name", "response")},
                                   {"schema", format["schema"]},
                                   {"strict", format.value("strict", false)}}}};
    } else if (type != "text") {
      return std::unexpected(invalid("text.format type must be text, json_object or json_schema"));
    }
  }
  if (const json reasoning = request.value("reasoning", json());
      reasoning.is_object() && reasoning.contains("effort") && reasoning["effort"].is_string()) {
    const std::string effort = reasoning["effort"];
    chat["chat_template_kwargs"] = {{"enable_thinking", effort != "minimal" && effort != "none"}};
  }
  if (request.contains("max_output_tokens") && !request["max_output_tokens"].is_null()) {
    if (!request["max_output_tokens"].is_number_integer() || request["max_output_tokens"].get<std::int64_t>() < 1) {
      return std::unexpected(invalid("max_output_tokens must be a positive integer"));
    }
    chat["max_tokens"] = request["max_output_tokens"];
  }
  for (const char* k : {"temperature", "top_p"}) {
    if (!request.contains(k) || request[k].is_null()) continue;
    if (!request[k].is_number()) return std::unexpected(invalid(std::string(k) + " must be a number"));
    chat[k] = request[k];
  }
  // llama.cpp's sampling extensions, sent as extra body fields.
  for (const char* k :
       {"seed", "top_k", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty", "logit_bias"}) {
    if (request.contains(k) && !request[k].is_null()) chat[k] = request[k];
  }
  if (request.contains("stream")) {
    if (!request["stream"].is_boolean()) return std::unexpected(invalid("stream must be a boolean"));
    chat["stream"] = request["stream"];
  }
  return chat;
}

nlohmann::json from_chat(const json& completion, const Ids& ids, const json& request) {
  json output = json::array();
  std::string finish = "stop";
  if (completion.contains("choices") && completion["choices"].is_array() && !completion["choices"].empty()) {
    const json& choice = completion["choices"][0];
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) finish = choice["finish_reason"];
    const json message = choice.value("message", json::object());
    const std::string reasoning = message.contains("reasoning_content") && message["reasoning_content"].is_string()
                                      ? message["reasoning_content"].get<std::string>()
                                      : "";
    const std::string text =
        message.contains("content") && message["content"].is_string() ? message["content"].get<std::string>() : "";
    const json calls =
        message.contains("tool_calls") && message["tool_calls"].is_array() ? message["tool_calls"] : json::array();
    if (!reasoning.empty()) output.push_back(reasoning_item(derived_id(ids.response, "rs_", 0), reasoning));
    if (!text.empty() || calls.empty())
      output.push_back(message_item(derived_id(ids.response, "msg_", 0), text, "completed"));
    int n = 0;
    for (const json& call : calls) {
      const json fn = call.value("function", json::object());
      output.push_back(call_item(derived_id(ids.response, "fc_", n++), call.value("id", ""), fn.value("name", ""),
                                 fn.value("arguments", "{}"), "completed"));
    }
  }
  const json usage = completion.value("usage", json::object());
  const bool cut = finish == "length";
  return response_object(
      ids, request, cut ? "incomplete" : "completed", std::move(output),
      usage_of(usage.value("prompt_tokens", std::int64_t{0}), usage.value("completion_tokens", std::int64_t{0})),
      cut ? json{{"reason", "max_output_tokens"}} : json(nullptr));
}

void StreamTranslator::emit(std::vector<SseEvent>& out, const char* type, json fields) {
  fields["type"] = type;
  fields["sequence_number"] = sequence_++;
  out.push_back({type, fields.dump(-1, ' ', false, json::error_handler_t::replace)});
}

std::string StreamTranslator::item_id() const { return current_.value("id", ""); }

std::vector<SseEvent> StreamTranslator::start() {
  std::vector<SseEvent> out;
  const json response = response_object(ids_, request_, "in_progress", json::array(), nullptr, nullptr);
  emit(out, "response.created", {{"response", response}});
  emit(out, "response.in_progress", {{"response", response}});
  return out;
}

void StreamTranslator::open_item(std::vector<SseEvent>& out, Item kind, json item) {
  close_item(out);
  item_ = kind;
  current_ = std::move(item);
  text_.clear();
  const int index = static_cast<int>(output_.size());
  emit(out, "response.output_item.added", {{"output_index", index}, {"item", current_}});
  if (kind == Item::kMessage) {
    emit(out, "response.content_part.added",
         {{"item_id", item_id()},
          {"output_index", index},
          {"content_index", 0},
          {"part", {{"type", "output_text"}, {"text", ""}, {"annotations", json::array()}}}});
  } else if (kind == Item::kReasoning) {
    emit(out, "response.content_part.added",
         {{"item_id", item_id()},
          {"output_index", index},
          {"content_index", 0},
          {"part", {{"type", "reasoning_text"}, {"text", ""}}}});
  }
}

void StreamTranslator::close_item(std::vector<SseEvent>& out) {
  if (item_ == Item::kNone) return;
  const int index = static_cast<int>(output_.size());
  const std::string id = item_id();
  json done;
  if (item_ == Item::kMessage) {
    const json part = {{"type", "output_text"}, {"text", text_}, {"annotations", json::array()}};
    emit(
        out, "response.output_text.done",
        {{"item_id", id}, {"output_index", index}, {"content_index", 0}, {"text", text_}, {"logprobs", json::array()}});
    emit(out, "response.content_part.done",
         {{"item_id", id}, {"output_index", index}, {"content_index", 0}, {"part", part}});
    done = message_item(id, text_, "completed");
  } else if (item_ == Item::kReasoning) {
    emit(out, "response.reasoning_text.done",
         {{"item_id", id}, {"output_index", index}, {"content_index", 0}, {"text", text_}});
    emit(out, "response.content_part.done",
         {{"item_id", id},
          {"output_index", index},
          {"content_index", 0},
          {"part", {{"type", "reasoning_text"}, {"text", text_}}}});
    done = reasoning_item(id, text_);
  } else {
    emit(out, "response.function_call_arguments.done",
         {{"item_id", id}, {"output_index", index}, {"name", current_["name"]}, {"arguments", text_}});
    done = call_item(id, current_["call_id"], current_["name"], text_, "completed");
  }
  emit(out, "response.output_item.done", {{"output_index", index}, {"item", done}});
  output_.push_back(std::move(done));
  item_ = Item::kNone;
}

std::vector<SseEvent> StreamTranslator::feed(const json& chunk) {
  std::vector<SseEvent> out;
  const auto choices = chunk.is_object() ? chunk.find("choices") : chunk.end();
  if (!chunk.is_object() || choices == chunk.end() || !choices->is_array() || choices->empty()) return out;
  const json& choice = (*choices)[0];
  if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) finish_reason_ = choice["finish_reason"];
  const json delta = choice.value("delta", json::object());
  const auto piece = [&](const char* key) {
    return delta.contains(key) && delta[key].is_string() ? delta[key].get<std::string>() : std::string();
  };
  const int index = static_cast<int>(output_.size());
  if (const std::string thinking = piece("reasoning_content"); !thinking.empty()) {
    if (item_ != Item::kReasoning)
      open_item(out, Item::kReasoning,
                {{"type", "reasoning"}, {"id", derived_id(ids_.response, "rs_", index)}, {"summary", json::array()}});
    text_ += thinking;
    emit(out, "response.reasoning_text.delta",
         {{"item_id", item_id()},
          {"output_index", static_cast<int>(output_.size())},
          {"content_index", 0},
          {"delta", thinking}});
  }
  if (const std::string text = piece("content"); !text.empty()) {
    if (item_ != Item::kMessage) {
      open_item(out, Item::kMessage,
                {{"type", "message"},
                 {"id", derived_id(ids_.response, "msg_", static_cast<int>(output_.size()))},
                 {"status", "in_progress"},
                 {"role", "assistant"},
                 {"content", json::array()}});
    }
    text_ += text;
    emit(out, "response.output_text.delta",
         {{"item_id", item_id()},
          {"output_index", static_cast<int>(output_.size())},
          {"content_index", 0},
          {"delta", text},
          {"logprobs", json::array()}});
  }
  if (delta.contains("tool_calls") && delta["tool_calls"].is_array()) {
    for (const json& call : delta["tool_calls"]) {
      if (!call.is_object()) continue;
      const int n = static_cast<int>(call.value("index", 0));
      const json fn = call.value("function", json::object());
      if (item_ != Item::kCall || n != tool_call_) {
        open_item(out, Item::kCall,
                  call_item(derived_id(ids_.response, "fc_", static_cast<int>(output_.size())), call.value("id", ""),
                            fn.value("name", ""), "", "in_progress"));
        tool_call_ = n;
      }
      const std::string arguments = fn.value("arguments", "");
      if (arguments.empty()) continue;
      text_ += arguments;
      emit(out, "response.function_call_arguments.delta",
           {{"item_id", item_id()}, {"output_index", static_cast<int>(output_.size())}, {"delta", arguments}});
    }
  }
  return out;
}

std::vector<SseEvent> StreamTranslator::finish(std::int64_t input_tokens, std::int64_t output_tokens) {
  std::vector<SseEvent> out;
  close_item(out);
  if (output_.empty()) {  // an empty reply is still a message
    open_item(out, Item::kMessage,
              {{"type", "message"},
               {"id", derived_id(ids_.response, "msg_", 0)},
               {"status", "in_progress"},
               {"role", "assistant"},
               {"content", json::array()}});
    close_item(out);
  }
  const bool cut = finish_reason_ == "length";
  const json response =
      response_object(ids_, request_, cut ? "incomplete" : "completed", output_, usage_of(input_tokens, output_tokens),
                      cut ? json{{"reason", "max_output_tokens"}} : json(nullptr));
  emit(out, cut ? "response.incomplete" : "response.completed", {{"response", response}});
  return out;
}

}  // namespace llmd::models::responses
