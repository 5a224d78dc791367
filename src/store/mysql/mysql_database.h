// MySQL/MariaDB backend of store::Database over MariaDB Connector/C:
// prepared statements only (cached per connection), utf8mb4, autocommit
// except between begin() and commit(), READ COMMITTED transactions, and
// reconnection of connections that the server dropped.
//
// Session settings every connection gets (so both backends behave alike):
//   * CLIENT_FOUND_ROWS: affected_rows counts matched rows, as SQLite does
//     (MySQL would otherwise report 0 for an UPDATE that changes nothing);
//   * sql_mode STRICT_TRANS_TABLES + NO_BACKSLASH_ESCAPES: a backslash in a
//     literal is just a backslash (`LIKE ? ESCAPE '\'` means what it means in
//     SQLite), and bad data is an error rather than a silent truncation;
//   * innodb_lock_wait_timeout 10 s: a request waits at most that for a row.
//
// Unlike SQLite, MySQL commits DDL implicitly: a migration that fails half
// way leaves its earlier statements applied (MySQL migrations therefore use
// CREATE TABLE IF NOT EXISTS and can simply be re-run).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "store/database.h"

namespace llmd::store::mysql {

// The parts of "mysql://user:password@host:port/database?socket=/path".
// user and password may be percent-encoded; port defaults to 3306; with
// `socket` the host is ignored and the unix socket is used.
struct MysqlUrl {
  std::string user;
  std::string password;
  std::string host = "127.0.0.1";
  unsigned int port = 3306;
  std::string database;
  std::string socket;
};

// Parses a mysql:// URL. Errors: kInvalidArgument (reason bad_config) naming
// what is wrong, never echoing the password.
Result<MysqlUrl> parse_mysql_url(std::string_view url);

// Connects (one connection at once, to report a bad URL, password or an
// unreachable server at start; the rest of the pool on demand, up to
// `pool_size`). Errors: kInvalidArgument for a malformed URL, kUnavailable
// when the server cannot be reached or refuses the login.
Result<std::unique_ptr<Database>> open_mysql(const std::string& url, int pool_size);

}  // namespace llmd::store::mysql
