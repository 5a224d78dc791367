// The subtitle job runner through a fake model client, on a real SQLite
// store: a whole job and its charge, a cancel at a batch boundary, a failing
// batch split and retried, a resume after a restart, and the reservation
// released on every one of those exits. Milliseconds each, no model process.
#include "tasks/subtitle/subtitle_jobs.h"

#include <atomic>
#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "unit/tasks/billing_fixture.h"
#include "unit/tasks/fake_model_client.h"

namespace llmd::subtitle {
namespace {

namespace net = boost::asio;
using nlohmann::json;
using testing::FakeModelClient;
using testing::run_to_end;

constexpr int kCues = 25;
constexpr int kPerBatch = 5;

Document numbered_cues() {
  Document doc;
  for (int i = 0; i < kCues; ++i) {
    Cue c;
    c.start_ms = i * 2000;
    c.end_ms = i * 2000 + 1500;
    c.text = "source line number " + std::to_string(i);
    doc.cues.push_back(c);
  }
  return doc;
}

// How many lines a batch request asks for (its schema says exactly).
std::size_t lines_asked(const inference::ChatRequest& r) {
  return r.response_format["json_schema"]["schema"]["properties"]["lines"]["minItems"].get<std::size_t>();
}

// A model that translates every line it is given ("T-" and its place in the batch).
inference::CallResult<inference::ChatReply> translating(const inference::ChatRequest& r) {
  json lines = json::array();
  for (std::size_t i = 0; i < lines_asked(r); ++i) lines.push_back("T-" + std::to_string(i));
  const json content{{"lines", lines}, {"summary", "a test"}, {"glossary", json::array()}};
  return FakeModelClient::reply(content.dump(), 100, 20);
}

class SubtitleJobsTest : public testing::BillingFixture {
 protected:
  void SetUp() override {
    BillingFixture::SetUp();
    store_ = std::make_unique<jobs::JobStore>(*db_);
    work_.emplace(net::make_work_guard(io_));
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    jobs_.reset();
    work_.reset();
    io_.stop();
    thread_.join();
  }

  // A runner (as serve's backend builds it) on this test's store and balance.
  std::unique_ptr<SubtitleJobs> make_jobs() {
    config::SubtitleTaskConfig config;
    config.batch_min = kPerBatch;
    config.batch_max = kPerBatch;
    SubtitleJobsDeps deps{*store_,
                          *accounts_,
                          pricing_,
                          pool_,
                          model_,
                          observe::Logger::null(),
                          "test-model",
                          config,
                          (dir_ / "results").string(),
                          "test-instance",
                          [this] { return net::any_io_executor(io_.get_executor()); }};
    auto jobs = std::make_unique<SubtitleJobs>(std::move(deps));
    jobs->start();
    return jobs;
  }

  std::string submit() {
    SubtitleJobSpec spec;
    spec.target_lang = "zh";
    spec.source = "content";
    auto job = run_to_end(jobs_->submit(user_, numbered_cues(), spec, "req-1"));
    EXPECT_TRUE(job) << job.error().message;
    return job ? job->id : "";
  }

