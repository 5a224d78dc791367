// A user with tokens in a fresh SQLite database, the accounts over it and a
// worker pool: what a metered task needs, real and fast.
#pragma once

#include <gtest/gtest.h>

#include "auth/users.h"
#include "billing/accounts.h"
#include "http/worker_pool.h"
#include "store/database.h"
#include "support/test_support.h"

namespace llmd::testing {

class BillingFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = store::Database::open("sqlite:" + (dir_ / "db.sqlite").string(), 4);
    ASSERT_TRUE(db) << db.error().message;
    db_ = std::move(*db);
    ASSERT_TRUE(db_->migrate());
    users_ = std::make_unique<auth::UserStore>(*db_);
    accounts_ = std::make_unique<billing::Accounts>(*db_, "test-instance");
    user_ = users_->create("alice", "a@b.cn", "$2b$10$x", "user", 100000).value().id;
  }

  std::int64_t available() { return accounts_->balance(user_).value().available(); }
  std::int64_t reserved() { return accounts_->balance(user_).value().reserved; }
  std::vector<billing::UsageRow> usage() { return accounts_->usage({}).value().first; }
  // What the latest reservation held at its largest (a reservation only grows).
  std::int64_t last_reservation() {
    auto rows = db_->with_connection<std::vector<store::Row>>(
        [](store::Connection& c) { return c.query("SELECT amount FROM reservations ORDER BY id DESC LIMIT 1", {}); });
    return rows && !rows->empty() ? rows->front().integer(0) : -1;
  }

  TempDir dir_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<auth::UserStore> users_;
  std::unique_ptr<billing::Accounts> accounts_;
  billing::Pricing pricing_;
  http::WorkerPool pool_{2};
  std::int64_t user_ = 0;
};

}  // namespace llmd::testing
