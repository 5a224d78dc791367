// The schema, as versioned migrations. Append only: never edit a migration
// that has shipped; add a new version instead. Each has SQLite and MySQL text.
#include "store/database.h"

namespace llmd::store {

const std::vector<Migration>& all_migrations() {
  static const std::vector<Migration> kMigrations = {
      {1, "instance metadata",
       "CREATE TABLE llmd_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL);",
       "CREATE TABLE IF NOT EXISTS llmd_meta (name VARCHAR(100) PRIMARY KEY, value TEXT NOT NULL, "
       "updated_at BIGINT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;"},

      // Accounts and billing. users.balance caches SUM(ledger.delta) and is
      // updated in the same transaction as every ledger insert; users.reserved
      // is the sum of pending reservations. Available = balance - reserved.
      // (`usage` is a reserved word in MySQL, hence usage_records.) MySQL
      // commits each CREATE at once, so its text is written to be re-runnable.
      {2, "accounts and billing",
       R"(CREATE TABLE users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  username TEXT NOT NULL UNIQUE COLLATE NOCASE,
  email TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  role TEXT NOT NULL DEFAULT 'user',
  disabled INTEGER NOT NULL DEFAULT 0,
  balance INTEGER NOT NULL DEFAULT 0,
  reserved INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  CHECK (balance >= 0), CHECK (reserved >= 0), CHECK (reserved <= balance));
CREATE TABLE api_keys (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL REFERENCES users(id),
  name TEXT NOT NULL,
  key_hash TEXT NOT NULL UNIQUE,
  prefix TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER);
CREATE INDEX api_keys_user ON api_keys(user_id);
CREATE TABLE ledger (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL REFERENCES users(id),
  delta INTEGER NOT NULL,
  reason TEXT NOT NULL,
  request_id TEXT NOT NULL DEFAULT '',
  task TEXT NOT NULL DEFAULT '',
  model TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL);
CREATE INDEX ledger_user ON ledger(user_id, created_at);
CREATE TABLE reservations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL REFERENCES users(id),
  amount INTEGER NOT NULL,
  request_id TEXT NOT NULL DEFAULT '',
  instance TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending',
  created_at INTEGER NOT NULL);
CREATE INDEX reservations_state ON reservations(state, instance);
CREATE TABLE usage_records (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  request_id TEXT NOT NULL,
  user_id INTEGER NOT NULL,
  route TEXT NOT NULL,
  task TEXT NOT NULL,
  model TEXT NOT NULL DEFAULT '',
  instance TEXT NOT NULL DEFAULT '',
  prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  charged INTEGER NOT NULL DEFAULT 0,
  status INTEGER NOT NULL,
  latency_ms INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL);
CREATE INDEX usage_user ON usage_records(user_id, created_at);
CREATE INDEX usage_time ON usage_records(created_at);
)",
       R"(CREATE TABLE IF NOT EXISTS users (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  username VARCHAR(32) NOT NULL UNIQUE,
  email VARCHAR(254) NOT NULL,
  password_hash VARCHAR(100) NOT NULL,
  role VARCHAR(16) NOT NULL DEFAULT 'user',
  disabled TINYINT NOT NULL DEFAULT 0,
  balance BIGINT NOT NULL DEFAULT 0,
  reserved BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  CHECK (balance >= 0), CHECK (reserved >= 0), CHECK (reserved <= balance)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
CREATE TABLE IF NOT EXISTS api_keys (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT NOT NULL,
  name VARCHAR(100) NOT NULL,
  key_hash CHAR(64) NOT NULL UNIQUE,
  prefix VARCHAR(16) NOT NULL,
  created_at BIGINT NOT NULL,
  last_used_at BIGINT NULL,
  INDEX api_keys_user (user_id),
  FOREIGN KEY (user_id) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS ledger (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT NOT NULL,
  delta BIGINT NOT NULL,
  reason VARCHAR(200) NOT NULL,
  request_id VARCHAR(128) NOT NULL DEFAULT '',
  task VARCHAR(32) NOT NULL DEFAULT '',
  model VARCHAR(128) NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  INDEX ledger_user (user_id, created_at),
  FOREIGN KEY (user_id) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS reservations (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT NOT NULL,
  amount BIGINT NOT NULL,
  request_id VARCHAR(128) NOT NULL DEFAULT '',
  instance VARCHAR(64) NOT NULL,
  state VARCHAR(16) NOT NULL DEFAULT 'pending',
  created_at BIGINT NOT NULL,
  INDEX reservations_state (state, instance),
  FOREIGN KEY (user_id) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS usage_records (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  request_id VARCHAR(128) NOT NULL,
  user_id BIGINT NOT NULL,
  route VARCHAR(200) NOT NULL,
  task VARCHAR(32) NOT NULL,
  model VARCHAR(128) NOT NULL DEFAULT '',
  instance VARCHAR(200) NOT NULL DEFAULT '',
  prompt_tokens BIGINT NOT NULL DEFAULT 0,
  completion_tokens BIGINT NOT NULL DEFAULT 0,
  charged BIGINT NOT NULL DEFAULT 0,
  status INT NOT NULL,
  latency_ms BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  INDEX usage_user (user_id, created_at),
  INDEX usage_time (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
)"},

      // Long-running tasks (subtitle jobs) and uploaded files. A job keeps
      // its input and its resume state as JSON text, so a restarted backend
      // continues from the last finished step. Ids are random strings
      // (never guessable sequence numbers); every lookup is by id AND owner.
      {3, "jobs and uploads",
       R"(CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  progress_done INTEGER NOT NULL DEFAULT 0,
  progress_total INTEGER NOT NULL DEFAULT 0,
  input TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT '',
  result_path TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '',
  reservation_id INTEGER NOT NULL DEFAULT 0,
  tokens_charged INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL);
CREATE INDEX jobs_user ON jobs(user_id, created_at);
CREATE INDEX jobs_status ON jobs(status);
CREATE TABLE uploads (
  id TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  path TEXT NOT NULL,
  original_name TEXT NOT NULL DEFAULT '',
  content_type TEXT NOT NULL DEFAULT '',
  size INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  created_at INTEGER NOT NULL);
CREATE INDEX uploads_user ON uploads(user_id, created_at);
)",
       R"(CREATE TABLE IF NOT EXISTS jobs (
  id VARCHAR(64) PRIMARY KEY,
  user_id BIGINT NOT NULL,
  kind VARCHAR(32) NOT NULL,
  status VARCHAR(16) NOT NULL,
  progress_done BIGINT NOT NULL DEFAULT 0,
  progress_total BIGINT NOT NULL DEFAULT 0,
  input MEDIUMTEXT NOT NULL,
  state MEDIUMTEXT NOT NULL DEFAULT '',
  result_path VARCHAR(1024) NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '',
  reservation_id BIGINT NOT NULL DEFAULT 0,
  tokens_charged BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  INDEX jobs_user (user_id, created_at),
  INDEX jobs_status (status),
  FOREIGN KEY (user_id) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS uploads (
  id VARCHAR(64) PRIMARY KEY,
  user_id BIGINT NOT NULL,
  path VARCHAR(1024) NOT NULL,
  original_name VARCHAR(255) NOT NULL DEFAULT '',
  content_type VARCHAR(128) NOT NULL DEFAULT '',
  size BIGINT NOT NULL,
  sha256 CHAR(64) NOT NULL,
  created_at BIGINT NOT NULL,
  INDEX uploads_user (user_id, created_at),
  FOREIGN KEY (user_id) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
)"},

      // A per-user token epoch: every JWT carries the epoch it was issued
      // under and is refused once the user's epoch has moved on (disabling an
      // account bumps it, so re-enabling does not revive old tokens).
      {4, "user token epoch", "ALTER TABLE users ADD COLUMN token_epoch INTEGER NOT NULL DEFAULT 0;",
       "ALTER TABLE users ADD COLUMN IF NOT EXISTS token_epoch BIGINT NOT NULL DEFAULT 0;"},

      // A password someone else chose (the generated first admin password,
      // an administrator's reset) is to be replaced at the next login.
      {5, "must change password", "ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;",
       "ALTER TABLE users ADD COLUMN IF NOT EXISTS must_change_password TINYINT NOT NULL DEFAULT 0;"},

      // Chat conversations per user (SPEC §4.5c). Message ids ascend in the
      // order messages were written. Message text is indexed for search: an
      // FTS5 trigram index on SQLite (any substring of 3+ characters, CJK
      // included), kept in step by triggers; a FULLTEXT index on MySQL.
      // `bytes` caches the text size an administrator may see.
      {6, "chat conversations",
       R"(CREATE TABLE conversations (
  id TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  title TEXT NOT NULL DEFAULT '',
  model TEXT NOT NULL DEFAULT '',
  system_prompt TEXT NOT NULL DEFAULT '',
  message_count INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL);
CREATE INDEX conversations_user ON conversations(user_id, updated_at, id);
CREATE INDEX conversations_updated ON conversations(updated_at);
CREATE TABLE conversation_messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  conversation_id TEXT NOT NULL REFERENCES conversations(id),
  user_id INTEGER NOT NULL REFERENCES users(id),
  role TEXT NOT NULL,
  content TEXT NOT NULL,
  reasoning_content TEXT NOT NULL DEFAULT '',
  model TEXT NOT NULL DEFAULT '',
  prompt_tokens INTEGER,
  completion_tokens INTEGER,
  tokens_consumed INTEGER NOT NULL DEFAULT 0,
  finish_reason TEXT,
  created_at INTEGER NOT NULL);
CREATE INDEX conversation_messages_conversation ON conversation_messages(conversation_id, id);
CREATE INDEX conversation_messages_user ON conversation_messages(user_id);
CREATE INDEX conversation_messages_pending ON conversation_messages(finish_reason);
CREATE VIRTUAL TABLE conversation_messages_fts USING fts5(
  content, content='conversation_messages', content_rowid='id', tokenize='trigram');
CREATE TRIGGER conversation_messages_fts_insert AFTER INSERT ON conversation_messages BEGIN
  INSERT INTO conversation_messages_fts(rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER conversation_messages_fts_delete AFTER DELETE ON conversation_messages BEGIN
  INSERT INTO conversation_messages_fts(conversation_messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER conversation_messages_fts_update AFTER UPDATE OF content ON conversation_messages BEGIN
  INSERT INTO conversation_messages_fts(conversation_messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
  INSERT INTO conversation_messages_fts(rowid, content) VALUES (new.id, new.content);
END;
)",
       R"(CREATE TABLE IF NOT EXISTS conversations (
  id VARCHAR(64) PRIMARY KEY,
  user_id BIGINT NOT NULL,
  title VARCHAR(1024) NOT NULL DEFAULT '',
  model VARCHAR(255) NOT NULL DEFAULT '',
  system_prompt MEDIUMTEXT NOT NULL DEFAULT '',
  message_count BIGINT NOT NULL DEFAULT 0,
  bytes BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  INDEX conversations_user (user_id, updated_at, id),
  INDEX conversations_updated (updated_at),
  FOREIGN KEY (user_id) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS conversation_messages (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  conversation_id VARCHAR(64) NOT NULL,
  user_id BIGINT NOT NULL,
  role VARCHAR(16) NOT NULL,
  content MEDIUMTEXT NOT NULL,
  reasoning_content MEDIUMTEXT NOT NULL DEFAULT '',
  model VARCHAR(255) NOT NULL DEFAULT '',
  prompt_tokens BIGINT NULL,
  completion_tokens BIGINT NULL,
  tokens_consumed BIGINT NOT NULL DEFAULT 0,
  finish_reason VARCHAR(32) NULL,
  created_at BIGINT NOT NULL,
  INDEX conversation_messages_conversation (conversation_id, id),
  INDEX conversation_messages_user (user_id),
  INDEX conversation_messages_pending (finish_reason),
  FULLTEXT INDEX conversation_messages_text (content),
  FOREIGN KEY (conversation_id) REFERENCES conversations(id),
  FOREIGN KEY (user_id) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
)"},

      // Groups (classes), scoped API keys and redemption codes (SPEC §4.5b).
      // A key's budget is held like a balance: budget_used (settled in its
      // current period, budget_period_key) + budget_reserved (calls in flight)
      // never exceeds budget. An allowance credit is unique per group, member
      // and period: the insert is what makes crediting happen once across
      // instances. `user_groups`: GROUPS is a reserved word in MySQL 8.
      {7, "groups, scoped keys, redemption codes",
       R"(ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
ALTER TABLE api_keys ADD COLUMN budget INTEGER;
ALTER TABLE api_keys ADD COLUMN budget_period TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN budget_period_key TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN budget_used INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN budget_reserved INTEGER NOT NULL DEFAULT 0 CHECK (budget_reserved >= 0);
ALTER TABLE api_keys ADD COLUMN models TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN subnets TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN rpm INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN group_id INTEGER;
ALTER TABLE reservations ADD COLUMN api_key_id INTEGER;
ALTER TABLE ledger ADD COLUMN api_key_id INTEGER;
CREATE INDEX ledger_key ON ledger(api_key_id);
CREATE TABLE user_groups (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  owner_id INTEGER NOT NULL REFERENCES users(id),
  models TEXT NOT NULL DEFAULT '',
  price_ratio REAL NOT NULL DEFAULT 1.0,
  rpm INTEGER NOT NULL DEFAULT 0,
  tpm INTEGER NOT NULL DEFAULT 0,
  allowance_amount INTEGER NOT NULL DEFAULT 0,
  allowance_period TEXT NOT NULL DEFAULT '',
  time_zone TEXT NOT NULL DEFAULT 'UTC',
  pool INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  CHECK (pool >= 0));
CREATE INDEX user_groups_owner ON user_groups(owner_id);
CREATE TABLE group_members (
  group_id INTEGER NOT NULL REFERENCES user_groups(id),
  user_id INTEGER NOT NULL REFERENCES users(id),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (group_id, user_id));
CREATE INDEX group_members_user ON group_members(user_id);
CREATE TABLE allowance_credits (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  group_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL REFERENCES users(id),
  period_key TEXT NOT NULL,
  period_start INTEGER NOT NULL,
  period_end INTEGER NOT NULL,
  amount INTEGER NOT NULL,
  remaining INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'open',
  created_at INTEGER NOT NULL,
  UNIQUE (group_id, user_id, period_key));
CREATE INDEX allowance_credits_user ON allowance_credits(user_id, state);
CREATE TABLE group_ledger (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  group_id INTEGER NOT NULL,
  delta INTEGER NOT NULL,
  reason TEXT NOT NULL,
  user_id INTEGER,
  request_id TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL);
CREATE INDEX group_ledger_group ON group_ledger(group_id, id);
CREATE TABLE redemption_codes (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  code_hash TEXT NOT NULL UNIQUE,
  prefix TEXT NOT NULL,
  amount INTEGER NOT NULL,
  group_id INTEGER,
  created_by INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  redeemed_by INTEGER,
  redeemed_at INTEGER);
CREATE INDEX redemption_codes_group ON redemption_codes(group_id, id);
)",
       R"(ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS expires_at BIGINT NULL;
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS budget BIGINT NULL;
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS budget_period VARCHAR(8) NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS budget_period_key VARCHAR(16) NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS budget_used BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS budget_reserved BIGINT NOT NULL DEFAULT 0 CHECK (budget_reserved >= 0);
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS models TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS subnets TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS rpm BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS group_id BIGINT NULL;
ALTER TABLE reservations ADD COLUMN IF NOT EXISTS api_key_id BIGINT NULL;
ALTER TABLE ledger ADD COLUMN IF NOT EXISTS api_key_id BIGINT NULL;
CREATE INDEX IF NOT EXISTS ledger_key ON ledger(api_key_id);
CREATE TABLE IF NOT EXISTS user_groups (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) NOT NULL,
  owner_id BIGINT NOT NULL,
  models TEXT NOT NULL DEFAULT '',
  price_ratio DOUBLE NOT NULL DEFAULT 1.0,
  rpm BIGINT NOT NULL DEFAULT 0,
  tpm BIGINT NOT NULL DEFAULT 0,
  allowance_amount BIGINT NOT NULL DEFAULT 0,
  allowance_period VARCHAR(8) NOT NULL DEFAULT '',
  time_zone VARCHAR(64) NOT NULL DEFAULT 'UTC',
  pool BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  CHECK (pool >= 0),
  INDEX user_groups_owner (owner_id),
  FOREIGN KEY (owner_id) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS group_members (
  group_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (group_id, user_id),
  INDEX group_members_user (user_id),
  FOREIGN KEY (group_id) REFERENCES user_groups(id),
  FOREIGN KEY (user_id) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS allowance_credits (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  group_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  period_key VARCHAR(16) NOT NULL,
  period_start BIGINT NOT NULL,
  period_end BIGINT NOT NULL,
  amount BIGINT NOT NULL,
  remaining BIGINT NOT NULL,
  state VARCHAR(8) NOT NULL DEFAULT 'open',
  created_at BIGINT NOT NULL,
  UNIQUE KEY allowance_credits_once (group_id, user_id, period_key),
  INDEX allowance_credits_user (user_id, state)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS group_ledger (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  group_id BIGINT NOT NULL,
  delta BIGINT NOT NULL,
  reason VARCHAR(200) NOT NULL,
  user_id BIGINT NULL,
  request_id VARCHAR(128) NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  INDEX group_ledger_group (group_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS redemption_codes (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  code_hash CHAR(64) NOT NULL UNIQUE,
  prefix VARCHAR(16) NOT NULL,
  amount BIGINT NOT NULL,
  group_id BIGINT NULL,
  created_by BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NULL,
  redeemed_by BIGINT NULL,
  redeemed_at BIGINT NULL,
  INDEX redemption_codes_group (group_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
)"},
  };
  return kMigrations;
}

}  // namespace llmd::store
