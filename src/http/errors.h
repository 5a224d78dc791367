// The one place where an llmd::Error becomes an HTTP response:
//   {"error":{"code":"snake_case","message":"...","request_id":"..."}}
// with the status for its ErrorCode and Retry-After for 429/503.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "http/context.h"
#include "http/message.h"

namespace llmd::http {

int status_for(ErrorCode code);

// `details` (an object, optional) is merged into the error object, e.g.
// {"needed": 120, "available": 40} for insufficient_tokens.
Response error_response(const Error& error, const std::string& request_id, const nlohmann::json& details = nullptr);

// Handlers and middlewares that return their failures as values become
// ones that answer an Error with error_response() (the request's id in the
// body) and pass a Response on as it is. Router and pipeline use these.
Handler render_errors(ResultHandler handler);
Middleware render_errors(ResultMiddleware middleware);

}  // namespace llmd::http
