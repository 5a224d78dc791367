// GGUF metadata reader: real files, hand-made files, hostile files, fuzzing.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <random>

#include "models/catalog.h"
#include "models/gguf_reader.h"
#include "support/test_support.h"
#include "tools/make_test_model.h"

namespace llmd::models {
namespace {

// Builds GGUF bytes by hand.
class GgufBuilder {
 public:
  GgufBuilder& u32(std::uint32_t v) { return raw(&v, 4); }
  GgufBuilder& u64(std::uint64_t v) { return raw(&v, 8); }
  GgufBuilder& str(const std::string& s) {
    u64(s.size());
    bytes_ += s;
    return *this;
  }
  GgufBuilder& kv_str(const std::string& k, const std::string& v) { return str(k).u32(8).str(v); }
  GgufBuilder& kv_u32(const std::string& k, std::uint32_t v) { return str(k).u32(4).u32(v); }
  GgufBuilder& raw(const void* p, std::size_t n) {
    bytes_.append(static_cast<const char*>(p), n);
    return *this;
  }
  std::string& bytes() { return bytes_; }

 private:
  std::string bytes_;
};

// A small valid file: 5 KVs (one string array), 2 F32 tensors with data.
std::string valid_file() {
  GgufBuilder b;
  b.raw("GGUF", 4).u32(3).u64(2).u64(6);
  b.kv_str("general.architecture", "llama");
  b.kv_str("general.name", "tiny");
  b.kv_u32("general.file_type", 15);
  b.kv_u32("llama.context_length", 2048);
  b.kv_str("tokenizer.chat_template", "{{ messages }}");
  b.str("tokenizer.ggml.tokens").u32(9).u32(8).u64(3).str("a").str("bb").str("ccc");
  b.str("tok_embd.weight").u32(2).u64(4).u64(8).u32(0).u64(0);
  b.str("output.weight").u32(1).u64(8).u32(0).u64(128);
  while (b.bytes().size() % 32 != 0) b.bytes().push_back('\0');
  b.bytes().append(128 + 32, '\0');
  return b.bytes();
}

TEST(GgufReader, ReadsHandMadeFile) {
  auto info = parse_gguf(valid_file());
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->version, 3u);
  EXPECT_EQ(info->architecture, "llama");
  EXPECT_EQ(info->name, "tiny");
  EXPECT_EQ(info->quantization, "Q4_K_M");
  EXPECT_EQ(info->context_length, 2048);
  EXPECT_TRUE(info->has_chat_template);
  EXPECT_EQ(info->parameter_count, 40u);
}

TEST(GgufReader, ReadsGeneratedModelFile) {
  testing::TempDir dir;
  tools::TestModelOptions o;
  o.out = dir / "m.gguf";
  ASSERT_TRUE(tools::make_test_model(o));
  auto info = read_gguf_info(o.out);
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->architecture, "qwen2");
  EXPECT_EQ(info->context_length, 4096);
  EXPECT_EQ(info->n_layer, 2);
  EXPECT_EQ(info->n_embd, 64);
  EXPECT_EQ(info->n_head_kv, 2);
  EXPECT_TRUE(info->has_chat_template);
  EXPECT_GT(info->parameter_count, 100000u);
  EXPECT_EQ(info->file_size, std::filesystem::file_size(o.out));
}

void expect_bad(const std::string& bytes, const std::string& needle) {
  auto info = parse_gguf(bytes);
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().code, ErrorCode::kUnprocessable);
  EXPECT_EQ(info.error().reason, "bad_gguf");
  EXPECT_NE(info.error().message.find(needle), std::string::npos) << info.error().message;
}

TEST(GgufReader, RejectsWrongMagic) {
  std::string f = valid_file();
  f[0] = 'X';
  expect_bad(f, "magic");
  expect_bad("", "shorter");
}

TEST(GgufReader, RejectsUnsupportedVersion) {
  std::string f = valid_file();
  f[4] = 7;
  expect_bad(f, "version");
}

TEST(GgufReader, RejectsTruncatedFile) {
  const std::string f = valid_file();
  for (std::size_t n = 0; n < f.size() - 100; n += 7) EXPECT_FALSE(parse_gguf(f.substr(0, n))) << n;
}

TEST(GgufReader, RejectsAbsurdCounts) {
  GgufBuilder b;
  b.raw("GGUF", 4).u32(3).u64(0).u64(1ULL << 62);
  expect_bad(b.bytes(), "key/value count");
  GgufBuilder t;
  t.raw("GGUF", 4).u32(3).u64(1ULL << 40).u64(0);
  expect_bad(t.bytes(), "tensor count");
}

