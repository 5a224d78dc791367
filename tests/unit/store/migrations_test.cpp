// The storage interface, against every backend (SQLite and a private
// MariaDB server): migrations, parameters, errors, transactions.
#include "store/database.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "support/backends.h"
#include "support/test_support.h"

namespace llmd::store {
namespace {

using testing::Backend;

class StoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  // A new, empty database of the backend under test.
  std::unique_ptr<Database> open_fresh(int pool_size = 4) {
    url_ = testing::fresh_database_url(GetParam(), dir_);
    return reopen(pool_size);
  }
  // Another handle on the same database.
  std::unique_ptr<Database> reopen(int pool_size = 4) {
    auto db = Database::open(url_, pool_size);
    EXPECT_TRUE(db) << db.error().message;
    return db ? std::move(*db) : nullptr;
  }
  bool mysql() const { return GetParam() == Backend::kMariaDb; }

  // Two migrations, in both dialects.
  static std::vector<Migration> two_versions() {
    return {
        {1, "one", "CREATE TABLE t1 (id INTEGER PRIMARY KEY, name TEXT UNIQUE);",
         "CREATE TABLE t1 (id BIGINT AUTO_INCREMENT PRIMARY KEY, name "
         "VARCHAR(100) UNIQUE) ENGINE=InnoDB;"},
        {2, "two",
         "CREATE TABLE t2 (id INTEGER PRIMARY KEY); INSERT INTO t2 (id) VALUES "
         "(7);",
         "CREATE TABLE t2 (id BIGINT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO "
         "t2 (id) VALUES (7);"},
    };
  }

  static std::int64_t count(Database& db, const std::string& table) {
    auto rows =
        db.with_connection<std::vector<Row>>([&](Connection& c) { return c.query("SELECT COUNT(*) FROM " + table); });
    EXPECT_TRUE(rows) << rows.error().message;
    return rows && !rows->empty() ? rows->front().integer(0) : -1;
  }

  testing::TempDir dir_;
  std::string url_;
};

TEST_P(StoreTest, MigrationsAppliedInOrderAndIdempotent) {
  auto db = open_fresh();
  ASSERT_TRUE(db);
  EXPECT_EQ(db->schema_version().value_or(-1),
            -1);  // no table yet: an error, not 0
  EXPECT_EQ(db->migrate(two_versions()).value(), 2);
  EXPECT_EQ(db->migrate(two_versions()).value(),
            2);  // second run changes nothing
  EXPECT_EQ(count(*db, "t2"), 1);
}

TEST_P(StoreTest, NewerSchemaRefusesToStart) {
  {
    auto db = open_fresh();
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->migrate(two_versions()));
  }
  auto db = reopen();
  auto older = two_versions();
  older.pop_back();
  auto r = db->migrate(older);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, "schema_too_new");
  EXPECT_NE(r.error().message.find("newer"), std::string::npos);
}

// SQLite rolls a failed migration back whole; MySQL commits DDL as it goes.
// On both the version stays put and the corrected migration then applies.
TEST_P(StoreTest, FailingMigrationKeepsVersionAndCanBeRerun) {
  auto db = open_fresh();
  ASSERT_TRUE(db);
  std::vector<Migration> ms = two_versions();
  ms.push_back({3, "broken", "CREATE TABLE t3 (id INTEGER); THIS IS NOT SQL;",
                "CREATE TABLE t3 (id BIGINT) ENGINE=InnoDB; THIS IS NOT SQL;"});
  auto r = db->migrate(ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, "migration_failed");
  EXPECT_EQ(r.error().message.find("NOT SQL"), std::string::npos) << "SQL text leaked into the error";
  EXPECT_EQ(db->schema_version().value(), 2);
  if (!mysql()) {
    // t3 was created inside the failed transaction and must be gone.
    auto t3 = db->with_connection<std::vector<Row>>([](Connection& c) { return c.query("SELECT COUNT(*) FROM t3"); });
    EXPECT_FALSE(t3);
  }
  ms.back() = {3, "fixed", "CREATE TABLE IF NOT EXISTS t3 (id INTEGER);",
               "CREATE TABLE IF NOT EXISTS t3 (id BIGINT) ENGINE=InnoDB;"};
  EXPECT_EQ(db->migrate(ms).value_or(-1), 3);
  EXPECT_EQ(count(*db, "t3"), 0);
}

TEST_P(StoreTest, ProductSchemaApplies) {
  auto db = open_fresh();
  ASSERT_TRUE(db);
  auto v = db->migrate();
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ(*v, all_migrations().back().version);
  EXPECT_TRUE(db->ping());
  EXPECT_EQ(db->migrate().value_or(-1), *v);
}

TEST_P(StoreTest, ConcurrentInstancesMigrateOnce) {
  auto first = open_fresh();
  auto second = reopen();
  ASSERT_TRUE(first && second);
  Result<int> a = 0, b = 0;
  std::thread ta([&] { a = first->migrate(); });
  std::thread tb([&] { b = second->migrate(); });
  ta.join();
  tb.join();
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(count(*first, "schema_migrations"), static_cast<std::int64_t>(all_migrations().size()));
}

TEST_P(StoreTest, UniqueViolationIsConflictAndParametersAreBound) {
  auto db = open_fresh();
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->migrate(two_versions()));
  const std::string hostile = "x'); DROP TABLE t1; -- \\' \"";
  auto insert = [&](const std::string& name) {
    return db->with_connection<ExecResult>(
        [&](Connection& c) { return c.exec("INSERT INTO t1 (name) VALUES (?)", std::vector<Value>{name}); });
  };
  auto first = insert(hostile);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->affected_rows, 1);
  EXPECT_GT(first->last_insert_id, 0);
  auto dup = insert(hostile);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, ErrorCode::kConflict);
  EXPECT_EQ(dup.error().message.find("DROP"), std::string::npos) << "row data leaked into the error";
  auto rows = db->with_connection<std::vector<Row>>([](Connection& c) { return c.query("SELECT name FROM t1"); });
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->front().text(0), hostile);
}

