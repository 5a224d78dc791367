#include "models/gguf_reader.h"

#include <array>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>

namespace llmd::models {
namespace {

// Where bytes come from: a whole file in memory or a FILE* read in order.
class Source {
 public:
  virtual ~Source() = default;
  virtual std::uint64_t size() const = 0;
  // Copies n bytes at the current position into dst; false when fewer remain.
  virtual bool read(void* dst, std::uint64_t n) = 0;
  // Advances n bytes; false when fewer remain.
  virtual bool skip(std::uint64_t n) = 0;
  virtual std::uint64_t pos() const = 0;
  std::uint64_t remaining() const { return size() - pos(); }
};

class MemorySource final : public Source {
 public:
  explicit MemorySource(std::string_view b) : bytes_(b) {}
  std::uint64_t size() const override { return bytes_.size(); }
  bool read(void* dst, std::uint64_t n) override {
    if (n > remaining()) return false;
    std::memcpy(dst, bytes_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool skip(std::uint64_t n) override {
    if (n > remaining()) return false;
    pos_ += n;
    return true;
  }
  std::uint64_t pos() const override { return pos_; }

 private:
  std::string_view bytes_;
  std::uint64_t pos_ = 0;
};

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

class FileSource final : public Source {
 public:
  FileSource(std::unique_ptr<std::FILE, FileCloser> f, std::uint64_t size) : f_(std::move(f)), size_(size) {}
  std::uint64_t size() const override { return size_; }
  bool read(void* dst, std::uint64_t n) override {
    if (n > remaining()) return false;
    if (std::fread(dst, 1, n, f_.get()) != n) return false;
    pos_ += n;
    return true;
  }
  bool skip(std::uint64_t n) override {
    if (n > remaining()) return false;
    if (std::fseek(f_.get(), static_cast<long>(pos_ + n), SEEK_SET) != 0) return false;
    pos_ += n;
    return true;
  }
  std::uint64_t pos() const override { return pos_; }

 private:
  std::unique_ptr<std::FILE, FileCloser> f_;
  std::uint64_t size_;
  std::uint64_t pos_ = 0;
};

enum GgufType : std::uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

// Byte size of a fixed-size scalar type, 0 for string/array/unknown.
std::uint64_t scalar_size(std::uint32_t t) {
  switch (t) {
    case kU8:
    case kI8:
    case kBool: return 1;
    case kU16:
    case kI16: return 2;
    case kU32:
    case kI32:
    case kF32: return 4;
    case kU64:
    case kI64:
    case kF64: return 8;
    default: return 0;
  }
}

// ggml tensor types: bytes per block and elements per block (0 = unknown type).
struct TypeTraits {
  std::uint32_t block_bytes;
  std::uint32_t block_elems;
};
TypeTraits tensor_type_traits(std::uint32_t t) {
  switch (t) {
    case 0: return {4, 1};       // F32
    case 1: return {2, 1};       // F16
    case 2: return {18, 32};     // Q4_0
    case 3: return {20, 32};     // Q4_1
    case 6: return {22, 32};     // Q5_0
    case 7: return {24, 32};     // Q5_1
    case 8: return {34, 32};     // Q8_0
    case 10: return {84, 256};   // Q2_K
    case 11: return {110, 256};  // Q3_K
    case 12: return {144, 256};  // Q4_K
    case 13: return {176, 256};  // Q5_K
    case 14: return {210, 256};  // Q6_K
    case 24: return {1, 1};      // I8
    case 25: return {2, 1};      // I16
    case 26: return {4, 1};      // I32
    case 27: return {8, 1};      // I64
    case 28: return {8, 1};      // F64
    case 30: return {2, 1};      // BF16
    default: return {0, 0};
  }
}

class Parser {
 public:
  explicit Parser(Source& src) : src_(src) {}

  Result<GgufInfo> run() {
    GgufInfo info;
    info.file_size = src_.size();
    char magic[4];
    if (!src_.read(magic, 4)) return bad("file is shorter than a GGUF header");
    if (std::memcmp(magic, "GGUF", 4) != 0) return bad("not a GGUF file (wrong magic)");
    LLMD_TRY(u32(info.version, "version"));
    if (info.version != 2 && info.version != 3) {
      return bad("unsupported GGUF version " + std::to_string(info.version));
    }
    LLMD_TRY(u64(info.tensor_count, "tensor count"));
    LLMD_TRY(u64(info.kv_count, "key/value count"));
    if (info.kv_count > kGgufMaxKv || info.kv_count * 12 > src_.remaining()) {
      return bad("absurd key/value count " + std::to_string(info.kv_count));
    }
    if (info.tensor_count > kGgufMaxTensors || info.tensor_count * 24 > src_.remaining()) {
      return bad("absurd tensor count " + std::to_string(info.tensor_count));
    }

    std::uint64_t alignment = 32;
    std::string chat_template_key = "tokenizer.chat_template";
    for (std::uint64_t i = 0; i < info.kv_count; ++i) {
      std::string key;
      LLMD_TRY(string(key, kGgufMaxKeyLength, "key"));
      std::uint32_t type = 0;
      LLMD_TRY(u32(type, "value type"));
      Value v;
      LLMD_TRY(value(type, v, 0));
      if (key == "general.architecture" && v.is_string)
        info.architecture = v.text;
      else if (key == "general.name" && v.is_string)
        info.name = v.text.substr(0, 256);
      else if (key == "general.file_type" && v.number)
        info.file_type = static_cast<int>(*v.number);
      else if (key == "general.alignment" && v.number)
        alignment = static_cast<std::uint64_t>(*v.number);
      else if (key == chat_template_key)
        info.has_chat_template = v.is_string && v.length > 0;
      else if (v.number)
        numbers_.emplace_back(std::move(key), *v.number);
    }
    if (alignment == 0 || alignment > (1u << 20) || (alignment & (alignment - 1)) != 0) {
      return bad("bad general.alignment");
    }
    for (const auto& [key, n] : numbers_) {
      const std::string prefix = info.architecture + ".";
      if (info.architecture.empty() || !key.starts_with(prefix)) continue;
      const std::string_view rest = std::string_view(key).substr(prefix.size());
      if (rest == "context_length")
        info.context_length = n;
      else if (rest == "block_count")
        info.n_layer = n;
      else if (rest == "embedding_length")
        info.n_embd = n;
      else if (rest == "attention.head_count")
        info.n_head = n;
      else if (rest == "attention.head_count_kv")
        info.n_head_kv = n;
    }
    if (info.n_head_kv == 0) info.n_head_kv = info.n_head;
    if (info.file_type >= 0) info.quantization = std::string(file_type_name(info.file_type));

    // Tensor table: names, shapes, types, offsets into the data section.
    std::uint64_t max_end = 0;
    for (std::uint64_t i = 0; i < info.tensor_count; ++i) {
      std::string name;
      LLMD_TRY(string(name, kGgufMaxKeyLength, "tensor name"));
      std::uint32_t n_dims = 0;
      LLMD_TRY(u32(n_dims, "tensor dimensions"));
      if (n_dims == 0 || n_dims > 4) return bad("tensor with " + std::to_string(n_dims) + " dimensions");
      std::uint64_t elems = 1;
      for (std::uint32_t d = 0; d < n_dims; ++d) {
        std::uint64_t dim = 0;
        LLMD_TRY(u64(dim, "tensor dimension"));
        if (dim == 0 || dim > (1ULL << 40) || elems > (1ULL << 50) / dim) return bad("absurd tensor shape");
        elems *= dim;
      }
      std::uint32_t type = 0;
      std::uint64_t offset = 0;
      LLMD_TRY(u32(type, "tensor type"));
      LLMD_TRY(u64(offset, "tensor offset"));
      if (offset % alignment != 0) return bad("misaligned tensor offset");
      const TypeTraits tt = tensor_type_traits(type);
      std::uint64_t bytes = 0;
      if (tt.block_elems != 0) bytes = (elems + tt.block_elems - 1) / tt.block_elems * tt.block_bytes;
      if (offset > info.file_size || bytes > info.file_size) return bad("tensor data lies beyond the end of the file");
      max_end = std::max(max_end, offset + bytes);
      info.parameter_count += elems;
    }
    const std::uint64_t data_start = (src_.pos() + alignment - 1) / alignment * alignment;
    if (info.tensor_count > 0 && (data_start > info.file_size || max_end > info.file_size - data_start)) {
      return bad("tensor data lies beyond the end of the file (truncated?)");
    }
    return info;
  }

 private:
  struct Value {
    bool is_string = false;
    std::uint64_t length = 0;            // string length
    std::string text;                    // first bytes of a string value
    std::optional<std::int64_t> number;  // integer scalars
  };

  static std::unexpected<Error> bad(std::string what) {
    return fail(ErrorCode::kUnprocessable, "malformed GGUF: " + what, "bad_gguf");
  }

  Result<void> u32(std::uint32_t& out, const char* what) {
    if (!src_.read(&out, 4)) return bad(std::string("truncated at ") + what);
    return {};
  }
  Result<void> u64(std::uint64_t& out, const char* what) {
    if (!src_.read(&out, 8)) return bad(std::string("truncated at ") + what);
    return {};
  }

  // Reads a string, keeping at most 4 KiB of it (the rest is skipped).
  Result<void> string(std::string& out, std::uint64_t max_len, const char* what, std::uint64_t* length = nullptr) {
    std::uint64_t n = 0;
    LLMD_TRY(u64(n, what));
    if (n > max_len || n > src_.remaining()) {
      return bad(std::string(what) + " length " + std::to_string(n) + " exceeds the file or the limit");
    }
    if (length) *length = n;
    const std::uint64_t keep = std::min<std::uint64_t>(n, 4096);
    out.resize(keep);
    if (!src_.read(out.data(), keep) || !src_.skip(n - keep)) return bad(std::string("truncated in ") + what);
    return {};
  }

  Result<void> value(std::uint32_t type, Value& v, int depth) {
    if (const std::uint64_t sz = scalar_size(type); sz != 0) {
      std::array<unsigned char, 8> raw{};
      if (!src_.read(raw.data(), sz)) return bad("truncated value");
      if (type != kF32 && type != kF64 && type != kBool) {
        std::uint64_t u = 0;
        std::memcpy(&u, raw.data(), sz);
        std::int64_t n = static_cast<std::int64_t>(u);
        if (type == kI8) n = static_cast<std::int8_t>(u);
        if (type == kI16) n = static_cast<std::int16_t>(u);
        if (type == kI32) n = static_cast<std::int32_t>(u);
        v.number = n;
      }
      return {};
    }
    if (type == kString) {
      v.is_string = true;
      return string(v.text, kGgufMaxStringLength, "string value", &v.length);
    }
    if (type != kArray) return bad("unknown value type " + std::to_string(type));
    if (depth >= 2) return bad("arrays nested too deeply");
    std::uint32_t elem_type = 0;
    std::uint64_t count = 0;
    LLMD_TRY(u32(elem_type, "array type"));
    LLMD_TRY(u64(count, "array length"));
    if (const std::uint64_t sz = scalar_size(elem_type); sz != 0) {
      if (count > src_.remaining() / sz) return bad("array length " + std::to_string(count) + " exceeds the file");
      if (!src_.skip(count * sz)) return bad("truncated array");
      return {};
    }
    if (elem_type != kString && elem_type != kArray) return bad("unknown array type " + std::to_string(elem_type));
    // Each string or nested array takes at least 8 / 12 bytes.
    if (count > src_.remaining() / 8) return bad("array length " + std::to_string(count) + " exceeds the file");
    array_strings_ += count;
    if (array_strings_ > kGgufMaxArrayStrings) return bad("too many array elements");
    for (std::uint64_t i = 0; i < count; ++i) {
      Value inner;
      if (elem_type == kString) {
        std::uint64_t n = 0;
        LLMD_TRY(u64(n, "array string"));
        if (n > kGgufMaxStringLength || !src_.skip(n)) return bad("array string exceeds the file");
      } else {
        LLMD_TRY(value(kArray, inner, depth + 1));
      }
    }
    return {};
  }

  Source& src_;
  std::uint64_t array_strings_ = 0;
  std::vector<std::pair<std::string, std::int64_t>> numbers_;
};

}  // namespace

Result<GgufInfo> parse_gguf(std::string_view bytes) {
  MemorySource src(bytes);
  return Parser(src).run();
}

Result<GgufInfo> read_gguf_info(const std::filesystem::path& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return fail(ErrorCode::kNotFound, "cannot read model file", "not_found");
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) return fail(ErrorCode::kNotFound, "cannot open model file", "not_found");
  FileSource src(std::move(f), size);
  return Parser(src).run();
}

std::string_view file_type_name(int t) {
  static constexpr std::array<std::pair<int, std::string_view>, 33> kNames{{
      {0, "F32"},     {1, "F16"},     {2, "Q4_0"},       {3, "Q4_1"},    {7, "Q8_0"},     {8, "Q5_0"},
      {9, "Q5_1"},    {10, "Q2_K"},   {11, "Q3_K_S"},    {12, "Q3_K_M"}, {13, "Q3_K_L"},  {14, "Q4_K_S"},
      {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"},    {18, "Q6_K"},   {19, "IQ2_XXS"}, {20, "IQ2_XS"},
      {21, "Q2_K_S"}, {22, "IQ3_XS"}, {23, "IQ3_XXS"},   {24, "IQ1_S"},  {25, "IQ4_NL"},  {26, "IQ3_S"},
      {27, "IQ3_M"},  {28, "IQ2_S"},  {29, "IQ2_M"},     {30, "IQ4_XS"}, {31, "IQ1_M"},   {32, "BF16"},
      {36, "TQ1_0"},  {37, "TQ2_0"},  {38, "MXFP4_MOE"},
  }};
  for (const auto& [k, v] : kNames) {
    if (k == t) return v;
  }
  return "";
}

}  // namespace llmd::models
