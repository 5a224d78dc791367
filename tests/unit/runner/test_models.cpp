#include "unit/runner/test_models.h"

#include <gtest/gtest.h>

#include <mutex>

#include "support/test_support.h"
#include "tools/make_test_model.h"

namespace llmd::runner::testing {
namespace {

llmd::testing::TempDir& dir() {
  static llmd::testing::TempDir d;
  return d;
}

std::filesystem::path make(const std::string& arch, bool fim = false, bool reranker = false) {
  tools::TestModelOptions o;
  o.shape.arch = arch;
  o.seed = 1234;
  o.fim_tokens = fim;
  o.reranker = reranker;
  o.out = dir() / ("tiny-" + arch + (fim ? "-fim" : "") + (reranker ? "-reranker" : "") + ".gguf");
  auto r = tools::make_test_model(o);
  if (!r) {
    ADD_FAILURE() << "make_test_model(" << arch << "): " << r.error().message;
  }
  return o.out;
}

}  // namespace

const std::filesystem::path& qwen2_model_path() {
  static const std::filesystem::path p = make("qwen2");
  return p;
}

const std::filesystem::path& qwen2_fim_model_path() {
  static const std::filesystem::path p = make("qwen2", true);
  return p;
}

const std::filesystem::path& qwen3_reranker_model_path() {
  static const std::filesystem::path p = make("qwen3", false, true);
  return p;
}

const std::filesystem::path& llama_model_path() {
  static const std::filesystem::path p = make("llama");
  return p;
}

std::shared_ptr<const Model> qwen2_model() {
  static std::shared_ptr<const Model> m = [] {
    auto r = Model::load(qwen2_model_path());
    if (!r) {
      ADD_FAILURE() << "loading the qwen2 test model: " << r.error().message;
      return std::shared_ptr<const Model>();
    }
    return std::shared_ptr<const Model>(*r);
  }();
  return m;
}

std::filesystem::path scratch_dir() {
  static int n = 0;
  static std::mutex mu;
  std::lock_guard lock(mu);
  auto p = dir() / ("scratch-" + std::to_string(++n));
  std::filesystem::create_directories(p);
  return p;
}

}  // namespace llmd::runner::testing
