// UploadStore on a real SQLite database in a temporary directory.
#include "tasks/uploads/upload_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "http/multipart.h"
#include "support/test_support.h"

namespace llmd::uploads {
namespace {

namespace fs = std::filesystem;

TEST(UploadNames, AreSanitisedToOneSafeComponent) {
  EXPECT_EQ(sanitize_file_name("movie.mkv"), "movie.mkv");
  EXPECT_EQ(sanitize_file_name("../../etc/passwd"), "passwd");
  EXPECT_EQ(sanitize_file_name("C:\\Users\\me\\clip.mp4"), "clip.mp4");
  EXPECT_EQ(sanitize_file_name("a\x01\nb\x7f.srt"), "ab.srt");
  EXPECT_EQ(sanitize_file_name("bad\xff\xfe utf8.srt"), "bad utf8.srt");
  EXPECT_EQ(sanitize_file_name(".."), "");
  EXPECT_EQ(sanitize_file_name("  spaced  "), "spaced");
  EXPECT_EQ(sanitize_file_name("字幕.ass"), "字幕.ass");
  std::string long_cjk;
  for (int i = 0; i < 200; ++i) long_cjk += "字";  // 3 bytes each
  const auto cut = sanitize_file_name(long_cjk);
  EXPECT_LE(cut.size(), 255u);
  EXPECT_EQ(cut.size() % 3, 0u) << "cut inside a character";
}

class UploadStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = store::Database::open("sqlite:" + (dir_ / "t.db").string(), 2);
    ASSERT_TRUE(db) << db.error().message;
    db_ = std::move(*db);
    ASSERT_TRUE(db_->migrate());
    auto user = db_->with_connection<store::ExecResult>([](store::Connection& c) {
      return c.exec(
          "INSERT INTO users (username, email, password_hash, role, disabled, created_at) "
          "VALUES ('u', 'u@x.org', 'x', 'user', 0, 0)");
    });
    ASSERT_TRUE(user) << user.error().message;
    user_id_ = user->last_insert_id;
    store_ = std::make_unique<UploadStore>(*db_, dir_ / "uploads");
  }

  fs::path body_file(const std::string& body) {
    const auto p = dir_ / ("body-" + std::to_string(++n_));
    testing::write_file(p, body);
    return p;
  }
  std::size_t stored_files() {
    std::size_t n = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir_ / "uploads")) n += e.is_regular_file() ? 1 : 0;
    return n;
  }

  testing::TempDir dir_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<UploadStore> store_;
  std::int64_t user_id_ = 0;
  int n_ = 0;
};

TEST_F(UploadStoreTest, SaveGetPathAndRemove) {
  http::MultipartBuilder form;
  form.add_field("ignored", "x");
  form.add_file("file", "clip.MKV", "video/x-matroska", "abc");
  const auto type = form.content_type();
  auto saved = store_->save_multipart(user_id_, body_file(form.finish()), type);
  ASSERT_TRUE(saved) << saved.error().message;
  EXPECT_EQ(saved->size, 3);
  EXPECT_EQ(saved->sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");  // sha256("abc")
  EXPECT_EQ(saved->original_name, "clip.MKV");
  auto path = store_->path_of(saved->id, user_id_);
  ASSERT_TRUE(path);
  EXPECT_EQ(testing::read_file(*path), "abc");
  EXPECT_EQ(path->extension(), ".mkv");
  EXPECT_EQ(path->parent_path(), store_->dir());
  EXPECT_FALSE(store_->path_of(saved->id, user_id_ + 1));
  EXPECT_EQ(store_->path_of("no-such-id", user_id_).error().code, ErrorCode::kNotFound);
  ASSERT_TRUE(store_->remove(saved->id, user_id_));
  EXPECT_FALSE(fs::exists(*path));
  EXPECT_EQ(store_->remove(saved->id, user_id_).error().code, ErrorCode::kNotFound);
}

TEST_F(UploadStoreTest, RefusedFormsLeaveNothing) {
  http::MultipartBuilder two;
  two.add_file("file", "a", "x/y", "1");
  two.add_file("file", "b", "x/y", "2");
  const auto type = two.content_type();
  auto r = store_->save_multipart(user_id_, body_file(two.finish()), type);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, "invalid_multipart");
  http::MultipartBuilder none;
  none.add_field("name", "x");
  const auto type2 = none.content_type();
  auto r2 = store_->save_multipart(user_id_, body_file(none.finish()), type2);
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().reason, "missing_file");
  EXPECT_EQ(stored_files(), 0u);
  auto list = store_->list(user_id_);
  ASSERT_TRUE(list);
  EXPECT_TRUE(list->empty());
}

