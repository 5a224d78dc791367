#include "models/ollama.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace llmd::models::ollama {
namespace {

using json = nlohmann::json;

Error invalid(const std::string& what) { return Error(ErrorCode::kInvalidArgument, what, "invalid_request"); }

// options, format and think: what chat and generate share.
Result<void> add_sampling(const json& request, json& out) {
  if (const auto o = request.find("options"); o != request.end() && !o->is_null()) {
    if (!o->is_object()) return std::unexpected(invalid("options must be an object"));
    for (const char* k : {"temperature", "top_p", "top_k", "min_p", "seed", "repeat_penalty", "presence_penalty",
                          "frequency_penalty"}) {
      if (!o->contains(k) || (*o)[k].is_null()) continue;
      if (!(*o)[k].is_number()) return std::unexpected(invalid("options." + std::string(k) + " must be a number"));
      out[k] = (*o)[k];
    }
    if (o->contains("num_predict") && !(*o)["num_predict"].is_null()) {
      if (!(*o)["num_predict"].is_number_integer())
        return std::unexpected(invalid("options.num_predict must be an integer"));
      if ((*o)["num_predict"].get<std::int64_t>() >= 0)
        out["max_tokens"] = (*o)["num_predict"];  // -1: no limit of its own
    }
    if (o->contains("stop") && !(*o)["stop"].is_null()) out["stop"] = (*o)["stop"];
  }
  if (const auto f = request.find("format"); f != request.end() && !f->is_null() && *f != "") {
    if (*f == "json") {
      out["response_format"] = {{"type", "json_object"}};
    } else if (f->is_object()) {
      out["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"name", "format"}, {"schema", *f}}}};
    } else {
      return std::unexpected(invalid("format must be \"json\" or a JSON schema"));
    }
  }
  if (const auto t = request.find("think"); t != request.end() && !t->is_null()) {
    if (!t->is_boolean() && !t->is_string()) return std::unexpected(invalid("think must be a boolean or a level"));
    out["chat_template_kwargs"] = {{"enable_thinking", t->is_boolean() ? t->get<bool>() : *t != "none"}};
  }
  out["stream"] = streams(request);
  return {};
}

Result<std::string> model_of(const json& request) {
  if (!request.is_object()) return std::unexpected(invalid("the body must be a JSON object"));
  if (!request.contains("model") || !request["model"].is_string() || request["model"].get<std::string>().empty()) {
    return std::unexpected(invalid("model is required"));
  }
  return request["model"].get<std::string>();
}

bool has_images(const json& m) { return m.contains("images") && m["images"].is_array() && !m["images"].empty(); }

std::string done_reason(const std::string& finish_reason) { return finish_reason == "length" ? "length" : "stop"; }

json counts(json out, const Timing& timing) {
  out["total_duration"] = timing.total_ns;
  out["load_duration"] = 0;
  out["prompt_eval_count"] = timing.prompt_tokens;
  out["prompt_eval_duration"] = 0;
  out["eval_count"] = timing.completion_tokens;
  out["eval_duration"] = timing.total_ns;
  return out;
}

// OpenAI tool calls (arguments as JSON text) as Ollama's (arguments as an object).
json tool_calls_of(const json& calls) {
  json out = json::array();
  for (const json& c : calls) {
    const json fn = c.value("function", json::object());
    json arguments = json::parse(fn.value("arguments", "{}"), nullptr, false);
    if (arguments.is_discarded() || !arguments.is_object()) arguments = json::object();
    out.push_back({{"function", {{"name", fn.value("name", "")}, {"arguments", std::move(arguments)}}}});
  }
  return out;
}

}  // namespace

bool streams(const json& request) {
  return !(request.is_object() && request.contains("stream") && request["stream"] == false);
}

Result<json> chat_request(const json& request) {
  auto model = model_of(request);
  if (!model) return std::unexpected(model.error());
  json chat = {{"model", *model}};
  if (!request.contains("messages") || !request["messages"].is_array()) {
    return std::unexpected(invalid("messages must be an array"));
  }
  json messages = json::array();
  std::vector<std::string> unanswered;  // ids of tool calls whose results have not come yet
  int call_number = 0;
  for (const json& m : request["messages"]) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      return std::unexpected(invalid("each message needs a role"));
    }
    const std::string role = m["role"];
    if (role != "system" && role != "user" && role != "assistant" && role != "tool") {
      return std::unexpected(invalid("message role must be system, user, assistant or tool"));
    }
    if (has_images(m)) return std::unexpected(invalid("this server reads text only: images are not supported"));
    if (m.contains("content") && !m["content"].is_string() && !m["content"].is_null()) {
      return std::unexpected(invalid("message content must be a string"));
    }
    json out = {{"role", role}, {"content", m.value("content", json("")).is_string() ? m["content"] : json("")}};
    if (role == "assistant" && m.contains("thinking") && m["thinking"].is_string())
      out["reasoning_content"] = m["thinking"];
    if (role == "assistant" && m.contains("tool_calls") && m["tool_calls"].is_array()) {
      json calls = json::array();
      for (const json& c : m["tool_calls"]) {
        const json fn = c.is_object() ? c.value("function", json::object()) : json::object();
        if (!fn.contains("name") || !fn["name"].is_string())
          return std::unexpected(invalid("a tool call needs a function name"));
        const std::string id = "call_" + std::to_string(++call_number);
        unanswered.push_back(id);
        const json arguments = fn.contains("arguments") ? fn["arguments"] : json::object();
        calls.push_back({{"id", id},
                         {"type", "function"},
                         {"function",
                          {{"name", fn["name"]},
                           {"arguments", arguments.is_string() ? arguments.get<std::string>() : arguments.dump()}}}});
      }
      if (!calls.empty()) out["tool_calls"] = std::move(calls);
    }
    if (role == "tool") {
      // Ollama's tool results carry no call id: they answer the calls in order.
      if (!unanswered.empty()) {
        out["tool_call_id"] = unanswered.front();
        unanswered.erase(unanswered.begin());
      }
    }
    messages.push_back(std::move(out));
  }
  if (messages.empty()) return std::unexpected(invalid("messages must not be empty"));
  chat["messages"] = std::move(messages);
  if (request.contains("tools") && !request["tools"].is_null()) {
    if (!request["tools"].is_array()) return std::unexpected(invalid("tools must be an array"));
    if (!request["tools"].empty()) chat["tools"] = request["tools"];
  }
  auto sampling = add_sampling(request, chat);
  if (!sampling) return std::unexpected(sampling.error());
  return chat;
}

