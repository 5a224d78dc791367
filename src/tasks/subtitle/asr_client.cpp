#include "tasks/subtitle/asr_client.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "core/text.h"
#include "http/multipart.h"

namespace llmd::subtitle {
namespace {

Error not_configured() {
  return Error(ErrorCode::kUnprocessable, "speech recognition is not configured (asr.url)", "asr_not_configured");
}

Error bad_response(const std::string& what) {
  return Error(ErrorCode::kUnavailable, "the speech recognition service sent an unusable reply: " + what,
               "asr_bad_response");
}

// The upstream's own error text, when it sent one, cut short for the client.
std::string upstream_message(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  std::string m;
  if (j.is_object()) {
    if (auto e = j.find("error"); e != j.end()) {
      if (e->is_string()) m = e->get<std::string>();
      if (e->is_object() && e->contains("message") && (*e)["message"].is_string())
        m = (*e)["message"].get<std::string>();
    }
  }
  if (m.size() > 200) m.resize(200);
  return text::is_valid_utf8(m) ? m : std::string();
}

std::int64_t seconds_to_ms(double s) { return static_cast<std::int64_t>(std::llround(s * 1000.0)); }

}  // namespace

Result<AsrDialect> asr_dialect(std::string_view url) {
  if (url.empty()) return std::unexpected(not_configured());
  auto parsed = http::parse_http_url(url);
  if (!parsed) return fail(ErrorCode::kInvalidArgument, "asr.url: " + parsed.error().message, "bad_config");
  std::string_view path(parsed->target);
  path = path.substr(0, path.find('?'));
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (path.ends_with("/inference")) return AsrDialect::kWhisperCpp;
  if (path.ends_with("/audio/transcriptions")) return AsrDialect::kOpenAi;
  return fail(ErrorCode::kInvalidArgument,
              "asr.url must end in /inference (whisper.cpp whisper-server) or /v1/audio/transcriptions "
              "(OpenAI-compatible)",
              "bad_config");
}

Result<std::vector<Cue>> parse_transcription(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object()) return std::unexpected(bad_response("not a JSON object"));
  std::vector<Cue> cues;
  auto segments = j.find("segments");
  if (segments != j.end() && !segments->is_null()) {
    if (!segments->is_array()) return std::unexpected(bad_response("segments is not an array"));
    for (const auto& seg : *segments) {
      if (!seg.is_object() || !seg.contains("start") || !seg.contains("end") || !seg["start"].is_number() ||
          !seg["end"].is_number()) {
        return std::unexpected(bad_response("a segment without numeric start/end"));
      }
      const double start = seg["start"].get<double>();
      const double end = seg["end"].get<double>();
      if (!std::isfinite(start) || !std::isfinite(end) || start < 0 || end < start || end > 1e7) {
        return std::unexpected(bad_response("a segment with impossible timings"));
      }
      const auto t = seg.find("text");
      if (t == seg.end() || !t->is_string()) return std::unexpected(bad_response("a segment without text"));
      const std::string text(text::trim(t->get<std::string>()));
      if (text.empty()) continue;
      Cue cue;
      cue.start_ms = seconds_to_ms(start);
      cue.end_ms = seconds_to_ms(end);
      cue.text = text;
      cues.push_back(std::move(cue));
    }
    return cues;
  }
  const auto t = j.find("text");
  if (t == j.end() || !t->is_string()) return std::unexpected(bad_response("no segments and no text"));
  const std::string text(text::trim(t->get<std::string>()));
  if (text.empty()) return cues;
  Cue cue;
  cue.text = text;
  if (auto d = j.find("duration");
      d != j.end() && d->is_number() && std::isfinite(d->get<double>()) && d->get<double>() > 0) {
    cue.end_ms = seconds_to_ms(d->get<double>());
  }
  cues.push_back(std::move(cue));
  return cues;
}

AsrClient::AsrClient(http::HttpClient& client, config::AsrConfig config)
    : client_(client), config_(std::move(config)) {}

boost::asio::awaitable<Result<std::vector<Cue>>> AsrClient::transcribe(const std::string& wav,
                                                                       const AsrRequestOptions& options) {
  auto dialect = asr_dialect(config_.url);
  if (!dialect) co_return std::unexpected(dialect.error());

  http::MultipartBuilder form;
  form.add_file("file", "audio.wav", "audio/wav", wav);
  form.add_field("response_format", "verbose_json");
  if (*dialect == AsrDialect::kOpenAi) {
    form.add_field("model", options.model);
    form.add_field("timestamp_granularities[]", "segment");
  } else {
    form.add_field("temperature", "0.0");
  }
  if (!options.language.empty()) form.add_field("language", options.language);

  http::ClientRequest req;
  req.method = "POST";
  req.url = config_.url;
  req.timeout = options.timeout;
  req.headers.add("Content-Type", form.content_type());
  req.headers.add("Accept", "application/json");
  if (!config_.api_key.empty()) req.headers.add("Authorization", "Bearer " + config_.api_key);
  req.body = form.finish();

  auto reply = co_await client_.request(req);
  if (!reply) {
    const Error& e = reply.error();
    if (e.code == ErrorCode::kDeadlineExceeded) {
      co_return fail(ErrorCode::kDeadlineExceeded, "the speech recognition service timed out", "asr_timeout");
    }
    co_return fail(Error(ErrorCode::kUnavailable, "the speech recognition service is unreachable", "asr_unavailable")
                       .with_retry_after(10));
  }
  const int status = reply->status;
  if (status == 401 || status == 403) {
    co_return fail(ErrorCode::kUnavailable, "the speech recognition service refused the configured asr.api_key",
                   "asr_unavailable");
  }
  if (status >= 500 || status == 429) {
    const std::string detail = upstream_message(reply->body);
    co_return fail(Error(ErrorCode::kUnavailable,
                         "the speech recognition service failed (HTTP " + std::to_string(status) + ")" +
                             (detail.empty() ? "" : ": " + detail),
                         "asr_unavailable")
                       .with_retry_after(10));
  }
  if (status >= 400) {
    const std::string detail = upstream_message(reply->body);
    co_return fail(ErrorCode::kUnprocessable,
                   "the speech recognition service refused the audio (HTTP " + std::to_string(status) + ")" +
                       (detail.empty() ? "" : ": " + detail),
                   "asr_rejected");
  }
  if (status != 200) co_return std::unexpected(bad_response("HTTP " + std::to_string(status)));
  co_return parse_transcription(reply->body);
}

}  // namespace llmd::subtitle
