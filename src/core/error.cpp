#include "core/error.h"

namespace llmd {

std::string_view default_reason(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kUnauthenticated: return "unauthenticated";
    case ErrorCode::kPaymentRequired: return "insufficient_tokens";
    case ErrorCode::kPermissionDenied: return "forbidden";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kMethodNotAllowed: return "method_not_allowed";
    case ErrorCode::kConflict: return "conflict";
    case ErrorCode::kTooLarge: return "payload_too_large";
    case ErrorCode::kUnsupportedFormat: return "unsupported_format";
    case ErrorCode::kUnprocessable: return "unprocessable_content";
    case ErrorCode::kRateLimited: return "rate_limited";
    case ErrorCode::kInternal: return "internal_error";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kDeadlineExceeded: return "timeout";
    case ErrorCode::kNotImplemented: return "not_implemented";
  }
  return "internal_error";
}

}  // namespace llmd
