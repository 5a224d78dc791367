// Which files of a Hugging Face repository `models pull hf:...` takes, from
// model info in the Hub API's shape (GET /api/models/{repo}?blobs=true).
#include <gtest/gtest.h>

#include "models/hub.h"

namespace llmd::models {
namespace {

using json = nlohmann::json;

json sibling(const std::string& path, std::uint64_t size, const std::string& sha = "") {
  json s = {{"rfilename", path}, {"blobId", "0123abcd"}, {"size", size}};
  if (!sha.empty()) s["lfs"] = {{"sha256", sha}, {"size", size}, {"pointerSize", 135}};
  return s;
}

json info(std::vector<json> siblings) {
  return {{"_id", "x"},       {"id", "owner/repo"}, {"modelId", "owner/repo"},
          {"private", false}, {"tags", {"gguf"}},   {"siblings", siblings}};
}

const json kQwenLike = info({
    sibling(".gitattributes", 1600),
    sibling("README.md", 4000),
    sibling("qwen2.5-0.5b-instruct-fp16.gguf", 1270000000, std::string(64, 'a')),
    sibling("qwen2.5-0.5b-instruct-q4_k_m.gguf", 491000000, std::string(64, 'b')),
    sibling("qwen2.5-0.5b-instruct-q8_0.gguf", 676000000, std::string(64, 'c')),
    sibling("mmproj-qwen2.5-q4_k_m.gguf", 100000, std::string(64, 'd')),
});

TEST(HubRef, NamesQuantisationsFilesAndRevisions) {
  auto plain = parse_hub_ref("hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF");
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ(plain->repo, "Qwen/Qwen2.5-0.5B-Instruct-GGUF");
  EXPECT_EQ(plain->quantisation, "");
  EXPECT_EQ(plain->file, "");
  EXPECT_EQ(plain->revision, "main");
  EXPECT_EQ(parse_hub_ref("hf:owner/repo:q8_0")->quantisation, "Q8_0");
  auto file = parse_hub_ref("hf:owner/repo/sub/Model-Q4_K_M.gguf");
  ASSERT_TRUE(file);
  EXPECT_EQ(file->repo, "owner/repo");
  EXPECT_EQ(file->file, "sub/Model-Q4_K_M.gguf");
  auto rev = parse_hub_ref("hf:owner/repo@v1.2:IQ4_XS");
  ASSERT_TRUE(rev);
  EXPECT_EQ(rev->revision, "v1.2");
  EXPECT_EQ(rev->quantisation, "IQ4_XS");
  for (const char* bad : {"owner/repo", "hf:repo", "hf:owner/repo/../x.gguf", "hf:owner/repo/model.bin",
                          "hf:owner/repo:Q4 K", "hf:own er/repo", "hf:owner/repo:", "hf:/repo"}) {
    auto r = parse_hub_ref(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    }
  }
}

TEST(HubFiles, QuantisationsAreReadFromFileNames) {
  EXPECT_EQ(quantisation_of("qwen2.5-0.5b-instruct-q4_k_m.gguf"), "Q4_K_M");
  EXPECT_EQ(quantisation_of("llama-2-7b-chat.Q5_K_S.gguf"), "Q5_K_S");
  EXPECT_EQ(quantisation_of("Qwen3-8B-UD-Q4_K_XL.gguf"), "Q4_K_XL");
  EXPECT_EQ(quantisation_of("gemma-3-4b-it-IQ4_XS.gguf"), "IQ4_XS");
  EXPECT_EQ(quantisation_of("sub/DeepSeek-R1-Q2_K-00001-of-00003.gguf"), "Q2_K");
  EXPECT_EQ(quantisation_of("model-bf16.gguf"), "BF16");
  EXPECT_EQ(quantisation_of("tiny.gguf"), "");
  EXPECT_EQ(quantisations(kQwenLike), (std::vector<std::string>{"FP16", "Q4_K_M", "Q8_0"}));
}

TEST(HubFiles, TheDefaultIsQ4KMWithTheHubsSizeAndSha256) {
  auto files = choose_files(kQwenLike, *parse_hub_ref("hf:owner/repo"));
  ASSERT_TRUE(files) << files.error().message;
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].path, "qwen2.5-0.5b-instruct-q4_k_m.gguf");
  EXPECT_EQ((*files)[0].size, 491000000u);
  EXPECT_EQ((*files)[0].sha256, std::string(64, 'b'));
  EXPECT_EQ((*choose_files(kQwenLike, *parse_hub_ref("hf:owner/repo:Q8_0")))[0].name,
            "qwen2.5-0.5b-instruct-q8_0.gguf");
  EXPECT_EQ((*choose_files(kQwenLike, *parse_hub_ref("hf:owner/repo/mmproj-qwen2.5-q4_k_m.gguf")))[0].sha256,
            std::string(64, 'd'))
      << "a projector only by its name";
}

