#include "store/sqlite/sqlite_database.h"
#include "store/pooled_database.h"

#include <sqlite3.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <chrono>

#include <filesystem>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

namespace llmd::store::sqlite {
namespace {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
// A cached statement lent to one query: reset (its read ended, its bindings
// cleared) when the query is done with it, never finalized.
struct StmtReset {
  void operator()(sqlite3_stmt* s) const {
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
  }
};
using DbHandle = std::unique_ptr<sqlite3, DbCloser>;
using StmtHandle = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;
using StmtLease = std::unique_ptr<sqlite3_stmt, StmtReset>;

// Distinct statements a connection keeps prepared; past it the cache starts
// over (texts built from filters vary; the hot ones come back at once).
constexpr std::size_t kMaxCachedStatements = 256;

// The one place SQLite result codes become llmd errors.
// Messages stay generic: SQLite's own text can quote SQL or file paths.
Error translate(int rc) {
  const int primary = rc & 0xff;
  switch (primary) {
    case SQLITE_CONSTRAINT: return Error(ErrorCode::kConflict, "constraint violated", "conflict");
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Error(ErrorCode::kUnavailable, "database is busy", "database_busy");
    case SQLITE_FULL: return Error(ErrorCode::kUnavailable, "database disk is full", "database_full");
    case SQLITE_CANTOPEN: return Error(ErrorCode::kUnavailable, "cannot open database file", "database_unavailable");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return Error(ErrorCode::kInternal, "database file is corrupt", "database_corrupt");
    default: return Error(ErrorCode::kInternal, "database error", "database_error");
  }
}

class SqliteConnection final : public Connection {
 public:
  explicit SqliteConnection(DbHandle db) : db_(std::move(db)) {}

  Dialect dialect() const override { return Dialect::kSqlite; }

  Result<std::vector<Row>> query(std::string_view sql, std::span<const Value> params) override {
    auto stmt = prepare(sql, params);
    if (!stmt) return std::unexpected(stmt.error());
    std::vector<Row> rows;
    while (true) {
      const int rc = sqlite3_step(stmt->get());
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return std::unexpected(translate(rc));
      Row row;
      const int n = sqlite3_column_count(stmt->get());
      row.columns.reserve(n);
      for (int i = 0; i < n; ++i) row.columns.push_back(column(stmt->get(), i));
      rows.push_back(std::move(row));
    }
    return rows;
  }

  Result<ExecResult> exec(std::string_view sql, std::span<const Value> params) override {
    auto stmt = prepare(sql, params);
    if (!stmt) return std::unexpected(stmt.error());
    int rc;
    while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) return std::unexpected(translate(rc));
    return ExecResult{sqlite3_changes64(db_.get()), sqlite3_last_insert_rowid(db_.get())};
  }

  Result<void> exec_script(std::string_view sql) override {
    const std::string text(sql);
    const int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return std::unexpected(translate(rc));
    return {};
  }

  // IMMEDIATE takes the write lock up front, so two writers never deadlock
  // on a read-to-write upgrade; the busy timeout makes the second one wait.
  Result<void> begin() override { return exec_script("BEGIN IMMEDIATE"); }
  Result<void> commit() override { return exec_script("COMMIT"); }
  Result<void> rollback() override { return exec_script("ROLLBACK"); }

 private:
  // The statement for `sql`, prepared once per connection and kept: parsing
  // and planning took a tenth of a busy server's SQLite time.
  Result<sqlite3_stmt*> cached(std::string_view sql) {
    std::string key(sql);
    if (auto it = statements_.find(key); it != statements_.end()) return it->second.get();
    sqlite3_stmt* raw = nullptr;
    const int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                      &raw, nullptr);
    StmtHandle stmt(raw);
    if (rc != SQLITE_OK) return std::unexpected(translate(rc));
    if (statements_.size() >= kMaxCachedStatements) statements_.clear();
    return statements_.emplace(std::move(key), std::move(stmt)).first->second.get();
  }

