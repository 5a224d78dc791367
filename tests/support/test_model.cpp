#include "support/test_model.h"

#include <unistd.h>

#include <chrono>
#include <vector>

#include <gtest/gtest.h>

#include "support/process.h"

namespace llmd::testing {

namespace fs = std::filesystem;

namespace {

fs::path generated_model(const std::string& binary, const std::string& name, std::vector<std::string> extra) {
  const fs::path dir = fs::path(LLMD_BINARY_DIR) / "test-models";
  const fs::path out = dir / (name + ".gguf");
  if (fs::exists(out)) return out;
  fs::create_directories(dir);
  const std::string pid = std::to_string(::getpid());
  const fs::path tmp = dir / ("tmp-" + pid + "-" + name + ".gguf");
  std::vector<std::string> argv{binary,   "dev", "make-test-model", "--arch",    "qwen2",
                                "--seed", "7",   "--out",           tmp.string()};
  for (auto& a : extra) argv.push_back(std::move(a));
  Process gen(argv, dir, dir / ("gen-" + pid + ".log"));
  EXPECT_EQ(gen.wait(std::chrono::seconds(120)), 0) << gen.log();
  fs::rename(tmp, out);
  return out;
}

}  // namespace

fs::path tiny_test_model(const std::string& binary) { return generated_model(binary, "runner-tiny-qwen2", {}); }

fs::path templated_test_model(const std::string& binary, const std::string& chat_template) {
  return generated_model(binary, "runner-tiny-qwen2-" + chat_template, {"--chat-template", chat_template});
}

}  // namespace llmd::testing