Result<json> generate_request(const json& request, bool& raw) {
  auto model = model_of(request);
  if (!model) return std::unexpected(model.error());
  if (has_images(request)) return std::unexpected(invalid("this server reads text only: images are not supported"));
  if (request.contains("suffix") && request["suffix"].is_string() && !request["suffix"].get<std::string>().empty()) {
    return std::unexpected(invalid("suffix (fill in the middle) is not supported"));
  }
  if (!request.contains("prompt") || !request["prompt"].is_string() || request["prompt"].get<std::string>().empty()) {
    return std::unexpected(invalid("prompt must be a non-empty string"));
  }
  raw = request.value("raw", false);
  json out = {{"model", *model}};
  if (raw) {
    out["prompt"] = request["prompt"];
  } else {
    json messages = json::array();
    if (request.contains("system") && request["system"].is_string() && !request["system"].get<std::string>().empty()) {
      messages.push_back({{"role", "system"}, {"content", request["system"]}});
    }
    messages.push_back({{"role", "user"}, {"content", request["prompt"]}});
    out["messages"] = std::move(messages);
  }
  auto sampling = add_sampling(request, out);
  if (!sampling) return std::unexpected(sampling.error());
  if (raw) out.erase("chat_template_kwargs");
  return out;
}

Result<json> embed_request(const json& request) {
  auto model = model_of(request);
  if (!model) return std::unexpected(model.error());
  if (!request.contains("input")) return std::unexpected(invalid("input is required"));
  const json& input = request["input"];
  const bool strings = input.is_array() && !input.empty() &&
                       std::all_of(input.begin(), input.end(), [](const json& s) { return s.is_string(); });
  if (!input.is_string() && !strings) return std::unexpected(invalid("input must be a string or an array of strings"));
  return json{{"model", *model}, {"input", input}};
}

