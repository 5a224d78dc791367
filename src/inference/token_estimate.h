#pragma once

#include <cstdint>
#include <string_view>

namespace llmd::inference {

// The token count a task bills when the model's server has no tokenizer
// endpoint (an external OpenAI-compatible upstream): every four ASCII bytes
// (rounded up, per run of ASCII) and every other code point (a CJK character,
// an accented letter, an emoji) one token each. Close to what BPE vocabularies
// give for English and Chinese text, and never 0 for non-empty text.
std::int64_t estimated_tokens(std::string_view utf8);

}  // namespace llmd::inference
