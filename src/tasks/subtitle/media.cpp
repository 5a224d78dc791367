#include "tasks/subtitle/media.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/channel_layout.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
}

namespace llmd::subtitle {
namespace {

namespace fs = std::filesystem;

// FFmpeg prints to stderr by default; an operator's log is no place for
// demuxer chatter, and our errors carry what matters. av_log_set_level is
// process-wide, so it is set once.
void quiet_ffmpeg() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_level(AV_LOG_QUIET); });
}

// RAII for the FFmpeg handles this file uses.
struct FormatCloser {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
struct CodecFreer {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct PacketFreer {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct FrameFreer {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct SwrFreer {
  void operator()(SwrContext* s) const { swr_free(&s); }
};
using FormatPtr = std::unique_ptr<AVFormatContext, FormatCloser>;
using CodecPtr = std::unique_ptr<AVCodecContext, CodecFreer>;
using PacketPtr = std::unique_ptr<AVPacket, PacketFreer>;
using FramePtr = std::unique_ptr<AVFrame, FrameFreer>;
using SwrPtr = std::unique_ptr<SwrContext, SwrFreer>;

// An AVSubtitle owns its rects; avsubtitle_free releases them.
class DecodedSubtitle {
 public:
  DecodedSubtitle() { std::memset(&sub_, 0, sizeof sub_); }
  ~DecodedSubtitle() { avsubtitle_free(&sub_); }
  DecodedSubtitle(const DecodedSubtitle&) = delete;
  DecodedSubtitle& operator=(const DecodedSubtitle&) = delete;
  AVSubtitle* get() { return &sub_; }

