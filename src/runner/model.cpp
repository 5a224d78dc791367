#include "runner/model.h"

#include <gguf.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <system_error>
#include <utility>

#include "runner/backend.h"

namespace llmd::runner {
namespace {

struct GgufDeleter {
  void operator()(gguf_context* c) const noexcept { gguf_free(c); }
};

Error unprocessable(std::string msg) { return Error(ErrorCode::kUnprocessable, std::move(msg), "invalid_model_file"); }

std::string meta_string(const llama_model* m, const char* key) {
  std::array<char, 512> buf{};
  const int32_t n = llama_model_meta_val_str(m, key, buf.data(), buf.size());
  if (n < 0) return {};
  if (static_cast<size_t>(n) < buf.size()) return std::string(buf.data(), static_cast<size_t>(n));
  std::string big(static_cast<size_t>(n) + 1, '\0');
  llama_model_meta_val_str(m, key, big.data(), big.size());
  big.resize(static_cast<size_t>(n));
  return big;
}

}  // namespace

Result<void> validate_gguf_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return fail(ErrorCode::kNotFound, "model file not found", "model_not_found");
  }
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) return fail(ErrorCode::kNotFound, "model file cannot be read", "model_not_found");

  std::array<char, 8> head{};
  {
    std::ifstream in(path, std::ios::binary);
    in.read(head.data(), head.size());
    if (in.gcount() < static_cast<std::streamsize>(head.size())) {
      return fail(unprocessable("model file is too short to be a GGUF file"));
    }
  }
  if (std::string_view(head.data(), 4) != "GGUF") {
    return fail(unprocessable("model file is not a GGUF file (bad magic)"));
  }
  uint32_t version = 0;
  std::memcpy(&version, head.data() + 4, sizeof version);
  if (version < 2 || version > 3) {
    return fail(unprocessable("unsupported GGUF version " + std::to_string(version)));
  }

  gguf_init_params params{/*no_alloc=*/true, /*ctx=*/nullptr};
  std::unique_ptr<gguf_context, GgufDeleter> g{gguf_init_from_file(path.c_str(), params)};
  if (!g) {
    return fail(unprocessable("model file has corrupt or truncated GGUF metadata"));
  }
  const uint64_t data_offset = gguf_get_data_offset(g.get());
  const int64_t n_tensors = gguf_get_n_tensors(g.get());
  for (int64_t i = 0; i < n_tensors; ++i) {
    // Recompute the size from the shape in wide arithmetic: a hostile shape
    // must not wrap around into something small.
    const int64_t* ne = gguf_get_tensor_ne(g.get(), i);
    const ggml_type type = gguf_get_tensor_type(g.get(), i);
    uint64_t elements = 1;
    bool overflow = false;
    for (int d = 0; d < GGML_MAX_DIMS; ++d) {
      if (ne[d] < 0) return fail(unprocessable("model file is corrupt: negative tensor dimension"));
      overflow = overflow || __builtin_mul_overflow(elements, static_cast<uint64_t>(ne[d]), &elements);
    }
    const uint64_t blck = static_cast<uint64_t>(std::max<int64_t>(1, ggml_blck_size(type)));
    uint64_t bytes = 0;
    overflow = overflow || __builtin_mul_overflow(elements / blck, ggml_type_size(type), &bytes);
    if (overflow) bytes = UINT64_MAX;
    if (bytes > file_size) {
      return fail(unprocessable("model file is corrupt: tensor '" + std::string(gguf_get_tensor_name(g.get(), i)) +
                                "' is larger than the file"));
    }
    const uint64_t off = gguf_get_tensor_offset(g.get(), i);
    const uint64_t size = gguf_get_tensor_size(g.get(), i);
    // Written so that no sum can overflow: each term is checked against the file size.
    if (data_offset > file_size || off > file_size - data_offset || size > file_size - data_offset - off) {
      return fail(unprocessable("model file is truncated: tensor '" + std::string(gguf_get_tensor_name(g.get(), i)) +
                                "' extends past the end of the file"));
    }
  }
  return {};
}

