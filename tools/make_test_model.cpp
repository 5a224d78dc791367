#include "tools/make_test_model.h"

#include <ggml.h>
#include <gguf.h>
#include <llama.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "runner/backend.h"

#ifndef LLMD_DEFAULT_VOCAB_DIR
#define LLMD_DEFAULT_VOCAB_DIR ""
#endif

namespace llmd::tools {
namespace {

struct GgufDeleter {
  void operator()(gguf_context* c) const noexcept { gguf_free(c); }
};
struct GgmlDeleter {
  void operator()(ggml_context* c) const noexcept { ggml_free(c); }
};
struct FileCloser {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
using GgufPtr = std::unique_ptr<gguf_context, GgufDeleter>;
using GgmlPtr = std::unique_ptr<ggml_context, GgmlDeleter>;
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// splitmix64: tiny, fast, and identical on every platform (unlike <random>'s
// distributions), so a seed always gives the same file.
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [-1, 1).
  float uniform() { return static_cast<float>(next() >> 40) * (2.0f / 16777216.0f) - 1.0f; }
};

enum class Init { kOnes, kUniform };

struct TensorSpec {
  std::string name;
  ggml_type type;
  int64_t ne0, ne1;  // ne1 == 1 for vectors
  Init init;
  float scale;  // half-width of the uniform distribution
};

struct ArchInfo {
  std::string_view vocab_file;
  bool qkv_bias;
  bool qk_norm;  // per-head RMS norms of queries and keys (Qwen3)
  float rope_freq_base;
  float rms_eps;
};

Result<ArchInfo> arch_info(std::string_view arch) {
  if (arch == "qwen2") return ArchInfo{"ggml-vocab-qwen2.gguf", true, false, 1000000.0f, 1e-6f};
  if (arch == "qwen3") return ArchInfo{"ggml-vocab-qwen2.gguf", false, true, 1000000.0f, 1e-6f};
  if (arch == "llama") return ArchInfo{"ggml-vocab-llama-spm.gguf", false, false, 10000.0f, 1e-5f};
  return fail(ErrorCode::kInvalidArgument,
              "unknown --arch '" + std::string(arch) + "' (expected qwen2, qwen3 or llama)");
}

// Qwen3-Reranker's prompt, as its GGUF conversion stores it
// (tokenizer.chat_template.rerank); llama-server fills {query} and {document}.
constexpr const char* kQwen3RerankTemplate =
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
    "provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n<Instruct>: "
    "Given a web search query, retrieve relevant passages that answer the query\n<Query>: {query}\n<Document>: "
    "{document}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";

Result<void> validate(const TestModelShape& s) {
  auto bad = [](std::string m) { return fail(ErrorCode::kInvalidArgument, std::move(m)); };
  if (s.n_layer < 1 || s.n_layer > 256) return bad("layers must be in 1..256");
  if (s.n_embd < 8 || s.n_embd > 16384) return bad("embd must be in 8..16384");
  if (s.n_head < 1 || s.n_embd % s.n_head != 0) return bad("embd must be a multiple of heads");
  if ((s.n_embd / s.n_head) % 2 != 0) return bad("head size (embd/heads) must be even");
  if (s.n_head_kv < 1 || s.n_head % s.n_head_kv != 0) return bad("heads must be a multiple of kv-heads");
  if (s.n_ff < 1 || s.n_ff > 65536) return bad("ff must be in 1..65536");
  if (s.n_ctx_train < 16 || s.n_ctx_train > 1048576) return bad("ctx must be in 16..1048576");
  return {};
}

std::vector<TensorSpec> tensor_specs(const TestModelShape& s, const ArchInfo& a, int64_t n_vocab, bool reranker) {
  const int64_t head = s.n_embd / s.n_head;
  const int64_t n_embd_kv = head * s.n_head_kv;
  const float w = 0.08f;  // linear weights: std ~ 0.046
  std::vector<TensorSpec> t;
  // Tied output (no output.weight), as Qwen2.5-0.5B; embeddings wide enough
  // that greedy decoding has clear winners rather than near-ties.
  t.push_back({"token_embd.weight", GGML_TYPE_F16, s.n_embd, n_vocab, Init::kUniform, 0.5f});
  t.push_back({"output_norm.weight", GGML_TYPE_F32, s.n_embd, 1, Init::kOnes, 0});
  for (int i = 0; i < s.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    t.push_back({p + "attn_norm.weight", GGML_TYPE_F32, s.n_embd, 1, Init::kOnes, 0});
    t.push_back({p + "attn_q.weight", GGML_TYPE_F16, s.n_embd, s.n_embd, Init::kUniform, w});
    t.push_back({p + "attn_k.weight", GGML_TYPE_F16, s.n_embd, n_embd_kv, Init::kUniform, w});
    t.push_back({p + "attn_v.weight", GGML_TYPE_F16, s.n_embd, n_embd_kv, Init::kUniform, w});
    if (a.qkv_bias) {
      t.push_back({p + "attn_q.bias", GGML_TYPE_F32, s.n_embd, 1, Init::kUniform, 0.02f});
      t.push_back({p + "attn_k.bias", GGML_TYPE_F32, n_embd_kv, 1, Init::kUniform, 0.02f});
      t.push_back({p + "attn_v.bias", GGML_TYPE_F32, n_embd_kv, 1, Init::kUniform, 0.02f});
    }
    if (a.qk_norm) {
      t.push_back({p + "attn_q_norm.weight", GGML_TYPE_F32, head, 1, Init::kOnes, 0});
      t.push_back({p + "attn_k_norm.weight", GGML_TYPE_F32, head, 1, Init::kOnes, 0});
    }
    t.push_back({p + "attn_output.weight", GGML_TYPE_F16, s.n_embd, s.n_embd, Init::kUniform, w});
    t.push_back({p + "ffn_norm.weight", GGML_TYPE_F32, s.n_embd, 1, Init::kOnes, 0});
    t.push_back({p + "ffn_gate.weight", GGML_TYPE_F16, s.n_embd, s.n_ff, Init::kUniform, w});
    t.push_back({p + "ffn_up.weight", GGML_TYPE_F16, s.n_embd, s.n_ff, Init::kUniform, w});
    t.push_back({p + "ffn_down.weight", GGML_TYPE_F16, s.n_ff, s.n_embd, Init::kUniform, w});
  }
  // The rerank head: one row per classifier label ("yes", "no").
  if (reranker) t.push_back({"cls.output.weight", GGML_TYPE_F32, s.n_embd, 2, Init::kUniform, 0.5f});
  return t;
}

Result<void> write_all(std::FILE* f, const void* data, size_t n) {
  if (n != 0 && std::fwrite(data, 1, n, f) != n) {
    return fail(ErrorCode::kInternal, "write failed: " + std::generic_category().message(errno));
  }
  return {};
}

// Streams one tensor's data row by row, so even a 1 GB model needs little memory.
Result<void> write_tensor_data(std::FILE* f, const TensorSpec& t, uint64_t seed, size_t index) {
  SplitMix64 rng{seed * 0x2545F4914F6CDD1Dull + index * 0x9E3779B97F4A7C15ull + 1};
  std::vector<float> row(static_cast<size_t>(t.ne0));
  std::vector<ggml_fp16_t> half(t.type == GGML_TYPE_F16 ? row.size() : 0);
  for (int64_t r = 0; r < t.ne1; ++r) {
    for (auto& v : row) v = t.init == Init::kOnes ? 1.0f : t.scale * rng.uniform();
    if (t.type == GGML_TYPE_F16) {
      ggml_fp32_to_fp16_row(row.data(), half.data(), t.ne0);
      if (auto r2 = write_all(f, half.data(), half.size() * sizeof(ggml_fp16_t)); !r2) return r2;
    } else {
      if (auto r2 = write_all(f, row.data(), row.size() * sizeof(float)); !r2) return r2;
    }
  }
  return {};
}

Result<llama_ftype> ftype_from_name(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, llama_ftype>, 13> kTypes{{
      {"F16", LLAMA_FTYPE_MOSTLY_F16},
      {"Q8_0", LLAMA_FTYPE_MOSTLY_Q8_0},
      {"Q4_0", LLAMA_FTYPE_MOSTLY_Q4_0},
      {"Q4_1", LLAMA_FTYPE_MOSTLY_Q4_1},
      {"Q5_0", LLAMA_FTYPE_MOSTLY_Q5_0},
      {"Q5_1", LLAMA_FTYPE_MOSTLY_Q5_1},
      {"Q2_K", LLAMA_FTYPE_MOSTLY_Q2_K},
      {"Q3_K_M", LLAMA_FTYPE_MOSTLY_Q3_K_M},
      {"Q4_K_S", LLAMA_FTYPE_MOSTLY_Q4_K_S},
      {"Q4_K_M", LLAMA_FTYPE_MOSTLY_Q4_K_M},
      {"Q5_K_M", LLAMA_FTYPE_MOSTLY_Q5_K_M},
      {"Q6_K", LLAMA_FTYPE_MOSTLY_Q6_K},
      {"Q5_K_S", LLAMA_FTYPE_MOSTLY_Q5_K_S},
  }};
  for (const auto& [n, t] : kTypes) {
    if (n == name) return t;
  }
  return fail(ErrorCode::kInvalidArgument,
              "unknown quantization '" + std::string(name) + "' (e.g. Q4_K_M, Q8_0, Q4_0, F16)");
}

// Appends the FIM control tokens to `g`'s copy of `vocab`'s token list
// (and its token types and scores, where it has them). Returns the new
// vocabulary size.
int64_t append_fim_tokens(const gguf_context& vocab, gguf_context& g) {
  static constexpr const char* kFim[] = {"<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
                                         "<|fim_pad|>",    "<|repo_name|>",  "<|file_sep|>"};
  const int64_t tokens_key = gguf_find_key(&vocab, "tokenizer.ggml.tokens");
  const auto n = static_cast<std::size_t>(gguf_get_arr_n(&vocab, tokens_key));
  std::vector<const char*> tokens;
  for (std::size_t i = 0; i < n; ++i) tokens.push_back(gguf_get_arr_str(&vocab, tokens_key, i));
  tokens.insert(tokens.end(), std::begin(kFim), std::end(kFim));
  gguf_set_arr_str(&g, "tokenizer.ggml.tokens", tokens.data(), tokens.size());
  if (const int64_t types_key = gguf_find_key(&vocab, "tokenizer.ggml.token_type"); types_key >= 0) {
    const auto* data = static_cast<const int32_t*>(gguf_get_arr_data(&vocab, types_key));
    std::vector<int32_t> types(data, data + n);
    types.insert(types.end(), std::size(kFim), LLAMA_TOKEN_TYPE_CONTROL);
    gguf_set_arr_data(&g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types.data(), types.size());
  }
  if (const int64_t scores_key = gguf_find_key(&vocab, "tokenizer.ggml.scores"); scores_key >= 0) {
    const auto* data = static_cast<const float*>(gguf_get_arr_data(&vocab, scores_key));
    std::vector<float> scores(data, data + n);
    scores.insert(scores.end(), std::size(kFim), 0.0f);
    gguf_set_arr_data(&g, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores.data(), scores.size());
  }
  return static_cast<int64_t>(tokens.size());
}

// Adds `specs` to `g`'s tensors and writes the file: metadata, then each
// tensor's random data at its aligned offset.
Result<void> write_gguf(gguf_context& g, const std::vector<TensorSpec>& specs, uint64_t seed,
                        const std::filesystem::path& out) {
  ggml_init_params mp{ggml_tensor_overhead() * (specs.size() + 1), nullptr, /*no_alloc=*/true};
  GgmlPtr meta{ggml_init(mp)};
  if (!meta) return fail(ErrorCode::kInternal, "ggml_init failed");
  for (const auto& t : specs) {
    ggml_tensor* tensor = t.ne1 == 1 ? ggml_new_tensor_1d(meta.get(), t.type, t.ne0)
                                     : ggml_new_tensor_2d(meta.get(), t.type, t.ne0, t.ne1);
    ggml_set_name(tensor, t.name.c_str());
    gguf_add_tensor(&g, tensor);
  }

  FilePtr f{std::fopen(out.c_str(), "wb")};
  if (!f) return fail(ErrorCode::kInternal, "cannot create " + out.string() + ": " + std::strerror(errno));
  std::vector<char> header(gguf_get_meta_size(&g));
  gguf_get_meta_data(&g, header.data());
  if (auto r = write_all(f.get(), header.data(), header.size()); !r) return r;

  const size_t alignment = gguf_get_alignment(&g);
  size_t written = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    // gguf places each tensor at an aligned offset; pad up to it.
    const size_t offset = gguf_get_tensor_offset(&g, static_cast<int64_t>(i));
    if (offset < written) return fail(ErrorCode::kInternal, "tensor offsets out of order");
    const std::vector<char> pad(offset - written, 0);
    if (auto r = write_all(f.get(), pad.data(), pad.size()); !r) return r;
    if (auto r = write_tensor_data(f.get(), specs[i], seed, i); !r) return r;
    written = offset + gguf_get_tensor_size(&g, static_cast<int64_t>(i));
  }
  const size_t tail = (alignment - written % alignment) % alignment;
  const std::vector<char> pad(tail, 0);
  if (auto r = write_all(f.get(), pad.data(), pad.size()); !r) return r;
  if (std::fclose(f.release()) != 0) return fail(ErrorCode::kInternal, "closing " + out.string() + " failed");
  return {};
}

Result<void> write_f16_model(const TestModelOptions& o, const ArchInfo& a, const std::filesystem::path& vocab_path,
                             const std::filesystem::path& out) {
  gguf_init_params vp{/*no_alloc=*/true, /*ctx=*/nullptr};
  GgufPtr vocab{gguf_init_from_file(vocab_path.c_str(), vp)};
  if (!vocab) return fail(ErrorCode::kInternal, "cannot read vocab file " + vocab_path.string());
  const int64_t tok_key = gguf_find_key(vocab.get(), "tokenizer.ggml.tokens");
  if (tok_key < 0) return fail(ErrorCode::kInternal, "vocab file has no tokenizer.ggml.tokens");
  auto n_vocab = static_cast<int64_t>(gguf_get_arr_n(vocab.get(), tok_key));

  const auto& s = o.shape;
  GgufPtr g{gguf_init_empty()};
  // Tokenizer (tokens, merges/scores, token types, special ids, chat template)
  // comes from the vocab file; its architecture hyper-parameters are replaced.
  gguf_set_kv(g.get(), vocab.get());
  if (o.fim_tokens) n_vocab = append_fim_tokens(*vocab, *g);
  // The vocab file's architecture keys go (Qwen3 borrows Qwen2's vocabulary).
  const std::string prefix = s.arch + ".";
  const int64_t vocab_arch = gguf_find_key(vocab.get(), "general.architecture");
  const std::string vocab_prefix =
      vocab_arch < 0 ? prefix : std::string(gguf_get_val_str(vocab.get(), vocab_arch)) + ".";
  for (int64_t i = 0; i < gguf_get_n_kv(vocab.get()); ++i) {
    const std::string_view key = gguf_get_key(vocab.get(), i);
    if ((key.starts_with(prefix) || key.starts_with(vocab_prefix)) && key != prefix + "vocab_size") {
      gguf_remove_key(g.get(), std::string(key).c_str());
    }
  }
  auto key = [&](const char* k) { return prefix + k; };
  gguf_set_val_str(g.get(), "general.architecture", s.arch.c_str());
  gguf_set_val_str(g.get(), "general.name", ("llmd-test-" + s.arch).c_str());
  gguf_set_val_u32(g.get(), "general.file_type", LLAMA_FTYPE_MOSTLY_F16);
  gguf_set_val_u64(g.get(), "general.llmd.seed", o.seed);
  if (!o.chat_template.empty()) gguf_set_val_str(g.get(), "tokenizer.chat_template", o.chat_template.c_str());
  gguf_set_val_u32(g.get(), key("context_length").c_str(), static_cast<uint32_t>(s.n_ctx_train));
  gguf_set_val_u32(g.get(), key("embedding_length").c_str(), static_cast<uint32_t>(s.n_embd));
  gguf_set_val_u32(g.get(), key("block_count").c_str(), static_cast<uint32_t>(s.n_layer));
  gguf_set_val_u32(g.get(), key("feed_forward_length").c_str(), static_cast<uint32_t>(s.n_ff));
  gguf_set_val_u32(g.get(), key("attention.head_count").c_str(), static_cast<uint32_t>(s.n_head));
  gguf_set_val_u32(g.get(), key("attention.head_count_kv").c_str(), static_cast<uint32_t>(s.n_head_kv));
  gguf_set_val_u32(g.get(), key("rope.dimension_count").c_str(), static_cast<uint32_t>(s.n_embd / s.n_head));
  gguf_set_val_f32(g.get(), key("rope.freq_base").c_str(), a.rope_freq_base);
  gguf_set_val_f32(g.get(), key("attention.layer_norm_rms_epsilon").c_str(), a.rms_eps);
  if (o.reranker) {
    // As a converted Qwen3-Reranker: rank pooling over the labels "yes" and "no".
    const char* labels[] = {"yes", "no"};
    gguf_set_arr_str(g.get(), key("classifier.output_labels").c_str(), labels, 2);
    gguf_set_val_u32(g.get(), key("pooling_type").c_str(), LLAMA_POOLING_TYPE_RANK);
    gguf_set_val_str(g.get(), "tokenizer.chat_template.rerank", kQwen3RerankTemplate);
  }

  return write_gguf(*g, tensor_specs(s, a, n_vocab, o.reranker), o.seed, out);
}

}  // namespace

