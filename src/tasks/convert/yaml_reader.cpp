// YAML reader on yaml-cpp's event parser.
//
// Events instead of YAML::Node because aliases there share one node: a
// "billion laughs" document is tiny as a node graph and only explodes when
// expanded. Here every alias is expanded by copying the anchored value, and
// the node budget is charged with that value's size *before* copying, so a
// bomb fails after at most limits.max_nodes copied values.
//
// Scalars resolve by the YAML 1.2 core schema, with one deliberate exception:
// decimal integers with leading zeros ("01730") stay strings.
#include <charconv>
#include <limits>
#include <streambuf>
#include <unordered_map>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include "tasks/convert/detail.h"

namespace llmd::convert::detail {
namespace {

// A read-only streambuf over the caller's bytes (yaml-cpp wants an istream).
class ViewBuf : public std::streambuf {
 public:
  explicit ViewBuf(std::string_view s) {
    char* p = const_cast<char*>(s.data());  // never written through: get area only
    setg(p, p, p + s.size());
  }
};

struct Abort {};  // unwinds out of yaml-cpp after the handler recorded an error

constexpr std::string_view kTagPrefix = "tag:yaml.org,2002:";

bool is_null_word(std::string_view s) { return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL"; }

std::optional<bool> bool_word(std::string_view s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

std::optional<Value> radix_integer(std::string_view s) {
  int base = 0;
  if (s.starts_with("0x"))
    base = 16;
  else if (s.starts_with("0o"))
    base = 8;
  else
    return std::nullopt;
  s.remove_prefix(2);
  if (s.empty()) return std::nullopt;
  std::uint64_t u = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), u, base);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  if (u <= static_cast<std::uint64_t>(INT64_MAX)) return Value(static_cast<std::int64_t>(u));
  return Value(BigInt{std::to_string(u)});
}

std::optional<Value> yaml_integer(std::string_view s) {
  if (s.starts_with('+')) s.remove_prefix(1);
  if (s.starts_with('+') || s.starts_with("-+")) return std::nullopt;
  if (auto v = parse_integer(s)) return v;
  return radix_integer(s);
}

std::optional<double> yaml_float(std::string_view s) {
  std::string_view body = s;
  bool negative = false;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body == ".inf" || body == ".Inf" || body == ".INF")
    return negative ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  if (s == ".nan" || s == ".NaN" || s == ".NAN") return std::numeric_limits<double>::quiet_NaN();
  // YAML also allows ".5" and "1."; normalise them for the strict parser.
  std::string text = negative ? "-" : "";
  if (body.starts_with('.')) text += '0';
  text += body;
  if (text.ends_with('.')) text += '0';
  if (auto p = text.find(".e"); p != std::string::npos) text.insert(p + 1, 1, '0');
  if (auto p = text.find(".E"); p != std::string::npos) text.insert(p + 1, 1, '0');
  return parse_decimal_double(text);
}

// The value of a plain (unquoted, untagged) scalar.
Value resolve_plain(const std::string& s) {
  if (is_null_word(s)) return Value();
  if (auto b = bool_word(s)) return Value(*b);
  if (auto i = yaml_integer(s)) return std::move(*i);
  if (auto d = yaml_float(s)) return Value(*d);
  return Value(s);
}

// A first pass for documents that may contain aliases: counts the values
// the document expands to without building any, so an alias bomb is refused
// after reading its few hundred bytes instead of after copying max_nodes values.
class Counter : public YAML::EventHandler {
 public:
  explicit Counter(const Limits& limits) : limits_(limits) {}

  void OnDocumentStart(const YAML::Mark&) override { sizes_.clear(); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { leaf(mark, anchor, 1); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = sizes_.find(anchor);
    leaf(mark, 0, it == sizes_.end() ? 0 : it->second);
  }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor, const std::string&) override {
    leaf(mark, anchor, 1);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, anchor, false);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, anchor, true);
  }
  void OnMapEnd() override { close(); }

  std::optional<Error>& error() { return error_; }

 private:
  struct Frame {
    YAML::anchor_t anchor;
    std::size_t start;
    bool is_map;
    bool expect_key;
  };

  // Mapping keys are not values (the builder does not count them either).
  bool is_key() {
    if (stack_.empty() || !stack_.back().is_map) return false;
    bool key = stack_.back().expect_key;
    stack_.back().expect_key = !key;
    return key;
  }

  void add(std::size_t n, const YAML::Mark& mark) {
    total_ += n;
    if (total_ > limits_.max_nodes) {
      error_ = input_error(ErrorCode::kUnprocessable, "node_limit", "YAML", static_cast<std::size_t>(mark.line + 1),
                           static_cast<std::size_t>(mark.column + 1), Budget(limits_).nodes_message());
      throw Abort{};
    }
    if (cancelled(limits_)) {
      error_ = cancelled_error();
      throw Abort{};
    }
  }

  void leaf(const YAML::Mark& mark, YAML::anchor_t anchor, std::size_t n) {
    if (is_key()) return;
    add(n, mark);
    if (anchor != 0) sizes_[anchor] = n;
  }

  void open(const YAML::Mark& mark, YAML::anchor_t anchor, bool is_map) {
    is_key();
    add(1, mark);
    stack_.push_back(Frame{anchor, total_ - 1, is_map, true});
  }

  void close() {
    Frame f = stack_.back();
    stack_.pop_back();
    if (f.anchor != 0) sizes_[f.anchor] = total_ - f.start;
  }

  const Limits& limits_;
  std::size_t total_ = 0;
  std::vector<Frame> stack_;
  std::unordered_map<YAML::anchor_t, std::size_t> sizes_;
  std::optional<Error> error_;
};

