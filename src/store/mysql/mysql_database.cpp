#include "store/mysql/mysql_database.h"
#include "store/pooled_database.h"
#include "store/service_url.h"

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#include <charconv>
#include <chrono>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/text.h"

namespace llmd::store::mysql {
namespace {

using Clock = std::chrono::steady_clock;

struct MysqlCloser {
  void operator()(MYSQL* m) const { mysql_close(m); }
};
struct StmtCloser {
  void operator()(MYSQL_STMT* s) const { mysql_stmt_close(s); }
};
struct ResCloser {
  void operator()(MYSQL_RES* r) const { mysql_free_result(r); }
};
using MysqlHandle = std::unique_ptr<MYSQL, MysqlCloser>;
using StmtHandle = std::unique_ptr<MYSQL_STMT, StmtCloser>;
using ResHandle = std::unique_ptr<MYSQL_RES, ResCloser>;

// A pooled connection idle longer than this is pinged before use, so a
// server restart shows up as a reconnect rather than as a failed request.
constexpr auto kPingAfterIdle = std::chrono::seconds(5);
// Prepared statements kept per connection (the product uses a few dozen).
constexpr std::size_t kMaxCachedStatements = 128;

bool is_connection_lost(unsigned int e) {
  return e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST || e == CR_CONNECTION_ERROR || e == CR_CONN_HOST_ERROR ||
         e == CR_SERVER_LOST_EXTENDED || e == ER_CONNECTION_KILLED || e == ER_SERVER_SHUTDOWN || e == CR_ERR_NET_READ ||
         e == CR_ERR_NET_WRITE;
}

// The one place MySQL/MariaDB error numbers become llmd errors. The server's
// own text is never passed on: it can quote SQL and row values.
Error translate(unsigned int e) {
  const std::string code = " (MySQL error " + std::to_string(e) + ")";
  switch (e) {
    case ER_DUP_ENTRY:
    case ER_DUP_KEY:
    case ER_DUP_UNIQUE:
    case ER_NO_REFERENCED_ROW:
    case ER_ROW_IS_REFERENCED:
    case ER_ROW_IS_REFERENCED_2:
    case ER_NO_REFERENCED_ROW_2:
    case ER_BAD_NULL_ERROR:
    case ER_CONSTRAINT_FAILED:  // MariaDB CHECK
    case 3819:                  // MySQL 8 ER_CHECK_CONSTRAINT_VIOLATED
      return Error(ErrorCode::kConflict, "constraint violated", "conflict");
    case ER_LOCK_WAIT_TIMEOUT:
    case ER_LOCK_DEADLOCK: return Error(ErrorCode::kUnavailable, "database is busy", std::string(kBusyReason));
    case ER_ACCESS_DENIED_ERROR:
    case ER_DBACCESS_DENIED_ERROR:
      return Error(ErrorCode::kUnavailable, "database refused the login" + code, "database_unavailable");
    case ER_BAD_DB_ERROR:
      return Error(ErrorCode::kUnavailable, "database does not exist" + code, "database_unavailable");
    case ER_CON_COUNT_ERROR:
      return Error(ErrorCode::kUnavailable, "database has too many connections" + code, "database_busy");
    case ER_OPTION_PREVENTS_STATEMENT:
      return Error(ErrorCode::kUnavailable, "database is read-only" + code, "database_unavailable");
    default: break;
  }
  if (is_connection_lost(e) || (e >= CR_MIN_ERROR && e <= CR_MAX_ERROR)) {
    return Error(ErrorCode::kUnavailable, "database connection failed" + code, "database_unavailable");
  }
  return Error(ErrorCode::kInternal, "database error" + code, "database_error");
}

// Splits migration text into statements at top-level `;`, skipping quoted
// text ('...', "...", `...`) and comments (-- ..., # ..., /* ... */).
std::vector<std::string> split_statements(std::string_view sql) {
  std::vector<std::string> out;
  std::string current;
  auto flush = [&] {
    const auto first = current.find_first_not_of(" \t\r\n");
    if (first != std::string::npos) out.push_back(current.substr(first));
    current.clear();
  };
  for (std::size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (c == '\'' || c == '"' || c == '`') {
      const std::size_t end = sql.find(c, i + 1);
      const std::size_t stop = end == std::string_view::npos ? sql.size() : end + 1;
      current.append(sql.substr(i, stop - i));
      i = stop - 1;
    } else if ((c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') || c == '#') {
      const std::size_t end = sql.find('\n', i);
      i = end == std::string_view::npos ? sql.size() : end;
      current.push_back('\n');
    } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      const std::size_t end = sql.find("*/", i + 2);
      i = end == std::string_view::npos ? sql.size() : end + 1;
      current.push_back(' ');
    } else if (c == ';') {
      flush();
    } else {
      current.push_back(c);
    }
  }
  flush();
  return out;
}

// DECIMAL results (SUM of BIGINT, for one) arrive as text: give integers back
// as integers so Row::integer and SQLite agree.
Value decimal_value(const std::string& s) {
  if (s.find_first_of(".eE") == std::string::npos) {
    if (auto v = text::parse_int(s)) return std::int64_t{*v};
  }
  double d = 0;
  std::from_chars(s.data(), s.data() + s.size(), d);
  return d;
}

class MysqlConnection final : public Connection {
 public:
  explicit MysqlConnection(std::shared_ptr<const MysqlUrl> url) : url_(std::move(url)) {}
  ~MysqlConnection() override { drop(); }