TEST(HubFiles, AMissingQuantisationListsTheOnesThereAre) {
  auto r = choose_files(kQwenLike, *parse_hub_ref("hf:owner/repo:Q3_K_S"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_NE(r.error().message.find("quantisations: FP16, Q4_K_M, Q8_0"), std::string::npos) << r.error().message;
  auto f = choose_files(kQwenLike, *parse_hub_ref("hf:owner/repo/nothing.gguf"));
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message.find("qwen2.5-0.5b-instruct-q8_0.gguf"), std::string::npos) << f.error().message;
}

TEST(HubFiles, ASplitModelComesAsAllItsPartsInOrder) {
  const json split =
      info({sibling("Q4_K_M/Big-Q4_K_M-00002-of-00003.gguf", 20, "2"),
            sibling("Q4_K_M/Big-Q4_K_M-00001-of-00003.gguf", 10, "1"),
            sibling("Q4_K_M/Big-Q4_K_M-00003-of-00003.gguf", 30, "3"), sibling("Q8_0/Big-Q8_0.gguf", 99, "8")});
  auto files = choose_files(split, *parse_hub_ref("hf:owner/big"));
  ASSERT_TRUE(files) << files.error().message;
  ASSERT_EQ(files->size(), 3u);
  EXPECT_EQ((*files)[0].name, "Big-Q4_K_M-00001-of-00003.gguf");
  EXPECT_EQ((*files)[2].name, "Big-Q4_K_M-00003-of-00003.gguf");
  // Naming any part gives the whole model.
  EXPECT_EQ(choose_files(split, *parse_hub_ref("hf:owner/big/Q4_K_M/Big-Q4_K_M-00002-of-00003.gguf"))->size(), 3u);
  const json broken =
      info({sibling("Big-Q4_K_M-00001-of-00003.gguf", 10), sibling("Big-Q4_K_M-00003-of-00003.gguf", 30)});
  auto r = choose_files(broken, *parse_hub_ref("hf:owner/big"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnprocessable);
}

TEST(HubFiles, TwoModelsOfTheQuantisationMustBeNamedAndALoneModelIsTaken) {
  const json two = info({sibling("a-Q4_K_M.gguf", 1), sibling("b-Q4_K_M.gguf", 2)});
  auto r = choose_files(two, *parse_hub_ref("hf:owner/x"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find("hf:owner/x/FILE.gguf"), std::string::npos) << r.error().message;
  const json lone = info({sibling("README.md", 1), sibling("tiny-f32.gguf", 5, "e")});
  EXPECT_EQ((*choose_files(lone, *parse_hub_ref("hf:owner/tiny")))[0].name, "tiny-f32.gguf");
  EXPECT_FALSE(choose_files(lone, *parse_hub_ref("hf:owner/tiny:Q4_K_M"))) << "an explicit quantisation is kept to";
}

TEST(HubFiles, DownloadUrlsEscapeThePath) {
  const HubRef ref = *parse_hub_ref("hf:owner/repo@v1");
  EXPECT_EQ(resolve_url("https://hf-mirror.example/", ref, "sub dir/a+b.gguf"),
            "https://hf-mirror.example/owner/repo/resolve/v1/sub%20dir/a%2Bb.gguf");
}

}  // namespace
}  // namespace llmd::models
