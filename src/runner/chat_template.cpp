#include "runner/chat_template.h"

#include <llama.h>

namespace llmd::runner {

std::string effective_chat_template(const Model& model, std::string_view override_template) {
  if (!override_template.empty()) return std::string(override_template);
  std::string own = model.chat_template();
  return own.empty() ? std::string("chatml") : own;
}

Result<std::string> apply_chat_template(const Model& model, std::span<const ChatMessage> messages,
                                        std::string_view override_template, bool add_assistant) {
  if (messages.empty()) return fail(ErrorCode::kInvalidArgument, "messages must not be empty");
  const std::string tmpl = effective_chat_template(model, override_template);
  std::vector<llama_chat_message> chat;
  chat.reserve(messages.size());
  size_t total = 0;
  for (const auto& m : messages) {
    chat.push_back({m.role.c_str(), m.content.c_str()});
    total += m.role.size() + m.content.size();
  }
  std::string out(total * 2 + 256, '\0');
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int32_t n = llama_chat_apply_template(tmpl.c_str(), chat.data(), chat.size(), add_assistant,
                                                out.data(), static_cast<int32_t>(out.size()));
    if (n < 0) {
      return fail(ErrorCode::kInvalidArgument,
                  "chat template is not supported by llama.cpp (use a built-in name such as chatml)",
                  "unsupported_chat_template");
    }
    if (static_cast<size_t>(n) <= out.size()) {
      out.resize(static_cast<size_t>(n));
      return out;
    }
    out.assign(static_cast<size_t>(n), '\0');
  }
  return fail(ErrorCode::kInternal, "chat template output size changed between calls");
}

std::vector<std::string> builtin_chat_templates() {
  const int32_t n = llama_chat_builtin_templates(nullptr, 0);
  std::vector<const char*> names(n > 0 ? static_cast<size_t>(n) : 0);
  llama_chat_builtin_templates(names.data(), names.size());
  return {names.begin(), names.end()};
}

}  // namespace llmd::runner
