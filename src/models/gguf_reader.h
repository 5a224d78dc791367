// GGUF metadata without the weights: reads the header, the key/value section
// and the tensor table of a GGUF file (versions 2 and 3) with strict bounds.
//
// Every length, count and offset is checked against the bytes that remain in
// the file before it is used, so a truncated, corrupted or hostile file yields
// an error value (kUnprocessable, reason "bad_gguf", message saying what is
// wrong) instead of a crash, a huge allocation or a long loop.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/error.h"

namespace llmd::models {

struct GgufInfo {
  std::uint32_t version = 0;
  std::uint64_t file_size = 0;
  std::uint64_t tensor_count = 0;
  std::uint64_t kv_count = 0;
  std::string architecture;           // general.architecture, e.g. "qwen2"
  std::string name;                   // general.name (may be empty)
  int file_type = -1;                 // general.file_type (llama_ftype), -1 when absent
  std::string quantization;           // "Q4_K_M", "F16", ... ("" when unknown)
  std::uint64_t parameter_count = 0;  // sum over tensors of their element counts
  std::int64_t context_length = 0;    // <arch>.context_length (0 when absent)
  std::int64_t n_layer = 0;           // <arch>.block_count
  std::int64_t n_embd = 0;            // <arch>.embedding_length
  std::int64_t n_head = 0;            // <arch>.attention.head_count
  std::int64_t n_head_kv = 0;         // <arch>.attention.head_count_kv (defaults to n_head)
  bool has_chat_template = false;     // tokenizer.chat_template present and non-empty
};

// Limits that keep hostile files cheap to reject.
inline constexpr std::uint64_t kGgufMaxKv = 1u << 16;
inline constexpr std::uint64_t kGgufMaxTensors = 1u << 20;
inline constexpr std::uint64_t kGgufMaxKeyLength = 1u << 16;
inline constexpr std::uint64_t kGgufMaxStringLength = 64u << 20;
inline constexpr std::uint64_t kGgufMaxArrayStrings = 16u << 20;  // total, over all string arrays

// Reads the metadata of the GGUF file at `path`. Errors: kNotFound (cannot
// open), kUnprocessable "bad_gguf" (anything malformed). Never reads tensor data.
Result<GgufInfo> read_gguf_info(const std::filesystem::path& path);

// The same parser over bytes in memory (`bytes` is the whole file).
Result<GgufInfo> parse_gguf(std::string_view bytes);

// Name of a llama_ftype value ("Q4_K_M" for 15); "" when unknown.
std::string_view file_type_name(int file_type);

}  // namespace llmd::models
