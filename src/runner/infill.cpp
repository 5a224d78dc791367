#include "runner/infill.h"

#include <algorithm>

namespace llmd::runner {

std::optional<FimTokens> fim_tokens(const Model& model) {
  const llama_vocab* v = model.vocab();
  FimTokens t{llama_vocab_fim_pre(v), llama_vocab_fim_suf(v), llama_vocab_fim_mid(v), llama_vocab_fim_rep(v),
              llama_vocab_fim_sep(v)};
  if (t.prefix == LLAMA_TOKEN_NULL || t.suffix == LLAMA_TOKEN_NULL || t.middle == LLAMA_TOKEN_NULL) {
    return std::nullopt;
  }
  return t;
}

Result<std::vector<llama_token>> fim_prompt(const Model& model, const FimText& text, int n_batch, int n_ctx_slot,
                                            int max_tokens) {
  const auto fim = fim_tokens(model);
  if (!fim) {
    return fail(ErrorCode::kUnprocessable, "this model has no fill-in-the-middle tokens (prefix, suffix, middle)",
                "infill_not_supported");
  }
  // User text: control-token text stays text.
  const auto tokens = [&](const std::string& s) { return model.tokenize(s, false, false); };
  std::vector<llama_token> extra;
  if (fim->repository != LLAMA_TOKEN_NULL) {
    auto repo = tokens("myproject\n");
    if (!repo) return fail(repo.error());
    extra.push_back(fim->repository);
    extra.insert(extra.end(), repo->begin(), repo->end());
  }
  for (const auto& [filename, body] : text.extra) {
    auto head = fim->file_separator != LLAMA_TOKEN_NULL ? tokens(filename + "\n") : tokens("\n\n--- snippet ---\n\n");
    auto chunk = tokens(body);
    if (!head) return fail(head.error());
    if (!chunk) return fail(chunk.error());
    if (fim->file_separator != LLAMA_TOKEN_NULL) extra.push_back(fim->file_separator);
    extra.insert(extra.end(), head->begin(), head->end());
    extra.insert(extra.end(), chunk->begin(), chunk->end());
  }
  if (fim->file_separator != LLAMA_TOKEN_NULL) {
    auto current = tokens("filename\n");
    if (!current) return fail(current.error());
    extra.push_back(fim->file_separator);
    extra.insert(extra.end(), current->begin(), current->end());
  }

  auto prefix = tokens(text.prefix);
  auto suffix = tokens(text.suffix);
  auto prompt = tokens(text.prompt);
  if (!prefix) return fail(prefix.error());
  if (!suffix) return fail(suffix.error());
  if (!prompt) return fail(prompt.error());
  // Prefix 3 : suffix 1 within a batch; the prefix keeps its end (nearest
  // the gap), the suffix its start.
  const auto prefix_take = std::min<std::size_t>(prefix->size(), static_cast<std::size_t>(3 * (n_batch / 4)));
  const auto suffix_room = std::max<long>(0, n_batch / 4 - (2 + static_cast<long>(prompt->size())));
  const auto suffix_take = std::min<std::size_t>(suffix->size(), static_cast<std::size_t>(suffix_room));
  const long reply = max_tokens < 0 ? 0 : 2L * max_tokens;
  const auto extra_take =
      std::min<std::size_t>(extra.size(), static_cast<std::size_t>(std::max<long>(0, n_ctx_slot - n_batch - reply)));

  std::vector<llama_token> out(extra.end() - static_cast<std::ptrdiff_t>(extra_take), extra.end());
  if (llama_vocab_get_add_bos(model.vocab())) out.push_back(llama_vocab_bos(model.vocab()));
  out.push_back(fim->prefix);
  out.insert(out.end(), prefix->end() - static_cast<std::ptrdiff_t>(prefix_take), prefix->end());
  out.insert(out.end(), prompt->begin(), prompt->end());
  out.push_back(fim->suffix);
  out.insert(out.end(), suffix->begin(), suffix->begin() + static_cast<std::ptrdiff_t>(suffix_take));
  out.push_back(fim->middle);
  return out;
}

}  // namespace llmd::runner
