// Reading JSON request bodies safely: UTF-8 checked, nesting bounded before
// parsing, top level must be an object. Errors are ready for error_response.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "http/message.h"

namespace llmd::http {

inline constexpr int kMaxJsonDepth = 64;

// Errors: kInvalidArgument with reason invalid_utf8 / invalid_json /
// json_too_deep / expected_object.
Result<nlohmann::json> parse_json_object(std::string_view body, int max_depth = kMaxJsonDepth);

// Typed field access for request objects. Missing optional fields give the
// fallback; present fields of the wrong type are an error naming the field.
Result<std::string> string_field(const nlohmann::json& obj, const char* name, bool required, std::string fallback = {});
Result<std::int64_t> int_field(const nlohmann::json& obj, const char* name, bool required, std::int64_t fallback,
                               std::int64_t min, std::int64_t max);

// An integer query parameter in [min, max]; absent or empty gives the
// fallback. Errors: kInvalidArgument (reason invalid_query) naming it.
Result<std::int64_t> query_int(const Request& request, const char* name, std::int64_t fallback, std::int64_t min,
                               std::int64_t max);

}  // namespace llmd::http
