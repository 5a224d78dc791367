#include "store/database.h"

#include <gtest/gtest.h>

#include <thread>

#include "support/test_support.h"

namespace llmd::store {
namespace {

std::vector<Migration> two_versions() {
  return {
      {1, "one", "CREATE TABLE t1 (id INTEGER PRIMARY KEY, name TEXT UNIQUE);", ""},
      {2, "two", "CREATE TABLE t2 (id INTEGER PRIMARY KEY); INSERT INTO t2 (id) VALUES (7);", ""},
  };
}

TEST(Migrations, AppliedInOrderAndIdempotent) {
  testing::TempDir dir;
  auto db = Database::open("sqlite:" + (dir / "a.db").string());
  ASSERT_TRUE(db) << db.error().message;
  EXPECT_EQ((*db)->schema_version().value_or(-1), -1);  // no table yet: an error, not 0
  EXPECT_EQ((*db)->migrate(two_versions()).value(), 2);
  EXPECT_EQ((*db)->migrate(two_versions()).value(), 2);  // second run changes nothing
  auto rows = (*db)->with_connection<std::vector<Row>>([](Connection& c) { return c.query("SELECT COUNT(*) FROM t2"); });
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->front().integer(0), 1);
}

TEST(Migrations, NewerSchemaRefusesToStart) {
  testing::TempDir dir;
  const std::string url = "sqlite:" + (dir / "a.db").string();
  {
    auto db = Database::open(url);
    ASSERT_TRUE((*db)->migrate(two_versions()));
  }
  auto db = Database::open(url);
  auto older = two_versions();
  older.pop_back();
  auto r = (*db)->migrate(older);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, "schema_too_new");
  EXPECT_NE(r.error().message.find("newer"), std::string::npos);
}

TEST(Migrations, FailingMigrationRollsBackAndKeepsVersion) {
  testing::TempDir dir;
  auto db = Database::open("sqlite:" + (dir / "a.db").string());
  std::vector<Migration> ms = two_versions();
  ms.push_back({3, "broken", "CREATE TABLE t3 (id INTEGER); THIS IS NOT SQL;", ""});
  auto r = (*db)->migrate(ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, "migration_failed");
  EXPECT_EQ((*db)->schema_version().value(), 2);
  // t3 was created inside the failed transaction and must be gone.
  auto t3 = (*db)->with_connection<std::vector<Row>>([](Connection& c) { return c.query("SELECT COUNT(*) FROM t3"); });
  EXPECT_FALSE(t3);
}

TEST(Migrations, ProductSchemaApplies) {
  testing::TempDir dir;
  auto db = Database::open("sqlite:" + (dir / "sub/dir/llmd.db").string());
  ASSERT_TRUE(db) << db.error().message;
  auto v = (*db)->migrate();
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ(*v, all_migrations().back().version);
  EXPECT_TRUE((*db)->ping());
}

TEST(Sqlite, UniqueViolationIsConflictAndParametersAreBound) {
  testing::TempDir dir;
  auto db = Database::open("sqlite:" + (dir / "a.db").string());
  ASSERT_TRUE((*db)->migrate(two_versions()));
  const std::string hostile = "x'); DROP TABLE t1; --";
  auto insert = [&](const std::string& name) {
    return (*db)->with_connection<ExecResult>([&](Connection& c) {
      return c.exec("INSERT INTO t1 (name) VALUES (?)", std::vector<Value>{name});
    });
  };
  ASSERT_TRUE(insert(hostile));
  auto dup = insert(hostile);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, ErrorCode::kConflict);
  auto rows = (*db)->with_connection<std::vector<Row>>(
      [](Connection& c) { return c.query("SELECT name FROM t1"); });
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->front().text(0), hostile);
}

TEST(Sqlite, TransactionRollsBackOnError) {
  testing::TempDir dir;
  auto db = Database::open("sqlite:" + (dir / "a.db").string());
  ASSERT_TRUE((*db)->migrate(two_versions()));
  auto r = (*db)->transaction<int>([](Connection& c) -> Result<int> {
    LLMD_TRY(c.exec("INSERT INTO t1 (name) VALUES ('a')"));
    return fail(ErrorCode::kConflict, "changed my mind");
  });
  ASSERT_FALSE(r);
  auto rows = (*db)->with_connection<std::vector<Row>>([](Connection& c) { return c.query("SELECT COUNT(*) FROM t1"); });
  EXPECT_EQ(rows->front().integer(0), 0);
}

TEST(Sqlite, ConcurrentWritersAllCommit) {
  testing::TempDir dir;
  auto db = Database::open("sqlite:" + (dir / "a.db").string(), 4);
  ASSERT_TRUE((*db)->migrate(two_versions()));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        auto r = (*db)->transaction<ExecResult>([&](Connection& c) {
          return c.exec("INSERT INTO t1 (name) VALUES (?)", std::vector<Value>{std::to_string(t * 1000 + i)});
        });
        if (r) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 200);
}

}  // namespace
}  // namespace llmd::store
