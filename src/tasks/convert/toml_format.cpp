// TOML reader (toml++) and writer (by hand).
//
// toml++ keeps tables in sorted maps, so the reader restores document order
// from each key's source position. Dates and times become strings.
// The writer keeps key order: plain values come first, nested tables follow
// as [a.b] / [[a.b]] sections, and a table or list of tables that precedes a
// plain value is written inline ({...}) instead, so its position survives.
// TOML has no null and only 64-bit integers: those are errors. A top level
// that is not an object is wrapped as {<root_name>: value}.
#include <algorithm>
#include <cmath>
#include <sstream>

#include <toml++/toml.h>

#include "tasks/convert/detail.h"

namespace llmd::convert::detail {
namespace {

class Reader {
 public:
  explicit Reader(const Limits& limits) : budget_(limits) {}

  Result<Value> node(const toml::node& n) {
    if (!budget_.add_nodes()) return fail_at(n, budget_.nodes_code(), budget_.nodes_reason(), budget_.nodes_message());
    switch (n.type()) {
      case toml::node_type::table: {
        if (!budget_.enter()) return fail_at(n, ErrorCode::kUnprocessable, "depth_limit", budget_.depth_message());
        const auto& t = *n.as_table();
        std::vector<std::pair<const toml::key*, const toml::node*>> members;
        members.reserve(t.size());
        for (auto&& [k, v] : t) members.emplace_back(&k, &v);
        std::stable_sort(members.begin(), members.end(), [](const auto& a, const auto& b) {
          const auto& pa = a.first->source().begin;
          const auto& pb = b.first->source().begin;
          return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
        });
        Object o;
        o.reserve(members.size());
        for (const auto& [k, v] : members) {
          auto child = node(*v);
          if (!child) return child;
          o.insert(std::string(k->str()), std::move(*child));
        }
        budget_.leave();
        return Value(std::move(o));
      }
      case toml::node_type::array: {
        if (!budget_.enter()) return fail_at(n, ErrorCode::kUnprocessable, "depth_limit", budget_.depth_message());
        Array a;
        a.reserve(n.as_array()->size());
        for (const auto& item : *n.as_array()) {
          auto child = node(item);
          if (!child) return child;
          a.push_back(std::move(*child));
        }
        budget_.leave();
        return Value(std::move(a));
      }
      case toml::node_type::string: return Value(n.as_string()->get());
      case toml::node_type::integer: return Value(static_cast<std::int64_t>(n.as_integer()->get()));
      case toml::node_type::floating_point: return Value(n.as_floating_point()->get());
      case toml::node_type::boolean: return Value(n.as_boolean()->get());
      case toml::node_type::date: return text_of(*n.as_date());
      case toml::node_type::time: return text_of(*n.as_time());
      case toml::node_type::date_time: return text_of(*n.as_date_time());
      default: return Value();
    }
  }

 private:
  template <typename T>
  static Value text_of(const T& v) {
    std::ostringstream os;
    os << v;
    return Value(os.str());
  }

  std::unexpected<Error> fail_at(const toml::node& n, ErrorCode code, std::string_view reason,
                                 const std::string& what) const {
    const auto& at = n.source().begin;
    return fail(input_error(code, reason, "TOML", at.line, at.column, what));
  }

  Budget budget_;
};

bool is_bare_key(std::string_view k) {
  if (k.empty()) return false;
  for (char c : k)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return false;
  return true;
}

void append_basic_string(std::string& out, std::string_view s) { append_quoted(out, s, /*strict=*/true); }

void append_key(std::string& out, std::string_view k) {
  if (is_bare_key(k))
    out += k;
  else
    append_basic_string(out, k);
}

bool is_table_list(const Value& v) {
  if (!v.is_array() || v.as_array().empty()) return false;
  return std::all_of(v.as_array().begin(), v.as_array().end(), [](const Value& e) { return e.is_object(); });
}

// Values that can be written as a [section] or [[section]] list.
bool is_section(const Value& v) { return (v.is_object() && !v.as_object().empty()) || is_table_list(v); }

class Writer {
 public:
  Writer(std::string& out, const Limits& limits) : out_(out), limits_(limits) {}