class Handler : public YAML::EventHandler {
 public:
  explicit Handler(const Limits& limits) : budget_(limits) {}

  void OnDocumentStart(const YAML::Mark&) override { anchors_.clear(); }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (expecting_key()) return set_key("", false, mark);
    charge(1, 0, mark);
    finish(Value(), anchor, 1, 0, {});
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end())
      stop(ErrorCode::kUnprocessable, "alias_cycle", mark, "alias refers to a node that contains it");
    const Anchored& a = it->second;
    if (expecting_key()) {
      if (!a.value.is_scalar())
        stop(ErrorCode::kUnprocessable, "unrepresentable", mark, "mapping keys must be scalars");
      return set_key(a.raw, false, mark);
    }
    charge(a.nodes, a.height, mark);
    finish(Value(a.value), 0, a.nodes, a.height, a.raw);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    if (expecting_key()) return set_key(value, tag == "?" && value == "<<", mark);
    charge(1, 0, mark);
    finish(resolve(mark, tag, value), anchor, 1, 0, value);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, anchor, Value(Array()));
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, anchor, Value(Object()));
  }
  void OnMapEnd() override { close(); }

  std::vector<Value>& documents() { return documents_; }
  std::optional<Error>& error() { return error_; }

 private:
  struct Frame {
    Value value;  // Array or Object being filled
    YAML::anchor_t anchor = 0;
    std::size_t nodes_before = 0;
    int height = 0;  // deepest nesting below this node so far
    bool have_key = false;
    bool key_is_merge = false;
    std::string key;
    YAML::Mark key_mark;
    std::vector<Value> merges;  // values of "<<" keys, in order
  };
  struct Anchored {
    Value value;
    std::size_t nodes = 0;
    int height = 0;
    std::string raw;  // scalar text, for aliases used as keys
  };

  bool expecting_key() const { return !stack_.empty() && stack_.back().value.is_object() && !stack_.back().have_key; }

  [[noreturn]] void stop(ErrorCode code, std::string_view reason, const YAML::Mark& mark, std::string_view what) {
    error_ = input_error(code, reason, "YAML", static_cast<std::size_t>(mark.line + 1),
                         static_cast<std::size_t>(mark.column + 1), what);
    throw Abort{};
  }

  void charge(std::size_t nodes, int height, const YAML::Mark& mark) {
    if (!budget_.add_nodes(nodes)) stop(budget_.nodes_code(), budget_.nodes_reason(), mark, budget_.nodes_message());
    if (budget_.depth() + height > budget_.limits().max_depth)
      stop(ErrorCode::kUnprocessable, "depth_limit", mark, budget_.depth_message());
  }

  void set_key(std::string key, bool merge, const YAML::Mark& mark) {
    Frame& f = stack_.back();
    f.have_key = true;
    f.key_is_merge = merge;
    f.key = std::move(key);
    f.key_mark = mark;
  }

  Value resolve(const YAML::Mark& mark, const std::string& tag, const std::string& s) {
    if (tag == "?") return resolve_plain(s);
    if (!tag.starts_with(kTagPrefix)) return Value(s);  // "!" (quoted) and local tags: text
    std::string_view t = std::string_view(tag).substr(kTagPrefix.size());
    if (t == "null") return Value();
    if (t == "bool") {
      if (auto b = bool_word(s)) return Value(*b);
    } else if (t == "int") {
      if (auto i = yaml_integer(s)) return std::move(*i);
    } else if (t == "float") {
      if (auto d = yaml_float(s)) return Value(*d);
      if (auto i = parse_integer(s); i && i->is_int()) return Value(static_cast<double>(i->as_int()));
    } else {
      return Value(s);  // !!str, !!binary (base64 text), !!timestamp ...
    }
    stop(ErrorCode::kInvalidArgument, "parse_error", mark, "\"" + s + "\" is not a valid !!" + std::string(t));
  }

  void open(const YAML::Mark& mark, YAML::anchor_t anchor, Value container) {
    if (expecting_key()) stop(ErrorCode::kUnprocessable, "unrepresentable", mark, "mapping keys must be scalars");
    charge(1, 0, mark);
    if (!budget_.enter()) stop(ErrorCode::kUnprocessable, "depth_limit", mark, budget_.depth_message());
    Frame f;
    f.value = std::move(container);
    f.anchor = anchor;
    f.nodes_before = budget_.nodes() - 1;
    stack_.push_back(std::move(f));
  }

  void close() {
    budget_.leave();
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    if (!f.merges.empty()) apply_merges(f);
    std::size_t nodes = budget_.nodes() - f.nodes_before;
    finish(std::move(f.value), f.anchor, nodes, f.height + 1, {});
  }

  // Merge keys: keys written in the mapping win over merged ones; among
  // merged mappings the first listed wins. Merged keys come first (as PyYAML).
  void apply_merges(Frame& f) {
    Object merged;
    for (const Value& m : f.merges) {
      const Array* list = m.is_array() ? &m.as_array() : nullptr;
      std::size_t n = list ? list->size() : 1;
      for (std::size_t i = 0; i < n; ++i) {
        const Value& src = list ? (*list)[i] : m;
        if (!src.is_object())
          stop(ErrorCode::kUnprocessable, "unrepresentable", f.key_mark,
               "a merge key (<<) needs a mapping or a list of mappings");
        for (const auto& [k, v] : src.as_object()) merged.insert(k, v);
      }
    }
    for (auto& [k, v] : f.value.as_object()) merged.insert_or_assign(k, std::move(v));
    f.value = Value(std::move(merged));
  }

  // A complete value: remember it if anchored, then attach it to its parent.
  void finish(Value v, YAML::anchor_t anchor, std::size_t nodes, int height, std::string_view raw) {
    if (anchor != 0) anchors_[anchor] = Anchored{v, nodes, height, std::string(raw)};
    if (stack_.empty()) {
      documents_.push_back(std::move(v));
      return;
    }
    Frame& parent = stack_.back();
    parent.height = std::max(parent.height, height);
    if (parent.value.is_array()) {
      parent.value.as_array().push_back(std::move(v));
      return;
    }
    parent.have_key = false;
    if (parent.key_is_merge) {
      parent.merges.push_back(std::move(v));
      return;
    }
    if (!parent.value.as_object().insert(parent.key, std::move(v))) {
      stop(ErrorCode::kUnprocessable, "duplicate_key", parent.key_mark,
           "duplicate key \"" + parent.key + "\" in a mapping");
    }
  }

  Budget budget_;
  std::vector<Frame> stack_;
  std::unordered_map<YAML::anchor_t, Anchored> anchors_;
  std::vector<Value> documents_;
  std::optional<Error> error_;
};