  Dialect dialect() const override { return Dialect::kMysql; }

  // (Re)connects and applies the session settings; drops cached statements.
  Result<void> connect() {
    drop();
    tx_lost_ = false;
    MysqlHandle m(mysql_init(nullptr));
    if (!m) return fail(ErrorCode::kInternal, "out of memory", "database_error");
    const unsigned int connect_timeout = 5, io_timeout = 60;
    const my_bool no = 0;
    mysql_options(m.get(), MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
    mysql_options(m.get(), MYSQL_OPT_READ_TIMEOUT, &io_timeout);
    mysql_options(m.get(), MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
    // Reconnection is ours: the library's silent one would lose the session
    // settings and every prepared statement.
    mysql_options(m.get(), MYSQL_OPT_RECONNECT, &no);
    mysql_options(m.get(), MYSQL_SET_CHARSET_NAME, "utf8mb4");
    const MysqlUrl& u = *url_;
    if (!mysql_real_connect(m.get(), u.socket.empty() ? u.host.c_str() : nullptr, u.user.c_str(), u.password.c_str(),
                            u.database.empty() ? nullptr : u.database.c_str(), u.port,
                            u.socket.empty() ? nullptr : u.socket.c_str(), CLIENT_FOUND_ROWS)) {
      return std::unexpected(translate(mysql_errno(m.get())));
    }
    for (const char* setting : {"SET SESSION sql_mode = "
                                "'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_"
                                "SUBSTITUTION,"
                                "NO_BACKSLASH_ESCAPES', SESSION innodb_lock_wait_timeout = 10",
                                "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"}) {
      if (mysql_real_query(m.get(), setting, std::strlen(setting)) != 0) {
        return std::unexpected(translate(mysql_errno(m.get())));
      }
    }
    mysql_ = std::move(m);
    last_used_ = Clock::now();
    return {};
  }

  Result<std::vector<Row>> query(std::string_view sql, std::span<const Value> params) override {
    auto rows = query_once(sql, params);
    // A read can safely run again: when the connection turned out dead
    // outside a transaction, retry once on a new one. (Writes are not
    // retried: the lost one may have been applied.)
    if (!rows && !mysql_ && !tx_lost_ && rows.error().code == ErrorCode::kUnavailable) rows = query_once(sql, params);
    return rows;
  }

  Result<ExecResult> exec(std::string_view sql, std::span<const Value> params) override {
    auto stmt = prepare_and_execute(sql, params);
    if (!stmt) return std::unexpected(stmt.error());
    MYSQL_STMT* s = *stmt;
    ResultGuard guard{s};
    if (mysql_stmt_field_count(s) > 0 && mysql_stmt_store_result(s) != 0) {
      return std::unexpected(failure(mysql_stmt_errno(s)));
    }
    return ExecResult{static_cast<std::int64_t>(mysql_stmt_affected_rows(s)),
                      static_cast<std::int64_t>(mysql_stmt_insert_id(s))};
  }

 private:
  Result<std::vector<Row>> query_once(std::string_view sql, std::span<const Value> params) {
    auto stmt = prepare_and_execute(sql, params);
    if (!stmt) return std::unexpected(stmt.error());
    MYSQL_STMT* s = *stmt;
    ResultGuard guard{s};
    ResHandle meta(mysql_stmt_result_metadata(s));
    if (!meta) return std::vector<Row>{};  // a statement without a result set
    if (mysql_stmt_store_result(s) != 0) return std::unexpected(failure(mysql_stmt_errno(s)));
    return fetch_rows(s, meta.get());
  }

 public:
  Result<void> exec_script(std::string_view sql) override {
    LLMD_TRY(ready());
    for (const auto& statement : split_statements(sql)) LLMD_TRY(text_query(statement));
    return {};
  }

  Result<void> begin() override {
    LLMD_TRY(ready());
    LLMD_TRY(text_query("START TRANSACTION"));
    in_tx_ = true;
    return {};
  }

  Result<void> commit() override {
    if (tx_lost_) {
      tx_lost_ = false;
      return fail(ErrorCode::kUnavailable, "database connection lost during the transaction", "database_unavailable");
    }
    in_tx_ = false;
    return text_query("COMMIT");
  }

  Result<void> rollback() override {
    in_tx_ = false;
    // A lost connection has rolled back on the server already.
    if (tx_lost_ || !mysql_) {
      tx_lost_ = false;
      return {};
    }
    return text_query("ROLLBACK");
  }

 private:
  // Frees a statement's result set however the call ends.
  struct ResultGuard {
    MYSQL_STMT* s;
    ~ResultGuard() { mysql_stmt_free_result(s); }
  };

  // Connects when needed; pings a connection that sat idle in the pool.
  // Inside a transaction nothing is re-established: a reconnect would
  // silently continue the transaction's later statements in autocommit.
  Result<void> ready() {
    if (tx_lost_) {
      return fail(ErrorCode::kUnavailable, "database connection lost during the transaction", "database_unavailable");
    }
    if (!mysql_) return connect();
    const auto now = Clock::now();
    if (!in_tx_ && now - last_used_ > kPingAfterIdle && mysql_ping(mysql_.get()) != 0) return connect();
    last_used_ = now;
    return {};
  }

  // Translates an error of this connection; a lost connection is dropped so
  // the next call reconnects.
  Error failure(unsigned int e) {
    if (is_connection_lost(e)) drop();
    return translate(e);
  }

  void drop() {
    statements_.clear();  // before the connection they belong to
    mysql_.reset();
    tx_lost_ = tx_lost_ || in_tx_;
    in_tx_ = false;
  }

  Result<void> text_query(std::string_view sql) {
    if (!mysql_) return fail(ErrorCode::kUnavailable, "database connection lost", "database_unavailable");
    if (mysql_real_query(mysql_.get(), sql.data(), sql.size()) != 0)
      return std::unexpected(failure(mysql_errno(mysql_.get())));
    // Drain whatever the statement returned so the connection is usable.
    do {
      ResHandle r(mysql_store_result(mysql_.get()));
    } while (mysql_next_result(mysql_.get()) == 0);
    if (mysql_errno(mysql_.get()) != 0) return std::unexpected(failure(mysql_errno(mysql_.get())));
    return {};
  }

  // A prepared statement for `sql` (cached). Preparing runs nothing, so when
  // it finds the connection gone outside a transaction it reconnects once.
  Result<MYSQL_STMT*> prepared(std::string_view sql) {
    const std::string key(sql);
    if (auto it = statements_.find(key); it != statements_.end()) return it->second.get();
    for (int attempt = 0;; ++attempt) {
      StmtHandle s(mysql_stmt_init(mysql_.get()));
      if (!s) return fail(ErrorCode::kInternal, "out of memory", "database_error");
      if (mysql_stmt_prepare(s.get(), sql.data(), sql.size()) != 0) {
        const unsigned int e = mysql_stmt_errno(s.get());
        s.reset();
        if (attempt == 0 && !in_tx_ && is_connection_lost(e)) {
          LLMD_TRY(connect());
          continue;
        }
        return std::unexpected(failure(e));
      }
      const my_bool update_max_length = 1;  // sizes text buffers in fetch_rows
      mysql_stmt_attr_set(s.get(), STMT_ATTR_UPDATE_MAX_LENGTH, &update_max_length);
      if (statements_.size() >= kMaxCachedStatements) statements_.clear();
      MYSQL_STMT* raw = s.get();
      statements_.emplace(key, std::move(s));
      return raw;
    }
  }

  Result<MYSQL_STMT*> prepare_and_execute(std::string_view sql, std::span<const Value> params) {
    LLMD_TRY(ready());
    auto stmt = prepared(sql);
    if (!stmt) return stmt;
    MYSQL_STMT* s = *stmt;
    if (mysql_stmt_param_count(s) != params.size()) {
      return fail(ErrorCode::kInternal, "wrong number of SQL parameters", "database_error");
    }
    std::vector<MYSQL_BIND> binds(params.size());
    std::vector<unsigned long> lengths(params.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
      MYSQL_BIND& b = binds[i];
      std::memset(&b, 0, sizeof b);
      std::visit(
          [&](const auto& v) {
            using V = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<V, std::nullptr_t>) {
              b.buffer_type = MYSQL_TYPE_NULL;
            } else if constexpr (std::is_same_v<V, std::int64_t>) {
              b.buffer_type = MYSQL_TYPE_LONGLONG;
              b.buffer = const_cast<std::int64_t*>(&v);
            } else if constexpr (std::is_same_v<V, double>) {
              b.buffer_type = MYSQL_TYPE_DOUBLE;
              b.buffer = const_cast<double*>(&v);
            } else {
              lengths[i] = v.size();
              b.buffer_type = MYSQL_TYPE_STRING;
              b.buffer = const_cast<char*>(v.data());
              b.buffer_length = v.size();
              b.length = &lengths[i];
            }
          },
          params[i]);
    }
    if (!binds.empty() && mysql_stmt_bind_param(s, binds.data()) != 0) {
      return std::unexpected(failure(mysql_stmt_errno(s)));
    }
    if (mysql_stmt_execute(s) != 0) return std::unexpected(failure(mysql_stmt_errno(s)));
    return s;
  }

  Result<std::vector<Row>> fetch_rows(MYSQL_STMT* s, MYSQL_RES* meta) {
    enum class Kind { kInteger, kReal, kDecimal, kText };
    struct Cell {
      Kind kind = Kind::kText;
      std::int64_t integer = 0;
      double real = 0;
      std::vector<char> text;
      unsigned long length = 0;
      my_bool is_null = 0;
      my_bool error = 0;
    };
    const unsigned int n = mysql_num_fields(meta);
    const MYSQL_FIELD* fields = mysql_fetch_fields(meta);
    std::vector<Cell> cells(n);
    std::vector<MYSQL_BIND> binds(n);
    for (unsigned int i = 0; i < n; ++i) {
      Cell& c = cells[i];
      MYSQL_BIND& b = binds[i];
      std::memset(&b, 0, sizeof b);
      switch (fields[i].type) {
        case MYSQL_TYPE_TINY:
        case MYSQL_TYPE_SHORT:
        case MYSQL_TYPE_LONG:
        case MYSQL_TYPE_INT24:
        case MYSQL_TYPE_LONGLONG:
        case MYSQL_TYPE_YEAR:
          c.kind = Kind::kInteger;
          b.buffer_type = MYSQL_TYPE_LONGLONG;
          b.buffer = &c.integer;
          b.is_unsigned = (fields[i].flags & UNSIGNED_FLAG) != 0;
          break;
        case MYSQL_TYPE_FLOAT:
        case MYSQL_TYPE_DOUBLE:
          c.kind = Kind::kReal;
          b.buffer_type = MYSQL_TYPE_DOUBLE;
          b.buffer = &c.real;
          break;
        default:
          c.kind = fields[i].type == MYSQL_TYPE_NEWDECIMAL || fields[i].type == MYSQL_TYPE_DECIMAL ? Kind::kDecimal
                                                                                                   : Kind::kText;
          c.text.resize(std::max<unsigned long>(1, fields[i].max_length));
          b.buffer_type = MYSQL_TYPE_STRING;
          b.buffer = c.text.data();
          b.buffer_length = c.text.size();
          break;
      }
      b.length = &c.length;
      b.is_null = &c.is_null;
      b.error = &c.error;
    }
    if (n > 0 && mysql_stmt_bind_result(s, binds.data()) != 0) return std::unexpected(failure(mysql_stmt_errno(s)));
    std::vector<Row> rows;
    while (true) {
      const int rc = mysql_stmt_fetch(s);
      if (rc == MYSQL_NO_DATA) break;
      if (rc == 1) return std::unexpected(failure(mysql_stmt_errno(s)));
      Row row;
      row.columns.reserve(n);
      for (unsigned int i = 0; i < n; ++i) {
        Cell& c = cells[i];
        if (c.is_null) {
          row.columns.emplace_back(nullptr);
          continue;
        }
        switch (c.kind) {
          case Kind::kInteger: row.columns.emplace_back(c.integer); break;
          case Kind::kReal: row.columns.emplace_back(c.real); break;
          case Kind::kDecimal:
          case Kind::kText: {
            std::string value;
            if (c.length > c.text.size()) {
              // max_length said less than the row holds (should not happen):
              // fetch the whole column into a buffer of the right size.
              value.resize(c.length);
              MYSQL_BIND whole;
              std::memset(&whole, 0, sizeof whole);
              whole.buffer_type = MYSQL_TYPE_STRING;
              whole.buffer = value.data();
              whole.buffer_length = value.size();
              if (mysql_stmt_fetch_column(s, &whole, i, 0) != 0) return std::unexpected(failure(mysql_stmt_errno(s)));
            } else {
              value.assign(c.text.data(), c.length);
            }
            if (c.kind == Kind::kDecimal)
              row.columns.push_back(decimal_value(value));
            else
              row.columns.emplace_back(std::move(value));
            break;
          }
        }
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }

  std::shared_ptr<const MysqlUrl> url_;
  MysqlHandle mysql_;  // null while disconnected
  // Declared after mysql_ so they are closed before it.
  std::unordered_map<std::string, StmtHandle> statements_;
  bool in_tx_ = false;    // between begin() and commit()/rollback()
  bool tx_lost_ = false;  // the connection died inside a transaction
  Clock::time_point last_used_{};
};

// Connections beyond the first are created unconnected (outside the pool's
// lock) and connect on first use.
class MysqlDatabase final : public PooledDatabase {
 public:
  MysqlDatabase(std::shared_ptr<const MysqlUrl> url, int pool_size)
      : PooledDatabase(
            pool_size,
            [url]() -> Result<std::unique_ptr<Connection>> { return std::make_unique<MysqlConnection>(url); }),
        url_(std::move(url)) {}

  Dialect dialect() const override { return Dialect::kMysql; }

  // The first connection connects now, so a bad URL fails at start.
  Result<void> init() {
    auto first = std::make_unique<MysqlConnection>(url_);
    LLMD_TRY(first->connect());
    add_idle(std::move(first));
    return {};
  }

 private:
  std::shared_ptr<const MysqlUrl> url_;
};

}  // namespace

Result<MysqlUrl> parse_mysql_url(std::string_view url) {
  auto bad = [](const std::string& what) {
    return fail(ErrorCode::kInvalidArgument, "database: " + what + " (expected mysql://user:password@host:port/db)",
                "bad_config");
  };
  auto parts = parse_service_url(url, "mysql");
  if (!parts) return bad(parts.error().message);
  MysqlUrl out;
  out.user = std::move(parts->user);
  out.password = std::move(parts->password);
  if (!parts->host.empty()) out.host = std::move(parts->host);
  if (parts->port) out.port = static_cast<unsigned int>(*parts->port);
  out.database = std::move(parts->path);
  for (auto& [key, value] : parts->params) {
    if (key != "socket") return bad("unknown parameter '" + key + "'");
    out.socket = std::move(value);
  }
  if (out.database.empty()) return bad("no database name");
  return out;
}

Result<std::unique_ptr<Database>> open_mysql(const std::string& url, int pool_size) {
  auto parsed = parse_mysql_url(url);
  if (!parsed) return std::unexpected(parsed.error());
  // mysql_init() initialises the library on first use, but not thread-safely.
  static std::once_flag library_once;
  std::call_once(library_once, [] { mysql_library_init(0, nullptr, nullptr); });
  auto db = std::make_unique<MysqlDatabase>(std::make_shared<const MysqlUrl>(std::move(*parsed)), pool_size);
  if (auto r = db->init(); !r) return std::unexpected(r.error());
  return std::unique_ptr<Database>(std::move(db));
}

}  // namespace llmd::store::mysql
