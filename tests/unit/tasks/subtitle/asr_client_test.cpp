// The speech recognition client against the ASR stub (a real HTTP server on
// loopback speaking whisper.cpp's and OpenAI's dialects), with audio made
// by the real ffmpeg command and converted by audio_as_wav16k.
#include "tasks/subtitle/asr_client.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <thread>

#include "http/multipart.h"
#include "support/asr_stub.h"
#include "support/http.h"
#include "support/test_media.h"
#include "support/test_support.h"
#include "tasks/subtitle/media.h"

namespace llmd::subtitle {
namespace {

namespace net = boost::asio;
using testing::AsrStub;
using testing::AsrStubOptions;

// A five-second sine as 16 kHz mono WAV, made once for the whole suite.
const std::string& five_second_wav() {
  static const std::string wav = [] {
    testing::TempDir dir;
    auto w = audio_as_wav16k(testing::make_test_media(dir.path(), testing::TestMedia::kAudioOnly));
    return w ? *w : std::string();
  }();
  return wav;
}

class AsrClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    thread_ = std::thread([this] { io_.run(); });
    ASSERT_FALSE(five_second_wav().empty());
  }
  void TearDown() override {
    client_.reset();
    work_.reset();
    io_.stop();
    thread_.join();
  }

  Result<std::vector<Cue>> transcribe(config::AsrConfig config, const std::string& wav,
                                      AsrRequestOptions options = {}) {
    AsrClient asr(*client_, std::move(config));
    return net::co_spawn(
               io_,
               [&]() -> net::awaitable<Result<std::vector<Cue>>> { co_return co_await asr.transcribe(wav, options); },
               net::use_future)
        .get();
  }

  static void expect_three_segments(const std::vector<Cue>& cues) {
    ASSERT_EQ(cues.size(), 3u);
    EXPECT_EQ(cues[0].start_ms, 0);
    EXPECT_EQ(cues[0].end_ms, 2000);
    EXPECT_EQ(cues[0].text, "segment 1");
    EXPECT_EQ(cues[1].start_ms, 2000);
    EXPECT_EQ(cues[1].end_ms, 4000);
    EXPECT_EQ(cues[1].text, "segment 2");
    EXPECT_EQ(cues[2].start_ms, 4000);
    EXPECT_NEAR(static_cast<double>(cues[2].end_ms), 5000, 30);  // the audio's own length
    EXPECT_EQ(cues[2].text, "segment 3");
  }

  net::io_context io_;
  net::executor_work_guard<net::io_context::executor_type> work_{io_.get_executor()};
  std::unique_ptr<http::HttpClient> client_ = std::make_unique<http::HttpClient>(io_.get_executor());
  std::thread thread_;
};

TEST_F(AsrClientTest, WhisperCppInferenceGivesTimedCues) {
  AsrStub stub;
  auto cues = transcribe(config::AsrConfig{stub.url("/inference"), ""}, five_second_wav());
  ASSERT_TRUE(cues) << cues.error().message;
  expect_three_segments(*cues);
  const auto seen = stub.last_request();
  EXPECT_EQ(seen.path, "/inference");
  EXPECT_EQ(seen.fields.at("response_format"), "verbose_json");
  EXPECT_FALSE(seen.fields.contains("model"));
  EXPECT_EQ(seen.file_name, "audio.wav");
  EXPECT_EQ(seen.wav_bytes, five_second_wav().size());
}

TEST_F(AsrClientTest, OpenAiTranscriptionsWithApiKeyGivesTimedCues) {
  AsrStub stub(AsrStubOptions{"sk-test-key", 0, {}});
  AsrRequestOptions options;
  options.language = "en";
  auto cues =
      transcribe(config::AsrConfig{stub.url("/v1/audio/transcriptions"), "sk-test-key"}, five_second_wav(), options);
  ASSERT_TRUE(cues) << cues.error().message;
  expect_three_segments(*cues);
  const auto seen = stub.last_request();
  EXPECT_EQ(seen.fields.at("model"), "whisper-1");
  EXPECT_EQ(seen.fields.at("response_format"), "verbose_json");
  EXPECT_EQ(seen.fields.at("timestamp_granularities[]"), "segment");
  EXPECT_EQ(seen.fields.at("language"), "en");
}

