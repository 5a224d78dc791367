#include "api/subtitle_routes.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <boost/asio/this_coro.hpp>
#include <nlohmann/json.hpp>

#include "api/account_routes.h"
#include "core/language.h"
#include "core/text.h"
#include "http/client.h"
#include "http/errors.h"
#include "http/json_body.h"
#include "http/sse.h"
#include "tasks/subtitle/asr_client.h"
#include "tasks/subtitle/media.h"

namespace llmd::api {
namespace {

namespace net = boost::asio;
namespace fs = std::filesystem;
using boost::asio::awaitable;
using http::RequestContext;
using http::Response;
using nlohmann::json;

// ---- request parsing ----------------------------------------------------------

enum class Source { kContent, kUpload, kVideo };

struct SubtitleRequest {
  Source source = Source::kContent;
  std::string content;     // kContent
  std::string upload_id;   // kUpload
  std::string video_path;  // kVideo (as given; resolved later)
  std::optional<subtitle::Format> input_format;
  std::optional<int> stream_index;
  subtitle::SubtitleJobSpec spec;
};

// "auto" (source only) or any spelling language::resolve knows, stored as
// its canonical tag.
Result<std::string> language_field(const std::string& value, bool allow_auto) {
  if (allow_auto && text::to_lower(text::trim(value)) == "auto") return std::string("auto");
  auto lang = language::resolve(value);
  if (!lang) return std::unexpected(lang.error());
  return lang->tag;
}

Result<subtitle::Format> format_field(const std::string& value, const char* name) {
  auto f = subtitle::parse_format(value);
  if (!f) {
    return fail(ErrorCode::kUnsupportedFormat,
                std::string(name) + ": unsupported subtitle format \"" + value.substr(0, 32) + "\" (srt, vtt or ass)",
                "unsupported_format");
  }
  return *f;
}

Result<SubtitleRequest> parse_request(const json& body) {
  SubtitleRequest r;
  int sources = 0;
  for (const char* name : {"content", "upload_id", "video_path"}) {
    auto it = body.find(name);
    if (it == body.end() || it->is_null()) continue;
    if (!it->is_string())
      return fail(ErrorCode::kInvalidArgument, std::string(name) + " must be a string", "invalid_field");
    ++sources;
  }
  if (sources != 1) {
    return fail(ErrorCode::kInvalidArgument, "give exactly one of content, upload_id or video_path", "invalid_input");
  }
  if (body.contains("content") && !body["content"].is_null()) {
    r.source = Source::kContent;
    r.content = body["content"].get<std::string>();
    r.spec.source = "content";
  } else if (body.contains("upload_id") && !body["upload_id"].is_null()) {
    r.source = Source::kUpload;
    r.upload_id = body["upload_id"].get<std::string>();
    r.spec.source = "upload";
    if (r.upload_id.empty() || r.upload_id.size() > 64) {
      return fail(ErrorCode::kInvalidArgument, "upload_id is not valid", "invalid_field");
    }
  } else {
    r.source = Source::kVideo;
    r.video_path = body["video_path"].get<std::string>();
    r.spec.source = "video";
    if (r.video_path.empty() || r.video_path.size() > 4096) {
      return fail(ErrorCode::kInvalidArgument, "video_path is not valid", "invalid_field");
    }
  }

  auto source_lang = http::string_field(body, "source_lang", false, "auto");
  auto target_lang = http::string_field(body, "target_lang", true);
  if (!source_lang) return std::unexpected(source_lang.error());
  if (!target_lang) return std::unexpected(target_lang.error());
  auto source = language_field(*source_lang, true);
  if (!source) return std::unexpected(source.error());
  auto target = language_field(*target_lang, false);
  if (!target) return std::unexpected(target.error());
  r.spec.source_lang = *source;
  r.spec.target_lang = *target;

  auto output = http::string_field(body, "output_format", false, "srt");
  if (!output) return std::unexpected(output.error());
  auto out_format = format_field(*output, "output_format");
  if (!out_format) return std::unexpected(out_format.error());
  r.spec.output_format = *out_format;

  auto input = http::string_field(body, "input_format", false);
  if (!input) return std::unexpected(input.error());
  if (!input->empty()) {
    auto in_format = format_field(*input, "input_format");
    if (!in_format) return std::unexpected(in_format.error());
    r.input_format = *in_format;
  }

  if (auto it = body.find("bilingual"); it != body.end() && !it->is_null()) {
    if (!it->is_boolean()) return fail(ErrorCode::kInvalidArgument, "bilingual must be a boolean", "invalid_field");
    r.spec.bilingual = it->get<bool>();
  }
  auto order = http::string_field(body, "bilingual_order", false, "target_first");
  if (!order) return std::unexpected(order.error());
  if (*order != "target_first" && *order != "source_first") {
    return fail(ErrorCode::kInvalidArgument, "bilingual_order must be \"target_first\" or \"source_first\"",
                "invalid_field");
  }
  r.spec.target_first = *order == "target_first";

  auto max_chars = http::int_field(body, "max_line_chars", false, 0, 0, 200);
  if (!max_chars) return std::unexpected(max_chars.error());
  r.spec.max_line_chars = static_cast<int>(*max_chars);
  if (auto it = body.find("stream_index"); it != body.end() && !it->is_null()) {
    auto index = http::int_field(body, "stream_index", false, 0, 0, 1024);
    if (!index) return std::unexpected(index.error());
    r.stream_index = static_cast<int>(*index);
  }
  return r;
}

// ---- where the cues come from (blocking: run on the pool) ---------------------

bool has_subtitle_extension(const std::string& name) {
  std::string ext = fs::path(name).extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".srt" || ext == ".vtt" || ext == ".ass" || ext == ".ssa";
}

Result<std::string> read_small_file(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return fail(ErrorCode::kNotFound, "the file is gone", "file_not_found");
  if (size > subtitle::kMaxInputBytes) {
    return fail(ErrorCode::kTooLarge, "the subtitle file is too large", "subtitle_too_large");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(ErrorCode::kNotFound, "the file cannot be read", "file_not_found");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The source of a job: cues, or a media file without a text subtitle stream
// whose speech is to be recognised.
struct Loaded {
  std::optional<subtitle::Document> doc;
  fs::path speech;
};

// Cues of a media file's text subtitle stream; without one, the file for
// speech recognition. Bitmap subtitles stay an error (422, no OCR).
Result<Loaded> load_media(const fs::path& path, std::optional<int> stream_index) {
  auto cues = subtitle::extract_subtitles(path, stream_index);
  if (!cues) {
    if (cues.error().reason == "no_subtitle_stream" && !stream_index) return Loaded{std::nullopt, path};
    return std::unexpected(cues.error());
  }
  subtitle::Document doc;
  doc.cues = std::move(*cues);
  doc.source_format = subtitle::Format::kSrt;
  return Loaded{std::move(doc), {}};
}

Result<Loaded> loaded(Result<subtitle::Document> doc) {
  if (!doc) return std::unexpected(doc.error());
  return Loaded{std::move(*doc), {}};
}

// The 404 of every job route: unknown, another user's, or not an id at all.
bool plausible_job_id(const std::string& id) {
  if (id.size() != 32) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Error job_not_found() { return Error(ErrorCode::kNotFound, "no such job", "job_not_found"); }

json progress_json(const jobs::Job& job) { return subtitle::job_json(job)["progress"]; }

// ---- handlers ---------------------------------------------------------------

struct Handlers {
  SubtitleRoutesDeps d;

  awaitable<Result<Response>> submit(RequestContext& ctx) {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    auto body = http::parse_json_object(ctx.request.body);
    if (!body) co_return std::unexpected(body.error());
    auto req = parse_request(*body);
    if (!req) co_return std::unexpected(req.error());
    const std::int64_t user_id = who->user_id;

    auto source = co_await d.pool.run([&]() -> Result<Loaded> {
      switch (req->source) {
        case Source::kContent: return loaded(subtitle::parse(req->content, req->input_format));
        case Source::kUpload: {
          if (!d.find_upload) return fail(ErrorCode::kInvalidArgument, "uploads are not available", "invalid_input");
          auto upload = d.find_upload(req->upload_id, user_id);
          if (!upload) return fail(ErrorCode::kNotFound, "no such upload", "upload_not_found");
          req->spec.source_name = upload->original_name;
          if (req->input_format || has_subtitle_extension(upload->original_name)) {
            auto bytes = read_small_file(upload->path);
            if (!bytes) return std::unexpected(bytes.error());
            return loaded(subtitle::parse(*bytes, req->input_format));
          }
          return load_media(upload->path, req->stream_index);
        }
        case Source::kVideo: {
          // Resolved (symlinks followed) and checked against the media roots
          // before anything is opened.
          auto path = subtitle::resolve_media_path(req->video_path, d.media_roots);
          if (!path) return std::unexpected(path.error());
          req->spec.source_name = path->filename().string();
          return load_media(*path, req->stream_index);
        }
      }
      return fail(ErrorCode::kInternal, "unknown source");
    });
    if (!source) co_return std::unexpected(source.error());
    if (!source->doc) {
      auto heard = co_await recognise(source->speech, req->spec.source_lang);
      if (!heard) co_return std::unexpected(heard.error());
      source->doc = std::move(*heard);
      req->spec.source = "speech";
    }

    auto job = co_await d.jobs.submit(user_id, *source->doc, req->spec, ctx.request_id, who->api_key_id);
    if (!job) co_return std::unexpected(job.error());
    json out = subtitle::job_json(*job);
    out.erase("created_at");
    out.erase("updated_at");
    out.erase("kind");
    co_return Response::json(202, out);
  }

  // Speech recognition of a media file (its first audio stream).
  awaitable<Result<subtitle::Document>> recognise(const fs::path& file, const std::string& source_lang) {
    if (d.asr.url.empty()) {
      co_return fail(ErrorCode::kUnprocessable,
                     "the file has no text subtitle stream, and speech recognition is not configured (asr.url)",
                     "asr_not_configured");
    }
    auto wav = co_await d.pool.run([&] { return subtitle::audio_as_wav16k(file); });
    if (!wav) {
      if (wav.error().reason == "no_audio_stream") {
        co_return fail(ErrorCode::kUnprocessable, "the file has neither a text subtitle stream nor audio",
                       "nothing_to_translate");
      }
      co_return std::unexpected(wav.error());
    }
    // A client per recognition: these calls are rare and long.
    http::HttpClient client(co_await net::this_coro::executor);
    subtitle::AsrClient asr(client, d.asr);
    subtitle::AsrRequestOptions options;
    if (source_lang != "auto") options.language = source_lang.substr(0, source_lang.find_first_of("-_"));
    auto cues = co_await asr.transcribe(*wav, options);
    if (!cues) co_return std::unexpected(cues.error());
    subtitle::Document doc;
    doc.cues = std::move(*cues);
    doc.source_format = subtitle::Format::kSrt;
    co_return doc;
  }

  awaitable<Result<jobs::Job>> load(RequestContext& ctx, std::int64_t user_id) {
    const std::string id = ctx.param("id");
    if (!plausible_job_id(id)) co_return std::unexpected(job_not_found());
    auto job = co_await d.pool.run([&] { return d.store.get(id, user_id); });
    co_return job;
  }

  awaitable<Result<Response>> list(RequestContext& ctx) {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    const std::int64_t user_id = who->user_id;
    auto jobs = co_await d.pool.run([&] { return d.store.list(user_id, 100); });
    if (!jobs) co_return std::unexpected(jobs.error());
    json items = json::array();
    for (const auto& j : *jobs) {
      json item = subtitle::job_json(j);
      // The listing reads no payload columns: which cues kept their source
      // text is only in GET /jobs/{id}.
      if (item.contains("result")) item["result"].erase("kept_source");
      items.push_back(std::move(item));
    }
    json out = {{"jobs", std::move(items)}};
    co_return Response::json(200, out);
  }

  awaitable<Result<Response>> get(RequestContext& ctx) {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    auto job = co_await load(ctx, who->user_id);
    if (!job) co_return std::unexpected(job.error());
    co_return Response::json(200, subtitle::job_json(*job));
  }

  awaitable<Result<Response>> result(RequestContext& ctx) {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    auto job = co_await load(ctx, who->user_id);
    if (!job) co_return std::unexpected(job.error());
    if (!subtitle::has_result(*job)) {
      co_return std::unexpected(
          Error(ErrorCode::kConflict,
                "the job has no result (status " + std::string(jobs::status_name(job->status)) + ")", "job_not_done"));
    }
    const std::string path = job->result_path;
    auto bytes = co_await d.pool.run([&]() -> Result<std::string> {
      std::ifstream in(path, std::ios::binary);
      if (!in) return fail(ErrorCode::kNotFound, "the result file is gone", "result_gone");
      std::ostringstream ss;
      ss << in.rdbuf();
      return ss.str();
    });
    if (!bytes) co_return std::unexpected(bytes.error());
    const auto format = subtitle::parse_format(job->input["spec"].value("output_format", std::string("srt")))
                            .value_or(subtitle::Format::kSrt);
    Response r = Response::text(200, std::move(*bytes), std::string(subtitle::content_type(format)));
    r.headers.set("Content-Disposition", "attachment; filename=\"" + subtitle::result_file_name(*job) + "\"");
    r.headers.set("X-Content-Type-Options", "nosniff");
    co_return r;
  }

  awaitable<Result<Response>> cancel(RequestContext& ctx) {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    const std::string id = ctx.param("id");
    if (!plausible_job_id(id)) co_return std::unexpected(job_not_found());
    auto job = co_await d.jobs.cancel(id, who->user_id);
    if (!job) co_return std::unexpected(job.error());
    co_return Response::json(200, subtitle::job_json(*job));
  }

  // Progress as server-sent events: "progress" whenever more cues are done
  // (never backwards), then one of "done" / "failed" / "cancelled" with the
  // job, and the stream ends. Woken by the runner in this process; the
  // database is re-read at least every second for jobs run elsewhere.
  awaitable<Result<Response>> events(RequestContext& ctx) {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    const std::int64_t user_id = who->user_id;
    auto first = co_await load(ctx, user_id);
    if (!first) co_return std::unexpected(first.error());
    const std::string id = first->id;
    auto executor = co_await net::this_coro::executor;
    auto watch = d.jobs.watches().watch(id, executor);
    http::SseWriter sse(ctx);
    if (!co_await sse.open()) co_return Response::already_streamed(200);
    std::int64_t last_done = -1;
    auto last_sent = std::chrono::steady_clock::now();
    while (sse.alive()) {
      auto job = co_await d.pool.run([&] { return d.store.get(id, user_id); });
      if (!job) break;
      if (job->progress_done > last_done) {
        last_done = job->progress_done;
        const std::string data = progress_json(*job).dump();
        if (!co_await sse.send(data, "progress")) break;
        last_sent = std::chrono::steady_clock::now();
      }
      if (jobs::is_terminal(job->status)) {
        const std::string data = subtitle::job_json(*job).dump();
        const std::string event(jobs::status_name(job->status));
        co_await sse.send(data, event);
        break;
      }
      if (std::chrono::steady_clock::now() - last_sent > std::chrono::seconds(15)) {
        if (!co_await sse.comment("keep-alive")) break;
        last_sent = std::chrono::steady_clock::now();
      }
      co_await watch->wait(std::chrono::milliseconds(1000));
    }
    co_await sse.close();
    co_return Response::already_streamed(200);
  }
};

}  // namespace

void add_subtitle_routes(http::Router& router, SubtitleRoutesDeps deps) {
  auto h = std::make_shared<Handlers>(Handlers{std::move(deps)});
  router.post("/api/v1/tasks/subtitle", [h](RequestContext& ctx) { return h->submit(ctx); });
  router.get("/api/v1/jobs", [h](RequestContext& ctx) { return h->list(ctx); });
  router.get("/api/v1/jobs/{id}", [h](RequestContext& ctx) { return h->get(ctx); });
  router.get("/api/v1/jobs/{id}/result", [h](RequestContext& ctx) { return h->result(ctx); });
  router.get("/api/v1/jobs/{id}/events", [h](RequestContext& ctx) { return h->events(ctx); });
  router.del("/api/v1/jobs/{id}", [h](RequestContext& ctx) { return h->cancel(ctx); });
}

}  // namespace llmd::api
