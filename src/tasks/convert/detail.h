// Internals shared by the per-format readers and writers. Not part of the
// module's interface: include only from src/tasks/convert/*.cpp.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"
#include "tasks/convert/convert.h"
#include "tasks/convert/document.h"

namespace llmd::convert::detail {

// 1-based line and column (in bytes) of `offset` within `text`.
std::pair<std::size_t, std::size_t> line_column(std::string_view text, std::size_t offset);

// "<FORMAT> parse error at line L, column C: what" as kInvalidArgument/parse_error.
Error parse_error(std::string_view format, std::size_t line, std::size_t column, std::string_view what);
// Same, for errors that are not about syntax (limits, duplicates) but still
// point at a place in the input.
Error input_error(ErrorCode code, std::string_view reason, std::string_view format, std::size_t line,
                  std::size_t column, std::string_view what);
// kUnprocessable/unrepresentable: "cannot write <format>: what".
Error unrepresentable(std::string_view format, std::string_view what);

// Counts values and nesting while a reader builds a document.
class Budget {
 public:
  explicit Budget(const Limits& limits) : limits_(limits) {}
  // Adds `n` values; false once the total passes limits.max_nodes or the
  // work is cancelled (limits.cancel). nodes_code(), nodes_reason() and
  // nodes_message() then describe which.
  bool add_nodes(std::size_t n = 1) {
    nodes_ += n;
    return nodes_ <= limits_.max_nodes && !limits_.cancel.stop_requested();
  }
  // Enters one container level; false once depth passes limits.max_depth.
  bool enter() { return ++depth_ <= limits_.max_depth; }
  void leave() { --depth_; }
  int depth() const { return depth_; }
  std::size_t nodes() const { return nodes_; }
  const Limits& limits() const { return limits_; }
  std::string depth_message() const;
  ErrorCode nodes_code() const;
  std::string_view nodes_reason() const;
  std::string nodes_message() const;

 private:
  const Limits& limits_;
  std::size_t nodes_ = 0;
  int depth_ = 0;
};

// True once `limits.cancel` is requested; writers check it per container.
inline bool cancelled(const Limits& limits) { return limits.cancel.stop_requested(); }
// kUnavailable/cancelled: the conversion was stopped before it finished.
Error cancelled_error();

// Number of values in `v` (v itself included).
std::size_t count_nodes(const Value& v);

// Parses an integer literal: optional '-', decimal digits, no leading zeros
// (except "0" itself). Returns an int64 Value, a BigInt Value when it does not
// fit, or nullopt when `s` is not such a literal.
std::optional<Value> parse_integer(std::string_view s);

// Parses a decimal floating literal ("1.5", "-0.25e3", "1e3"), rejecting
// leading zeros in the integer part ("01.5"); nullopt otherwise.
std::optional<double> parse_decimal_double(std::string_view s);

// The value `infer_types` makes of a text cell: int/bigint/double/bool/null
// when unambiguous, the string itself otherwise.
Value infer_scalar(std::string_view text);

// Shortest text that reads back as the same double and always contains '.',
// 'e' or is inf/nan ("1.0", "0.1", "1e+300"). Non-finite: "inf", "-inf", "nan".
std::string format_double(double d);

// Text of a scalar for formats whose values are text (XML, CSV): null -> "",
// bool -> "true"/"false", numbers in their exact decimal form.
std::string scalar_text(const Value& v);

// Length of the multi-byte character at s[i] when YAML would take it for a
// line break, BOM or non-printable (C1 controls incl. NEL, U+2028, U+2029,
// U+FEFF, U+FFFE, U+FFFF); 0 otherwise.
std::size_t special_sequence_length(std::string_view s, std::size_t i);

// Appends `s` double-quoted in the escape syntax JSON, TOML and YAML share
// (\" \\ \n \r \t \b \f, \uXXXX for other control characters). `strict`
// also escapes DEL and the special_sequence_length() characters, which TOML
// and YAML need; JSON output leaves them raw.
void append_quoted(std::string& out, std::string_view s, bool strict);

// Readers and writers, one pair per format. Inputs are valid UTF-8 without a
// BOM and within the byte limit (convert.cpp checks that once).
Result<Value> read_json(std::string_view in, const ConvertOptions& o);
Result<std::string> write_json(const Value& v, const ConvertOptions& o);
Result<Value> read_yaml(std::string_view in, const ConvertOptions& o);
Result<std::string> write_yaml(const Value& v, const ConvertOptions& o);
Result<Value> read_xml(std::string_view in, const ConvertOptions& o);
Result<std::string> write_xml(const Value& v, const ConvertOptions& o);
Result<Value> read_csv(std::string_view in, char delimiter, const ConvertOptions& o);
Result<std::string> write_csv(const Value& v, char delimiter, const ConvertOptions& o);
Result<Value> read_toml(std::string_view in, const ConvertOptions& o);
Result<std::string> write_toml(const Value& v, const ConvertOptions& o);

// One CSV row: the flattened (dotted key, scalar) pairs of one object.
using FlatRow = std::vector<std::pair<std::string, const Value*>>;

// Flattens `row` into dotted keys: {"b":{"x":1},"t":[5,6]} -> b.x, t.1, t.2.
// Empty arrays/objects become one empty cell under their own key.
void flatten(const Value& row, FlatRow& out);

// Rebuilds nested values from a CSV header of dotted keys. Built once per
// header; build() then turns each row's cells into one value. A key path whose
// children are exactly 1..n becomes an array, any other path an object.
class Unflattener {
 public:
  // Fails with kUnprocessable when a key is both a value and a parent
  // ("a" and "a.b") or a path is empty ("a..b").
  static Result<Unflattener> make(const std::vector<std::string>& header);
  // `cells` has one value per header column.
  Value build(std::vector<Value>& cells) const;

  struct Node {
    enum class Kind { kLeaf, kObject, kArray } kind = Kind::kLeaf;
    std::size_t column = 0;                              // kLeaf
    std::vector<std::pair<std::string, Node>> children;  // kObject / kArray (in index order)
  };

 private:
  Node root_;
};

}  // namespace llmd::convert::detail
