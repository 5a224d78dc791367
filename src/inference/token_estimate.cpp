#include "inference/token_estimate.h"

namespace llmd::inference {

std::int64_t estimated_tokens(std::string_view utf8) {
  std::int64_t tokens = 0;
  std::int64_t ascii_run = 0;
  for (const char c : utf8) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x80) {
      ++ascii_run;
      continue;
    }
    tokens += (ascii_run + 3) / 4;
    ascii_run = 0;
    if ((byte & 0xC0) != 0x80) ++tokens;  // a lead byte starts a code point; continuation bytes do not
  }
  return tokens + (ascii_run + 3) / 4;
}

}  // namespace llmd::inference