 private:
  AVSubtitle sub_;
};

std::string av_error_text(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof buf);
  return buf;
}

// Opens `file` and reads its stream parameters. The message never names
// the path (it may come from a client).
Result<FormatPtr> open_media(const fs::path& file) {
  quiet_ffmpeg();
  AVFormatContext* raw = nullptr;
  if (int rc = avformat_open_input(&raw, file.c_str(), nullptr, nullptr); rc < 0) {
    if (rc == AVERROR(ENOENT)) return fail(ErrorCode::kNotFound, "media file not found", "media_not_found");
    return fail(ErrorCode::kInvalidArgument, "not a readable media file (" + av_error_text(rc) + ")", "invalid_media");
  }
  FormatPtr ctx(raw);
  if (int rc = avformat_find_stream_info(ctx.get(), nullptr); rc < 0) {
    return fail(ErrorCode::kInvalidArgument, "not a readable media file (" + av_error_text(rc) + ")", "invalid_media");
  }
  if (ctx->nb_streams == 0) return fail(ErrorCode::kInvalidArgument, "the file has no media streams", "invalid_media");
  return ctx;
}

StreamInfo describe(const AVFormatContext& ctx, const AVStream& st) {
  StreamInfo info;
  info.index = st.index;
  switch (st.codecpar->codec_type) {
    case AVMEDIA_TYPE_VIDEO: info.kind = "video"; break;
    case AVMEDIA_TYPE_AUDIO: info.kind = "audio"; break;
    case AVMEDIA_TYPE_SUBTITLE: info.kind = "subtitle"; break;
    default: info.kind = "other"; break;
  }
  info.codec = avcodec_get_name(st.codecpar->codec_id);
  if (st.codecpar->codec_type == AVMEDIA_TYPE_SUBTITLE) {
    const auto kind = subtitle_codec_kind(info.codec);
    info.text_subtitle = kind == SubtitleCodecKind::kText;
    info.bitmap_subtitle = kind == SubtitleCodecKind::kBitmap;
  }
  if (const AVDictionaryEntry* lang = av_dict_get(st.metadata, "language", nullptr, 0)) info.language = lang->value;
  if (st.duration != AV_NOPTS_VALUE && st.duration > 0) {
    info.duration_seconds = static_cast<double>(st.duration) * av_q2d(st.time_base);
  } else if (ctx.duration != AV_NOPTS_VALUE && ctx.duration > 0) {
    info.duration_seconds = static_cast<double>(ctx.duration) / AV_TIME_BASE;
  }
  return info;
}

// Skips the first `n` comma-separated fields of an ASS event line.
std::string_view after_fields(std::string_view line, int n) {
  for (int i = 0; i < n; ++i) {
    const auto comma = line.find(',');
    if (comma == std::string_view::npos) return {};
    line.remove_prefix(comma + 1);
  }
  return line;
}

std::string_view field_at(std::string_view line, int index) {
  line = after_fields(line, index);
  return line.substr(0, line.find(','));
}

std::int64_t to_ms(std::int64_t ts, AVRational time_base) { return av_rescale_q(ts, time_base, AVRational{1, 1000}); }

Result<std::unique_ptr<AVCodecContext, CodecFreer>> open_decoder(const AVStream& st) {
  const AVCodec* codec = avcodec_find_decoder(st.codecpar->codec_id);
  if (!codec) {
    return fail(ErrorCode::kUnprocessable,
                std::string("no decoder for codec ") + avcodec_get_name(st.codecpar->codec_id), "unsupported_codec");
  }
  CodecPtr dec(avcodec_alloc_context3(codec));
  if (!dec) return fail(ErrorCode::kInternal, "out of memory");
  if (int rc = avcodec_parameters_to_context(dec.get(), st.codecpar); rc < 0) {
    return fail(ErrorCode::kInvalidArgument, "unusable stream parameters (" + av_error_text(rc) + ")", "invalid_media");
  }
  dec->pkt_timebase = st.time_base;
  if (int rc = avcodec_open2(dec.get(), codec, nullptr); rc < 0) {
    return fail(ErrorCode::kUnprocessable, "cannot open the decoder (" + av_error_text(rc) + ")", "unsupported_codec");
  }
  return dec;
}

// Picks the subtitle stream to decode, refusing bitmap streams.
Result<int> choose_subtitle_stream(const AVFormatContext& ctx, std::optional<int> stream_index) {
  if (stream_index) {
    if (*stream_index < 0 || *stream_index >= static_cast<int>(ctx.nb_streams)) {
      return fail(ErrorCode::kInvalidArgument,
                  "stream_index " + std::to_string(*stream_index) + " does not exist (the file has " +
                      std::to_string(ctx.nb_streams) + " streams)",
                  "bad_stream_index");
    }
    const auto info = describe(ctx, *ctx.streams[*stream_index]);
    if (info.bitmap_subtitle) {
      return fail(ErrorCode::kUnprocessable,
                  "stream " + std::to_string(*stream_index) + " holds bitmap subtitles (" + info.codec +
                      "); OCR is not supported, use a text subtitle stream or speech recognition",
                  "bitmap_subtitles");
    }
    if (!info.text_subtitle) {
      return fail(ErrorCode::kInvalidArgument,
                  "stream " + std::to_string(*stream_index) + " is not a text subtitle stream (" + info.kind + ", " +
                      info.codec + ")",
                  "bad_stream_index");
    }
    return *stream_index;
  }
  std::string bitmap_codec;
  for (unsigned i = 0; i < ctx.nb_streams; ++i) {
    const auto info = describe(ctx, *ctx.streams[i]);
    if (info.text_subtitle) return static_cast<int>(i);
    if (info.bitmap_subtitle && bitmap_codec.empty()) bitmap_codec = info.codec;
  }
  if (!bitmap_codec.empty()) {
    return fail(ErrorCode::kUnprocessable,
                "the file has only bitmap subtitles (" + bitmap_codec +
                    "); OCR is not supported, use a text subtitle stream or speech recognition",
                "bitmap_subtitles");
  }
  return fail(ErrorCode::kNotFound, "the file has no subtitle stream", "no_subtitle_stream");
}

void append_le(std::string& out, std::uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

constexpr int kAsrSampleRate = 16000;

std::string wav_header(std::uint32_t data_bytes) {
  std::string h;
  h.reserve(44);
  h += "RIFF";
  append_le(h, 36 + data_bytes, 4);
  h += "WAVEfmt ";
  append_le(h, 16, 4);                  // fmt chunk size
  append_le(h, 1, 2);                   // PCM
  append_le(h, 1, 2);                   // mono
  append_le(h, kAsrSampleRate, 4);      // sample rate
  append_le(h, kAsrSampleRate * 2, 4);  // byte rate
  append_le(h, 2, 2);                   // block align
  append_le(h, 16, 2);                  // bits per sample
  h += "data";
  append_le(h, data_bytes, 4);
  return h;
}

}  // namespace

SubtitleCodecKind subtitle_codec_kind(std::string_view codec_name) {
  const std::string name(codec_name);
  const AVCodecDescriptor* d = avcodec_descriptor_get_by_name(name.c_str());
  if (!d || d->type != AVMEDIA_TYPE_SUBTITLE) return SubtitleCodecKind::kNone;
  if (d->props & AV_CODEC_PROP_BITMAP_SUB) return SubtitleCodecKind::kBitmap;
  if (d->props & AV_CODEC_PROP_TEXT_SUB) return SubtitleCodecKind::kText;
  return SubtitleCodecKind::kNone;
}

std::string ass_dialogue_text(std::string_view dialogue) {
  // ReadOrder,Layer,Style,Name,MarginL,MarginR,MarginV,Effect,Text: the text
  // is everything after the eighth comma (it may contain commas itself).
  const std::string_view text = after_fields(dialogue, 8);
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '{') {
      const auto close = text.find('}', i);
      if (close != std::string_view::npos) {  // an override block: {\i1}, {\pos(1,2)}
        i = close;
        continue;
      }
    }
    if (c == '\\' && i + 1 < text.size()) {
      const char n = text[i + 1];
      if (n == 'N' || n == 'n') {
        out.push_back('\n');
        ++i;
        continue;
      }
      if (n == 'h') {
        out.push_back(' ');
        ++i;
        continue;
      }
    }
    if (c == '\r') continue;
    out.push_back(c);
  }
  // Trailing newlines (mov_text and some muxers end cues with one) carry nothing.
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

Result<std::vector<StreamInfo>> probe(const std::filesystem::path& file) {
  auto ctx = open_media(file);
  if (!ctx) return std::unexpected(ctx.error());
  std::vector<StreamInfo> streams;
  for (unsigned i = 0; i < (*ctx)->nb_streams; ++i) streams.push_back(describe(**ctx, *(*ctx)->streams[i]));
  return streams;
}

Result<std::vector<Cue>> extract_subtitles(const std::filesystem::path& file, std::optional<int> stream_index) {
  auto opened = open_media(file);
  if (!opened) return std::unexpected(opened.error());
  AVFormatContext& ctx = **opened;
  auto chosen = choose_subtitle_stream(ctx, stream_index);
  if (!chosen) return std::unexpected(chosen.error());
  const AVStream& st = *ctx.streams[*chosen];
  auto dec = open_decoder(st);
  if (!dec) return std::unexpected(dec.error());
  // Only the chosen stream's packets are demuxed.
  for (unsigned i = 0; i < ctx.nb_streams; ++i) {
    ctx.streams[i]->discard = static_cast<int>(i) == *chosen ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
  }

  PacketPtr pkt(av_packet_alloc());
  if (!pkt) return fail(ErrorCode::kInternal, "out of memory");
  std::vector<Cue> cues;
  for (;;) {
    const int rc = av_read_frame(&ctx, pkt.get());
    if (rc == AVERROR_EOF) break;
    if (rc < 0) {
      return fail(ErrorCode::kInvalidArgument, "the media file is damaged (" + av_error_text(rc) + ")",
                  "invalid_media");
    }
    if (pkt->stream_index != *chosen) {
      av_packet_unref(pkt.get());
      continue;
    }
    DecodedSubtitle sub;
    int got = 0;
    const int drc = avcodec_decode_subtitle2(dec->get(), sub.get(), &got, pkt.get());
    const std::int64_t pts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
    const std::int64_t duration = pkt->duration;
    av_packet_unref(pkt.get());
    if (drc < 0 || !got || pts == AV_NOPTS_VALUE) continue;  // a damaged or empty packet: skip that cue
    const AVSubtitle& s = *sub.get();
    const std::int64_t base = to_ms(pts, st.time_base);
    Cue cue;
    cue.start_ms = base + s.start_display_time;
    if (duration > 0) {
      cue.end_ms = base + to_ms(duration, st.time_base);
    } else if (s.end_display_time > s.start_display_time && s.end_display_time != UINT32_MAX) {
      cue.end_ms = base + s.end_display_time;
    } else {
      cue.end_ms = cue.start_ms;
    }
    for (unsigned r = 0; r < s.num_rects; ++r) {
      const AVSubtitleRect& rect = *s.rects[r];
      std::string text;
      if (rect.type == SUBTITLE_ASS && rect.ass) {
        const std::string_view line(rect.ass);
        text = ass_dialogue_text(line);
        if (cue.style.empty()) cue.style = std::string(field_at(line, 2));
        if (st.codecpar->codec_id == AV_CODEC_ID_ASS || st.codecpar->codec_id == AV_CODEC_ID_SSA) {
          if (!cue.raw.empty()) cue.raw += "\\N";
          cue.raw += std::string(after_fields(line, 8));
        }
      } else if (rect.type == SUBTITLE_TEXT && rect.text) {
        text = rect.text;
      }
      if (text.empty()) continue;
      if (!cue.text.empty()) cue.text += '\n';
      cue.text += text;
    }
    if (cue.text.empty()) continue;  // "clear screen" packets (mov_text gaps)
    cues.push_back(std::move(cue));
  }
  std::stable_sort(cues.begin(), cues.end(), [](const Cue& a, const Cue& b) { return a.start_ms < b.start_ms; });
  return cues;
}

Result<std::string> audio_as_wav16k(const std::filesystem::path& file, double max_seconds) {
  auto opened = open_media(file);
  if (!opened) return std::unexpected(opened.error());
  AVFormatContext& ctx = **opened;
  const int index = av_find_best_stream(&ctx, AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
  if (index < 0) return fail(ErrorCode::kNotFound, "the file has no audio stream", "no_audio_stream");
  const AVStream& st = *ctx.streams[index];
  auto dec = open_decoder(st);
  if (!dec) return std::unexpected(dec.error());
  AVCodecContext& d = **dec;
  for (unsigned i = 0; i < ctx.nb_streams; ++i) {
    ctx.streams[i]->discard = static_cast<int>(i) == index ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
  }

  AVChannelLayout in_layout;
  if (d.ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || d.ch_layout.nb_channels <= 0) {
    av_channel_layout_default(&in_layout, d.ch_layout.nb_channels > 0 ? d.ch_layout.nb_channels : 1);
  } else if (av_channel_layout_copy(&in_layout, &d.ch_layout) < 0) {
    return fail(ErrorCode::kInternal, "out of memory");
  }
  AVChannelLayout out_layout = AV_CHANNEL_LAYOUT_MONO;
  SwrContext* raw_swr = nullptr;
  const int src = swr_alloc_set_opts2(&raw_swr, &out_layout, AV_SAMPLE_FMT_S16, kAsrSampleRate, &in_layout,
                                      d.sample_fmt, d.sample_rate, 0, nullptr);
  av_channel_layout_uninit(&in_layout);
  SwrPtr swr(raw_swr);
  if (src < 0 || !swr || swr_init(swr.get()) < 0) {
    return fail(ErrorCode::kUnprocessable, "cannot resample this audio stream", "unsupported_codec");
  }

  const double limit_samples = max_seconds * kAsrSampleRate;
  std::string pcm;
  std::vector<std::int16_t> chunk;
  // Converts what `frame` holds (nullptr = flush the resampler) onto pcm.
  auto convert = [&](const AVFrame* frame) -> Result<void> {
    const int in_samples = frame ? frame->nb_samples : 0;
    const int capacity = swr_get_out_samples(swr.get(), in_samples) + 32;
    if (capacity <= 0) return {};
    chunk.resize(static_cast<std::size_t>(capacity));
    auto* out = reinterpret_cast<std::uint8_t*>(chunk.data());
    const int n = swr_convert(swr.get(), &out, capacity,
                              frame ? const_cast<const std::uint8_t**>(frame->extended_data) : nullptr, in_samples);
    if (n < 0)
      return fail(ErrorCode::kUnprocessable, "audio resampling failed (" + av_error_text(n) + ")", "invalid_media");
    pcm.append(reinterpret_cast<const char*>(chunk.data()), static_cast<std::size_t>(n) * 2);
    if (static_cast<double>(pcm.size() / 2) > limit_samples) {
      return fail(
          ErrorCode::kUnprocessable,
          "the audio is longer than the limit of " + std::to_string(static_cast<long long>(max_seconds)) + " seconds",
          "audio_too_long");
    }
    return {};
  };

  PacketPtr pkt(av_packet_alloc());
  FramePtr frame(av_frame_alloc());
  if (!pkt || !frame) return fail(ErrorCode::kInternal, "out of memory");
  // Pulls every frame the decoder has ready.
  auto drain = [&]() -> Result<void> {
    for (;;) {
      const int rc = avcodec_receive_frame(&d, frame.get());
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return {};
      if (rc < 0) return {};  // a damaged frame: skip it, keep the rest
      auto r = convert(frame.get());
      av_frame_unref(frame.get());
      if (!r) return r;
    }
  };
  for (;;) {
    const int rc = av_read_frame(&ctx, pkt.get());
    if (rc == AVERROR_EOF) break;
    if (rc < 0) {
      return fail(ErrorCode::kInvalidArgument, "the media file is damaged (" + av_error_text(rc) + ")",
                  "invalid_media");
    }
    if (pkt->stream_index == index) (void)avcodec_send_packet(&d, pkt.get());
    av_packet_unref(pkt.get());
    LLMD_TRY(drain());
  }
  (void)avcodec_send_packet(&d, nullptr);
  LLMD_TRY(drain());
  LLMD_TRY(convert(nullptr));
  if (pcm.empty()) return fail(ErrorCode::kUnprocessable, "the audio stream decoded to no samples", "invalid_media");
  std::string wav = wav_header(static_cast<std::uint32_t>(pcm.size()));
  wav += pcm;
  return wav;
}

Result<std::filesystem::path> resolve_media_path(const std::string& path, const std::vector<std::string>& roots) {
  const auto refused = [] {
    return fail(ErrorCode::kInvalidArgument,
                "video_path must name an existing file inside one of the server's media folders (uploads.media_roots "
                "in its configuration; a relative path is looked up in each of them); or upload the file with "
                "POST /api/v1/uploads and give its upload_id instead",
                "path_not_allowed");
  };
  if (path.empty() || path.find('\0') != std::string::npos) return refused();
  const fs::path requested(path);
  // A `..` component is refused outright, even when it would stay inside.
  for (const auto& part : requested) {
    if (part == "..") return refused();
  }
  for (const auto& root_text : roots) {
    if (root_text.empty()) continue;
    std::error_code ec;
    const fs::path root = fs::canonical(root_text, ec);
    if (ec) continue;
    // Relative paths are taken relative to the root, absolute ones as they are.
    const fs::path candidate = requested.is_absolute() ? requested : root / requested;
    const fs::path real = fs::canonical(candidate, ec);  // follows every symlink
    if (ec) continue;
    // Component-wise prefix test: "/data/uploads-evil" is not inside "/data/uploads".
    auto [root_end, real_it] = std::mismatch(root.begin(), root.end(), real.begin(), real.end());
    if (root_end != root.end() || real == root) continue;
    if (!fs::is_regular_file(real, ec)) continue;
    return real;
  }
  return refused();
}

}  // namespace llmd::subtitle
