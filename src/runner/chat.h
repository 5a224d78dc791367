// The runner's chat layer, on llama.cpp's own (libllama-common): the model's
// Jinja chat template renders the prompt (tools, thinking switches and
// generation prompt included), and the template-derived parser splits the
// generated text into content, reasoning and tool calls — whole or, while
// streaming, as OpenAI-shaped deltas. Nothing here is written per model
// family: templates, grammars and parsers all come from llama.cpp.
//
//   auto tmpl = ChatTemplates::create(model, "");            // the GGUF's own template
//   auto prompt = tmpl->apply(input);                        // prompt, grammar, stops, parser
//   ChatOutputParser parser(*prompt);
//   auto deltas = parser.feed("<think>hm</think>Hi");        // streamed pieces
//   ChatReply reply = parser.finish();                       // content, reasoning, tool calls
//
// common_* types stay in chat.cpp: this header shows only llmd's own.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "runner/model.h"

namespace llmd::runner {

enum class ToolChoice { kAuto, kNone, kRequired };

// Continuing the last (assistant) message instead of starting a new turn
// (vLLM's continue_final_message; llama-server's assistant prefill): kAuto
// continues its reasoning when it has only reasoning, else its content.
enum class Continuation { kNone, kAuto, kReasoning, kContent };

// What a chat request asks the template to render. JSON fields keep the
// OpenAI shapes (messages with content parts, tool_calls, tool_call_id;
// tools as [{"type":"function","function":{name, description, parameters}}]).
struct ChatInput {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  nlohmann::ordered_json tools;  // null or an array
  ToolChoice tool_choice = ToolChoice::kAuto;
  std::optional<bool> parallel_tool_calls;  // none: what the template supports
  // Values as JSON texts ("true", "\"high\""), passed to the template.
  std::map<std::string, std::string> template_kwargs;
  bool enable_thinking = true;
  std::string json_schema;  // a JSON schema text the reply must follow (after any thinking)
  std::string grammar;      // a GBNF the reply must follow
  bool add_generation_prompt = true;
  Continuation continue_final_message = Continuation::kNone;
};

// A rendered chat request: what the engine needs to generate, and what the
// parser needs to read the output back.
struct ChatPrompt {
  std::string prompt;
  // Constraint derived from tools / json_schema / grammar (GBNF, root "root").
  std::string grammar;
  bool grammar_lazy = false;                  // applies only once a trigger appears
  std::vector<std::string> trigger_patterns;  // regexes over the generated text
  std::vector<llama_token> trigger_tokens;    // tokens that trigger it
  // The generation prompt (e.g. "<|im_start|>assistant\n<think>\n"): the
  // grammar and the parser both start with it.
  std::string generation_prompt;
  // Special tokens the output must keep as text (tool-call and thinking markers).
  std::vector<llama_token> preserved_tokens;
  std::vector<std::string> additional_stops;
  bool supports_thinking = false;
  std::string thinking_start_tag;
  std::vector<std::string> thinking_end_tags;
  // The parser (llama.cpp's serialized PEG arena) and its format id.
  std::string parser;
  int format = 0;
  bool parse_tool_calls = false;
  // The reply continues the last message: the parser reads the prefilled
  // part (part of generation_prompt) as already said, not as new output.
  bool is_continuation = false;
};

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text
};

// The parsed reply.
struct ChatReply {
  std::string content;
  std::string reasoning_content;
  std::vector<ToolCall> tool_calls;
};

// One streamed change: text appended to content or reasoning, or a piece of
// tool call `tool_index` (id and name arrive in the call's first delta).
struct ChatDelta {
  std::string content;
  std::string reasoning_content;
  std::optional<std::size_t> tool_index;
  ToolCall tool_call;
};

class ChatTemplates {
 public:
  // `override_template`: empty = the GGUF's own template (ChatML when it has
  // none); a llama.cpp built-in name ("llama3", "mistral-v7", ...) = that
  // legacy formatter (no tools); anything else = Jinja template text.
  // Errors: kInvalidArgument (template_error) when the Jinja does not parse.
  static Result<ChatTemplates> create(const Model& model, std::string_view override_template = {});

  ChatTemplates(ChatTemplates&&) noexcept;
  ChatTemplates& operator=(ChatTemplates&&) noexcept;
  ~ChatTemplates();

  // Renders `input`. Errors: kInvalidArgument with reason template_error
  // (the template raised, or cannot express the request) or invalid_request
  // (malformed messages/tools), the message naming the cause. Thread-safe.
  Result<ChatPrompt> apply(const ChatInput& input) const;

  // The template text (or built-in name) in use.
  std::string source() const;
  // Capabilities: supports_tools, supports_tool_calls, supports_system_role,
  // supports_parallel_tool_calls, supports_thinking (the template has a
  // thinking switch or block), ...
  nlohmann::ordered_json capabilities() const;

 private:
  struct Impl;
  explicit ChatTemplates(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Reads one generation back: feed() the text as it arrives, finish() once.
// Not thread-safe (one per request).
class ChatOutputParser {
 public:
  explicit ChatOutputParser(const ChatPrompt& prompt);
  ChatOutputParser(ChatOutputParser&&) noexcept;
  ~ChatOutputParser();

  // Appends `text` and returns what changed since the last call (partial parse).
  std::vector<ChatDelta> feed(std::string_view text);
  // The final parse of everything fed; `deltas` receives what changed since
  // the last feed(). Output that does not parse becomes plain content.
  ChatReply finish(std::vector<ChatDelta>* deltas = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Names of llama.cpp's built-in templates ("chatml", "llama2", ...).
std::vector<std::string> builtin_chat_templates();

// OpenAI JSON of a reply: {"role":"assistant","content":...,
// "reasoning_content"?, "tool_calls"?}. content is null when only tools were called.
nlohmann::ordered_json reply_message_json(const ChatReply& reply);
// OpenAI delta object of a streamed change.
nlohmann::ordered_json delta_json(const ChatDelta& delta);

}  // namespace llmd::runner