TestModelShape qwen2_5_0_5b_shape() {
  TestModelShape s;
  s.arch = "qwen2";
  s.n_layer = 24;
  s.n_embd = 896;
  s.n_head = 14;
  s.n_head_kv = 2;
  s.n_ff = 4864;
  s.n_ctx_train = 32768;
  return s;
}

std::filesystem::path default_vocab_dir() {
  if (const char* env = std::getenv("LLMD_VOCAB_DIR"); env != nullptr && *env != '\0') return env;
  return LLMD_DEFAULT_VOCAB_DIR;
}

std::filesystem::path default_templates_dir() {
  if (const char* env = std::getenv("LLMD_TEMPLATES_DIR"); env != nullptr && *env != '\0') return env;
  return default_vocab_dir().parent_path() / "templates";
}

Result<void> make_test_model(const TestModelOptions& o) {
  auto arch = arch_info(o.shape.arch);
  if (!arch) return fail(arch.error());
  if (auto v = validate(o.shape); !v) return v;
  if (o.reranker && o.shape.arch != "qwen3") {
    return fail(ErrorCode::kInvalidArgument, "a reranker is a qwen3 model (--arch qwen3)");
  }
  if (o.out.empty()) return fail(ErrorCode::kInvalidArgument, "no output file given");
  std::optional<llama_ftype> ftype;
  if (!o.quantize.empty() && o.quantize != "F16") {
    auto t = ftype_from_name(o.quantize);
    if (!t) return fail(t.error());
    ftype = *t;
  }
  const auto vocab_dir = o.vocab_dir.empty() ? default_vocab_dir() : o.vocab_dir;
  const auto vocab_path = vocab_dir / arch->vocab_file;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(vocab_path, ec)) {
    return fail(ErrorCode::kNotFound,
                "vocab file " + vocab_path.string() + " not found (run engine/install.sh or set LLMD_VOCAB_DIR)");
  }
  if (!ftype) return write_f16_model(o, *arch, vocab_path, o.out);

  const auto tmp = std::filesystem::path(o.out.string() + ".f16.tmp");
  if (auto r = write_f16_model(o, *arch, vocab_path, tmp); !r) {
    std::filesystem::remove(tmp, ec);
    return r;
  }
  runner::init_backends();
  llama_model_quantize_params qp = llama_model_quantize_default_params();
  qp.ftype = *ftype;
  qp.nthread = o.threads;
  const uint32_t rc = llama_model_quantize(tmp.c_str(), o.out.c_str(), &qp);
  std::filesystem::remove(tmp, ec);
  if (rc != 0) return fail(ErrorCode::kInternal, "quantization to " + o.quantize + " failed");
  return {};
}

