#include "tasks/jobs/job_store.h"

#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "auth/users.h"
#include "support/backends.h"
#include "support/test_support.h"
#include "tasks/subtitle/translate.h"

namespace llmd::jobs {
namespace {

using nlohmann::json;

// Every test runs on SQLite and on a private MariaDB server.
class JobStoreTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    auto db = store::Database::open(testing::fresh_database_url(GetParam(), dir_), 4);
    ASSERT_TRUE(db) << db.error().message;
    db_ = std::move(*db);
    ASSERT_TRUE(db_->migrate());
    users_ = std::make_unique<auth::UserStore>(*db_);
    alice_ = users_->create("alice", "a@b.cn", "$2b$10$x", "user", 100).value().id;
    bob_ = users_->create("bob", "b@b.cn", "$2b$10$x", "user", 100).value().id;
    store_ = std::make_unique<JobStore>(*db_);
  }

  Job make(std::int64_t user, std::int64_t total = 10) {
    auto j =
        store_->create(user, "subtitle", json{{"spec", {{"target_lang", "zh"}}}}, json{{"instance", "i1"}}, total, 7);
    EXPECT_TRUE(j) << j.error().message;
    return *j;
  }

  testing::TempDir dir_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<auth::UserStore> users_;
  std::unique_ptr<JobStore> store_;
  std::int64_t alice_ = 0, bob_ = 0;
};

TEST_P(JobStoreTest, CreatedJobIsQueuedWithARandomIdAndItsInput) {
  const Job a = make(alice_);
  const Job b = make(alice_);
  EXPECT_EQ(a.id.size(), 32u);
  EXPECT_NE(a.id, b.id);
  auto got = store_->get(a.id, alice_);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->status, Status::kQueued);
  EXPECT_EQ(got->progress_total, 10);
  EXPECT_EQ(got->reservation_id, 7);
  EXPECT_EQ(got->input["spec"]["target_lang"], "zh");
  EXPECT_EQ(got->state["instance"], "i1");
}

TEST_P(JobStoreTest, AnotherUsersJobIsNotFound) {
  const Job a = make(alice_);
  auto got = store_->get(a.id, bob_);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ErrorCode::kNotFound);
  auto cancel = store_->request_cancel(a.id, bob_);
  ASSERT_FALSE(cancel);
  EXPECT_EQ(cancel.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->get(a.id, alice_)->status, Status::kQueued);  // untouched
}

TEST_P(JobStoreTest, ListIsOwnJobsNewestFirst) {
  const Job a = make(alice_);
  const Job b = make(alice_);
  make(bob_);
  // Same second: the newer one is the later insert; make it unambiguous.
  ASSERT_TRUE(db_->with_connection<void>([&](store::Connection& c) -> Result<void> {
    LLMD_TRY(c.exec("UPDATE jobs SET created_at = created_at - 10 WHERE id = ?", std::vector<store::Value>{a.id}));
    return {};
  }));
  auto list = store_->list(alice_);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id, b.id);
  EXPECT_EQ((*list)[1].id, a.id);
}

TEST_P(JobStoreTest, ClaimHappensOnceAndProgressOnlyWhileRunning) {
  const Job a = make(alice_);
  EXPECT_FALSE(*store_->save_progress(a.id, 1, 10, json::object()));  // not running yet
  EXPECT_TRUE(*store_->claim(a.id, json{{"instance", "i1"}}));
  EXPECT_FALSE(*store_->claim(a.id, json{{"instance", "i2"}}));  // a second runner loses
  EXPECT_TRUE(*store_->save_progress(a.id, 4, 10, json{{"batch", 1}}));
  auto got = store_->get(a.id, alice_);
  EXPECT_EQ(got->status, Status::kRunning);
  EXPECT_EQ(got->progress_done, 4);
  EXPECT_EQ(got->state["batch"], 1);
  EXPECT_TRUE(*store_->finish(a.id, "/r/x.srt", 55, json{{"batch", 2}}));
  got = store_->get(a.id, alice_);
  EXPECT_EQ(got->status, Status::kDone);
  EXPECT_EQ(got->progress_done, 10);
  EXPECT_EQ(got->tokens_charged, 55);
  EXPECT_EQ(got->result_path, "/r/x.srt");
  EXPECT_FALSE(*store_->save_progress(a.id, 5, 10, json::object()));  // finished: nothing moves
}

