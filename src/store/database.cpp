#include "store/database.h"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>
#include <thread>

#include "core/text.h"
#include "store/mysql/mysql_database.h"
#include "store/sqlite/sqlite_database.h"

namespace llmd::store {

std::int64_t Row::integer(std::size_t i) const {
  const Value& v = columns.at(i);
  if (auto p = std::get_if<std::int64_t>(&v)) return *p;
  if (auto p = std::get_if<double>(&v)) return static_cast<std::int64_t>(*p);
  if (auto p = std::get_if<std::string>(&v)) return text::parse_int(*p).value_or(0);
  return 0;
}

double Row::real(std::size_t i) const {
  const Value& v = columns.at(i);
  if (auto p = std::get_if<double>(&v)) return *p;
  if (auto p = std::get_if<std::int64_t>(&v)) return static_cast<double>(*p);
  if (auto p = std::get_if<std::string>(&v)) {
    double d = 0;
    std::from_chars(p->data(), p->data() + p->size(), d);
    return d;
  }
  return 0;
}

std::string Row::text(std::size_t i) const {
  const Value& v = columns.at(i);
  if (auto p = std::get_if<std::string>(&v)) return *p;
  if (auto p = std::get_if<std::int64_t>(&v)) return std::to_string(*p);
  if (auto p = std::get_if<double>(&v)) return std::to_string(*p);
  return {};
}

Result<std::unique_ptr<Database>> Database::open(const std::string& url, int pool_size) {
  if (url.starts_with("sqlite:")) return sqlite::open_sqlite(url.substr(7), pool_size);
  if (url.starts_with("mysql://")) return mysql::open_mysql(url, pool_size);
  return fail(ErrorCode::kInvalidArgument, "unknown database URL scheme", "bad_config");
}

Result<int> Database::schema_version() {
  return with_connection<int>([](Connection& c) -> Result<int> {
    auto rows = c.query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    if (!rows) return std::unexpected(rows.error());
    return rows->empty() ? 0 : static_cast<int>(rows->front().integer(0));
  });
}

namespace {

// Runs f in a transaction on `c` (migrate keeps to one connection).
Result<int> in_transaction(Connection& c, const std::function<Result<int>(Connection&)>& f) {
  LLMD_TRY(c.begin());
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
}

Result<int> current_version(Connection& c) {
  auto rows = c.query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!rows) return std::unexpected(rows.error());
  return rows->empty() ? 0 : static_cast<int>(rows->front().integer(0));
}

Result<int> apply_migrations(Connection& c, const std::vector<Migration>& migrations) {
  const bool sqlite = c.dialect() == Dialect::kSqlite;
  LLMD_TRY(c.exec(sqlite ? "CREATE TABLE IF NOT EXISTS schema_migrations ("
                           "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
                         : "CREATE TABLE IF NOT EXISTS schema_migrations ("
                           "version INT PRIMARY KEY, name VARCHAR(200) NOT NULL, applied_at BIGINT NOT NULL"
                           ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"));
  auto current = current_version(c);
  if (!current) return std::unexpected(current.error());
  const int known = migrations.empty() ? 0 : migrations.back().version;
  if (*current > known) {
    return fail(ErrorCode::kUnavailable,
                "database schema version " + std::to_string(*current) + " is newer than this llmd build knows (" +
                    std::to_string(known) + "); upgrade llmd or use another database",
                "schema_too_new");
  }
  int applied = *current;
  for (const auto& m : migrations) {
    if (m.version <= applied) continue;
    auto r = in_transaction(c, [&](Connection& tx) -> Result<int> {
      // Re-check inside the transaction: another instance may have migrated.
      auto rows = tx.query("SELECT COUNT(*) FROM schema_migrations WHERE version = ?",
                           std::vector<Value>{std::int64_t{m.version}});
      if (!rows) return std::unexpected(rows.error());
      if (!rows->empty() && rows->front().integer(0) > 0) return m.version;
      LLMD_TRY(tx.exec_script(sqlite ? m.sqlite_sql : m.mysql_sql));
      const std::vector<Value> params{std::int64_t{m.version}, m.name,
                                      std::int64_t{static_cast<std::int64_t>(std::time(nullptr))}};
      LLMD_TRY(tx.exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", params));
      return m.version;
    });
    if (!r) {
      return fail(r.error().code,
                  "migration " + std::to_string(m.version) + " (" + m.name + ") failed: " + r.error().message,
                  "migration_failed");
    }
    applied = m.version;
  }
  return applied;
}

}  // namespace

Result<int> Database::migrate(const std::vector<Migration>& migrations) {
  return with_connection<int>([&](Connection& c) -> Result<int> {
    if (c.dialect() == Dialect::kSqlite) return apply_migrations(c, migrations);
    // MySQL commits DDL implicitly, so a transaction cannot keep two
    // instances from running the same migration at once; a named lock
    // (held by this session, freed if it dies) does.
    auto locked = c.query("SELECT GET_LOCK('llmd_schema_migrations', 60)");
    if (!locked) return std::unexpected(locked.error());
    if (locked->empty() || locked->front().integer(0) != 1) {
      return fail(ErrorCode::kUnavailable, "another instance is migrating the database", std::string(kBusyReason));
    }
    auto r = apply_migrations(c, migrations);
    (void)c.query("SELECT RELEASE_LOCK('llmd_schema_migrations')");
    return r;
  });
}

void Database::backoff(int attempt) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  std::uniform_int_distribution<int> ms(1, 10 * attempt);
  std::this_thread::sleep_for(std::chrono::milliseconds(ms(rng)));
}

Result<void> Database::ping() {
  return with_connection<void>([](Connection& c) -> Result<void> {
    auto r = c.query("SELECT 1");
    if (!r) return std::unexpected(r.error());
    return {};
  });
}

}  // namespace llmd::store
