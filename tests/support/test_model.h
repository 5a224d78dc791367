// The generated tiny model the integration tests run real workers on
// (qwen2 architecture, seed 7), made once per build directory by
// `llmd dev make-test-model` and cached under <build>/test-models.
#pragma once

#include <filesystem>
#include <string>

namespace llmd::testing {

// Path of the cached tiny model; generates it with `binary` on first use.
// Safe when several test processes ask at once (each writes a temporary
// file and renames it into place).
std::filesystem::path tiny_test_model(const std::string& binary);

// The same tiny model with one of llama.cpp's real chat templates embedded
// (`chat_template`: a name in engine/llama/templates, e.g.
// "meta-llama-Llama-3.1-8B-Instruct"), cached the same way.
std::filesystem::path templated_test_model(const std::string& binary, const std::string& chat_template);

}  // namespace llmd::testing
