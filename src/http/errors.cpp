#include "http/errors.h"

namespace llmd::http {

int status_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return 400;
    case ErrorCode::kUnauthenticated: return 401;
    case ErrorCode::kPaymentRequired: return 402;
    case ErrorCode::kPermissionDenied: return 403;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kMethodNotAllowed: return 405;
    case ErrorCode::kConflict: return 409;
    case ErrorCode::kTooLarge: return 413;
    case ErrorCode::kUnsupportedFormat: return 415;
    case ErrorCode::kUnprocessable: return 422;
    case ErrorCode::kRateLimited: return 429;
    case ErrorCode::kInternal: return 500;
    case ErrorCode::kUnavailable: return 503;
    case ErrorCode::kDeadlineExceeded: return 504;
    case ErrorCode::kNotImplemented: return 501;
  }
  return 500;
}

Response error_response(const Error& error, const std::string& request_id, const nlohmann::json& details) {
  nlohmann::json err = {
      {"code", std::string(error.reason_or_default())}, {"message", error.message}, {"request_id", request_id}};
  for (const auto& [k, v] : error.details) {
    if (!err.contains(k)) err[k] = v;
  }
  if (details.is_object()) {
    for (const auto& [k, v] : details.items()) {
      if (!err.contains(k)) err[k] = v;
    }
  }
  Response r = Response::json(status_for(error.code), {{"error", err}});
  if (error.retry_after_s) {
    r.headers.set("Retry-After", std::to_string(*error.retry_after_s));
  } else if (error.code == ErrorCode::kRateLimited || error.code == ErrorCode::kUnavailable) {
    r.headers.set("Retry-After", "1");
  }
  return r;
}

Handler render_errors(ResultHandler handler) {
  return [handler = std::move(handler)](RequestContext& ctx) -> boost::asio::awaitable<Response> {
    Result<Response> result = co_await handler(ctx);
    if (!result) co_return error_response(result.error(), ctx.request_id);
    co_return std::move(*result);
  };
}

Middleware render_errors(ResultMiddleware middleware) {
  return
      [middleware = std::move(middleware)](RequestContext& ctx, const Next& next) -> boost::asio::awaitable<Response> {
        Result<Response> result = co_await middleware(ctx, next);
        if (!result) co_return error_response(result.error(), ctx.request_id);
        co_return std::move(*result);
      };
}

}  // namespace llmd::http
