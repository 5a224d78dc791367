#include "runner/chat.h"

#include <llama.h>

#include <algorithm>
#include <exception>

#include <chat.h>
#include <common.h>

#include "runner/openai.h"

namespace llmd::runner {
namespace {

using Json = nlohmann::ordered_json;

std::unexpected<Error> template_error(std::string_view what, const std::exception& e) {
  return fail(ErrorCode::kInvalidArgument, std::string(what) + ": " + e.what(), "template_error");
}

bool is_builtin_name(std::string_view name) {
  const auto names = builtin_chat_templates();
  return std::find(names.begin(), names.end(), name) != names.end();
}

common_chat_tool_choice to_common(ToolChoice c) {
  switch (c) {
    case ToolChoice::kNone: return COMMON_CHAT_TOOL_CHOICE_NONE;
    case ToolChoice::kRequired: return COMMON_CHAT_TOOL_CHOICE_REQUIRED;
    case ToolChoice::kAuto: break;
  }
  return COMMON_CHAT_TOOL_CHOICE_AUTO;
}

// The one token `text` is, when it is a single token of the vocabulary.
std::optional<llama_token> single_token(const Model& model, const std::string& text) {
  auto tokens = model.tokenize(text, /*add_special=*/false, /*parse_special=*/true);
  if (!tokens || tokens->size() != 1) return std::nullopt;
  return tokens->front();
}

ToolCall from_common(const common_chat_tool_call& c) { return ToolCall{c.id, c.name, c.arguments}; }

common_chat_continuation to_common(Continuation c) {
  switch (c) {
    case Continuation::kNone: return COMMON_CHAT_CONTINUATION_NONE;
    case Continuation::kAuto: return COMMON_CHAT_CONTINUATION_AUTO;
    case Continuation::kReasoning: return COMMON_CHAT_CONTINUATION_REASONING;
    case Continuation::kContent: return COMMON_CHAT_CONTINUATION_CONTENT;
  }
  return COMMON_CHAT_CONTINUATION_NONE;
}

}  // namespace

// ---------------------------------------------------------------- templates

struct ChatTemplates::Impl {
  const Model* model = nullptr;
  common_chat_templates_ptr templates;
  bool legacy = false;  // a llama.cpp built-in name: llama_chat_apply_template, no tools
};

ChatTemplates::ChatTemplates(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChatTemplates::ChatTemplates(ChatTemplates&&) noexcept = default;
ChatTemplates& ChatTemplates::operator=(ChatTemplates&&) noexcept = default;
ChatTemplates::~ChatTemplates() = default;

Result<ChatTemplates> ChatTemplates::create(const Model& model, std::string_view override_template) {
  auto impl = std::make_unique<Impl>();
  impl->model = &model;
  impl->legacy = !override_template.empty() && override_template != "chatml" && is_builtin_name(override_template);
  try {
    impl->templates = common_chat_templates_init(model.raw(), std::string(override_template));
  } catch (const std::exception& e) {
    return template_error("the chat template does not parse", e);
  }
  if (!impl->templates) return fail(ErrorCode::kInvalidArgument, "no chat template", "template_error");
  return ChatTemplates(std::move(impl));
}

Result<ChatPrompt> ChatTemplates::apply(const ChatInput& input) const {
  common_chat_templates_inputs in;
  try {
    in.messages = common_chat_msgs_parse_oaicompat(common_json::parse(input.messages.dump()));
    if (input.tools.is_array() && !input.tools.empty()) {
      in.tools = common_chat_tools_parse_oaicompat(common_json::parse(input.tools.dump()));
    }
  } catch (const std::exception& e) {
    return fail(ErrorCode::kInvalidArgument, std::string("invalid messages or tools: ") + e.what());
  }
  if (impl_->legacy && !in.tools.empty()) {
    return fail(ErrorCode::kInvalidArgument,
                "tools need a Jinja chat template; the runner uses the built-in formatter '" + source() + "'",
                "template_error");
  }
  const auto caps = common_chat_templates_get_caps(impl_->templates.get());
  in.tool_choice = to_common(input.tool_choice);
  const auto parallel = caps.find("supports_parallel_tool_calls");
  in.parallel_tool_calls = input.parallel_tool_calls.value_or(parallel != caps.end() && parallel->second);
  in.use_jinja = !impl_->legacy;
  in.reasoning_format = COMMON_REASONING_FORMAT_DEEPSEEK;
  in.enable_thinking = input.enable_thinking;
  in.chat_template_kwargs = input.template_kwargs;
  in.json_schema = input.json_schema;
  in.grammar = input.grammar;
  in.add_generation_prompt = input.add_generation_prompt;
  in.continue_final_message = to_common(input.continue_final_message);
  if (in.continue_final_message != COMMON_CHAT_CONTINUATION_NONE) {
    if (in.add_generation_prompt) {
      return fail(ErrorCode::kInvalidArgument, "add_generation_prompt and continue_final_message cannot both be true");
    }
    if (in.messages.empty() || in.messages.back().role != "assistant") {
      return fail(ErrorCode::kInvalidArgument, "continue_final_message needs an assistant message last");
    }
    if (!in.messages.back().tool_calls.empty()) {
      return fail(ErrorCode::kInvalidArgument, "an assistant message with tool calls cannot be continued");
    }
  }

  common_chat_params out;
  try {
    out = common_chat_templates_apply(impl_->templates.get(), in);
  } catch (const std::exception& e) {
    return template_error("the chat template cannot render this request", e);
  }
  ChatPrompt p;
  p.prompt = std::move(out.prompt);
  p.grammar = std::move(out.grammar);
  p.grammar_lazy = out.grammar_lazy;
  for (const auto& t : out.grammar_triggers) {
    switch (t.type) {
      case COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN: p.trigger_tokens.push_back(t.token); break;
      case COMMON_GRAMMAR_TRIGGER_TYPE_WORD: p.trigger_patterns.push_back(regex_escape(t.value)); break;
      case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN: p.trigger_patterns.push_back(t.value); break;
      case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL: {
        std::string anchored = t.value;
        if (anchored.empty() || anchored.front() != '^') anchored.insert(0, "^");
        if (anchored.back() != '$') anchored += '$';
        p.trigger_patterns.push_back(std::move(anchored));
        break;
      }
    }
  }
  p.generation_prompt = std::move(out.generation_prompt);
  for (const auto& text : out.preserved_tokens) {
    if (auto id = single_token(*impl_->model, text)) p.preserved_tokens.push_back(*id);
  }
  p.additional_stops = std::move(out.additional_stops);
  p.supports_thinking = out.supports_thinking;
  p.thinking_start_tag = std::move(out.thinking_start_tag);
  p.thinking_end_tags = std::move(out.thinking_end_tags);
  p.parser = std::move(out.parser);
  p.format = static_cast<int>(out.format);
  p.parse_tool_calls = !in.tools.empty() && in.tool_choice != COMMON_CHAT_TOOL_CHOICE_NONE;
  p.is_continuation = in.continue_final_message != COMMON_CHAT_CONTINUATION_NONE;
  return p;
}

std::string ChatTemplates::source() const { return common_chat_templates_source(impl_->templates.get()); }

Json ChatTemplates::capabilities() const {
  Json caps = Json::object();
  for (const auto& [name, value] : common_chat_templates_get_caps(impl_->templates.get())) caps[name] = value;
  caps["supports_thinking"] = common_chat_templates_support_enable_thinking(impl_->templates.get());
  caps["jinja"] = !impl_->legacy;
  return caps;
}

// ---------------------------------------------------------------- output

struct ChatOutputParser::Impl {
  common_chat_parser_params params;
  std::string text;
  common_chat_msg previous;
  common_chat_msg prefilled;  // a continued message's part said before (is_continuation)
  std::vector<std::string> tool_call_ids;

  common_chat_msg parse(bool partial) {
    common_chat_msg msg = common_chat_parse(text, partial, params);
    msg.set_tool_call_ids(tool_call_ids, [] { return make_response_id("call_"); });
    return msg;
  }

  std::vector<ChatDelta> diff_to(const common_chat_msg& next) {
    std::vector<ChatDelta> out;
    for (const auto& d : common_chat_msg_diff::compute_diffs(previous, next)) {
      ChatDelta delta;
      delta.content = d.content_delta;
      delta.reasoning_content = d.reasoning_content_delta;
      if (d.tool_call_index != std::string::npos) {
        delta.tool_index = d.tool_call_index;
        delta.tool_call = from_common(d.tool_call_delta);
      }
      out.push_back(std::move(delta));
    }
    previous = next;
    return out;
  }
};

ChatOutputParser::ChatOutputParser(const ChatPrompt& prompt) : impl_(std::make_unique<Impl>()) {
  auto& p = impl_->params;
  p.format = static_cast<common_chat_format>(prompt.format);
  p.reasoning_format = COMMON_REASONING_FORMAT_DEEPSEEK;
  p.parse_tool_calls = prompt.parse_tool_calls;
  // Without a parser everything is content; the generation prompt must then
  // not be read back into it.
  if (!prompt.parser.empty()) {
    p.generation_prompt = prompt.generation_prompt;
    p.parser.load(prompt.parser);
  }
  p.is_continuation = prompt.is_continuation;
  if (p.is_continuation) {
    // The prefilled part is said already: deltas start after it.
    try {
      impl_->previous = impl_->parse(/*partial=*/true);
      impl_->prefilled = impl_->previous;
    } catch (const std::exception&) {
    }
  }
}

ChatOutputParser::ChatOutputParser(ChatOutputParser&&) noexcept = default;
ChatOutputParser::~ChatOutputParser() = default;

std::vector<ChatDelta> ChatOutputParser::feed(std::string_view text) {
  impl_->text.append(text);
  try {
    return impl_->diff_to(impl_->parse(/*partial=*/true));
  } catch (const std::exception&) {
    return {};  // not parseable yet: more text decides
  }
}

ChatReply ChatOutputParser::finish(std::vector<ChatDelta>* deltas) {
  common_chat_msg msg;
  try {
    msg = impl_->parse(/*partial=*/false);
  } catch (const std::exception&) {
    try {
      msg = impl_->parse(/*partial=*/true);
    } catch (const std::exception&) {
      msg = common_chat_msg{};
      msg.role = "assistant";
      msg.content = impl_->text;
    }
  }
  auto changes = impl_->diff_to(msg);
  if (deltas != nullptr) *deltas = std::move(changes);
  ChatReply reply;
  reply.content = msg.content;
  reply.reasoning_content = msg.reasoning_content;
  // A continued message's reply is what follows the prefill, as its stream was.
  const auto& before = impl_->prefilled;
  if (reply.content.starts_with(before.content)) reply.content.erase(0, before.content.size());
  if (reply.reasoning_content.starts_with(before.reasoning_content)) {
    reply.reasoning_content.erase(0, before.reasoning_content.size());
  }
  for (const auto& c : msg.tool_calls) reply.tool_calls.push_back(from_common(c));
  return reply;
}

// ---------------------------------------------------------------- shapes

std::vector<std::string> builtin_chat_templates() {
  const int32_t n = llama_chat_builtin_templates(nullptr, 0);
  std::vector<const char*> names(n > 0 ? static_cast<size_t>(n) : 0);
  llama_chat_builtin_templates(names.data(), names.size());
  return {names.begin(), names.end()};
}

Json reply_message_json(const ChatReply& reply) {
  Json m{{"role", "assistant"}};
  m["content"] = reply.content.empty() && !reply.tool_calls.empty() ? Json() : Json(reply.content);
  if (!reply.reasoning_content.empty()) m["reasoning_content"] = reply.reasoning_content;
  if (!reply.tool_calls.empty()) {
    Json calls = Json::array();
    for (const auto& c : reply.tool_calls) {
      calls.push_back(
          Json{{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    }
    m["tool_calls"] = std::move(calls);
  }
  return m;
}

Json delta_json(const ChatDelta& d) {
  Json delta = Json::object();
  if (!d.content.empty()) delta["content"] = d.content;
  if (!d.reasoning_content.empty()) delta["reasoning_content"] = d.reasoning_content;
  if (d.tool_index) {
    Json call{{"index", *d.tool_index}};
    if (!d.tool_call.id.empty()) {
      call["id"] = d.tool_call.id;
      call["type"] = "function";
    }
    Json fn = Json::object();
    if (!d.tool_call.name.empty()) fn["name"] = d.tool_call.name;
    fn["arguments"] = d.tool_call.arguments;
    call["function"] = std::move(fn);
    delta["tool_calls"] = Json::array({std::move(call)});
  }
  return delta;
}

}  // namespace llmd::runner