TEST(GgufReader, RejectsStringLongerThanFile) {
  GgufBuilder b;
  b.raw("GGUF", 4).u32(3).u64(0).u64(1).u64(1ULL << 60).raw("abc", 3);
  b.bytes().append(64, 'x');
  expect_bad(b.bytes(), "exceeds");
}

TEST(GgufReader, RejectsArrayLongerThanFile) {
  GgufBuilder b;
  b.raw("GGUF", 4).u32(3).u64(0).u64(1).str("k").u32(9).u32(10).u64(1ULL << 59);
  b.bytes().append(64, 'x');
  expect_bad(b.bytes(), "exceeds");
  GgufBuilder s;
  s.raw("GGUF", 4).u32(3).u64(0).u64(1).str("k").u32(9).u32(8).u64(1ULL << 40);
  s.bytes().append(64, 'x');
  expect_bad(s.bytes(), "exceeds");
}

TEST(GgufReader, RejectsTensorDataBeyondFile) {
  GgufBuilder b;
  b.raw("GGUF", 4).u32(3).u64(1).u64(0);
  b.str("w").u32(1).u64(1 << 20).u32(0).u64(0);  // 4 MiB of F32 in a tiny file
  b.bytes().append(64, '\0');
  expect_bad(b.bytes(), "beyond the end");
}

TEST(GgufReader, RejectsUnknownValueTypeAndDeepNesting) {
  GgufBuilder b;
  b.raw("GGUF", 4).u32(3).u64(0).u64(1).str("k").u32(77);
  b.bytes().append(64, '\0');
  expect_bad(b.bytes(), "unknown value type");
  GgufBuilder n;
  n.raw("GGUF", 4).u32(3).u64(0).u64(1).str("k").u32(9).u32(9).u64(1).u32(9).u64(1).u32(9).u64(1);
  n.bytes().append(64, '\0');
  expect_bad(n.bytes(), "nested");
}

// Random mutations of valid files never crash, hang or allocate wildly:
// each parse either succeeds or returns bad_gguf, quickly.
void fuzz(const std::string& seed_file, int rounds, std::uint32_t seed) {
  std::mt19937 rng(seed);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < rounds; ++i) {
    std::string f = seed_file;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = rng() % f.size();
      switch (rng() % 4) {
        case 0: f[at] = static_cast<char>(rng()); break;
        case 1: {
          const std::uint64_t big = rng() % 2 ? ~0ULL >> (rng() % 40) : rng();
          if (at + 8 <= f.size()) std::memcpy(f.data() + at, &big, 8);
          break;
        }
        case 2: f.resize(at); break;
        default: f.insert(at, std::string(1 + rng() % 16, static_cast<char>(rng()))); break;
      }
      if (f.empty()) f = "G";
    }
    auto r = parse_gguf(f);
    if (!r) {
      EXPECT_EQ(r.error().reason, "bad_gguf");
    }
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(60));
}

TEST(GgufReader, FuzzedHandMadeFilesNeverCrash) { fuzz(valid_file(), 20000, 1); }

TEST(GgufReader, FuzzedGeneratedModelHeadersNeverCrash) {
  testing::TempDir dir;
  tools::TestModelOptions o;
  o.out = dir / "m.gguf";
  ASSERT_TRUE(tools::make_test_model(o));
  // The metadata section (tokenizer included) and a little tensor table.
  const std::string whole = testing::read_file(o.out);
  fuzz(whole.substr(0, std::min<std::size_t>(whole.size(), 8u << 20)), 50, 2);
}

TEST(Catalog, ListsConfiguredAndDiscoveredModelsWithErrors) {
  testing::TempDir dir;
  testing::write_file(dir / "good.gguf", valid_file());
  testing::write_file(dir / "junk.gguf", "this is not a model");
  testing::write_file(dir / "notes.txt", "ignored");
  config::ModelsConfig cfg;
  cfg.dir = dir.path().string();
  config::ModelEntry e;
  e.name = "chat";
  e.file = "good.gguf";
  e.description = "configured";
  cfg.list.push_back(e);
  e.name = "missing";
  e.file = "nope.gguf";
  cfg.list.push_back(e);
  const auto models = scan_catalog(cfg);
  ASSERT_EQ(models.size(), 3u);  // chat, junk, missing (good.gguf is "chat")
  EXPECT_EQ(models[0].name, "chat");
  EXPECT_TRUE(models[0].error.empty());
  EXPECT_EQ(models[0].description, "configured");
  EXPECT_EQ(models[1].name, "junk");
  EXPECT_NE(models[1].error.find("magic"), std::string::npos);
  EXPECT_EQ(models[2].name, "missing");
  EXPECT_FALSE(models[2].error.empty());
}

}  // namespace
}  // namespace llmd::models
