// `llmd admin user-add | grant | set-role | disable | list | export-user`: operator tasks
// straight on the configured database (the server may be running; every
// change goes through the same services and ledger as the HTTP API).
#include <CLI/CLI.hpp>

#include <sys/stat.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "app/state_files.h"
#include "auth/limiter.h"
#include "auth/service.h"
#include "auth/users.h"
#include "billing/accounts.h"
#include "cli/commands.h"
#include "cli/user_export.h"
#include "config/config.h"
#include "store/database.h"

namespace llmd::cli {
namespace {

struct AdminOptions {
  std::string config_path;
  std::string username, email, role = "user", reason, search, new_role, out_path;
  std::int64_t tokens = -1;
  std::int64_t amount = 0;
  bool password_stdin = false;
  bool enable = false;
  bool json = false;
  bool must_change = false;
};

// A password for user-add and passwd: the first line of stdin, else
// LLMD_NEW_PASSWORD, else generated (and printed once).
struct NewPassword {
  std::string text;
  bool generated = false;
};

NewPassword read_new_password(const AdminOptions& o) {
  NewPassword p;
  if (o.password_stdin) {
    std::getline(std::cin, p.text);
  } else if (const char* env = std::getenv("LLMD_NEW_PASSWORD"); env && *env) {
    p.text = env;
  } else {
    p.text = auth::generate_secret().substr(0, 20);
    p.generated = true;
    std::printf("generated password (shown once): %s\n", p.text.c_str());
  }
  return p;
}

// Everything an admin command needs, opened from the config.
struct AdminContext {
  config::Config config;
  std::unique_ptr<store::Database> db;
  std::unique_ptr<auth::UserStore> users;
  std::unique_ptr<auth::LoginThrottle> throttle;
  std::unique_ptr<auth::MemoryRateLimiter> limiter;
  std::unique_ptr<auth::AuthService> auth;
  std::unique_ptr<billing::Accounts> accounts;
};

int fail_with(const std::string& message, int code = 1) {
  std::fprintf(stderr, "llmd admin: %s\n", message.c_str());
  return code;
}

Result<AdminContext> open_context(const std::string& config_path) {
  auto loaded = config::load_config_file(config_path);
  if (!loaded) return std::unexpected(loaded.error());
  AdminContext c;
  c.config = std::move(loaded->config);
  auto db = store::Database::open(c.config.database, 2);
  if (!db) return std::unexpected(db.error());
  c.db = std::move(*db);
  if (auto v = c.db->migrate(); !v) return std::unexpected(v.error());
  c.users = std::make_unique<auth::UserStore>(*c.db);
  c.throttle = std::make_unique<auth::LoginThrottle>(1000, std::chrono::seconds(1));
  c.limiter = std::make_unique<auth::MemoryRateLimiter>();
  // The CLI never issues tokens; the secret only has to satisfy the service.
  c.auth =
      std::make_unique<auth::AuthService>(*c.users,
                                          auth::AuthOptions{auth::generate_secret(), c.config.auth.jwt_ttl, true,
                                                            c.config.auth.initial_tokens, c.config.auth.bcrypt_cost, 0},
                                          *c.throttle, *c.limiter);
  c.accounts = std::make_unique<billing::Accounts>(*c.db, "admin-cli");
  return c;
}

void print_user(const auth::User& u) {
  std::printf("%-6lld %-32s %-6s %12lld %s%s\n", static_cast<long long>(u.id), u.username.c_str(), u.role.c_str(),
              static_cast<long long>(u.available_tokens()), u.email.c_str(), u.disabled ? "  (disabled)" : "");
}

// Writes a file only its owner may read (it holds someone's personal data),
// replacing `path` only once it is complete.
bool write_private_file(const std::string& path, const std::string& text) {
  const std::string partial = path + ".partial";
  std::remove(partial.c_str());  // a previous attempt's; "x" below never writes through a planted link
  std::FILE* f = std::fopen(partial.c_str(), "wx");
  if (f == nullptr) return false;
  ::fchmod(::fileno(f), 0600);
  const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const bool closed = std::fclose(f) == 0;
  if (!written || !closed || std::rename(partial.c_str(), path.c_str()) != 0) {
    std::remove(partial.c_str());
    return false;
  }
  return true;
}

int run_admin(const std::string& action, const AdminOptions& o) {
  auto ctx = open_context(o.config_path);
  if (!ctx) return fail_with(ctx.error().message, ctx.error().reason == "bad_config" ? 2 : 1);
  auto& c = *ctx;

  if (action == "list") {
    auto users = c.users->list(o.search, 1000, 0);
    if (!users) return fail_with(users.error().message);
    if (o.json) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& u : *users) {
        list.push_back({{"id", u.id},
                        {"username", u.username},
                        {"email", u.email},
                        {"role", u.role},
                        {"tokens", u.available_tokens()},
                        {"disabled", u.disabled}});
      }
      std::cout << list.dump(2) << "\n";
    } else {
      std::printf("%-6s %-32s %-6s %12s %s\n", "ID", "USERNAME", "ROLE", "TOKENS", "EMAIL");
      for (const auto& u : *users) print_user(u);
    }
    return 0;
  }
  if (action == "user-add") {
    const NewPassword password = read_new_password(o);
    const std::int64_t tokens = o.tokens >= 0 ? o.tokens : c.config.auth.initial_tokens;
    auto user = c.auth->create_user(o.username, password.text, o.email, o.role, tokens, password.generated);
    if (!user) return fail_with(user.error().message);
    print_user(*user);
    return 0;
  }
  auto user = c.users->by_username(o.username);
  if (!user) return fail_with(user.error().message);
  if (action == "grant") {
    auto left = c.accounts->adjust(user->id, o.amount, "admin cli: " + o.reason, "cli");
    if (!left) return fail_with(left.error().message);
    std::printf("%s now has %lld tokens\n", user->username.c_str(), static_cast<long long>(*left));
    return 0;
  }
  if (action == "set-role") {
    if (!auth::valid_role(o.new_role)) return fail_with("role must be user, teacher or admin", 2);
    if (auto r = c.users->set_role(user->id, o.new_role); !r) return fail_with(r.error().message);
    std::printf("%s is now %s\n", user->username.c_str(), o.new_role.c_str());
    return 0;
  }
  if (action == "passwd") {
    const NewPassword password = read_new_password(o);
    auto changed = c.auth->reset_password(user->id, password.text, password.generated || o.must_change);
    if (!changed) return fail_with(changed.error().message);
    std::printf("password of %s changed; their sessions have ended%s\n", user->username.c_str(),
                changed->must_change_password ? " (to be changed at the next login)" : "");
    return 0;
  }
  if (action == "export-user") {
    auto exported = export_user(*c.db, c.config, *user);
    if (!exported) return fail_with(exported.error().message);
    const std::string text = exported->dump(2) + "\n";
    if (o.out_path.empty()) {
      std::cout << text;
      return 0;
    }
    return write_private_file(o.out_path, text) ? 0 : fail_with("cannot write " + o.out_path);
  }
  if (action == "disable") {
    if (auto r = c.users->set_disabled(user->id, !o.enable); !r) return fail_with(r.error().message);
    std::printf("%s is now %s\n", user->username.c_str(), o.enable ? "enabled" : "disabled");
    return 0;
  }
  return fail_with("unknown action " + action, 2);
}

}  // namespace

