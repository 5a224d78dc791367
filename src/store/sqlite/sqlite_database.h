// SQLite backend of store::Database: WAL mode, busy timeout, foreign keys on,
// prepared statements only.
#pragma once

#include <memory>
#include <string>

#include "store/database.h"

namespace llmd::store::sqlite {

// Opens (creating if needed) the database file at `path` with a pool of
// connections. ":memory:" is refused: pooled connections would not share it.
Result<std::unique_ptr<Database>> open_sqlite(const std::string& path, int pool_size);

}  // namespace llmd::store::sqlite
