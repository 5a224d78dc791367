// What only the MySQL/MariaDB backend has: URLs, lost connections, deadlocks.
#include "store/mysql/mysql_database.h"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <thread>

#include "support/mariadb_server.h"

namespace llmd::store {
namespace {

TEST(MysqlUrl, ParsesUserPasswordHostPortDatabaseAndSocket) {
  auto u = mysql::parse_mysql_url("mysql://llmd:p%40ss:w@db.example:3307/llmd_prod");
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->user, "llmd");
  EXPECT_EQ(u->password, "p@ss:w");
  EXPECT_EQ(u->host, "db.example");
  EXPECT_EQ(u->port, 3307u);
  EXPECT_EQ(u->database, "llmd_prod");
  EXPECT_TRUE(u->socket.empty());

  auto s = mysql::parse_mysql_url("mysql://root@/app?socket=/run/mysqld/mysqld.sock");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->socket, "/run/mysqld/mysqld.sock");
  EXPECT_EQ(s->port, 3306u);
  EXPECT_EQ(s->database, "app");
}

TEST(MysqlUrl, RejectsMalformedUrlsWithoutEchoingThePassword) {
  for (const char* bad : {"mysql://u:secret-pw@host:99999/db", "mysql://u:secret-pw@host/",
                          "mysql://u:secret-pw@h/db?x=1", "mysql://u:secret-pw%zz@h/db", "postgres://h/db"}) {
    auto r = mysql::parse_mysql_url(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(r.error().message.find("secret-pw"), std::string::npos) << r.error().message;
  }
}

TEST(MysqlDatabase, UnreachableServerIsUnavailable) {
  auto db = Database::open("mysql://u@127.0.0.1:1/db");
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code, ErrorCode::kUnavailable);
}

class MysqlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& server = testing::MariaDbServer::shared();
    ASSERT_TRUE(server.started()) << server.error();
    url_ = server.create_database();
    ASSERT_FALSE(url_.empty());
    auto db = Database::open(url_, 4);
    ASSERT_TRUE(db) << db.error().message;
    db_ = std::move(*db);
    ASSERT_TRUE(db_->migrate({{1, "t", "",
                               "CREATE TABLE t (id BIGINT PRIMARY KEY, v "
                               "BIGINT NOT NULL) ENGINE=InnoDB;"
                               "INSERT INTO t VALUES (1, 0), (2, 0);"}}));
  }
  std::string url_;
  std::unique_ptr<Database> db_;
};

TEST_F(MysqlServerTest, WrongDatabaseNameIsUnavailableAtOpen) {
  auto other = url_;
  other.replace(other.find("llmd_test_"), 10, "no_such_db");
  auto db = Database::open(other);
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code, ErrorCode::kUnavailable);
}

TEST_F(MysqlServerTest, ConnectionKilledByTheServerIsReplaced) {
  auto single = Database::open(url_, 1);
  ASSERT_TRUE(single);
  auto id =
      (*single)->with_connection<std::vector<Row>>([](Connection& c) { return c.query("SELECT CONNECTION_ID()"); });
  ASSERT_TRUE(id);
  ASSERT_TRUE(db_->with_connection<void>(
      [&](Connection& c) { return c.exec_script("KILL CONNECTION " + std::to_string(id->front().integer(0))); }));
  // Reads are retried on a fresh connection; the dead one is gone for good.
  auto again =
      (*single)->with_connection<std::vector<Row>>([](Connection& c) { return c.query("SELECT CONNECTION_ID()"); });
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_NE(again->front().integer(0), id->front().integer(0));
  EXPECT_TRUE((*single)->with_connection<ExecResult>([](Connection& c) {
    return c.exec("UPDATE t SET v = v + 1 WHERE id = ?", std::vector<Value>{std::int64_t{1}});
  }));
}

TEST_F(MysqlServerTest, DeadlockVictimIsRetriedAndBothTransactionsCommit) {
  // Each transaction locks its own row, then waits for the other to have
  // done the same, then wants the other's row: a textbook deadlock. InnoDB
  // kills one; Database::transaction retries it.
  std::latch both_locked(2);
  std::atomic<int> attempts{0};
  auto worker = [&](std::int64_t mine, std::int64_t theirs) {
    bool first_attempt = true;
    return db_->transaction<int>([&](Connection& c) -> Result<int> {
      ++attempts;
      LLMD_TRY(c.exec("UPDATE t SET v = v + 1 WHERE id = ?", std::vector<Value>{mine}));
      if (first_attempt) {
        first_attempt = false;
        both_locked.arrive_and_wait();
      }
      LLMD_TRY(c.exec("UPDATE t SET v = v + 1 WHERE id = ?", std::vector<Value>{theirs}));
      return 0;
    });
  };
  Result<int> a = 0, b = 0;
  std::thread ta([&] { a = worker(1, 2); });
  std::thread tb([&] { b = worker(2, 1); });
  ta.join();
  tb.join();
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_GE(attempts.load(), 3);  // one of them ran twice
  auto rows = db_->with_connection<std::vector<Row>>([](Connection& c) { return c.query("SELECT SUM(v) FROM t"); });
  EXPECT_EQ(rows->front().integer(0), 4);
}

TEST_F(MysqlServerTest, DeadlockIsReportedAsBusyWhenNotRetried) {
  // The same deadlock on bare connections: the victim sees kUnavailable.
  std::latch both_locked(2);
  auto worker = [&](std::int64_t mine, std::int64_t theirs) {
    return db_->with_connection<int>([&](Connection& c) -> Result<int> {
      LLMD_TRY(c.begin());
      auto r = [&]() -> Result<int> {
        LLMD_TRY(c.exec("UPDATE t SET v = v + 1 WHERE id = ?", std::vector<Value>{mine}));
        both_locked.arrive_and_wait();
        LLMD_TRY(c.exec("UPDATE t SET v = v + 1 WHERE id = ?", std::vector<Value>{theirs}));
        return 0;
      }();
      (void)c.rollback();
      return r;
    });
  };
  Result<int> a = 0, b = 0;
  std::thread ta([&] { a = worker(1, 2); });
  std::thread tb([&] { b = worker(2, 1); });
  ta.join();
  tb.join();
  ASSERT_NE(a.has_value(), b.has_value()) << "exactly one should be the victim";
  const Error& e = a ? b.error() : a.error();
  EXPECT_EQ(e.code, ErrorCode::kUnavailable);
  EXPECT_EQ(e.reason, kBusyReason);
}

}  // namespace
}  // namespace llmd::store
