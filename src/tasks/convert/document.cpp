#include "tasks/convert/document.h"

#include <nlohmann/json.hpp>

#include "core/text.h"
#include "tasks/convert/detail.h"

namespace llmd::convert {
namespace {

// Below this size a linear scan beats hashing every key.
constexpr std::size_t kIndexThreshold = 16;

template <typename Json>
Result<Value> json_to_value(const Json& j, const Limits& limits, detail::Budget& budget) {
  if (!budget.add_nodes()) return fail(budget.nodes_code(), budget.nodes_message(), std::string(budget.nodes_reason()));
  switch (j.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded: return Value();
    case nlohmann::json::value_t::boolean: return Value(j.template get<bool>());
    case nlohmann::json::value_t::number_integer: return Value(j.template get<std::int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      auto u = j.template get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(INT64_MAX)) return Value(static_cast<std::int64_t>(u));
      return Value(BigInt{std::to_string(u)});
    }
    case nlohmann::json::value_t::number_float: return Value(j.template get<double>());
    case nlohmann::json::value_t::string: {
      const auto& s = j.template get_ref<const std::string&>();
      if (!text::is_valid_utf8(s)) return fail(ErrorCode::kUnprocessable, "string is not valid UTF-8", "invalid_utf8");
      return Value(s);
    }
    case nlohmann::json::value_t::binary:
      return fail(ErrorCode::kUnprocessable, "binary values cannot be converted", "unrepresentable");
    case nlohmann::json::value_t::array: {
      if (!budget.enter()) return fail(ErrorCode::kUnprocessable, budget.depth_message(), "depth_limit");
      Array a;
      a.reserve(j.size());
      for (const auto& item : j) {
        auto v = json_to_value(item, limits, budget);
        if (!v) return v;
        a.push_back(std::move(*v));
      }
      budget.leave();
      return Value(std::move(a));
    }
    case nlohmann::json::value_t::object: {
      if (!budget.enter()) return fail(ErrorCode::kUnprocessable, budget.depth_message(), "depth_limit");
      Object o;
      o.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (!text::is_valid_utf8(it.key()))
          return fail(ErrorCode::kUnprocessable, "key is not valid UTF-8", "invalid_utf8");
        auto v = json_to_value(it.value(), limits, budget);
        if (!v) return v;
        o.insert_or_assign(it.key(), std::move(*v));
      }
      budget.leave();
      return Value(std::move(o));
    }
  }
  return Value();
}

Result<void> check(const Value& v, detail::Budget& budget) {
  if (!budget.add_nodes()) return fail(budget.nodes_code(), budget.nodes_message(), std::string(budget.nodes_reason()));
  if (v.is_scalar()) return {};
  if (!budget.enter()) return fail(ErrorCode::kUnprocessable, budget.depth_message(), "depth_limit");
  if (v.is_array()) {
    for (const auto& item : v.as_array())
      if (auto r = check(item, budget); !r) return r;
  } else {
    for (const auto& [k, item] : v.as_object())
      if (auto r = check(item, budget); !r) return r;
  }
  budget.leave();
  return {};
}

}  // namespace

Object::Object(const Object& other) : members_(other.members_) {}

Object& Object::operator=(const Object& other) {
  if (this != &other) {
    members_ = other.members_;
    index_.reset();
  }
  return *this;
}

Object::~Object() = default;

std::ptrdiff_t Object::index_of(std::string_view key) const {
  if (members_.size() < kIndexThreshold) {
    for (std::size_t i = 0; i < members_.size(); ++i)
      if (members_[i].first == key) return static_cast<std::ptrdiff_t>(i);
    return -1;
  }
  if (!index_) {
    index_ = std::make_unique<std::unordered_map<std::string, std::size_t>>();
    index_->reserve(members_.size() * 2);
    for (std::size_t i = 0; i < members_.size(); ++i) index_->emplace(members_[i].first, i);
  }
  auto it = index_->find(std::string(key));
  return it == index_->end() ? -1 : static_cast<std::ptrdiff_t>(it->second);
}

bool Object::insert(std::string key, Value value) {
  if (index_of(key) >= 0) return false;
  if (index_) index_->emplace(key, members_.size());
  members_.emplace_back(std::move(key), std::move(value));
  return true;
}

void Object::insert_or_assign(std::string key, Value value) {
  if (auto i = index_of(key); i >= 0) {
    members_[static_cast<std::size_t>(i)].second = std::move(value);
    return;
  }
  if (index_) index_->emplace(key, members_.size());
  members_.emplace_back(std::move(key), std::move(value));
}

const Value* Object::find(std::string_view key) const {
  auto i = index_of(key);
  return i < 0 ? nullptr : &members_[static_cast<std::size_t>(i)].second;
}

Value* Object::find(std::string_view key) {
  auto i = index_of(key);
  return i < 0 ? nullptr : &members_[static_cast<std::size_t>(i)].second;
}

bool operator==(const Object& a, const Object& b) { return a.members_ == b.members_; }

Result<Value> from_json(const nlohmann::ordered_json& j, const Limits& limits) {
  detail::Budget budget(limits);
  return json_to_value(j, limits, budget);
}

Result<Value> from_json(const nlohmann::json& j, const Limits& limits) {
  detail::Budget budget(limits);
  return json_to_value(j, limits, budget);
}

Result<void> check_limits(const Value& v, const Limits& limits) {
  detail::Budget budget(limits);
  return check(v, budget);
}

std::string_view kind_name(Value::Kind kind) {
  switch (kind) {
    case Value::Kind::kNull: return "null";
    case Value::Kind::kBool: return "a boolean";
    case Value::Kind::kInt: return "an integer";
    case Value::Kind::kBigInt: return "a big integer";
    case Value::Kind::kDouble: return "a floating-point number";
    case Value::Kind::kString: return "a string";
    case Value::Kind::kArray: return "an array";
    case Value::Kind::kObject: return "an object";
  }
  return "a value";
}

}  // namespace llmd::convert