Result<std::shared_ptr<Model>> Model::load(const std::filesystem::path& path, const ModelOptions& options) {
  if (auto v = validate_gguf_file(path); !v) return fail(v.error());
  init_backends();
  if (backend_device_count() == 0) {
    return fail(ErrorCode::kInternal, "no llama.cpp compute backend could be loaded");
  }

  llama_model_params mp = llama_model_default_params();
  options.placement.apply(mp);
  mp.vocab_only = options.vocab_only;
  if (!options.use_mmap) mp.load_mode = LLAMA_LOAD_MODE_NONE;

  std::shared_ptr<Model> m(new Model());
  m->model_.reset(llama_model_load_from_file(path.c_str(), mp));
  if (!m->model_) {
    return fail(
        unprocessable("llama.cpp could not load the model (unsupported architecture or missing/invalid tensors)"));
  }
  m->vocab_ = llama_model_get_vocab(m->model_.get());
  auto& info = m->info_;
  info.path = path.string();
  info.architecture = meta_string(m->model_.get(), "general.architecture");
  info.name = meta_string(m->model_.get(), "general.name");
  std::array<char, 256> desc{};
  llama_model_desc(m->model_.get(), desc.data(), desc.size());
  info.description = desc.data();
  info.size_bytes = llama_model_size(m->model_.get());
  info.n_params = llama_model_n_params(m->model_.get());
  info.n_ctx_train = llama_model_n_ctx_train(m->model_.get());
  info.n_embd = llama_model_n_embd(m->model_.get());
  info.n_layer = llama_model_n_layer(m->model_.get());
  for (llama_token t = 0; t < llama_vocab_n_tokens(m->vocab_); ++t) {
    if (llama_vocab_is_eog(m->vocab_, t)) m->eog_tokens_.push_back(t);
  }
  info.n_vocab = llama_vocab_n_tokens(m->vocab_);
  info.has_chat_template = llama_model_chat_template(m->model_.get(), nullptr) != nullptr;
  return m;
}

Result<std::vector<llama_token>> Model::tokenize(std::string_view text, bool add_special, bool parse_special) const {
  if (text.size() > static_cast<size_t>(INT32_MAX / 2)) {
    return fail(ErrorCode::kInvalidArgument, "text too long to tokenize");
  }
  const auto len = static_cast<int32_t>(text.size());
  // A token covers at least one byte, plus BOS/EOS.
  std::vector<llama_token> tokens(text.size() + 2);
  int32_t n = llama_tokenize(vocab_, text.data(), len, tokens.data(), static_cast<int32_t>(tokens.size()), add_special,
                             parse_special);
  if (n < 0) {
    if (n == INT32_MIN) return fail(ErrorCode::kInvalidArgument, "text too long to tokenize");
    tokens.resize(static_cast<size_t>(-n));
    n = llama_tokenize(vocab_, text.data(), len, tokens.data(), static_cast<int32_t>(tokens.size()), add_special,
                       parse_special);
    if (n < 0) return fail(ErrorCode::kInternal, "tokenization failed");
  }
  tokens.resize(static_cast<size_t>(n));
  return tokens;
}

Result<std::string> Model::detokenize(std::span<const llama_token> tokens, bool render_special) const {
  for (const llama_token t : tokens) {
    if (!is_valid_token(t)) {
      return fail(ErrorCode::kInvalidArgument, "invalid token id " + std::to_string(t));
    }
  }
  if (tokens.size() > static_cast<size_t>(INT32_MAX / 64)) {
    return fail(ErrorCode::kInvalidArgument, "too many tokens");
  }
  const auto n_tokens = static_cast<int32_t>(tokens.size());
  std::string text(tokens.size() * 8 + 16, '\0');
  int32_t n = llama_detokenize(vocab_, tokens.data(), n_tokens, text.data(), static_cast<int32_t>(text.size()),
                               /*remove_special=*/true, render_special);
  if (n < 0) {
    text.resize(static_cast<size_t>(-n));
    n = llama_detokenize(vocab_, tokens.data(), n_tokens, text.data(), static_cast<int32_t>(text.size()),
                         /*remove_special=*/true, render_special);
    if (n < 0) return fail(ErrorCode::kInternal, "detokenization failed");
  }
  text.resize(static_cast<size_t>(n));
  return text;
}

