// The schema, as versioned migrations. Append only: never edit a migration
// that has shipped; add a new version instead. Each has SQLite and MySQL text.
#include "store/database.h"

namespace llmd::store {

const std::vector<Migration>& all_migrations() {
  static const std::vector<Migration> kMigrations = {
      {1, "instance metadata",
       "CREATE TABLE llmd_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL);",
       "CREATE TABLE llmd_meta (name VARCHAR(100) PRIMARY KEY, value TEXT NOT NULL, "
       "updated_at BIGINT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;"},
  };
  return kMigrations;
}

}  // namespace llmd::store
