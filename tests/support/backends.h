// Storage tests run against every backend: parameterise a suite over
// Backend and take each test's database from fresh_database_url().
//
//   INSTANTIATE_TEST_SUITE_P(Backends, MyTest,
//   ::testing::ValuesIn(all_backends()), backend_name);
#pragma once

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/mariadb_server.h"
#include "support/test_support.h"

namespace llmd::testing {

enum class Backend { kSqlite, kMariaDb };

inline std::vector<Backend> all_backends() { return {Backend::kSqlite, Backend::kMariaDb}; }

inline std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "sqlite" : "mariadb";
}

// URL of a new, empty database: a file in `dir` for SQLite, a new database
// on this process's private MariaDB server otherwise (started on first use).
// Fails the current test (and returns "") when the server cannot start.
inline std::string fresh_database_url(Backend backend, const TempDir& dir) {
  static int n = 0;
  if (backend == Backend::kSqlite) return "sqlite:" + (dir / ("db" + std::to_string(++n) + ".db")).string();
  auto& server = MariaDbServer::shared();
  EXPECT_TRUE(server.started()) << server.error();
  const std::string url = server.create_database();
  EXPECT_FALSE(url.empty()) << "could not create a MariaDB database";
  return url;
}

}  // namespace llmd::testing
