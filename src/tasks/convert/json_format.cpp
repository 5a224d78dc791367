// JSON reader (nlohmann SAX, so big integers and key order survive) and writer.
#include <cmath>

#include <nlohmann/json.hpp>

#include "tasks/convert/detail.h"

namespace llmd::convert::detail {
namespace {

using Json = nlohmann::json;

// Builds a Value from SAX events. Returning false from a callback stops the
// parser; `error_` then says why.
class Builder : public nlohmann::json_sax<Json> {
 public:
  Builder(std::string_view input, const Limits& limits) : input_(input), budget_(limits) {}

  bool null() override { return add(Value()); }
  bool boolean(bool b) override { return add(Value(b)); }
  bool number_integer(number_integer_t i) override { return add(Value(static_cast<std::int64_t>(i))); }
  bool number_unsigned(number_unsigned_t u) override {
    if (u <= static_cast<std::uint64_t>(INT64_MAX)) return add(Value(static_cast<std::int64_t>(u)));
    return add(Value(BigInt{std::to_string(u)}));
  }
  bool number_float(number_float_t d, const string_t& raw) override {
    // nlohmann hands integers too big for 64 bits over as doubles; the raw
    // text lets us keep them exact.
    if (auto i = parse_integer(raw)) return add(std::move(*i));
    return add(Value(static_cast<double>(d)));
  }
  bool string(string_t& s) override { return add(Value(std::move(s))); }
  bool binary(binary_t&) override { return stop(ErrorCode::kUnprocessable, "unrepresentable", "binary value"); }
  bool start_object(std::size_t) override { return open(Value(Object())); }
  bool key(string_t& k) override {
    keys_.push_back(std::move(k));
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(Value(Array())); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) override {
    std::string_view what = ex.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 2: <detail>"
    if (auto p = what.find("column "); p != std::string_view::npos) {
      if (auto colon = what.find(": ", p); colon != std::string_view::npos) what.remove_prefix(colon + 2);
    }
    auto [line, column] = line_column(input_, position > 0 ? position - 1 : 0);
    error_ = detail::parse_error("JSON", line, column, what);
    return false;
  }

  Result<Value> result() && {
    if (error_) return fail(std::move(*error_));
    if (!done_) return fail(detail::parse_error("JSON", 1, 1, "empty input"));
    return std::move(root_);
  }

 private:
  bool stop(ErrorCode code, std::string_view reason, std::string what) {
    error_ = Error(code, "JSON error: " + what, std::string(reason));
    return false;
  }

  bool open(Value container) {
    if (!budget_.add_nodes()) return stop(budget_.nodes_code(), budget_.nodes_reason(), budget_.nodes_message());
    if (!budget_.enter()) return stop(ErrorCode::kUnprocessable, "depth_limit", budget_.depth_message());
    stack_.push_back(std::move(container));
    return true;
  }

  bool close() {
    budget_.leave();
    Value done = std::move(stack_.back());
    stack_.pop_back();
    return place(std::move(done));
  }

  bool add(Value v) {
    if (!budget_.add_nodes()) return stop(budget_.nodes_code(), budget_.nodes_reason(), budget_.nodes_message());
    return place(std::move(v));
  }

  bool place(Value v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      done_ = true;
      return true;
    }
    Value& top = stack_.back();
    if (top.is_array()) {
      top.as_array().push_back(std::move(v));
      return true;
    }
    std::string k = std::move(keys_.back());
    keys_.pop_back();
    if (!top.as_object().insert(k, std::move(v))) {
      return stop(ErrorCode::kUnprocessable, "duplicate_key", "duplicate key \"" + k + "\" in an object");
    }
    return true;
  }

  std::string_view input_;
  Budget budget_;
  std::vector<Value> stack_;
  std::vector<std::string> keys_;
  Value root_;
  bool done_ = false;
  std::optional<Error> error_;
};

class Writer {
 public:
  Writer(const ConvertOptions& o, std::string& out) : o_(o), out_(out) {}

  Result<void> value(const Value& v, int level) {
    switch (v.kind()) {
      case Value::Kind::kNull: out_ += "null"; break;
      case Value::Kind::kBool: out_ += v.as_bool() ? "true" : "false"; break;
      case Value::Kind::kInt: out_ += std::to_string(v.as_int()); break;
      case Value::Kind::kBigInt: out_ += v.as_big_int().digits; break;
      case Value::Kind::kDouble:
        if (!std::isfinite(v.as_double()))
          return fail(unrepresentable("JSON", "infinite or NaN number " + format_double(v.as_double())));
        out_ += format_double(v.as_double());
        break;
      case Value::Kind::kString: append_quoted(out_, v.as_string(), false); break;
      case Value::Kind::kArray: {
        const auto& a = v.as_array();
        if (a.empty()) {
          out_ += "[]";
          break;
        }
        out_ += '[';
        for (std::size_t i = 0; i < a.size(); ++i) {
          if (cancelled(o_.limits)) return fail(cancelled_error());
          if (i) out_ += ',';
          newline(level + 1);
          if (auto r = value(a[i], level + 1); !r) return r;
        }
        newline(level);
        out_ += ']';
        break;
      }
      case Value::Kind::kObject: {
        const auto& o = v.as_object();
        if (o.empty()) {
          out_ += "{}";
          break;
        }
        out_ += '{';
        bool first = true;
        for (const auto& [k, item] : o) {
          if (cancelled(o_.limits)) return fail(cancelled_error());
          if (!first) out_ += ',';
          first = false;
          newline(level + 1);
          append_quoted(out_, k, false);
          out_ += o_.pretty ? ": " : ":";
          if (auto r = value(item, level + 1); !r) return r;
        }
        newline(level);
        out_ += '}';
        break;
      }
    }
    return {};
  }

 private:
  void newline(int level) {
    if (!o_.pretty) return;
    out_ += '\n';
    out_.append(static_cast<std::size_t>(level * o_.indent), ' ');
  }

  const ConvertOptions& o_;
  std::string& out_;
};

}  // namespace

Result<Value> read_json(std::string_view in, const ConvertOptions& o) {
  Builder builder(in, o.limits);
  // Exceptions are off: errors arrive through Builder::parse_error.
  (void)Json::sax_parse(in.begin(), in.end(), &builder, nlohmann::detail::input_format_t::json,
                        /*strict=*/true, /*ignore_comments=*/false);
  return std::move(builder).result();
}

Result<std::string> write_json(const Value& v, const ConvertOptions& o) {
  std::string out;
  Writer w(o, out);
  if (auto r = w.value(v, 0); !r) return fail(std::move(r.error()));
  if (o.pretty) out += '\n';
  return out;
}

}  // namespace llmd::convert::detail