  Result<StmtLease> prepare(std::string_view sql, std::span<const Value> params) {
    auto cached_stmt = cached(sql);
    if (!cached_stmt) return std::unexpected(cached_stmt.error());
    sqlite3_stmt* raw = *cached_stmt;
    StmtLease stmt(raw);
    if (static_cast<int>(params.size()) != sqlite3_bind_parameter_count(raw)) {
      return fail(ErrorCode::kInternal, "wrong number of SQL parameters", "database_error");
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      const int idx = static_cast<int>(i) + 1;
      int brc = SQLITE_OK;
      std::visit(
          [&](const auto& v) {
            using V = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<V, std::nullptr_t>)
              brc = sqlite3_bind_null(raw, idx);
            else if constexpr (std::is_same_v<V, std::int64_t>)
              brc = sqlite3_bind_int64(raw, idx, v);
            else if constexpr (std::is_same_v<V, double>)
              brc = sqlite3_bind_double(raw, idx, v);
            else
              brc = sqlite3_bind_text64(raw, idx, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
          },
          params[i]);
      if (brc != SQLITE_OK) return std::unexpected(translate(brc));
    }
    return stmt;
  }

  static Value column(sqlite3_stmt* s, int i) {
    switch (sqlite3_column_type(s, i)) {
      case SQLITE_INTEGER: return std::int64_t{sqlite3_column_int64(s, i)};
      case SQLITE_FLOAT: return sqlite3_column_double(s, i);
      case SQLITE_NULL: return nullptr;
      default: {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
        return std::string(p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(s, i)));
      }
    }
  }

  DbHandle db_;
  // Declared after db_: finalized before the connection closes.
  std::unordered_map<std::string, StmtHandle> statements_;
};

// Opens one connection: WAL lets readers proceed while one writer writes.
Result<std::unique_ptr<Connection>> open_connection(const std::string& path) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  DbHandle db(raw);
  if (rc != SQLITE_OK) return std::unexpected(translate(rc));
  sqlite3_busy_timeout(db.get(), 10000);
  sqlite3_extended_result_codes(db.get(), 1);
  auto conn = std::make_unique<SqliteConnection>(std::move(db));
  LLMD_TRY(conn->exec_script("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"));
  return std::unique_ptr<Connection>(std::move(conn));
}

class SqliteDatabase final : public PooledDatabase {
 public:
  SqliteDatabase(const std::string& path, int pool_size)
      : PooledDatabase(pool_size, [path] { return open_connection(path); }) {}
  Dialect dialect() const override { return Dialect::kSqlite; }

  // The first connection is opened now, so a bad path fails at start.
  Result<void> init(const std::string& path) {
    auto first = open_connection(path);
    if (!first) return std::unexpected(first.error());
    add_idle(std::move(*first));
    return {};
  }
};

// The database holds password hashes and emails: it is created 0600, and an
// existing file (with its -wal/-shm) readable by others is narrowed to 0600.
// SQLite gives the -wal and -shm files it creates the database file's mode.
Result<void> restrict_to_owner(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return fail(ErrorCode::kUnavailable, "cannot open database file", "database_unavailable");
  ::close(fd);
  for (const std::string& p : {path, path + "-wal", path + "-shm"}) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0 && (st.st_mode & 077) != 0) ::chmod(p.c_str(), st.st_mode & 0700);
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<Database>> open_sqlite(const std::string& path, int pool_size) {
  if (path.empty() || path == ":memory:") {
    return fail(ErrorCode::kInvalidArgument, "database: sqlite needs a file path", "bad_config");
  }
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  LLMD_TRY(restrict_to_owner(path));
  auto db = std::make_unique<SqliteDatabase>(path, pool_size);
  if (auto r = db->init(path); !r) return std::unexpected(r.error());
  return std::unique_ptr<Database>(std::move(db));
}

}  // namespace llmd::store::sqlite