Result<std::optional<std::chrono::seconds>> keep_alive(const json& request) {
  using std::chrono::seconds;
  const auto it = request.is_object() ? request.find("keep_alive") : request.end();
  if (!request.is_object() || it == request.end() || it->is_null()) return std::optional<seconds>{};
  const auto clamp = [](double s) {
    return std::optional<seconds>(s < 0 ? seconds(-1) : seconds(static_cast<std::int64_t>(std::min(s, 1e9))));
  };
  if (it->is_number()) return clamp(it->get<double>());
  if (!it->is_string()) return std::unexpected(invalid("keep_alive must be a number of seconds or a duration"));
  // A Go duration: [-]<number><unit>... with units ns, us, ms, s, m, h.
  const std::string text = *it;
  std::size_t i = 0;
  const bool negative = !text.empty() && text[0] == '-';
  if (negative) ++i;
  double total = 0;
  bool any = false;
  while (i < text.size()) {
    std::size_t used = 0;
    double value = 0;
    try {
      value = std::stod(text.substr(i), &used);
    } catch (...) {
      return std::unexpected(invalid("keep_alive \"" + text + "\" is not a duration (e.g. \"5m\", \"1h\", \"0\")"));
    }
    if (!std::isfinite(value)) return std::unexpected(invalid("keep_alive must be a finite duration"));
    i += used;
    std::size_t unit_end = i;
    while (unit_end < text.size() && std::isalpha(static_cast<unsigned char>(text[unit_end])) != 0) ++unit_end;
    const std::string unit = text.substr(i, unit_end - i);
    i = unit_end;
    double scale = 0;
    if (unit == "h")
      scale = 3600;
    else if (unit == "m")
      scale = 60;
    else if (unit == "s" || (unit.empty() && i == text.size() && !any))
      scale = 1;
    else if (unit == "ms")
      scale = 1e-3;
    else if (unit == "us" || unit == "µs")
      scale = 1e-6;
    else if (unit == "ns")
      scale = 1e-9;
    else
      return std::unexpected(invalid("keep_alive \"" + text + "\" is not a duration (e.g. \"5m\", \"1h\", \"0\")"));
    total += value * scale;
    any = true;
  }
  if (!any) return std::unexpected(invalid("keep_alive must not be empty"));
  return clamp(negative ? -total : total);
}

std::string now_rfc3339() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

json reply(Kind kind, const json& completion, const std::string& model, const Timing& timing) {
  std::string content;
  std::string thinking;
  std::string finish = "stop";
  json calls = json::array();
  if (completion.contains("choices") && completion["choices"].is_array() && !completion["choices"].empty()) {
    const json& choice = completion["choices"][0];
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) finish = choice["finish_reason"];
    if (choice.contains("text") && choice["text"].is_string()) content = choice["text"];  // a raw generate
    const json message = choice.value("message", json::object());
    if (message.contains("content") && message["content"].is_string()) content = message["content"];
    if (message.contains("reasoning_content") && message["reasoning_content"].is_string())
      thinking = message["reasoning_content"];
    if (message.contains("tool_calls") && message["tool_calls"].is_array())
      calls = tool_calls_of(message["tool_calls"]);
  }
  json out = {{"model", model}, {"created_at", now_rfc3339()}};
  if (kind == Kind::kChat) {
    json message = {{"role", "assistant"}, {"content", content}};
    if (!thinking.empty()) message["thinking"] = thinking;
    if (!calls.empty()) message["tool_calls"] = std::move(calls);
    out["message"] = std::move(message);
  } else {
    out["response"] = content;
    if (!thinking.empty()) out["thinking"] = thinking;
  }
  out["done"] = true;
  out["done_reason"] = done_reason(finish);
  return counts(std::move(out), timing);
}

