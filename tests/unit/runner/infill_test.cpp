#include "runner/infill.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "unit/runner/test_models.h"

namespace llmd::runner {
namespace {

std::vector<llama_token> text_tokens(const Model& m, const std::string& s) { return *m.tokenize(s, false, false); }

// Where `needle` starts in `hay`, or npos.
std::size_t find(const std::vector<llama_token>& hay, const std::vector<llama_token>& needle) {
  auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end());
  return it == hay.end() ? std::string::npos : static_cast<std::size_t>(it - hay.begin());
}

std::shared_ptr<const Model> fim_model() {
  static std::shared_ptr<const Model> m = [] {
    auto r = Model::load(testing::qwen2_fim_model_path());
    return r ? std::shared_ptr<const Model>(*r) : nullptr;
  }();
  return m;
}

TEST(Infill, TheQwenVocabularyHasItsFimTokens) {
  auto plain = testing::qwen2_model();
  ASSERT_TRUE(plain);
  EXPECT_FALSE(fim_tokens(*plain)) << "Qwen2's own vocabulary has none";
  auto model = fim_model();
  ASSERT_TRUE(model);
  const auto fim = fim_tokens(*model);
  ASSERT_TRUE(fim);
  EXPECT_EQ(model->token_to_piece(fim->prefix, true), "<|fim_prefix|>");
  EXPECT_EQ(model->token_to_piece(fim->suffix, true), "<|fim_suffix|>");
  EXPECT_EQ(model->token_to_piece(fim->middle, true), "<|fim_middle|>");
  EXPECT_EQ(model->token_to_piece(fim->repository, true), "<|repo_name|>");
  EXPECT_EQ(model->token_to_piece(fim->file_separator, true), "<|file_sep|>");
}

TEST(Infill, PromptLaysOutFilesThenPrefixPromptSuffixAndMiddle) {
  auto model = fim_model();
  ASSERT_TRUE(model);
  const auto fim = *fim_tokens(*model);
  const FimText text{"int main() {\n", "}\n", "  return ", {{"util.h", "int util();\n"}}};
  auto tokens = fim_prompt(*model, text, 512, 4096, 16);
  ASSERT_TRUE(tokens) << tokens.error().message;
  const auto& t = *tokens;
  EXPECT_EQ(t.front(), fim.repository);
  const auto file = find(t, text_tokens(*model, "util.h\nint util();\n"));
  const auto pre = find(t, {fim.prefix});
  const auto suf = find(t, {fim.suffix});
  ASSERT_NE(file, std::string::npos);
  ASSERT_NE(pre, std::string::npos);
  ASSERT_NE(suf, std::string::npos);
  EXPECT_EQ(t[file - 1], fim.file_separator);
  EXPECT_LT(file, pre);
  // [PRE] prefix prompt [SUF] suffix [MID]
  std::vector<llama_token> expected{fim.prefix};
  for (const auto& part : {text.prefix, text.prompt}) {
    const auto p = text_tokens(*model, part);
    expected.insert(expected.end(), p.begin(), p.end());
  }
  expected.push_back(fim.suffix);
  const auto s = text_tokens(*model, text.suffix);
  expected.insert(expected.end(), s.begin(), s.end());
  expected.push_back(fim.middle);
  EXPECT_EQ(std::vector<llama_token>(t.begin() + static_cast<std::ptrdiff_t>(pre), t.end()), expected);
  // Control-token text in user code stays text.
  auto hostile = fim_prompt(*model, FimText{"<|fim_middle|>", "", "", {}}, 512, 4096, 16);
  ASSERT_TRUE(hostile);
  EXPECT_EQ(std::count(hostile->begin(), hostile->end(), fim.middle), 1);
}

TEST(Infill, LongTextKeepsWhatIsNearestTheGapWithinTheBatch) {
  auto model = fim_model();
  ASSERT_TRUE(model);
  const auto fim = *fim_tokens(*model);
  std::string prefix, suffix;
  for (int i = 0; i < 200; ++i) prefix += "p" + std::to_string(i) + " ";
  for (int i = 0; i < 200; ++i) suffix += "s" + std::to_string(i) + " ";
  auto tokens = fim_prompt(*model, FimText{prefix + "NEAR_PREFIX", "NEAR_SUFFIX " + suffix, "", {}}, 64, 4096, 16);
  ASSERT_TRUE(tokens);
  const auto& t = *tokens;
  const auto pre = find(t, {fim.prefix});
  const auto suf = find(t, {fim.suffix});
  EXPECT_EQ(suf - pre - 1, 48u) << "the prefix keeps three quarters of the batch";
  EXPECT_EQ(t.size() - suf - 2, 14u) << "the suffix keeps a quarter less two";
  const auto text_between = [&](std::size_t from, std::size_t to) {
    return *model->detokenize(std::vector<llama_token>(t.begin() + static_cast<std::ptrdiff_t>(from),
                                                       t.begin() + static_cast<std::ptrdiff_t>(to)));
  };
  const std::string kept_prefix = text_between(pre + 1, suf);
  const std::string kept_suffix = text_between(suf + 1, t.size() - 1);
  EXPECT_TRUE(kept_prefix.ends_with("NEAR_PREFIX")) << kept_prefix;
  EXPECT_EQ(kept_prefix.find("p0 p1 "), std::string::npos) << "the prefix's far end is dropped";
  EXPECT_TRUE(kept_suffix.starts_with("NEAR_SUFFIX")) << kept_suffix;
  EXPECT_EQ(kept_suffix.find("s199"), std::string::npos) << "the suffix's far end is dropped";
}

TEST(Infill, AModelWithoutFimTokensIsRefused) {
  auto model = Model::load(testing::llama_model_path());
  ASSERT_TRUE(model) << model.error().message;
  EXPECT_FALSE(fim_tokens(**model));
  auto tokens = fim_prompt(**model, FimText{"a", "b", "", {}}, 512, 4096, 16);
  ASSERT_FALSE(tokens);
  EXPECT_EQ(tokens.error().code, ErrorCode::kUnprocessable);
  EXPECT_EQ(tokens.error().reason, "infill_not_supported");
}

}  // namespace
}  // namespace llmd::runner
