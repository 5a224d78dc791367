// Error values and Result<T>: how every module reports recoverable failure.
//
// A function that can fail returns Result<T> (std::expected<T, Error>). The
// Error carries a canonical code (which decides the HTTP status in exactly one
// place, http/errors.cpp), a stable snake_case `reason` for API clients, and a
// human message that never contains secrets, SQL text or file paths.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llmd {

// Canonical error codes (after absl::StatusCode), plus the few the product's
// API needs that have no canonical twin (payment_required, too_large, ...).
enum class ErrorCode {
  kInvalidArgument,    // 400: the caller sent something wrong; retrying won't help
  kUnauthenticated,    // 401
  kPaymentRequired,    // 402: not enough tokens
  kPermissionDenied,   // 403
  kNotFound,           // 404
  kMethodNotAllowed,   // 405
  kConflict,           // 409: already exists / state conflict
  kTooLarge,           // 413
  kUnsupportedFormat,  // 415
  kUnprocessable,      // 422: well-formed but semantically unusable
  kRateLimited,        // 429: retry after `retry_after_s`
  kInternal,           // 500: a bug or an unexpected foreign failure
  kUnavailable,        // 503: transient; retrying with backoff can help
  kDeadlineExceeded,   // 504
  kNotImplemented,     // 501: a feature this server does not offer (or has switched off)
};

// Default snake_case reason for a code ("invalid_argument", "not_found", ...).
std::string_view default_reason(ErrorCode code);

// True when retrying the same operation later may succeed.
constexpr bool is_retryable(ErrorCode code) {
  return code == ErrorCode::kUnavailable || code == ErrorCode::kDeadlineExceeded || code == ErrorCode::kRateLimited;
}

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string reason;                // snake_case, stable; empty means default_reason(code)
  std::string message;               // for humans; safe to show to API clients
  std::optional<int> retry_after_s;  // for 429 / 503
  // Machine-readable numbers for the client, e.g. {"needed",120},{"available",40}
  // for insufficient tokens; rendered as members of the JSON error object.
  std::vector<std::pair<std::string, std::int64_t>> details;

  Error() = default;
  Error(ErrorCode c, std::string msg, std::string why = {})
      : code(c), reason(std::move(why)), message(std::move(msg)) {}

  std::string_view reason_or_default() const {
    return reason.empty() ? default_reason(code) : std::string_view(reason);
  }
  Error&& with_retry_after(int seconds) && {
    retry_after_s = seconds;
    return std::move(*this);
  }
  Error&& with_detail(std::string key, std::int64_t value) && {
    details.emplace_back(std::move(key), value);
    return std::move(*this);
  }
};

template <typename T>
using Result = std::expected<T, Error>;

// Shorthand for returning an error from a function that yields Result<T>:
//   return fail(ErrorCode::kNotFound, "no such model");
inline std::unexpected<Error> fail(ErrorCode code, std::string message, std::string reason = {}) {
  return std::unexpected<Error>(Error(code, std::move(message), std::move(reason)));
}
inline std::unexpected<Error> fail(Error e) { return std::unexpected<Error>(std::move(e)); }

}  // namespace llmd

// Propagates the error of a Result-returning expression; the enclosing
// function must itself return a Result. Use for sequences of fallible steps:
//   LLMD_TRY(reader.integer("port", port, 1, 65535));
#define LLMD_TRY(expr)                                                                                     \
  do {                                                                                                     \
    if (auto llmd_try_r_ = (expr); !llmd_try_r_) return ::std::unexpected(std::move(llmd_try_r_).error()); \
  } while (0)