TEST_P(StoreTest, ValuesRoundTripWithTheirTypes) {
  auto db = open_fresh();
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->migrate({{1, "types", "CREATE TABLE v (i INTEGER, d REAL, s TEXT, n TEXT);",
                            "CREATE TABLE v (i BIGINT, d DOUBLE, s LONGTEXT, n TEXT) ENGINE=InnoDB "
                            "DEFAULT CHARSET=utf8mb4;"}}));
  const std::string big(200000, 'x');
  const std::vector<std::vector<Value>> inputs = {
      {std::int64_t{INT64_MAX}, 2.5, std::string("汉字 and emoji 😀"), nullptr},
      {std::int64_t{INT64_MIN}, -0.125, std::string(""), nullptr},
      {std::int64_t{7}, 1e300, big, std::string("not null")},
  };
  auto result = db->with_connection<std::vector<Row>>([&](Connection& c) -> Result<std::vector<Row>> {
    for (const auto& in : inputs) LLMD_TRY(c.exec("INSERT INTO v (i, d, s, n) VALUES (?, ?, ?, ?)", in));
    return c.query("SELECT i, d, s, n FROM v ORDER BY i");
  });
  ASSERT_TRUE(result) << result.error().message;
  ASSERT_EQ(result->size(), 3u);
  const auto& r = *result;
  EXPECT_EQ(r[0].integer(0), INT64_MIN);
  EXPECT_EQ(r[0].real(1), -0.125);
  EXPECT_EQ(r[0].text(2), "");
  EXPECT_TRUE(r[0].is_null(3));
  EXPECT_EQ(r[1].integer(0), 7);
  EXPECT_EQ(r[1].real(1), 1e300);
  EXPECT_EQ(r[1].text(2), big);
  EXPECT_EQ(r[1].text(3), "not null");
  EXPECT_EQ(r[2].integer(0), INT64_MAX);
  EXPECT_EQ(r[2].text(2), "汉字 and emoji 😀");
  EXPECT_TRUE(std::holds_alternative<std::int64_t>(r[2].columns[0]));
  EXPECT_TRUE(std::holds_alternative<double>(r[2].columns[1]));
  // Aggregates come back as integers on both (MySQL's SUM is a DECIMAL).
  auto sum = db->with_connection<std::vector<Row>>([](Connection& c) {
    return c.query("SELECT COALESCE(SUM(i), 0), COUNT(*) FROM v WHERE i BETWEEN ? AND ?",
                   std::vector<Value>{std::int64_t{0}, std::int64_t{100}});
  });
  ASSERT_TRUE(sum);
  EXPECT_EQ(sum->front().integer(0), 7);
  EXPECT_TRUE(std::holds_alternative<std::int64_t>(sum->front().columns[0]));
  EXPECT_EQ(sum->front().integer(1), 1);
}

TEST_P(StoreTest, UpdateReportsMatchedRowsEvenWithoutChange) {
  auto db = open_fresh();
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->migrate(two_versions()));
  auto r = db->with_connection<ExecResult>([](Connection& c) -> Result<ExecResult> {
    LLMD_TRY(c.exec("INSERT INTO t1 (name) VALUES ('same')"));
    return c.exec("UPDATE t1 SET name = ? WHERE name = ?",
                  std::vector<Value>{std::string("same"), std::string("same")});
  });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->affected_rows, 1);
}

TEST_P(StoreTest, LikeEscapesWithBackslash) {
  auto db = open_fresh();
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->migrate(two_versions()));
  auto rows = db->with_connection<std::vector<Row>>([](Connection& c) -> Result<std::vector<Row>> {
    for (const char* n : {"100%", "1000", "a_b", "axb"}) {
      LLMD_TRY(c.exec("INSERT INTO t1 (name) VALUES (?)", std::vector<Value>{std::string(n)}));
    }
    return c.query(
        "SELECT name FROM t1 WHERE name LIKE ? ESCAPE '\\' OR name LIKE ? "
        "ESCAPE '\\' ORDER BY name",
        std::vector<Value>{std::string("100\\%"), std::string("a\\_b")});
  });
  ASSERT_TRUE(rows) << rows.error().message;
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].text(0), "100%");
  EXPECT_EQ((*rows)[1].text(0), "a_b");
}

TEST_P(StoreTest, TransactionRollsBackOnError) {
  auto db = open_fresh();
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->migrate(two_versions()));
  auto r = db->transaction<int>([](Connection& c) -> Result<int> {
    LLMD_TRY(c.exec("INSERT INTO t1 (name) VALUES ('a')"));
    return fail(ErrorCode::kConflict, "changed my mind");
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(count(*db, "t1"), 0);
}

TEST_P(StoreTest, ConcurrentWritersAllCommit) {
  auto db = open_fresh(4);
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->migrate(two_versions()));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        auto r = db->transaction<ExecResult>([&](Connection& c) {
          return c.exec("INSERT INTO t1 (name) VALUES (?)", std::vector<Value>{std::to_string(t * 1000 + i)});
        });
        if (r) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 200);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::ValuesIn(testing::all_backends()), testing::backend_name);

}  // namespace
}  // namespace llmd::store
