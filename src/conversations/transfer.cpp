#include "conversations/transfer.h"

namespace llmd::conversations {
namespace {

using json = nlohmann::json;

constexpr const char* kExportFormat = "llmd.conversations";
constexpr int kExportVersion = 1;

std::int64_t seconds(std::int64_t ms) { return ms / 1000; }

std::unexpected<Error> invalid(const std::string& message) {
  return fail(ErrorCode::kInvalidArgument, message, "invalid_import");
}

// An optional integer field (seconds) as milliseconds; `fallback_ms` when absent.
Result<std::int64_t> time_field(const json& obj, const char* name, std::int64_t fallback_ms, const std::string& at) {
  if (!obj.contains(name) || obj[name].is_null()) return fallback_ms;
  if (!obj[name].is_number_integer() || obj[name].get<std::int64_t>() < 0 ||
      obj[name].get<std::int64_t>() > (std::int64_t{1} << 40)) {
    return invalid(at + "." + name + " must be unix seconds");
  }
  return obj[name].get<std::int64_t>() * 1000;
}

Result<std::string> text_field(const json& obj, const char* name, const std::string& at, bool required = false) {
  if (!obj.contains(name) || obj[name].is_null()) {
    if (required) return invalid(at + "." + name + " is required");
    return std::string();
  }
  if (!obj[name].is_string()) return invalid(at + "." + name + " must be a string");
  return obj[name].get<std::string>();
}

Result<std::optional<std::int64_t>> count_field(const json& obj, const char* name, const std::string& at) {
  if (!obj.contains(name) || obj[name].is_null()) return std::optional<std::int64_t>{};
  if (!obj[name].is_number_integer() || obj[name].get<std::int64_t>() < 0) {
    return invalid(at + "." + name + " must be a non-negative integer");
  }
  return std::optional<std::int64_t>(obj[name].get<std::int64_t>());
}

Result<Message> imported_message(const json& j, const std::string& at, std::int64_t now_ms) {
  if (!j.is_object()) return invalid(at + " must be an object");
  Message m;
  auto role = text_field(j, "role", at, true);
  auto content = text_field(j, "content", at, true);
  auto reasoning = text_field(j, "reasoning_content", at);
  auto model = text_field(j, "model", at);
  auto created = time_field(j, "created_at", now_ms, at);
  for (const auto* r : {&role, &content, &reasoning, &model}) {
    if (!*r) return std::unexpected(r->error());
  }
  if (!created) return std::unexpected(created.error());
  m.role = *role;
  m.content = *content;
  m.reasoning_content = *reasoning;
  m.model = *model;
  m.created_at_ms = *created;
  if (j.contains("usage") && !j["usage"].is_null()) {
    if (!j["usage"].is_object()) return invalid(at + ".usage must be an object or null");
    auto prompt = count_field(j["usage"], "prompt_tokens", at + ".usage");
    auto completion = count_field(j["usage"], "completion_tokens", at + ".usage");
    if (!prompt) return std::unexpected(prompt.error());
    if (!completion) return std::unexpected(completion.error());
    m.prompt_tokens = prompt->value_or(0);
    m.completion_tokens = completion->value_or(0);
  }
  auto consumed = count_field(j, "tokens_consumed", at);
  if (!consumed) return std::unexpected(consumed.error());
  m.tokens_consumed = consumed->value_or(0);
  if (j.contains("finish_reason") && !j["finish_reason"].is_null()) {
    if (!j["finish_reason"].is_string() || j["finish_reason"].get<std::string>().size() > 32) {
      return invalid(at + ".finish_reason must be a short string or null");
    }
    m.finish_reason = j["finish_reason"].get<std::string>();
  }
  return m;
}

Result<Conversation> imported_conversation(const json& j, const std::string& at, std::int64_t now_ms) {
  if (!j.is_object()) return invalid(at + " must be an object");
  Conversation c;
  auto title = text_field(j, "title", at);
  auto model = text_field(j, "model", at);
  auto system = text_field(j, "system", at);
  for (const auto* r : {&title, &model, &system}) {
    if (!*r) return std::unexpected(r->error());
  }
  auto created = time_field(j, "created_at", now_ms, at);
  if (!created) return std::unexpected(created.error());
  auto updated = time_field(j, "updated_at", *created, at);
  if (!updated) return std::unexpected(updated.error());
  c.summary.title = *title;
  c.summary.model = *model;
  c.summary.created_at_ms = *created;
  c.summary.updated_at_ms = *updated;
  c.system = *system;
  if (!j.contains("messages") || !j["messages"].is_array()) return invalid(at + ".messages must be an array");
  const json& messages = j["messages"];
  for (std::size_t i = 0; i < messages.size(); ++i) {
    auto m = imported_message(messages[i], at + ".messages[" + std::to_string(i) + "]", now_ms);
    if (!m) return std::unexpected(m.error());
    c.messages.push_back(std::move(*m));
  }
  return c;
}

json export_item(const Conversation& c) {
  json j = {{"title", c.summary.title},
            {"model", c.summary.model},
            {"system", c.system},
            {"created_at", seconds(c.summary.created_at_ms)},
            {"updated_at", seconds(c.summary.updated_at_ms)},
            {"messages", json::array()}};
  for (const auto& m : c.messages) j["messages"].push_back(message_json(m, false));
  return j;
}

}  // namespace

json message_json(const Message& m, bool with_id) {
  json j = json::object();
  if (with_id) j["id"] = m.id;
  j["role"] = m.role;
  j["content"] = m.content;
  if (!m.reasoning_content.empty()) j["reasoning_content"] = m.reasoning_content;
  j["model"] = m.model;
  j["usage"] = m.prompt_tokens || m.completion_tokens ? json{{"prompt_tokens", m.prompt_tokens.value_or(0)},
                                                             {"completion_tokens", m.completion_tokens.value_or(0)}}
                                                      : json(nullptr);
  j["tokens_consumed"] = m.tokens_consumed;
  j["finish_reason"] = m.finish_reason ? json(*m.finish_reason) : json(nullptr);
  j["created_at"] = seconds(m.created_at_ms);
  return j;
}

json export_json(const std::vector<Conversation>& items, std::int64_t exported_at) {
  json list = json::array();
  for (const auto& c : items) list.push_back(export_item(c));
  return {{"format", kExportFormat},
          {"version", kExportVersion},
          {"exported_at", exported_at},
          {"conversations", std::move(list)}};
}

std::string markdown_of(const Conversation& c) {
  std::string md = "# " + (c.summary.title.empty() ? std::string("Conversation") : c.summary.title) + "\n\n";
  if (!c.summary.model.empty()) md += "Model: " + c.summary.model + "\n\n";
  if (!c.system.empty()) md += "## System\n\n" + c.system + "\n\n";
  for (const auto& m : c.messages) {
    md += m.role == "user" ? "## User\n\n" : "## Assistant\n\n";
    if (!m.reasoning_content.empty()) {
      md += "<details><summary>Thinking</summary>\n\n" + m.reasoning_content + "\n\n</details>\n\n";
    }
    md += m.content + "\n\n";
    if (m.finish_reason && *m.finish_reason != "stop") md += "*(" + *m.finish_reason + ")*\n\n";
  }
  return md;
}

Result<std::vector<Conversation>> parse_export(const json& body, std::int64_t now_ms) {
  if (body.value("format", "") != kExportFormat || !body.contains("version") || body["version"] != kExportVersion) {
    return invalid(std::string("not an llmd export: expected format \"") + kExportFormat + "\", version 1");
  }
  if (!body.contains("conversations") || !body["conversations"].is_array() || body["conversations"].empty()) {
    return invalid("conversations must be a non-empty array");
  }
  std::vector<Conversation> out;
  const json& list = body["conversations"];
  for (std::size_t i = 0; i < list.size(); ++i) {
    auto c = imported_conversation(list[i], "conversations[" + std::to_string(i) + "]", now_ms);
    if (!c) return std::unexpected(c.error());
    out.push_back(std::move(*c));
  }
  return out;
}

}  // namespace llmd::conversations
