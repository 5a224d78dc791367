// The in-memory document every format is read into and written from.
//
// A Value is null, bool, int64, a big integer (kept exactly as its decimal
// text), double, string, array or object. Objects keep their keys in insertion
// order and never hold a key twice. Values are plain data: copyable, movable,
// not thread-safe to mutate concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/error.h"

namespace llmd::convert {

class Value;
using Array = std::vector<Value>;

// An integer outside int64's range, e.g. "18446744073709551616" or
// "-99999999999999999999". `digits` is an optional '-' then decimal digits
// without leading zeros; it is never converted to a floating-point number.
struct BigInt {
  std::string digits;
  friend bool operator==(const BigInt&, const BigInt&) = default;
};

// An insertion-ordered map from string keys to Values with unique keys.
// Lookup is linear for small objects and hashed once an object grows.
class Object {
 public:
  using Member = std::pair<std::string, Value>;

  Object() = default;
  Object(const Object& other);
  Object(Object&&) noexcept = default;
  Object& operator=(const Object& other);
  Object& operator=(Object&&) noexcept = default;
  ~Object();

  // Appends (key, value) and returns true; returns false and changes nothing
  // when `key` is already present.
  bool insert(std::string key, Value value);
  // Appends or, when `key` exists, replaces its value in place (keeps position).
  void insert_or_assign(std::string key, Value value);
  // The value for `key`, or nullptr.
  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  bool contains(std::string_view key) const { return find(key) != nullptr; }

  std::size_t size() const { return members_.size(); }
  bool empty() const { return members_.empty(); }
  void reserve(std::size_t n) { members_.reserve(n); }
  auto begin() const { return members_.begin(); }
  auto end() const { return members_.end(); }
  auto begin() { return members_.begin(); }
  auto end() { return members_.end(); }
  const std::vector<Member>& members() const { return members_; }

  // Equal when both hold the same keys in the same order with equal values.
  friend bool operator==(const Object& a, const Object& b);

 private:
  std::ptrdiff_t index_of(std::string_view key) const;

  std::vector<Member> members_;
  // Key -> position in members_; built lazily once the object is large.
  mutable std::unique_ptr<std::unordered_map<std::string, std::size_t>> index_;
};

class Value {
 public:
  enum class Kind { kNull, kBool, kInt, kBigInt, kDouble, kString, kArray, kObject };

  Value() = default;
  Value(std::nullptr_t) {}
  Value(bool b) : data_(b) {}
  Value(std::int64_t i) : data_(i) {}
  Value(int i) : data_(static_cast<std::int64_t>(i)) {}
  Value(long long i) : data_(static_cast<std::int64_t>(i)) {}
  Value(BigInt b) : data_(std::move(b)) {}
  Value(double d) : data_(d) {}
  Value(std::string s) : data_(std::move(s)) {}
  Value(std::string_view s) : data_(std::string(s)) {}
  Value(const char* s) : data_(std::string(s)) {}
  Value(Array a) : data_(std::move(a)) {}
  Value(Object o) : data_(std::move(o)) {}

  Kind kind() const { return static_cast<Kind>(data_.index()); }
  bool is_null() const { return kind() == Kind::kNull; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_big_int() const { return kind() == Kind::kBigInt; }
  bool is_double() const { return kind() == Kind::kDouble; }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_array() const { return kind() == Kind::kArray; }
  bool is_object() const { return kind() == Kind::kObject; }
  bool is_scalar() const { return !is_array() && !is_object(); }

  // Accessors; calling the wrong one for kind() is a programming error
  // (std::bad_variant_access).
  bool as_bool() const { return std::get<bool>(data_); }
  std::int64_t as_int() const { return std::get<std::int64_t>(data_); }
  const BigInt& as_big_int() const { return std::get<BigInt>(data_); }
  double as_double() const { return std::get<double>(data_); }
  const std::string& as_string() const { return std::get<std::string>(data_); }
  const Array& as_array() const { return std::get<Array>(data_); }
  Array& as_array() { return std::get<Array>(data_); }
  const Object& as_object() const { return std::get<Object>(data_); }
  Object& as_object() { return std::get<Object>(data_); }

  // Deep equality; kinds must match (int 1 != double 1.0 != string "1").
  // Doubles compare by value, so NaN != NaN.
  friend bool operator==(const Value& a, const Value& b) { return a.data_ == b.data_; }

 private:
  std::variant<std::nullptr_t, bool, std::int64_t, BigInt, double, std::string, Array, Object> data_;
};

// Limits applied while reading, so hostile input fails fast instead of
// exhausting memory or time.
struct Limits {
  std::size_t max_input_bytes = 32u << 20;  // larger input -> kTooLarge
  int max_depth = 128;                      // nested arrays/objects -> kUnprocessable
  std::size_t max_nodes = 4'000'000;        // values after alias expansion -> kUnprocessable
  std::size_t max_columns = 10'000;         // CSV/TSV header columns -> kTooLarge ("column_limit")
  // Cooperative cancellation (e.g. at shutdown): once stop is requested,
  // reading and writing give up at the next value they visit with
  // kUnavailable, reason "cancelled". Default: never requested.
  std::stop_token cancel;
};

// Builds a Value from parsed JSON. ordered_json keeps key order; plain
// nlohmann::json has already sorted its keys. Fails with kUnprocessable when
// `limits` are exceeded or a string is not valid UTF-8; a NaN/infinite number
// is kept as a double (writers that cannot express it reject it).
Result<Value> from_json(const nlohmann::ordered_json& j, const Limits& limits = {});
Result<Value> from_json(const nlohmann::json& j, const Limits& limits = {});

// Checks `v` against the depth and node limits (not the byte limit).
Result<void> check_limits(const Value& v, const Limits& limits);

// A short human description of a kind for error messages ("an object").
std::string_view kind_name(Value::Kind kind);

}  // namespace llmd::convert