// Runs yaml-cpp over `in`, feeding `handler`; translates its exceptions.
template <typename H>
Result<void> parse_with(std::string_view in, H& handler) {
  ViewBuf buf(in);
  std::istream stream(&buf);
  try {
    YAML::Parser parser(stream);
    while (parser.HandleNextDocument(handler)) {
    }
    return {};
  } catch (const Abort&) {
    return fail(std::move(*handler.error()));
  } catch (const YAML::DeepRecursion& e) {
    return fail(input_error(ErrorCode::kUnprocessable, "depth_limit", "YAML", static_cast<std::size_t>(e.mark.line + 1),
                            static_cast<std::size_t>(e.mark.column + 1), "nesting too deep"));
  } catch (const YAML::Exception& e) {
    return fail(parse_error("YAML", static_cast<std::size_t>(e.mark.line + 1),
                            static_cast<std::size_t>(e.mark.column + 1), e.msg));
  } catch (const std::exception& e) {
    return fail(ErrorCode::kInvalidArgument, std::string("YAML error: ") + e.what(), "parse_error");
  }
}

}  // namespace

Result<Value> read_yaml(std::string_view in, const ConvertOptions& o) {
  if (in.find('*') != std::string_view::npos) {  // may hold aliases: count first
    Counter counter(o.limits);
    if (auto r = parse_with(in, counter); !r) return fail(std::move(r.error()));
  }
  Handler handler(o.limits);
  if (auto r = parse_with(in, handler); !r) return fail(std::move(r.error()));
  auto& docs = handler.documents();
  if (docs.empty()) return Value();  // empty stream
  if (docs.size() == 1) return std::move(docs.front());
  return Value(Array(std::make_move_iterator(docs.begin()), std::make_move_iterator(docs.end())));
}

}  // namespace llmd::convert::detail
