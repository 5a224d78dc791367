#include "auth/service.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>

#include "auth/jwt.h"
#include "auth/password.h"
#include "core/random_id.h"
#include "core/text.h"

namespace llmd::auth {
namespace {

std::int64_t now_seconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

Error bad_credentials() {
  return Error(ErrorCode::kUnauthenticated, "invalid username or password", "invalid_credentials");
}

Error unauthenticated(std::string message = "missing or invalid credentials") {
  return Error(ErrorCode::kUnauthenticated, std::move(message), "unauthenticated");
}

}  // namespace

Result<void> check_username(const std::string& username) {
  const bool ok = username.size() >= 3 && username.size() <= 32 && std::ranges::all_of(username, [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
                  });
  if (!ok) {
    return fail(ErrorCode::kInvalidArgument, "username must be 3-32 characters of A-Z a-z 0-9 _ . -",
                "invalid_username");
  }
  return {};
}

Result<void> check_password(const std::string& password) {
  if (password.size() > kMaxPasswordBytes) {
    return fail(ErrorCode::kInvalidArgument, "password must be at most 72 bytes (bcrypt limit)", "password_too_long");
  }
  if (password.size() < 8)
    return fail(ErrorCode::kInvalidArgument, "password must be at least 8 characters", "password_too_short");
  if (!text::is_valid_utf8(password) || password.find('\0') != std::string::npos) {
    return fail(ErrorCode::kInvalidArgument, "password contains invalid characters", "invalid_password");
  }
  return {};
}

Result<void> check_email(const std::string& email) {
  const auto at = email.find('@');
  const bool ok = email.size() <= 254 && at != std::string::npos && at > 0 && at == email.rfind('@') &&
                  email.find('.', at) != std::string::npos && email.back() != '.' && email.find('.', at) > at + 1 &&
                  std::ranges::none_of(email,
                                       [](char c) {
                                         return std::isspace(static_cast<unsigned char>(c)) ||
                                                std::iscntrl(static_cast<unsigned char>(c)) || c == '<' || c == '>' ||
                                                c == '"' || c == ',';
                                       }) &&
                  text::is_valid_utf8(email);
  if (!ok) return fail(ErrorCode::kInvalidArgument, "email is not a valid address", "invalid_email");
  return {};
}

std::string sha256_hex(std::string_view data) { return core::sha256_hex(data); }

bool valid_role(const std::string& role) { return role == "user" || role == "teacher" || role == "admin"; }

std::string generate_api_key() {
  static constexpr char kBase62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string key = "sk-";
  while (key.size() < 3 + 43) {
    unsigned char b[64];
    RAND_bytes(b, sizeof b);
    for (unsigned char c : b) {
      if (c < 248 && key.size() < 3 + 43) key += kBase62[c % 62];  // 248 = 4 x 62: no modulo bias
    }
  }
  return key;
}

std::string generate_secret() {
  unsigned char b[32];
  RAND_bytes(b, sizeof b);
  return base64url_encode(std::string_view(reinterpret_cast<const char*>(b), sizeof b));
}

AuthService::AuthService(UserStore& users, AuthOptions options, LoginThrottle& throttle, RateLimiter& limiter)
    : users_(users), options_(std::move(options)), throttle_(throttle), limiter_(limiter) {
  decoy_hash_ = hash_password(generate_secret().substr(0, 20), options_.bcrypt_cost).value_or("");
}

std::string AuthService::issue_token(const User& user) const {
  const std::int64_t now = now_seconds();
  return sign_jwt(JwtClaims{std::to_string(user.id), now, now + options_.jwt_ttl_seconds, 0, user.token_epoch},
                  options_.jwt_secret);
}

Result<User> AuthService::create_user(const std::string& username, const std::string& password,
                                      const std::string& email, const std::string& role, std::int64_t initial_tokens,
                                      bool must_change_password) {
  LLMD_TRY(check_username(username));
  LLMD_TRY(check_password(password));
  LLMD_TRY(check_email(email));
  if (!valid_role(role))
    return fail(ErrorCode::kInvalidArgument, "role must be user, teacher or admin", "invalid_role");
  auto hash = hash_password(password, options_.bcrypt_cost);
  if (!hash) return std::unexpected(hash.error());
  auto user = users_.create(username, email, *hash, role, initial_tokens);
  if (!user || !must_change_password) return user;
  return users_.set_password_hash(user->id, *hash, true);
}

Result<Session> AuthService::change_password(std::int64_t user_id, const std::string& current, const std::string& next,
                                             const std::string& client_ip) {
  auto user = users_.by_id(user_id);
  if (!user) return std::unexpected(user.error());
  if (auto wait = throttle_.blocked(user->username, client_ip)) {
    return fail(Error(ErrorCode::kRateLimited, "too many wrong passwords; try again later", "too_many_attempts")
                    .with_retry_after(*wait));
  }
  if (!verify_password(current, user->password_hash)) {
    throttle_.failed(user->username, client_ip);
    return fail(ErrorCode::kUnauthenticated, "the current password is wrong", "wrong_password");
  }
  throttle_.succeeded(user->username, client_ip);
  LLMD_TRY(check_password(next));
  if (next == current) {
    return fail(ErrorCode::kInvalidArgument, "the new password must differ from the current one", "password_unchanged");
  }
  auto hash = hash_password(next, options_.bcrypt_cost);
  if (!hash) return std::unexpected(hash.error());
  auto changed = users_.set_password_hash(user_id, *hash, false);
  if (!changed) return std::unexpected(changed.error());
  return Session{issue_token(*changed), std::move(*changed)};
}

Result<User> AuthService::reset_password(std::int64_t user_id, const std::string& password, bool must_change) {
  LLMD_TRY(check_password(password));
  auto user = users_.by_id(user_id);
  if (!user) return std::unexpected(user.error());
  auto hash = hash_password(password, options_.bcrypt_cost);
  if (!hash) return std::unexpected(hash.error());
  return users_.set_password_hash(user_id, *hash, must_change);
}

Result<Session> AuthService::register_user(const std::string& username, const std::string& password,
                                           const std::string& email, const std::string& client_ip) {
  if (!options_.register_open) {
    return fail(ErrorCode::kPermissionDenied, "registration is closed; ask an administrator", "registration_closed");
  }
  // Malformed fields cost nothing; every attempt that would run bcrypt counts.
  LLMD_TRY(check_username(username));
  LLMD_TRY(check_password(password));
  LLMD_TRY(check_email(email));
  if (auto wait = limiter_.take("register:" + client_ip, options_.register_per_ip_per_hour, std::chrono::hours(1))) {
    return fail(Error(ErrorCode::kRateLimited, "too many registrations from this address; try again later",
                      "too_many_registrations")
                    .with_retry_after(*wait));
  }
  auto user = create_user(username, password, email, "user", options_.initial_tokens);
  if (!user) return std::unexpected(user.error());
  return Session{issue_token(*user), std::move(*user)};
}

Result<Session> AuthService::login(const std::string& username, const std::string& password,
                                   const std::string& client_ip) {
  if (auto wait = throttle_.blocked(username, client_ip)) {
    return fail(Error(ErrorCode::kRateLimited, "too many failed logins; try again later", "too_many_attempts")
                    .with_retry_after(*wait));
  }
  auto user = users_.by_username(username);
  if (!user && user.error().code != ErrorCode::kNotFound) return std::unexpected(user.error());
  // Always run bcrypt once, so an unknown name costs what a wrong password costs.
  const bool match = verify_password(password, user ? user->password_hash : decoy_hash_);
  if (!user || !match || user->disabled) {
    throttle_.failed(username, client_ip);
    return std::unexpected(bad_credentials());
  }
  throttle_.succeeded(username, client_ip);
  return Session{issue_token(*user), std::move(*user)};
}

Result<Principal> AuthService::authenticate(const std::string& authorization_header) {
  std::string_view h = authorization_header;
  if (h.size() < 8 || text::to_lower(h.substr(0, 7)) != "bearer ") return std::unexpected(unauthenticated());
  const std::string credential(text::trim(h.substr(7)));
  if (credential.empty()) return std::unexpected(unauthenticated());

  Result<User> user = std::unexpected(unauthenticated());
  std::optional<std::int64_t> key_id;
  KeyScopes key_scopes;
  if (credential.starts_with("sk-")) {
    if (credential.size() > 200) return std::unexpected(unauthenticated("invalid API key"));
    auto found = users_.by_key_hash(sha256_hex(credential));
    if (!found) {
      if (found.error().code == ErrorCode::kNotFound) return std::unexpected(unauthenticated("invalid API key"));
      return std::unexpected(found.error());
    }
    if (const auto expires = found->second.scopes.expires_at; expires && *expires <= now_seconds()) {
      return std::unexpected(Error(ErrorCode::kUnauthenticated, "this API key expired", "key_expired")
                                 .with_detail("expired_at", *expires));
    }
    key_id = found->second.id;
    key_scopes = std::move(found->second.scopes);
    user = std::move(found->first);
  } else {
    auto claims = verify_jwt(credential, options_.jwt_secret, now_seconds());
    if (!claims) return std::unexpected(claims.error());
    user = users_.by_id(*text::parse_int(claims->subject));
    if (!user) {
      if (user.error().code == ErrorCode::kNotFound) return std::unexpected(unauthenticated("invalid token"));
      return std::unexpected(user.error());
    }
    if (claims->epoch != user->token_epoch) return std::unexpected(unauthenticated("token revoked; log in again"));
  }
  if (user->disabled) return std::unexpected(unauthenticated("account disabled"));
  return Principal{user->id,       user->username, user->role, key_id, std::move(key_scopes.subnets),
                   key_scopes.rpm, user->group_rpm};
}

Result<NewApiKey> AuthService::create_key(std::int64_t user_id, const std::string& name, const KeyScopes& scopes) {
  if (name.empty() || name.size() > 100 || !text::is_valid_utf8(name)) {
    return fail(ErrorCode::kInvalidArgument, "name must be 1-100 characters", "invalid_name");
  }
  if (scopes.expires_at && *scopes.expires_at <= now_seconds()) {
    return fail(ErrorCode::kInvalidArgument, "expires_at must be in the future", "invalid_expires_at");
  }
  if (scopes.budget && *scopes.budget < 0) {
    return fail(ErrorCode::kInvalidArgument, "budget must not be negative", "invalid_budget");
  }
  if (!scopes.budget_period.empty() && scopes.budget_period != "day" && scopes.budget_period != "week" &&
      scopes.budget_period != "month") {
    return fail(ErrorCode::kInvalidArgument, "budget_period must be day, week or month", "invalid_budget_period");
  }
  if (!scopes.budget_period.empty() && !scopes.budget) {
    return fail(ErrorCode::kInvalidArgument, "budget_period needs a budget", "invalid_budget_period");
  }
  if (scopes.rpm < 0) return fail(ErrorCode::kInvalidArgument, "rpm must not be negative", "invalid_rpm");
  if (scopes.models.size() > 100) return fail(ErrorCode::kInvalidArgument, "at most 100 models", "invalid_models");
  for (const auto& m : scopes.models) {
    if (m.empty() || m.size() > 128 || m.find('\n') != std::string::npos || !text::is_valid_utf8(m)) {
      return fail(ErrorCode::kInvalidArgument, "models must be model names (1-128 characters)", "invalid_models");
    }
  }
  auto existing = users_.keys(user_id);
  if (!existing) return std::unexpected(existing.error());
  if (existing->size() >= 50) return fail(ErrorCode::kConflict, "at most 50 API keys per user", "too_many_keys");
  const std::string key = generate_api_key();
  auto info = users_.add_key(user_id, name, sha256_hex(key), key.substr(0, 10), scopes);
  if (!info) return std::unexpected(info.error());
  return NewApiKey{std::move(*info), key};
}

}  // namespace llmd::auth
