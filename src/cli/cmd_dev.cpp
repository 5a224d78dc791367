// `llmd dev ...`: developer tools (test-model generation).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

#include "cli/commands.h"
#include "tools/make_test_model.h"

namespace llmd::cli {
namespace {

// The template text make-test-model embeds: a file's content, a bundled
// template by name, a built-in name as is, or nothing (the vocab's own).
Result<std::string> test_model_template(const std::string& file, const std::string& name) {
  if (!file.empty()) {
    std::ifstream in(file, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) return fail(ErrorCode::kInvalidArgument, "cannot read " + file);
    return text;
  }
  if (name.empty()) return std::string();
  const auto bundled = tools::default_templates_dir() / (name + ".jinja");
  std::error_code ec;
  if (std::filesystem::is_regular_file(bundled, ec)) return test_model_template(bundled.string(), "");
  return name;
}

}  // namespace

void add_dev_command(CLI::App& root, CommandRunner& run) {
  auto* dev = root.add_subcommand("dev", "Developer tools");
  dev->require_subcommand(1);

  auto* make = dev->add_subcommand("make-test-model",
                                   "Write a random-weight GGUF model with a real tokenizer (for tests and benchmarks)");
  auto o = std::make_shared<tools::TestModelOptions>();
  auto shape_name = std::make_shared<std::string>("tiny");
  auto vocab_dir = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  make->add_option("--arch", o->shape.arch,
                   "Architecture: qwen2 (Qwen2 BPE vocab, ChatML), qwen3 (same vocab, query/key norms) or llama "
                   "(SentencePiece)")
      ->check(CLI::IsMember({"qwen2", "qwen3", "llama"}));
  make->add_option("--out", *out, "Output .gguf file")->required();
  make->add_option("--seed", o->seed, "Random seed (same seed, same file)");
  make->add_option("--shape", *shape_name,
                   "Preset: tiny (default; 2 layers, 64-dim) or qwen2.5-0.5b (896-dim, 24 layers, "
                   "14/2 heads, ff 4864; ~1 GB F16, ~400 MB Q4_K_M)")
      ->check(CLI::IsMember({"tiny", "qwen2.5-0.5b"}));
  auto layers = make->add_option("--layers", o->shape.n_layer, "Transformer blocks");
  auto embd = make->add_option("--embd", o->shape.n_embd, "Embedding width");
  auto heads = make->add_option("--heads", o->shape.n_head, "Attention heads");
  auto kv_heads = make->add_option("--kv-heads", o->shape.n_head_kv, "Key/value heads");
  auto ff = make->add_option("--ff", o->shape.n_ff, "Feed-forward width");
  auto ctx = make->add_option("--ctx", o->shape.n_ctx_train, "Training context length");
  make->add_option("--quantize", o->quantize, "Quantize with llama_model_quantize, e.g. Q4_K_M, Q8_0");
  make->add_option("--threads", o->threads, "Quantization threads (0 = all cores)");
  make->add_flag("--fim", o->fim_tokens,
                 "Add Qwen2.5-Coder's fill-in-the-middle tokens to the vocabulary (for /infill)");
  make->add_flag("--reranker", o->reranker,
                 "A Qwen3-Reranker-shaped model (with --arch qwen3): yes/no classifier head, rank pooling and the "
                 "rerank prompt, for `llmd runner --reranking`");
  make->add_option("--vocab-dir", *vocab_dir, "Directory of ggml-vocab-*.gguf (default: engine/llama/vocab)");
  auto template_file = std::make_shared<std::string>();
  auto template_name = std::make_shared<std::string>();
  make->add_option("--chat-template-file", *template_file, "Embed this Jinja chat template")->check(CLI::ExistingFile);
  make->add_option("--chat-template", *template_name,
                   "Embed a template: the name of one in engine/llama/templates (e.g. Qwen-Qwen3-0.6B) or a "
                   "llama.cpp built-in name (chatml, llama3, ...)");

  make->callback(
      [&run, o, shape_name, vocab_dir, out, layers, embd, heads, kv_heads, ff, ctx, template_file, template_name] {
        if (*shape_name == "qwen2.5-0.5b") {
          // The preset, then any explicit shape flag on top of it.
          const tools::TestModelShape given = o->shape;
          o->shape = tools::qwen2_5_0_5b_shape();
          if (layers->count() != 0) o->shape.n_layer = given.n_layer;
          if (embd->count() != 0) o->shape.n_embd = given.n_embd;
          if (heads->count() != 0) o->shape.n_head = given.n_head;
          if (kv_heads->count() != 0) o->shape.n_head_kv = given.n_head_kv;
          if (ff->count() != 0) o->shape.n_ff = given.n_ff;
          if (ctx->count() != 0) o->shape.n_ctx_train = given.n_ctx_train;
        }
        o->out = *out;
        o->vocab_dir = *vocab_dir;
        run = [o, template_file, template_name]() -> int {
          if (auto t = test_model_template(*template_file, *template_name); !t) {
            std::fprintf(stderr, "llmd: %s\n", t.error().message.c_str());
            return 2;
          } else {
            o->chat_template = std::move(*t);
          }
          auto r = tools::make_test_model(*o);
          if (!r) {
            std::fprintf(stderr, "llmd: %s\n", r.error().message.c_str());
            return r.error().code == ErrorCode::kInvalidArgument ? 2 : 1;
          }
          return 0;
        };
      });

  auto* lora = dev->add_subcommand("make-test-lora", "Write a random LoRA adapter for a (test) model");
  auto lo = std::make_shared<tools::TestLoraOptions>();
  auto lora_base = std::make_shared<std::string>();
  auto lora_out = std::make_shared<std::string>();
  lora->add_option("--base", *lora_base, "The model the adapter is for")->required()->check(CLI::ExistingFile);
  lora->add_option("--out", *lora_out, "Output .gguf file")->required();
  lora->add_option("--rank", lo->rank, "Rank of the low-rank updates")->capture_default_str();
  lora->add_option("--seed", lo->seed, "Random seed (same seed, same file)");
  lora->callback([&run, lo, lora_base, lora_out] {
    lo->base = *lora_base;
    lo->out = *lora_out;
    run = [lo]() -> int {
      auto r = tools::make_test_lora(*lo);
      if (!r) {
        std::fprintf(stderr, "llmd: %s\n", r.error().message.c_str());
        return r.error().code == ErrorCode::kInvalidArgument ? 2 : 1;
      }
      return 0;
    };
  });
}

}  // namespace llmd::cli
