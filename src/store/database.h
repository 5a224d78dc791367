// The storage interface: a pool of SQL connections behind one API, with a
// backend per folder (store/sqlite/, store/mysql/). SQL is always
// sent with `?` placeholders and bound parameters, never spliced.
//
// Thread-safety: Database is thread-safe; a Connection is used by one thread
// at a time (the pool hands each out exclusively). All calls block: run them
// on the worker pool, never on an I/O thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/error.h"

namespace llmd::store {

enum class Dialect { kSqlite, kMysql };

// Error reason of contention (busy/locked database, deadlock, lock wait
// timeout): retrying the transaction can succeed.
inline constexpr std::string_view kBusyReason = "database_busy";

using Value = std::variant<std::nullptr_t, std::int64_t, double, std::string>;

struct Row {
  std::vector<Value> columns;

  bool is_null(std::size_t i) const { return std::holds_alternative<std::nullptr_t>(columns.at(i)); }
  // Integer value of column i (0 for NULL; doubles truncated; numeric text parsed).
  std::int64_t integer(std::size_t i) const;
  double real(std::size_t i) const;
  // Text value of column i ("" for NULL; numbers formatted).
  std::string text(std::size_t i) const;
};

struct ExecResult {
  std::int64_t affected_rows = 0;
  std::int64_t last_insert_id = 0;
};

// One connection. Errors: kConflict for unique/constraint violations,
// kUnavailable for busy/locked/connection loss, kInternal otherwise; the
// message never contains the SQL text.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual Dialect dialect() const = 0;
  virtual Result<std::vector<Row>> query(std::string_view sql, std::span<const Value> params = {}) = 0;
  virtual Result<ExecResult> exec(std::string_view sql, std::span<const Value> params = {}) = 0;
  // Runs several `;`-separated statements without parameters (migrations).
  virtual Result<void> exec_script(std::string_view sql) = 0;
  virtual Result<void> begin() = 0;  // a write transaction
  virtual Result<void> commit() = 0;
  virtual Result<void> rollback() = 0;
};

struct Migration {
  int version;
  std::string name;
  std::string sqlite_sql;
  std::string mysql_sql;
};

// The schema of this build, ascending versions (store/migrations.cpp).
const std::vector<Migration>& all_migrations();

class Database {
 public:
  virtual ~Database() = default;

  // Opens "sqlite:PATH" (creating parent directories) or
  // "mysql://user:password@host:port/db[?socket=/path]" (store/mysql) with a
  // pool of `pool_size` connections.
  static Result<std::unique_ptr<Database>> open(const std::string& url, int pool_size = 4);

  virtual Dialect dialect() const = 0;

  // Runs f with a connection held exclusively for the call.
  template <typename T>
  Result<T> with_connection(const std::function<Result<T>(Connection&)>& f) {
    auto lease = acquire();
    if (!lease) return std::unexpected(lease.error());
    return f(**lease);
  }

  // Runs f inside a write transaction: commit when f succeeds, roll back
  // when it fails (its error is returned) or throws. When the database
  // aborts the transaction for contention (a deadlock victim or a lock wait
  // timeout on MySQL, a busy SQLite; error reason kBusyReason) the whole
  // transaction is retried, up to kTransactionAttempts times with a short
  // random backoff: f may therefore run more than once and must not have
  // effects outside the connection.
  template <typename T>
  Result<T> transaction(const std::function<Result<T>(Connection&)>& f) {
    for (int attempt = 1;; ++attempt) {
      auto r = transaction_once<T>(f);
      if (r || attempt >= kTransactionAttempts || !is_contention(r.error())) return r;
      backoff(attempt);
    }
  }

  static constexpr int kTransactionAttempts = 5;

  // Applies pending migrations in order, each in its own transaction, and
  // records them in `schema_migrations`. Idempotent. Fails (kUnavailable,
  // reason "schema_too_new") when the database has a newer version than this
  // build knows. On MySQL, instances starting together take turns (a named
  // lock), and a failed migration may leave its DDL applied (MySQL commits
  // DDL implicitly) but is not recorded, so it runs again next time.
  Result<int> migrate(const std::vector<Migration>& migrations = all_migrations());

  // Highest applied migration version (0 for a fresh database).
  Result<int> schema_version();

  // A cheap round trip (`SELECT 1`).
  Result<void> ping();

 protected:
  // A connection checked out of the pool; returns to it when destroyed.
  class Lease {
   public:
    Lease(Database* owner, std::unique_ptr<Connection> c) : owner_(owner), conn_(std::move(c)) {}
    Lease(Lease&& o) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (conn_) owner_->release(std::move(conn_));
    }
    Connection& operator*() const { return *conn_; }

   private:
    Database* owner_;
    std::unique_ptr<Connection> conn_;
  };

  virtual Result<Lease> acquire() = 0;
  virtual void release(std::unique_ptr<Connection> c) = 0;

 private:
  template <typename T>
  Result<T> transaction_once(const std::function<Result<T>(Connection&)>& f) {
    auto lease = acquire();
    if (!lease) return std::unexpected(lease.error());
    Connection& c = **lease;
    if (auto b = c.begin(); !b) return std::unexpected(b.error());
    try {
      auto r = f(c);
      if (!r) {
        (void)c.rollback();
        return r;
      }
      if (auto cm = c.commit(); !cm) {
        (void)c.rollback();
        return std::unexpected(cm.error());
      }
      return r;
    } catch (...) {
      (void)c.rollback();
      throw;
    }
  }
  static bool is_contention(const Error& e) { return e.code == ErrorCode::kUnavailable && e.reason == kBusyReason; }
  // Sleeps a few milliseconds, growing with `attempt`, randomised so that
  // the transactions that collided do not collide again.
  static void backoff(int attempt);
};

}  // namespace llmd::store