TEST_P(JobStoreTest, CancelQueuedEndsAtOnceCancelRunningGoesThroughCancelling) {
  const Job queued = make(alice_);
  EXPECT_EQ(*store_->request_cancel(queued.id, alice_), Status::kQueued);
  EXPECT_EQ(store_->get(queued.id, alice_)->status, Status::kCancelled);
  EXPECT_FALSE(*store_->claim(queued.id, json::object()));  // a runner picking it up later does nothing

  const Job running = make(alice_);
  ASSERT_TRUE(*store_->claim(running.id, json::object()));
  EXPECT_EQ(*store_->request_cancel(running.id, alice_), Status::kRunning);
  EXPECT_EQ(store_->get(running.id, alice_)->status, Status::kCancelling);
  // The runner notices at its next save and settles.
  EXPECT_FALSE(*store_->save_progress(running.id, 3, 10, json::object()));
  EXPECT_FALSE(*store_->finish(running.id, "/r/y.srt", 1, json::object()));
  EXPECT_TRUE(*store_->mark_cancelled(running.id, 12));
  auto got = store_->get(running.id, alice_);
  EXPECT_EQ(got->status, Status::kCancelled);
  EXPECT_EQ(got->tokens_charged, 12);
  // Cancelling a finished job changes nothing.
  EXPECT_EQ(*store_->request_cancel(running.id, alice_), Status::kCancelled);
}

TEST_P(JobStoreTest, UnfinishedListsQueuedRunningAndCancellingForResume) {
  const Job q = make(alice_);
  const Job r = make(alice_);
  const Job c = make(bob_);
  const Job d = make(bob_);
  ASSERT_TRUE(*store_->claim(r.id, json::object()));
  ASSERT_TRUE(*store_->claim(c.id, json::object()));
  ASSERT_TRUE(store_->request_cancel(c.id, bob_));
  ASSERT_TRUE(*store_->mark_failed(d.id, "broken", 0));
  auto list = store_->unfinished("subtitle");
  ASSERT_TRUE(list);
  std::set<std::string> ids;
  for (const auto& j : *list) ids.insert(j.id);
  EXPECT_EQ(ids, (std::set<std::string>{q.id, r.id, c.id}));
  EXPECT_TRUE(store_->unfinished("other")->empty());
}

TEST_P(JobStoreTest, TakeOverNeedsTheUpdateTimeSeen) {
  const Job a = make(alice_);
  ASSERT_TRUE(*store_->claim(a.id, json::object()));
  const auto seen = store_->get(a.id, alice_)->updated_at;
  EXPECT_FALSE(*store_->take_over(a.id, seen - 1, json{{"instance", "i2"}}));
  EXPECT_TRUE(*store_->take_over(a.id, seen, json{{"instance", "i2"}}));
  EXPECT_EQ(store_->get(a.id, alice_)->state["instance"], "i2");
}

INSTANTIATE_TEST_SUITE_P(Backends, JobStoreTest, ::testing::ValuesIn(testing::all_backends()), testing::backend_name);

// The runner can never receive a reply with a different number of lines:
// the schema of every batch request pins the array length to the batch.
TEST(SubtitleBatchRequest, SchemaPinsTheLineCountToTheBatchSize) {
  for (std::size_t n : {1u, 7u, 30u}) {
    std::vector<subtitle::Cue> cues;
    for (std::size_t i = 0; i < n; ++i) {
      subtitle::Cue cue;
      cue.start_ms = static_cast<std::int64_t>(i) * 1000;
      cue.end_ms = cue.start_ms + 900;
      cue.text = "line " + std::to_string(i);
      cues.push_back(std::move(cue));
    }
    const json req = subtitle::batch_request(cues, subtitle::Context{}, subtitle::TranslateOptions{});
    ASSERT_TRUE(req.contains("response_format")) << req.dump();
    const json& rf = req["response_format"];
    EXPECT_EQ(rf["type"], "json_schema");
    // Wherever the lines array sits in the schema, its bounds are n and n.
    std::vector<const json*> arrays;
    std::function<void(const json&)> walk = [&](const json& j) {
      if (j.is_object()) {
        if (j.value("type", json()) == "array") arrays.push_back(&j);
        for (const auto& [k, v] : j.items()) walk(v);
      } else if (j.is_array()) {
        for (const auto& v : j) walk(v);
      }
    };
    walk(rf);
    ASSERT_FALSE(arrays.empty()) << rf.dump();
    bool found = false;
    for (const json* a : arrays) {
      if (a->contains("minItems") && a->contains("maxItems")) {
        EXPECT_EQ((*a)["minItems"], n);
        EXPECT_EQ((*a)["maxItems"], n);
        found = true;
      }
    }
    EXPECT_TRUE(found) << rf.dump();
  }
}

}  // namespace
}  // namespace llmd::jobs