TEST_F(AsrClientTest, WrongApiKeyIsAnUnavailableService) {
  AsrStub stub(AsrStubOptions{"right-key", 0, {}});
  auto cues = transcribe(config::AsrConfig{stub.url("/v1/audio/transcriptions"), "wrong-key"}, five_second_wav());
  ASSERT_FALSE(cues);
  EXPECT_EQ(cues.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(cues.error().reason, "asr_unavailable");
  EXPECT_NE(cues.error().message.find("api_key"), std::string::npos);
}

TEST_F(AsrClientTest, MissingUrlIsAClearUnprocessableError) {
  auto cues = transcribe(config::AsrConfig{"", ""}, five_second_wav());
  ASSERT_FALSE(cues);
  EXPECT_EQ(cues.error().code, ErrorCode::kUnprocessable);
  EXPECT_EQ(cues.error().reason, "asr_not_configured");
  EXPECT_EQ(cues.error().message, "speech recognition is not configured (asr.url)");
}

TEST_F(AsrClientTest, ServerErrorIsMappedToUnavailable) {
  AsrStub stub(AsrStubOptions{"", 500, {}});
  auto cues = transcribe(config::AsrConfig{stub.url("/inference"), ""}, five_second_wav());
  ASSERT_FALSE(cues);
  EXPECT_EQ(cues.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(cues.error().reason, "asr_unavailable");
  EXPECT_NE(cues.error().message.find("HTTP 500"), std::string::npos) << cues.error().message;
  EXPECT_TRUE(cues.error().retry_after_s.has_value());
  EXPECT_EQ(stub.requests(), 1);
}

TEST_F(AsrClientTest, AudioTheServiceRefusesIsUnprocessable) {
  AsrStub stub;
  std::string not_16k = five_second_wav();
  not_16k[24] = 0x44;  // sample rate 16000 -> 44100 (0xAC44): no longer what the service takes
  not_16k[25] = static_cast<char>(0xAC);
  auto cues = transcribe(config::AsrConfig{stub.url("/inference"), ""}, not_16k);
  ASSERT_FALSE(cues);
  EXPECT_EQ(cues.error().code, ErrorCode::kUnprocessable);
  EXPECT_EQ(cues.error().reason, "asr_rejected");
  EXPECT_NE(cues.error().message.find("16000"), std::string::npos) << cues.error().message;
}

TEST_F(AsrClientTest, SlowServiceTimesOut) {
  AsrStub stub(AsrStubOptions{"", 0, std::chrono::milliseconds(3000)});
  AsrRequestOptions options;
  options.timeout = std::chrono::milliseconds(300);
  auto cues = transcribe(config::AsrConfig{stub.url("/inference"), ""}, five_second_wav(), options);
  ASSERT_FALSE(cues);
  EXPECT_EQ(cues.error().code, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(cues.error().reason, "asr_timeout");
}

TEST_F(AsrClientTest, UnreachableServiceIsUnavailable) {
  const int port = testing::free_port();
  auto cues =
      transcribe(config::AsrConfig{"http://127.0.0.1:" + std::to_string(port) + "/inference", ""}, five_second_wav());
  ASSERT_FALSE(cues);
  EXPECT_EQ(cues.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(cues.error().reason, "asr_unavailable");
}

TEST(AsrDialect, ChosenByTheUrlPath) {
  EXPECT_EQ(asr_dialect("http://127.0.0.1:8080/inference").value(), AsrDialect::kWhisperCpp);
  EXPECT_EQ(asr_dialect("http://h/whisper/inference/").value(), AsrDialect::kWhisperCpp);
  EXPECT_EQ(asr_dialect("http://h:9000/v1/audio/transcriptions").value(), AsrDialect::kOpenAi);
  auto other = asr_dialect("http://h/v1/chat/completions");
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().reason, "bad_config");
  auto empty = asr_dialect("");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().reason, "asr_not_configured");
}

TEST(AsrParse, SegmentsBecomeCuesAndBadRepliesAreErrors) {
  auto cues = parse_transcription(
      R"({"text":"a b","segments":[{"start":0.0,"end":1.5,"text":" a "},{"start":1.5,"end":1.5,"text":"  "},)"
      R"({"start":1.5,"end":2.0005,"text":"b"}]})");
  ASSERT_TRUE(cues);
  ASSERT_EQ(cues->size(), 2u);  // the blank segment is dropped
  EXPECT_EQ((*cues)[0].text, "a");
  EXPECT_EQ((*cues)[0].end_ms, 1500);
  EXPECT_EQ((*cues)[1].start_ms, 1500);
  EXPECT_EQ((*cues)[1].end_ms, 2001);
  auto whole = parse_transcription(R"({"text":" hello ","duration":3.25})");
  ASSERT_TRUE(whole);
  ASSERT_EQ(whole->size(), 1u);
  EXPECT_EQ((*whole)[0].end_ms, 3250);
  for (const char* bad : {"not json", "[]", R"({"segments":{}})", R"({"segments":[{"start":2,"end":1,"text":"x"}]})",
                          R"({"segments":[{"start":"0","end":1,"text":"x"}]})", R"({"nothing":1})"}) {
    auto r = parse_transcription(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().reason, "asr_bad_response") << bad;
  }
}

// The stub itself must refuse what a real service refuses, or the client
// tests above would prove nothing.
TEST(AsrStubService, RefusesMalformedRequests) {
  AsrStub stub(AsrStubOptions{"key", 0, {}});
  auto post = [&](const std::string& path, const std::string& body, const std::string& type,
                  const std::string& key = "key") {
    std::map<std::string, std::string> h{{"Content-Type", type}};
    if (!key.empty()) h["Authorization"] = "Bearer " + key;
    return testing::http_request(stub.port(), "POST", path, body, h);
  };
  auto form_with = [](const std::string& wav, bool with_model) {
    http::MultipartBuilder f;
    f.add_file("file", "a.wav", "audio/wav", wav);
    f.add_field("response_format", "verbose_json");
    if (with_model) f.add_field("model", "whisper-1");
    return std::make_pair(f.content_type(), f.finish());
  };
  const auto good = form_with(five_second_wav(), true);
  auto ok = post("/v1/audio/transcriptions", good.second, good.first);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(post("/v1/audio/transcriptions", good.second, good.first, "")->status, 401);
  EXPECT_EQ(post("/v1/audio/transcriptions", good.second, "application/json")->status, 400);
  EXPECT_EQ(post("/inference", "--x\r\nbroken", "multipart/form-data; boundary=x")->status, 400);
  const auto no_model = form_with(five_second_wav(), false);
  EXPECT_EQ(post("/v1/audio/transcriptions", no_model.second, no_model.first)->status, 400);
  const auto not_wav = form_with("RIFF....WAVEjunk", true);
  EXPECT_EQ(post("/inference", not_wav.second, not_wav.first)->status, 400);
  std::string stereo = five_second_wav();
  stereo[22] = 2;  // channels
  const auto two_channels = form_with(stereo, true);
  http::MultipartBuilder srt_form;
  srt_form.add_file("file", "a.wav", "audio/wav", five_second_wav());
  srt_form.add_field("response_format", "srt");
  const auto srt_type = srt_form.content_type();
  auto srt = post("/inference", srt_form.finish(), srt_type);
  ASSERT_TRUE(srt);
  EXPECT_EQ(srt->status, 200);
  EXPECT_EQ(srt->body.substr(0, 45), "1\n00:00:00,000 --> 00:00:02,000\nsegment 1\n\n2\n");
  auto r = post("/inference", two_channels.second, two_channels.first);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("mono"), std::string::npos) << r->body;
}

}  // namespace
}  // namespace llmd::subtitle