  // The job once it ended (or as it was after 20 s).
  jobs::Job ended(const std::string& id) {
    for (int i = 0; i < 2000; ++i) {
      auto job = store_->get(id, user_);
      if (job && jobs::is_terminal(job->status)) return *job;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return store_->get(id, user_).value();
  }

  std::string result_text(const jobs::Job& job) {
    std::ifstream in(job.result_path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::size_t requests() {
    std::lock_guard lock(model_.mutex);
    return model_.requests.size();
  }

  // The spec's price of a base: ceil(base x 3.0) + 50.
  static std::int64_t price(std::int64_t base) {
    return static_cast<std::int64_t>(std::ceil(static_cast<double>(base) * 3.0)) + 50;
  }
  // What the fake tokenizer counted for the cues (one token per byte).
  std::int64_t counted_tokens() {
    std::int64_t n = 0;
    for (const auto& text : model_.counted) n += static_cast<std::int64_t>(text.size());
    return n;
  }

  std::unique_ptr<jobs::JobStore> store_;
  FakeModelClient model_;
  std::unique_ptr<SubtitleJobs> jobs_;
  // Declared last, destroyed first: coroutine frames it still holds go
  // while the store and the model they refer to exist.
  net::io_context io_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::thread thread_;
};

TEST_F(SubtitleJobsTest, AJobTranslatesEveryBatchAndPaysTheSpecPriceOfWhatItUsed) {
  model_.respond = translating;
  jobs_ = make_jobs();
  const std::int64_t before = available();
  const std::string id = submit();
  const jobs::Job job = ended(id);
  ASSERT_EQ(job.status, jobs::Status::kDone) << job.error;
  EXPECT_EQ(requests(), static_cast<std::size_t>(kCues / kPerBatch));
  EXPECT_EQ(job.progress_done, kCues);
  const std::string srt = result_text(job);
  EXPECT_EQ(srt.find("source line"), std::string::npos) << srt;
  EXPECT_NE(srt.find("\nT-4\n"), std::string::npos) << srt;
  // Billed: the cue texts as counted plus every call's completion tokens.
  const std::int64_t base = counted_tokens() + 20 * (kCues / kPerBatch);
  EXPECT_EQ(job.tokens_charged, price(base));
  EXPECT_EQ(before - available(), job.tokens_charged);
  EXPECT_EQ(reserved(), 0);
  const auto rows = usage();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].record.request_id, id);
  EXPECT_EQ(rows[0].record.charged, job.tokens_charged);
}

TEST_F(SubtitleJobsTest, ACancelDuringABatchEndsTheJobThereAndPaysOnlyForTheCallsMade) {
  std::string id;
  model_.respond = [&](const inference::ChatRequest& r) {
    if (requests() == 2) {
      auto cancelled = run_to_end(jobs_->cancel(id, user_));
      EXPECT_TRUE(cancelled) << cancelled.error().message;
    }
    return translating(r);
  };
  jobs_ = make_jobs();
  const std::int64_t before = available();
  id = submit();
  const jobs::Job job = ended(id);
  ASSERT_EQ(job.status, jobs::Status::kCancelled) << job.error;
  EXPECT_EQ(requests(), 2u) << "no batch starts after the cancel";
  EXPECT_EQ(job.progress_done, kPerBatch) << "the cancelled batch's lines are not kept";
  EXPECT_GT(job.tokens_charged, 0);
  EXPECT_EQ(before - available(), job.tokens_charged);
  EXPECT_EQ(reserved(), 0) << "the rest of the reservation is released";
}

TEST_F(SubtitleJobsTest, ABatchTheModelKeepsFailingIsSplitAndRetriedUntilItsLinesGoThrough) {
  model_.respond = [](const inference::ChatRequest& r) -> inference::CallResult<inference::ChatReply> {
    if (lines_asked(r) > 2) {
      inference::CallFailure failure{
          Error(ErrorCode::kUnavailable, "the worker failed"), inference::Refusal::kWorkerFailed, "fake-1", {}};
      return std::unexpected(failure);
    }
    return translating(r);
  };
  jobs_ = make_jobs();
  const std::string id = submit();
  const jobs::Job job = ended(id);
  ASSERT_EQ(job.status, jobs::Status::kDone) << job.error;
  const std::string srt = result_text(job);
  EXPECT_EQ(srt.find("source line"), std::string::npos) << "every line got through in a smaller batch:\n" << srt;
  // Each 5-line batch: one failed call, then 2 + 3 lines, the 3 failing
  // and split into 1 + 2.
  EXPECT_EQ(requests(), static_cast<std::size_t>(kCues / kPerBatch * 5));
  EXPECT_EQ(reserved(), 0);
}

TEST_F(SubtitleJobsTest, AJobCutByARestartResumesFromItsLastFinishedBatchAndIsChargedOnce) {
  std::atomic<bool> stopped{false};
  model_.respond = [&](const inference::ChatRequest& r) {
    if (requests() == 3 && !stopped.exchange(true)) jobs_->stop();  // the server goes down in batch 3
    return translating(r);
  };
  jobs_ = make_jobs();
  const std::int64_t before = available();
  const std::string id = submit();
  for (int i = 0; i < 2000 && store_->get(id, user_)->progress_done < 2 * kPerBatch; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // The stopped runner leaves the job running in the database.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto cut = store_->get(id, user_).value();
  ASSERT_EQ(cut.status, jobs::Status::kRunning);
  EXPECT_EQ(cut.progress_done, 2 * kPerBatch) << "batch 3's result was discarded";
  jobs_.reset();

  // The next start: this instance's reservations are released, then the
  // job resumes with batch 3.
  ASSERT_TRUE(accounts_->release_abandoned());
  EXPECT_EQ(reserved(), 0);
  const std::size_t calls_before = requests();
  jobs_ = make_jobs();
  const jobs::Job job = ended(id);
  ASSERT_EQ(job.status, jobs::Status::kDone) << job.error;
  EXPECT_EQ(requests() - calls_before, 3u) << "batches 3, 4 and 5 only";
  EXPECT_EQ(job.progress_done, kCues);
  const std::string srt = result_text(job);
  EXPECT_EQ(srt.find("source line"), std::string::npos) << srt;
  EXPECT_EQ(before - available(), job.tokens_charged) << "charged once, for the whole job";
  EXPECT_EQ(reserved(), 0);
  EXPECT_EQ(usage().size(), 1u);
}

}  // namespace
}  // namespace llmd::subtitle