TEST_F(UploadStoreTest, TheBodyBecomesTheStoredFileWithoutASecondCopy) {
  // 5 MiB of varied bytes (many read buffers: the in-place rewrite trails the
  // reader all the way) with a field before and after the file part.
  std::string content(5 * 1024 * 1024 + 17, '\0');
  std::uint32_t x = 2463534242u;
  for (auto& c : content) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  http::MultipartBuilder form;
  form.add_field("before", std::string(3000, 'b'));
  form.add_file("file", "big.bin", "application/octet-stream", content);
  form.add_field("name", "renamed.bin");
  const auto type = form.content_type();
  const auto body = body_file(form.finish());
  const auto body_inode = testing::inode_of(body);
  ASSERT_NE(body_inode, 0u);

  auto saved = store_->save_multipart(user_id_, body, type);
  ASSERT_TRUE(saved) << saved.error().message;
  EXPECT_EQ(saved->original_name, "renamed.bin");
  EXPECT_EQ(saved->size, static_cast<std::int64_t>(content.size()));
  EXPECT_EQ(testing::read_file(saved->path), content);
  // Moved, not copied: the stored file is the body's inode, and the body's name is gone.
  EXPECT_EQ(testing::inode_of(saved->path), body_inode);
  EXPECT_FALSE(fs::exists(body));
  EXPECT_EQ(stored_files(), 1u);
}

TEST_F(UploadStoreTest, QuotaCountsEveryUploadOfTheUserAndRefusesWhatWouldPassIt) {
  store_ = std::make_unique<UploadStore>(*db_, dir_ / "uploads", 1000);
  auto form_of = [](std::size_t n) {
    http::MultipartBuilder form;
    form.add_file("file", "f.bin", "application/octet-stream", std::string(n, 'q'));
    return std::pair{form.content_type(), form.finish()};
  };
  ASSERT_EQ(store_->room_left(user_id_).value(), 1000u);
  auto [t1, b1] = form_of(600);
  ASSERT_TRUE(store_->save_multipart(user_id_, body_file(b1), t1));
  EXPECT_EQ(store_->room_left(user_id_).value(), 400u);
  auto [t2, b2] = form_of(401);
  auto over = store_->save_multipart(user_id_, body_file(b2), t2);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, ErrorCode::kTooLarge);
  EXPECT_EQ(over.error().reason, "upload_quota_exceeded");
  EXPECT_EQ(stored_files(), 1u) << "a refused upload leaves no file";
  auto [t3, b3] = form_of(400);
  ASSERT_TRUE(store_->save_multipart(user_id_, body_file(b3), t3)) << "exactly up to the quota is allowed";
  EXPECT_EQ(store_->room_left(user_id_).value(), 0u);
}

TEST_F(UploadStoreTest, ParallelUploadsCannotTogetherPassTheQuota) {
  store_ = std::make_unique<UploadStore>(*db_, dir_ / "uploads", 1000);
  std::vector<std::pair<std::string, fs::path>> bodies;
  for (int i = 0; i < 8; ++i) {
    http::MultipartBuilder form;
    form.add_file("file", "f.bin", "application/octet-stream", std::string(300, 'p'));
    const auto type = form.content_type();
    bodies.emplace_back(type, body_file(form.finish()));
  }
  std::atomic<int> ok{0}, over{0};
  std::vector<std::thread> threads;
  for (const auto& [type, body] : bodies) {
    threads.emplace_back([&, type, body] {
      auto r = store_->save_multipart(user_id_, body, type);
      if (r)
        ++ok;
      else if (r.error().reason == "upload_quota_exceeded")
        ++over;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 3);
  EXPECT_EQ(over.load(), 5);
  EXPECT_EQ(stored_files(), 3u);
  auto list = store_->list(user_id_);
  ASSERT_TRUE(list);
  std::int64_t total = 0;
  for (const auto& r : *list) total += r.size;
  EXPECT_EQ(total, 900);
}

TEST_F(UploadStoreTest, PartialFilesFromACrashAreRemoved) {
  fs::create_directories(store_->spool_dir());
  testing::write_file(store_->spool_dir() / ".incoming-abc.part", "x");
  testing::write_file(store_->dir() / ".upload-abc.part", "y");
  testing::write_file(store_->dir() / "kept.mp4", "z");
  EXPECT_EQ(store_->remove_partial_files(), 2u);
  EXPECT_EQ(stored_files(), 1u);
}

}  // namespace
}  // namespace llmd::uploads