void add_admin_command(CLI::App& root, CommandRunner& run) {
  auto* cmd = root.add_subcommand("admin", "Operator tasks on the configured database (users, tokens, roles)");
  cmd->require_subcommand(1);
  auto o = std::make_shared<AdminOptions>();
  cmd->add_option("-c,--config", o->config_path, "YAML config file (default: embedded defaults)")
      ->check(CLI::ExistingFile);
  auto set_runner = [&run, o](const std::string& action) {
    return [&run, o, action] { run = [o, action] { return run_admin(action, *o); }; };
  };

  auto* add = cmd->add_subcommand("user-add",
                                  "Create a user (password from --password-stdin, LLMD_NEW_PASSWORD, or generated)");
  add->add_option("username", o->username, "User name")->required();
  add->add_option("--email", o->email, "Email address")->required();
  add->add_option("--role", o->role, "user, teacher or admin")->check(CLI::IsMember({"user", "teacher", "admin"}));
  add->add_option("--tokens", o->tokens, "Initial tokens (default: auth.initial_tokens)")
      ->check(CLI::NonNegativeNumber);
  add->add_flag("--password-stdin", o->password_stdin, "Read the password from the first line of stdin");
  add->callback(set_runner("user-add"));

  auto* grant = cmd->add_subcommand("grant", "Add (or with a negative amount, deduct) tokens, recorded in the ledger");
  grant->add_option("username", o->username, "User name")->required();
  grant->add_option("amount", o->amount, "Tokens; negative deducts")->required();
  grant->add_option("--reason", o->reason, "Why (kept in the ledger)")->required();
  grant->callback(set_runner("grant"));

  auto* role = cmd->add_subcommand("set-role", "Make a user an admin or a plain user");
  role->add_option("username", o->username, "User name")->required();
  role->add_option("role", o->new_role, "user, teacher or admin")
      ->required()
      ->check(CLI::IsMember({"user", "teacher", "admin"}));
  role->callback(set_runner("set-role"));

  auto* disable = cmd->add_subcommand("disable", "Disable a user (their tokens and keys stop working at once)");
  disable->add_option("username", o->username, "User name")->required();
  disable->add_flag("--enable", o->enable, "Enable the user again instead");
  disable->callback(set_runner("disable"));

  auto* passwd = cmd->add_subcommand(
      "passwd", "Set a user's password (from --password-stdin, LLMD_NEW_PASSWORD, or generated); ends their sessions");
  passwd->add_option("username", o->username, "User name")->required();
  passwd->add_flag("--password-stdin", o->password_stdin, "Read the password from the first line of stdin");
  passwd->add_flag("--must-change", o->must_change, "Ask for a new password at the next login (always when generated)");
  passwd->callback(set_runner("passwd"));

  auto* exporter = cmd->add_subcommand(
      "export-user",
      "Write everything stored about a user (profile, keys, ledger, usage, uploads, jobs, conversations)");
  exporter->add_option("username", o->username, "User name")->required();
  exporter->add_option("--out", o->out_path, "Write to this file (mode 0600) instead of stdout");
  exporter->callback(set_runner("export-user"));

  auto* list = cmd->add_subcommand("list", "List users");
  list->add_option("--search", o->search, "Only names/emails containing this");
  list->add_flag("--json", o->json, "JSON output");
  list->callback(set_runner("list"));
}

}  // namespace llmd::cli
