// Speech recognition through a whisper-compatible HTTP endpoint (SPEC §6
// Subtitle, config `asr: {url, api_key}`): a 16 kHz mono WAV goes out as
// multipart/form-data, timed segments come back as cues. Two dialects,
// chosen by the URL's path:
//   .../inference                 whisper.cpp `whisper-server`
//                                 (file, response_format=verbose_json)
//   .../v1/audio/transcriptions   OpenAI-compatible (file, model,
//                                 response_format=verbose_json,
//                                 timestamp_granularities[]=segment)
//
// Thread-safety: transcribe() may run from many coroutines at once.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "config/config.h"
#include "core/error.h"
#include "http/client.h"
#include "tasks/subtitle/subtitle.h"

namespace llmd::subtitle {

enum class AsrDialect { kWhisperCpp, kOpenAi };

// The dialect for `url`. Errors: kUnprocessable "asr_not_configured" for an
// empty url; kInvalidArgument "bad_config" for a path that is neither.
Result<AsrDialect> asr_dialect(std::string_view url);

// Cues from a verbose_json reply: `segments[]` with `start`/`end` in seconds
// and `text` (trimmed; empty segments dropped), or, without segments, the
// whole `text` as one cue over [0, duration]. Errors: kUnavailable
// "asr_bad_response" when the reply is not such JSON.
Result<std::vector<Cue>> parse_transcription(std::string_view body);

struct AsrRequestOptions {
  std::string language;             // ISO 639-1 hint ("en", "zh"); empty = let the service detect
  std::string model = "whisper-1";  // OpenAI dialect only
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};  // time without progress
};

class AsrClient {
 public:
  // `client` must outlive this object.
  AsrClient(http::HttpClient& client, config::AsrConfig config);

  bool configured() const { return !config_.url.empty(); }

  // Transcribes `wav` (16 kHz mono 16-bit PCM, as audio_as_wav16k
  // makes it). Errors: kUnprocessable "asr_not_configured" ("speech
  // recognition is not configured (asr.url)"); kUnavailable
  // "asr_unavailable" (unreachable, 5xx, api key refused), kDeadlineExceeded
  // "asr_timeout", kUnprocessable "asr_rejected" (the service refused the
  // audio: 4xx), kUnavailable "asr_bad_response" (reply not understood).
  boost::asio::awaitable<Result<std::vector<Cue>>> transcribe(const std::string& wav, const AsrRequestOptions& options);

 private:
  http::HttpClient& client_;
  config::AsrConfig config_;
};

}  // namespace llmd::subtitle