json embed_reply(const json& embeddings, const std::string& model, const Timing& timing) {
  json vectors = json::array();
  if (embeddings.contains("data") && embeddings["data"].is_array()) {
    for (const json& d : embeddings["data"]) vectors.push_back(d.value("embedding", json::array()));
  }
  return {{"model", model},
          {"embeddings", std::move(vectors)},
          {"total_duration", timing.total_ns},
          {"load_duration", 0},
          {"prompt_eval_count", timing.prompt_tokens}};
}

json StreamTranslator::line(json message_or_text) const {
  json out = {{"model", model_}, {"created_at", now_rfc3339()}};
  if (kind_ == Kind::kChat) {
    out["message"] = std::move(message_or_text);
  } else {
    out.update(message_or_text);
  }
  out["done"] = false;
  return out;
}

std::vector<json> StreamTranslator::feed(const json& chunk) {
  std::vector<json> out;
  const auto choices = chunk.is_object() ? chunk.find("choices") : chunk.end();
  if (!chunk.is_object() || choices == chunk.end() || !choices->is_array() || choices->empty()) return out;
  const json& choice = (*choices)[0];
  if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) finish_reason_ = choice["finish_reason"];
  const json delta = choice.value("delta", json::object());
  std::string text =
      delta.contains("content") && delta["content"].is_string() ? delta["content"].get<std::string>() : "";
  if (choice.contains("text") && choice["text"].is_string()) text = choice["text"];  // a raw generate
  const std::string thinking = delta.contains("reasoning_content") && delta["reasoning_content"].is_string()
                                   ? delta["reasoning_content"].get<std::string>()
                                   : "";
  if (delta.contains("tool_calls") && delta["tool_calls"].is_array()) {
    for (const json& piece : delta["tool_calls"]) {
      if (!piece.is_object()) continue;
      const auto index = static_cast<std::size_t>(std::max<std::int64_t>(0, piece.value("index", std::int64_t{0})));
      if (index > 64) continue;
      while (tool_calls_.size() <= index) tool_calls_.push_back({{"function", {{"name", ""}, {"arguments", ""}}}});
      const json fn = piece.value("function", json::object());
      json& target = tool_calls_[index]["function"];
      target["name"] = target["name"].get<std::string>() + fn.value("name", "");
      target["arguments"] = target["arguments"].get<std::string>() + fn.value("arguments", "");
    }
  }
  if (text.empty() && thinking.empty()) return out;
  if (kind_ == Kind::kChat) {
    json message = {{"role", "assistant"}, {"content", text}};
    if (!thinking.empty()) message["thinking"] = thinking;
    out.push_back(line(std::move(message)));
  } else {
    json fields = {{"response", text}};
    if (!thinking.empty()) fields["thinking"] = thinking;
    out.push_back(line(std::move(fields)));
  }
  return out;
}

std::vector<json> StreamTranslator::finish(const Timing& timing) const {
  std::vector<json> out;
  if (kind_ == Kind::kChat && !tool_calls_.empty()) {
    out.push_back(line({{"role", "assistant"}, {"content", ""}, {"tool_calls", tool_calls_of(tool_calls_)}}));
  }
  json last = {{"model", model_}, {"created_at", now_rfc3339()}};
  if (kind_ == Kind::kChat) {
    last["message"] = {{"role", "assistant"}, {"content", ""}};
  } else {
    last["response"] = "";
  }
  last["done"] = true;
  last["done_reason"] = done_reason(finish_reason_);
  out.push_back(counts(std::move(last), timing));
  return out;
}

}  // namespace llmd::models::ollama
