#include "support/test_model.h"

#include <unistd.h>

#include <chrono>

#include <gtest/gtest.h>

#include "support/process.h"

namespace llmd::testing {

namespace fs = std::filesystem;

fs::path tiny_test_model(const std::string& binary) {
  const fs::path dir = fs::path(LLMD_BINARY_DIR) / "test-models";
  const fs::path out = dir / "runner-tiny-qwen2.gguf";
  if (fs::exists(out)) return out;
  fs::create_directories(dir);
  const std::string pid = std::to_string(::getpid());
  const fs::path tmp = dir / ("tmp-" + pid + "-qwen2.gguf");
  Process gen({binary, "dev", "make-test-model", "--arch", "qwen2", "--seed", "7", "--out", tmp.string()}, dir,
              dir / ("gen-" + pid + ".log"));
  EXPECT_EQ(gen.wait(std::chrono::seconds(120)), 0) << gen.log();
  fs::rename(tmp, out);
  return out;
}

}  // namespace llmd::testing