Result<void> make_test_lora(const TestLoraOptions& o) {
  if (o.rank < 1 || o.rank > 256) return fail(ErrorCode::kInvalidArgument, "rank must be in 1..256");
  if (o.out.empty()) return fail(ErrorCode::kInvalidArgument, "no output file given");
  ggml_context* raw_meta = nullptr;
  gguf_init_params bp{/*no_alloc=*/true, &raw_meta};
  GgufPtr base{gguf_init_from_file(o.base.c_str(), bp)};
  GgmlPtr base_meta{raw_meta};
  if (!base) return fail(ErrorCode::kInvalidArgument, "cannot read the base model " + o.base.string());
  const int64_t arch_key = gguf_find_key(base.get(), "general.architecture");
  if (arch_key < 0) return fail(ErrorCode::kInvalidArgument, "the base model names no architecture");

  // A low-rank update (lora_a: in x rank, lora_b: rank x out) of every
  // attention and feed-forward matrix, strong enough to change greedy output.
  std::vector<TensorSpec> specs;
  for (int64_t i = 0; i < gguf_get_n_tensors(base.get()); ++i) {
    const std::string name = gguf_get_tensor_name(base.get(), i);
    static constexpr std::string_view kTargets[] = {".attn_q.weight",      ".attn_k.weight",   ".attn_v.weight",
                                                    ".attn_output.weight", ".ffn_gate.weight", ".ffn_up.weight",
                                                    ".ffn_down.weight"};
    if (!name.starts_with("blk.") ||
        std::none_of(std::begin(kTargets), std::end(kTargets), [&](auto t) { return name.ends_with(t); })) {
      continue;
    }
    const ggml_tensor* w = ggml_get_tensor(base_meta.get(), name.c_str());
    if (w == nullptr || ggml_n_dims(w) != 2) continue;
    specs.push_back({name + ".lora_a", GGML_TYPE_F32, w->ne[0], o.rank, Init::kUniform, 0.3f});
    specs.push_back({name + ".lora_b", GGML_TYPE_F32, o.rank, w->ne[1], Init::kUniform, 0.3f});
  }
  if (specs.empty()) return fail(ErrorCode::kInvalidArgument, "the base model has no matrices to adapt");

  GgufPtr g{gguf_init_empty()};
  gguf_set_val_str(g.get(), "general.type", "adapter");
  gguf_set_val_str(g.get(), "general.architecture", gguf_get_val_str(base.get(), arch_key));
  gguf_set_val_str(g.get(), "general.name", "llmd-test-lora");
  gguf_set_val_str(g.get(), "adapter.type", "lora");
  // alpha = rank: a request's scale is the update's factor as given.
  gguf_set_val_f32(g.get(), "adapter.lora.alpha", static_cast<float>(o.rank));
  return write_gguf(*g, specs, o.seed, o.out);
}

}  // namespace llmd::tools
