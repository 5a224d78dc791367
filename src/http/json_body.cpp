#include "http/json_body.h"

#include "core/text.h"

namespace llmd::http {
namespace {

// Maximum nesting of [ and { outside strings; stops counting past `limit`.
int nesting_depth(std::string_view s, int limit) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth && (max_depth = depth) > limit) return max_depth;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

}  // namespace

Result<nlohmann::json> parse_json_object(std::string_view body, int max_depth) {
  if (!text::is_valid_utf8(body)) return fail(ErrorCode::kInvalidArgument, "body is not valid UTF-8", "invalid_utf8");
  if (nesting_depth(body, max_depth) > max_depth) {
    return fail(ErrorCode::kInvalidArgument, "JSON nested deeper than " + std::to_string(max_depth) + " levels",
                "json_too_deep");
  }
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return fail(ErrorCode::kInvalidArgument, "body is not valid JSON", "invalid_json");
  if (!j.is_object()) return fail(ErrorCode::kInvalidArgument, "body must be a JSON object", "expected_object");
  return j;
}

Result<std::string> string_field(const nlohmann::json& obj, const char* name, bool required, std::string fallback) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) {
    if (required) return fail(ErrorCode::kInvalidArgument, std::string(name) + " is required", "missing_field");
    return fallback;
  }
  if (!it->is_string())
    return fail(ErrorCode::kInvalidArgument, std::string(name) + " must be a string", "invalid_field");
  return it->get<std::string>();
}

Result<std::int64_t> int_field(const nlohmann::json& obj, const char* name, bool required, std::int64_t fallback,
                               std::int64_t min, std::int64_t max) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) {
    if (required) return fail(ErrorCode::kInvalidArgument, std::string(name) + " is required", "missing_field");
    return fallback;
  }
  if (!it->is_number_integer()) {
    return fail(ErrorCode::kInvalidArgument, std::string(name) + " must be an integer", "invalid_field");
  }
  // Unsigned values beyond int64 come out negative from get<int64_t>: check first.
  if (it->is_number_unsigned() && it->get<std::uint64_t>() > static_cast<std::uint64_t>(max)) {
    return fail(ErrorCode::kInvalidArgument,
                std::string(name) + " must be between " + std::to_string(min) + " and " + std::to_string(max),
                "invalid_field");
  }
  const auto v = it->get<std::int64_t>();
  if (v < min || v > max) {
    return fail(ErrorCode::kInvalidArgument,
                std::string(name) + " must be between " + std::to_string(min) + " and " + std::to_string(max),
                "invalid_field");
  }
  return v;
}

Result<std::int64_t> query_int(const Request& request, const char* name, std::int64_t fallback, std::int64_t min,
                               std::int64_t max) {
  auto v = request.query_param(name);
  if (!v || v->empty()) return fallback;
  auto n = text::parse_int(*v);
  if (!n || *n < min || *n > max) {
    return fail(ErrorCode::kInvalidArgument,
                std::string(name) + " must be an integer in " + std::to_string(min) + ".." + std::to_string(max),
                "invalid_query");
  }
  return *n;
}

}  // namespace llmd::http
