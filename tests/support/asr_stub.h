// A speech recognition service for tests: a real HTTP server on a loopback
// port (its own thread) that speaks both dialects llmd's AsrClient uses —
// whisper.cpp `whisper-server` POST /inference and OpenAI-compatible
// POST /v1/audio/transcriptions. It parses the multipart body, checks the
// WAV (RIFF/WAVE, PCM, 16 kHz, mono, 16-bit, data chunk length), and answers
// verbose_json (or json, text, srt, as response_format asks) with one
// segment per started 2 s of audio, text "segment N" (N from 1). Malformed
// input -> 400 with an OpenAI-style error object.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace llmd::testing {

struct AsrStubOptions {
  std::string api_key;                 // non-empty: require "Authorization: Bearer <api_key>" (else 401)
  int fail_status = 0;                 // non-zero: answer every request with this status
  std::chrono::milliseconds delay{0};  // wait before answering
};

// What the stub saw in its most recent request.
struct AsrStubRequest {
  std::string path;
  std::map<std::string, std::string> fields;  // non-file form fields
  std::string file_name;
  std::size_t wav_bytes = 0;
};

class AsrStub {
 public:
  explicit AsrStub(AsrStubOptions options = {});
  ~AsrStub();
  AsrStub(const AsrStub&) = delete;
  AsrStub& operator=(const AsrStub&) = delete;

  int port() const;
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port()) + path; }
  int requests() const;
  AsrStubRequest last_request() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmd::testing