std::string Model::token_to_piece(llama_token token, bool render_special) const {
  std::array<char, 128> buf{};
  int32_t n = llama_token_to_piece(vocab_, token, buf.data(), buf.size(), 0, render_special);
  if (n >= 0) return std::string(buf.data(), static_cast<size_t>(n));
  std::string big(static_cast<size_t>(-n), '\0');
  n = llama_token_to_piece(vocab_, token, big.data(), static_cast<int32_t>(big.size()), 0, render_special);
  big.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return big;
}

std::string Model::chat_template() const {
  const char* t = llama_model_chat_template(model_.get(), nullptr);
  return t != nullptr ? std::string(t) : std::string();
}

namespace {

// `text` tokenizes differently when control-token text is parsed: it holds
// something like "<|im_end|>".
bool has_control_text(const Model& m, std::string_view text) {
  auto parsed = m.tokenize(text, false, true);
  auto plain = m.tokenize(text, false, false);
  return !parsed || !plain || *parsed != *plain;
}

void append(std::vector<llama_token>& to, const std::vector<llama_token>& tokens) {
  to.insert(to.end(), tokens.begin(), tokens.end());
}

}  // namespace

Result<std::vector<llama_token>> Model::rerank_prompt(std::string_view query, std::string_view document) const {
  std::vector<llama_token> out;
  if (const char* tmpl = llama_model_chat_template(model_.get(), "rerank"); tmpl != nullptr) {
    const std::string_view t = tmpl;
    if (!has_control_text(*this, query) && !has_control_text(*this, document)) {
      // The whole text in one piece, exactly as llama-server tokenizes it.
      std::string prompt(t);
      const std::pair<std::string_view, std::string_view> fills[] = {{"{query}", query}, {"{document}", document}};
      for (const auto& [field, value] : fills) {
        for (auto at = prompt.find(field); at != std::string::npos; at = prompt.find(field, at + value.size())) {
          prompt.replace(at, field.size(), value);
        }
      }
      return tokenize(prompt, false, true);
    }
    // Template pieces with their control tokens, the caller's text as text.
    constexpr std::string_view kQuery = "{query}";
    constexpr std::string_view kDocument = "{document}";
    std::size_t from = 0;
    while (from <= t.size()) {
      const auto q = t.find(kQuery, from);
      const auto d = t.find(kDocument, from);
      const auto at = std::min(q, d);
      auto piece =
          tokenize(t.substr(from, at == std::string_view::npos ? std::string_view::npos : at - from), false, true);
      if (!piece) return fail(piece.error());
      append(out, *piece);
      if (at == std::string_view::npos) break;
      auto value = tokenize(at == q ? query : document, false, false);
      if (!value) return fail(value.error());
      append(out, *value);
      from = at + (at == q ? kQuery : kDocument).size();
    }
    return out;
  }
  auto q = tokenize(query, false, false);
  if (!q) return fail(q.error());
  auto d = tokenize(document, false, false);
  if (!d) return fail(d.error());
  llama_token eos = llama_vocab_eos(vocab_);
  if (eos == LLAMA_TOKEN_NULL) eos = llama_vocab_sep(vocab_);
  const bool add_eos = llama_vocab_get_add_eos(vocab_) && eos != LLAMA_TOKEN_NULL;
  if (llama_vocab_get_add_bos(vocab_)) out.push_back(llama_vocab_bos(vocab_));
  append(out, *q);
  if (add_eos) out.push_back(eos);
  if (llama_vocab_get_add_sep(vocab_)) out.push_back(llama_vocab_sep(vocab_));
  append(out, *d);
  if (add_eos) out.push_back(eos);
  return out;
}

std::string Model::meta(const std::string& key) const { return meta_string(model_.get(), key.c_str()); }

}  // namespace llmd::runner