  Result<void> table_body(const Object& o, std::vector<std::string_view>& path) {
    if (cancelled(limits_)) return fail(cancelled_error());
    // Everything up to the last plain value is written inline, in order.
    std::size_t inline_count = 0;
    std::size_t i = 0;
    for (const auto& [k, v] : o) {
      ++i;
      if (!is_section(v)) inline_count = i;
    }
    i = 0;
    for (const auto& [k, v] : o) {
      if (i++ >= inline_count) break;
      append_key(out_, k);
      out_ += " = ";
      path.push_back(k);
      auto r = inline_value(v, path);
      path.pop_back();
      if (!r) return r;
      out_ += '\n';
    }
    i = 0;
    for (const auto& [k, v] : o) {
      if (i++ < inline_count) continue;
      path.push_back(k);
      Result<void> r;
      if (v.is_object()) {
        const auto& child = v.as_object();
        bool has_plain = std::any_of(child.begin(), child.end(), [](const auto& m) { return !is_section(m.second); });
        if (has_plain) header("[", path, "]");
        r = table_body(child, path);
      } else {
        for (const auto& element : v.as_array()) {
          header("[[", path, "]]");
          if (r = table_body(element.as_object(), path); !r) break;
        }
      }
      path.pop_back();
      if (!r) return r;
    }
    return {};
  }

 private:
  void header(std::string_view open, const std::vector<std::string_view>& path, std::string_view close) {
    if (!out_.empty()) out_ += '\n';
    out_ += open;
    for (std::size_t i = 0; i < path.size(); ++i) {
      if (i) out_ += '.';
      append_key(out_, path[i]);
    }
    out_ += close;
    out_ += '\n';
  }

  static std::string path_text(const std::vector<std::string_view>& path) {
    std::string s;
    for (auto p : path) {
      if (!s.empty()) s += '.';
      s += p;
    }
    return s.empty() ? "the top level" : "\"" + s + "\"";
  }

  Result<void> inline_value(const Value& v, std::vector<std::string_view>& path) {
    if (cancelled(limits_)) return fail(cancelled_error());
    switch (v.kind()) {
      case Value::Kind::kNull: return fail(unrepresentable("TOML", "TOML has no null (at " + path_text(path) + ")"));
      case Value::Kind::kBigInt:
        return fail(unrepresentable(
            "TOML", "integer " + v.as_big_int().digits + " does not fit 64 bits (at " + path_text(path) + ")"));
      case Value::Kind::kBool: out_ += v.as_bool() ? "true" : "false"; break;
      case Value::Kind::kInt: out_ += std::to_string(v.as_int()); break;
      case Value::Kind::kDouble: out_ += format_double(v.as_double()); break;
      case Value::Kind::kString: append_basic_string(out_, v.as_string()); break;
      case Value::Kind::kArray: {
        out_ += '[';
        bool first = true;
        for (const auto& item : v.as_array()) {
          if (!first) out_ += ", ";
          first = false;
          if (auto r = inline_value(item, path); !r) return r;
        }
        out_ += ']';
        break;
      }
      case Value::Kind::kObject: {
        if (v.as_object().empty()) {
          out_ += "{}";
          break;
        }
        out_ += "{ ";
        bool first = true;
        for (const auto& [k, item] : v.as_object()) {
          if (!first) out_ += ", ";
          first = false;
          append_key(out_, k);
          out_ += " = ";
          path.push_back(k);
          auto r = inline_value(item, path);
          path.pop_back();
          if (!r) return r;
        }
        out_ += " }";
        break;
      }
    }
    return {};
  }

  std::string& out_;
  const Limits& limits_;
};

}  // namespace

Result<Value> read_toml(std::string_view in, const ConvertOptions& o) {
  try {
    toml::table table = toml::parse(in);
    Reader reader(o.limits);
    return reader.node(table);
  } catch (const toml::parse_error& e) {
    const auto& at = e.source().begin;
    return fail(parse_error("TOML", at.line, at.column, e.description()));
  } catch (const std::exception& e) {
    return fail(ErrorCode::kInvalidArgument, std::string("TOML error: ") + e.what(), "parse_error");
  }
}

Result<std::string> write_toml(const Value& v, const ConvertOptions& o) {
  std::string out;
  Writer writer(out, o.limits);
  std::vector<std::string_view> path;
  Result<void> r;
  if (v.is_object()) {
    r = writer.table_body(v.as_object(), path);
  } else {
    Object wrapper;
    wrapper.insert(o.root_name, v);
    r = writer.table_body(wrapper, path);
  }
  if (!r) return fail(std::move(r.error()));
  return out;
}

}  // namespace llmd::convert::detail
