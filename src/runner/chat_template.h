// Chat prompt formatting with llama.cpp's built-in template engine.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "runner/model.h"

namespace llmd::runner {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", ...
  std::string content;
};

// Formats `messages` into one prompt string with llama_chat_apply_template.
// Template choice: `override_template` when non-empty (a built-in name such
// as "chatml", "llama3", "mistral-v7", or a template text), else the model's
// own tokenizer.chat_template, else ChatML. `add_assistant` appends the
// opening of the assistant turn. Errors: kInvalidArgument when the chosen
// template is not one llama.cpp supports, or messages are empty.
// Thread-safe.
Result<std::string> apply_chat_template(const Model& model, std::span<const ChatMessage> messages,
                                        std::string_view override_template = {},
                                        bool add_assistant = true);

// The template text or name apply_chat_template would use for `model`.
std::string effective_chat_template(const Model& model, std::string_view override_template = {});

// Names of llama.cpp's built-in templates ("chatml", "llama2", ...).
std::vector<std::string> builtin_chat_templates();

}  // namespace llmd::runner
