// The OpenAI chat completion JSON of ChatRequest and ChatReply.
#include <algorithm>
#include <cmath>

#include "inference/model_client.h"

namespace llmd::inference {

using nlohmann::json;

std::string chat_body(const ChatRequest& request) {
  json body = request.extra.is_object() ? request.extra : json::object();
  body["model"] = request.model;
  json messages = json::array();
  for (const auto& m : request.messages) messages.push_back({{"role", m.role}, {"content", m.content}});
  body["messages"] = std::move(messages);
  if (request.temperature) {
    const double t = *request.temperature;
    if (std::floor(t) == t && std::abs(t) < 1e9) {
      body["temperature"] = static_cast<std::int64_t>(t);
    } else {
      body["temperature"] = t;
    }
  }
  if (request.max_tokens) body["max_tokens"] = *request.max_tokens;
  if (request.seed) body["seed"] = *request.seed;
  if (!request.response_format.is_null()) body["response_format"] = request.response_format;
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

ChatRequest chat_request_from_json(const json& body) {
  ChatRequest r;
  if (!body.is_object()) return r;
  r.extra = json::object();
  for (const auto& [key, value] : body.items()) {
    if (key == "model" && value.is_string()) {
      r.model = value.get<std::string>();
    } else if (key == "messages" && value.is_array()) {
      for (const auto& m : value) {
        if (!m.is_object()) continue;
        r.messages.push_back({m.value("role", std::string()), m.value("content", std::string())});
      }
    } else if (key == "temperature" && value.is_number()) {
      r.temperature = value.get<double>();
    } else if (key == "max_tokens" && value.is_number_integer()) {
      r.max_tokens = value.get<std::int64_t>();
    } else if (key == "seed" && value.is_number_integer()) {
      r.seed = value.get<std::int64_t>();
    } else if (key == "response_format") {
      r.response_format = value;
    } else {
      r.extra[key] = value;
    }
  }
  return r;
}

ChatReply chat_reply_from_json(const json& body) {
  ChatReply out;
  if (!body.is_object()) return out;
  if (auto u = body.find("usage"); u != body.end() && u->is_object()) {
    out.usage.prompt_tokens = u->value("prompt_tokens", std::int64_t{0});
    out.usage.completion_tokens = u->value("completion_tokens", std::int64_t{0});
  }
  auto choices = body.find("choices");
  if (choices == body.end() || !choices->is_array() || choices->empty() || !(*choices)[0].is_object()) return out;
  const json& choice = (*choices)[0];
  if (auto f = choice.find("finish_reason"); f != choice.end() && f->is_string()) out.finish_reason = *f;
  auto message = choice.find("message");
  if (message == choice.end() || !message->is_object()) return out;
  if (auto c = message->find("content"); c != message->end() && c->is_string()) out.content = *c;
  if (auto c = message->find("reasoning_content"); c != message->end() && c->is_string()) out.reasoning_content = *c;
  if (auto calls = message->find("tool_calls"); calls != message->end() && calls->is_array()) {
    for (const auto& call : *calls) {
      if (!call.is_object()) continue;
      ToolCall t;
      t.id = call.value("id", std::string());
      const json fn = call.value("function", json::object());
      if (fn.is_object()) {
        t.name = fn.value("name", std::string());
        t.arguments = fn.value("arguments", std::string());
      }
      out.tool_calls.push_back(std::move(t));
    }
  }
  return out;
}

void add_chat_chunk(ChatReply& reply, const json& chunk) {
  if (!chunk.is_object()) return;
  if (auto u = chunk.find("usage"); u != chunk.end() && u->is_object()) {
    reply.usage.prompt_tokens = u->value("prompt_tokens", reply.usage.prompt_tokens);
    reply.usage.completion_tokens = u->value("completion_tokens", reply.usage.completion_tokens);
  }
  auto choices = chunk.find("choices");
  if (choices == chunk.end() || !choices->is_array() || choices->empty() || !(*choices)[0].is_object()) return;
  const json& choice = (*choices)[0];
  if (auto f = choice.find("finish_reason"); f != choice.end() && f->is_string()) reply.finish_reason = *f;
  // A whole reply (a server that ignored "stream") has a message instead.
  const bool whole = !choice.contains("delta") && choice.contains("message");
  auto delta = choice.find(whole ? "message" : "delta");
  if (delta == choice.end() || !delta->is_object()) return;
  if (auto c = delta->find("content"); c != delta->end() && c->is_string()) reply.content += c->get<std::string>();
  if (auto c = delta->find("reasoning_content"); c != delta->end() && c->is_string()) {
    reply.reasoning_content += c->get<std::string>();
  }
  auto calls = delta->find("tool_calls");
  if (calls == delta->end() || !calls->is_array()) return;
  for (std::size_t position = 0; position < calls->size(); ++position) {
    const json& piece = (*calls)[position];
    if (!piece.is_object()) continue;
    const std::int64_t given = piece.value("index", static_cast<std::int64_t>(whole ? position : 0));
    const auto index = static_cast<std::size_t>(std::max<std::int64_t>(0, given));
    if (index > 1024) continue;  // not a real tool call's index
    if (reply.tool_calls.size() <= index) reply.tool_calls.resize(index + 1);
    ToolCall& t = reply.tool_calls[index];
    if (auto id = piece.find("id"); id != piece.end() && id->is_string()) t.id = *id;
    auto fn = piece.find("function");
    if (fn == piece.end() || !fn->is_object()) continue;
    if (auto n = fn->find("name"); n != fn->end() && n->is_string()) t.name += n->get<std::string>();
    if (auto a = fn->find("arguments"); a != fn->end() && a->is_string()) t.arguments += a->get<std::string>();
  }
}

}  // namespace llmd::inference
