#include "support/asr_stub.h"

#include <atomic>
#include <cstdio>
#include <sstream>
#include <thread>
#include <variant>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include "http/multipart.h"
#include "http/pipeline.h"
#include "http/server.h"

namespace llmd::testing {
namespace {

namespace net = boost::asio;
using http::RequestContext;
using http::Response;

Response openai_error(int status, const std::string& message) {
  nlohmann::json body;
  body["error"] = {{"message", message}, {"type", "invalid_request_error"}};
  return Response::json(status, body);
}

std::uint32_t le(const std::string& s, std::size_t at, int bytes) {
  std::uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

// Seconds of audio in a 16 kHz mono 16-bit PCM WAV, or an error text.
std::variant<double, std::string> wav_seconds(const std::string& w) {
  if (w.size() < 12 || w.compare(0, 4, "RIFF") != 0 || w.compare(8, 4, "WAVE") != 0)
    return std::string("not a RIFF/WAVE file");
  if (le(w, 4, 4) != w.size() - 8) return std::string("RIFF size does not match the file");
  std::size_t pos = 12;
  bool fmt_ok = false;
  while (pos + 8 <= w.size()) {
    const std::string id = w.substr(pos, 4);
    const std::uint32_t size = le(w, pos + 4, 4);
    const std::size_t body = pos + 8;
    if (body + size > w.size()) return std::string("chunk " + id + " runs past the end");
    if (id == "fmt ") {
      if (size < 16) return std::string("fmt chunk too short");
      if (le(w, body, 2) != 1) return std::string("not PCM");
      if (le(w, body + 2, 2) != 1) return std::string("not mono");
      if (le(w, body + 4, 4) != 16000) return std::string("sample rate is not 16000 Hz");
      if (le(w, body + 14, 2) != 16) return std::string("not 16-bit");
      fmt_ok = true;
    } else if (id == "data") {
      if (!fmt_ok) return std::string("data before fmt");
      return static_cast<double>(size) / 32000.0;
    }
    pos = body + size + (size & 1);
  }
  return std::string("no data chunk");
}

std::string srt_time(double seconds) {
  const auto ms = static_cast<long long>(seconds * 1000 + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld,%03lld", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60,
                ms % 1000);
  return buf;
}

std::string srt_of(const nlohmann::json& segments) {
  std::string out;
  int n = 0;
  for (const auto& s : segments) {
    out += std::to_string(++n) + "\n" + srt_time(s["start"].get<double>()) + " --> " +
           srt_time(s["end"].get<double>()) + "\n" + s["text"].get<std::string>().substr(1) + "\n\n";
  }
  return out;
}

}  // namespace

struct AsrStub::Impl {
  AsrStubOptions options;
  std::unique_ptr<http::Server> server;
  std::thread thread;
  std::atomic<int> requests{0};
  mutable std::mutex mutex;
  AsrStubRequest last;  // guarded by mutex

  net::awaitable<Response> handle(RequestContext& ctx, bool openai) {
    ++requests;
    if (options.delay.count() > 0) {
      net::steady_timer t(co_await net::this_coro::executor, options.delay);
      co_await t.async_wait(net::use_awaitable);
    }
    if (!options.api_key.empty() &&
        ctx.request.headers.get("Authorization").value_or("") != "Bearer " + options.api_key) {
      co_return openai_error(401, "invalid api key");
    }
    if (options.fail_status != 0) co_return openai_error(options.fail_status, "stub failure");

    AsrStubRequest seen;
    seen.path = ctx.request.path;
    std::string wav;
    bool have_file = false;
    auto boundary = http::multipart_boundary(ctx.request.headers.get("Content-Type").value_or(""));
    if (!boundary) co_return openai_error(400, "expected multipart/form-data");
    std::istringstream in(ctx.request.body);
    std::string current;
    std::string* sink = nullptr;
    auto parsed = http::read_multipart(
        in, *boundary,
        [&](const http::PartHead& head) -> Result<void> {
          if (head.name == "file") {
            if (have_file) return fail(ErrorCode::kInvalidArgument, "two files");
            have_file = true;
            seen.file_name = head.filename.value_or("");
            sink = &wav;
          } else {
            sink = &seen.fields[head.name];
          }
          return {};
        },
        [&](std::string_view data) -> Result<void> {
          sink->append(data);
          return {};
        });
    if (!parsed) co_return openai_error(400, parsed.error().message);
    if (!have_file) co_return openai_error(400, "missing file");
    seen.wav_bytes = wav.size();
    {
      std::lock_guard lock(mutex);
      last = seen;
    }
    if (openai && seen.fields["model"].empty()) co_return openai_error(400, "model is required");
    const std::string format = seen.fields.contains("response_format") ? seen.fields["response_format"] : "json";
    if (format != "json" && format != "verbose_json" && format != "text" && format != "srt") {
      co_return openai_error(400, "unsupported response_format " + format);
    }
    const auto seconds = wav_seconds(wav);
    if (const auto* why = std::get_if<std::string>(&seconds)) co_return openai_error(400, "bad audio: " + *why);
    const double duration = std::get<double>(seconds);

    nlohmann::json segments = nlohmann::json::array();
    std::string all_text;
    int n = 0;
    for (double start = 0; start < duration; start += 2.0) {
      ++n;
      const std::string text = " segment " + std::to_string(n);
      nlohmann::json seg;
      seg["id"] = n - 1;
      seg["start"] = start;
      seg["end"] = std::min(start + 2.0, duration);
      seg["text"] = text;
      segments.push_back(seg);
      all_text += text;
    }
    if (format == "text") co_return Response::text(200, all_text);
    if (format == "srt") co_return Response::text(200, srt_of(segments));
    nlohmann::json out;
    out["text"] = all_text;
    if (format == "verbose_json") {
      out["task"] = "transcribe";
      out["language"] = seen.fields.contains("language") ? seen.fields["language"] : "english";
      out["duration"] = duration;
      out["segments"] = segments;
    }
    co_return Response::json(200, out);
  }
};

AsrStub::AsrStub(AsrStubOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  auto router = std::make_shared<http::Router>();
  Impl* impl = impl_.get();
  router->post("/inference", [impl](RequestContext& ctx) { return impl->handle(ctx, false); });
  router->post("/v1/audio/transcriptions", [impl](RequestContext& ctx) { return impl->handle(ctx, true); });
  http::ServerOptions opts;
  opts.port = 0;
  opts.io_threads = 1;
  opts.handle_signals = false;
  opts.max_body_bytes = 256 * 1024 * 1024;
  opts.shutdown_grace = std::chrono::seconds(1);
  impl_->server = std::make_unique<http::Server>(opts, http::make_pipeline(router, {}), observe::Logger::null());
  if (!impl_->server->listen()) throw std::runtime_error("asr stub: cannot listen");
  impl_->thread = std::thread([impl] { impl->server->run(); });
}

AsrStub::~AsrStub() {
  impl_->server->stop();
  impl_->thread.join();
}

int AsrStub::port() const { return impl_->server->port(); }
int AsrStub::requests() const { return impl_->requests.load(); }
AsrStubRequest AsrStub::last_request() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->last;
}

}  // namespace llmd::testing
