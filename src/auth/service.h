// Accounts: registration, login, bearer authentication (JWT or API key) and
// API keys (SPEC §4.1). Knows nothing of HTTP. Blocking (bcrypt, database):
// call from the worker pool. Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "auth/limiter.h"
#include "auth/users.h"
#include "core/error.h"

namespace llmd::auth {

// Who is calling; the auth middleware puts it in the request context (ctx.get<Principal>()).
struct Principal {
  std::int64_t user_id = 0;
  std::string username;
  std::string role;
  std::optional<std::int64_t> api_key_id;  // set when authenticated by an API key
  std::vector<std::string> key_subnets;    // the key's client networks (CIDR); empty = any
  std::int64_t key_rpm = 0;                // the key's requests per minute; 0 = none
  std::int64_t group_rpm = 0;              // the lowest of the user's groups' rpm; 0 = none
  bool is_admin() const { return role == "admin"; }
  bool is_teacher() const { return role == "teacher"; }
};

struct AuthOptions {
  std::string jwt_secret;  // >= 32 bytes
  int jwt_ttl_seconds = 86400;
  bool register_open = true;
  std::int64_t initial_tokens = 1000;  // balance of a self-registered user
  int bcrypt_cost = 12;
  int register_per_ip_per_hour = 20;  // registration attempts per client address per hour; 0 = unlimited
};

struct Session {
  std::string token;
  User user;
};

struct NewApiKey {
  ApiKeyInfo info;
  std::string key;  // shown to the user once, never stored
};

class AuthService {
 public:
  // `limiter` counts registrations per client address (may block: Redis).
  AuthService(UserStore& users, AuthOptions options, LoginThrottle& throttle, RateLimiter& limiter);

  // Validates (username 3-32 of [A-Za-z0-9_.-], password 8-72 bytes, email),
  // creates the user with initial tokens and returns a session.
  // Errors: kInvalidArgument naming the field, kConflict username_taken,
  // kPermissionDenied when registration is closed, kRateLimited (with a
  // retry-after) past register_per_ip_per_hour attempts from `client_ip`.
  Result<Session> register_user(const std::string& username, const std::string& password, const std::string& email,
                                const std::string& client_ip);

  // Same kUnauthenticated error (and comparable time) for an unknown user, a
  // wrong password and a disabled account; kRateLimited when throttled.
  Result<Session> login(const std::string& username, const std::string& password, const std::string& client_ip);

  // Accepts "Bearer <jwt>" or "Bearer sk-...". Looks the user up every time,
  // so disabling a user or deleting a key takes effect at once; a JWT issued
  // under an older token epoch (before a disable) is refused, and so is a key
  // past its expires_at (kUnauthenticated, reason key_expired). The key's
  // subnets are the caller's to check against the client address.
  Result<Principal> authenticate(const std::string& authorization_header);

  // A new key of `user_id` with `scopes` (subnets already parsed by the
  // caller). Errors: kInvalidArgument naming the field (name 1-100
  // characters, expires_at in the past, negative budget or rpm, a budget
  // period without a budget, bad model names), kConflict too_many_keys.
  Result<NewApiKey> create_key(std::int64_t user_id, const std::string& name, const KeyScopes& scopes = {});

  // Creates a user directly (admin tools, first start); no registration rules
  // except the field formats. must_change_password: a password someone else
  // chose (generated), to be replaced at the first login.
  Result<User> create_user(const std::string& username, const std::string& password, const std::string& email,
                           const std::string& role, std::int64_t initial_tokens, bool must_change_password = false);

  // Changes the caller's own password: `current` must be right (a wrong one
  // counts as a failed login of the pair, so guessing meets the login
  // throttle: kRateLimited), `next` follows the registration rules and
  // differs from `current`. Every JWT issued before stops working; the
  // returned session is the caller's new one. Errors: kUnauthenticated
  // (wrong_password), kInvalidArgument (the rules, password_unchanged),
  // kRateLimited.
  Result<Session> change_password(std::int64_t user_id, const std::string& current, const std::string& next,
                                  const std::string& client_ip);

  // Sets a user's password without the current one (an administrator's
  // reset, the admin CLI); with must_change the user is asked for a new one
  // at the next login. Ends every session of the user. kNotFound when absent.
  Result<User> reset_password(std::int64_t user_id, const std::string& password, bool must_change);

  // A JWT for `user` under its current token epoch.
  std::string issue_token(const User& user) const;

  UserStore& users() { return users_; }

 private:
  UserStore& users_;
  AuthOptions options_;
  LoginThrottle& throttle_;
  RateLimiter& limiter_;
  std::string decoy_hash_;  // verified against for unknown users (timing)
};

// Field rules, exposed for the admin CLI and tests.
Result<void> check_username(const std::string& username);
Result<void> check_password(const std::string& password);
Result<void> check_email(const std::string& email);
// "user", "teacher" or "admin".
bool valid_role(const std::string& role);

// A new API key: "sk-" + 43 base62 characters (256 bits).
std::string generate_api_key();
// Lower-case hex SHA-256, what is stored for a key.
std::string sha256_hex(std::string_view data);
// 32 random bytes, base64url: a fresh JWT secret.
std::string generate_secret();

}  // namespace llmd::auth
