// Generated tiny models shared by the runner tests: written once per test
// binary into a temporary directory, removed at exit.
#pragma once

#include <filesystem>
#include <memory>

#include "runner/model.h"

namespace llmd::runner::testing {

// qwen2 architecture, Qwen2 BPE vocab + ChatML template, 2 layers, 64-dim.
const std::filesystem::path& qwen2_model_path();
// The qwen2 model with Qwen2.5-Coder's fill-in-the-middle tokens added.
const std::filesystem::path& qwen2_fim_model_path();
// A Qwen3-Reranker-shaped qwen3 model (yes/no head, rank pooling, rerank template).
const std::filesystem::path& qwen3_reranker_model_path();
// llama architecture, SentencePiece vocab, no chat template.
const std::filesystem::path& llama_model_path();

// The qwen2 model, loaded once and shared (Model is immutable and thread-safe).
std::shared_ptr<const Model> qwen2_model();

// A fresh scratch directory for a test's own files.
std::filesystem::path scratch_dir();

}  // namespace llmd::runner::testing
