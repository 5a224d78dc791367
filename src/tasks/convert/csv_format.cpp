// CSV/TSV (RFC 4180) reader and writer; TSV uses the same quoting with a tab.
//
// Reading: the first record is the header; each later record becomes an
// object keyed by it, dotted keys unflattened. Records end with CRLF, LF or
// CR; quoted fields may hold delimiters, quotes ("") and line breaks. Blank
// lines are skipped. A record shorter than the header is filled with empty
// strings; a longer one is an error. Cells stay strings unless infer_types.
// Writing: an array of objects (or one object) is flattened; the header is
// the union of all rows' keys in first-seen order; missing cells are empty;
// records end with CRLF.
#include <unordered_map>
#include <unordered_set>

#include "tasks/convert/detail.h"

namespace llmd::convert::detail {
namespace {

std::string_view format_of(char delimiter) { return delimiter == '\t' ? "TSV" : "CSV"; }

class RecordReader {
 public:
  RecordReader(std::string_view in, char delimiter) : in_(in), delimiter_(delimiter) {}

  // Reads the next non-blank record into `fields`. Returns false at the end
  // of input; error() is set when the input is malformed.
  bool next(std::vector<std::string>& fields) {
    while (pos_ < in_.size()) {
      record_start_ = pos_;
      fields.clear();
      bool any_quoted = false;
      if (!read_record(fields, any_quoted)) return false;
      if (fields.size() == 1 && fields[0].empty() && !any_quoted) continue;  // blank line
      return true;
    }
    return false;
  }

  std::optional<Error>& error() { return error_; }
  // 1-based line of the record last returned.
  std::size_t record_line() const { return line_column(in_, record_start_).first; }

 private:
  bool read_record(std::vector<std::string>& fields, bool& any_quoted) {
    while (true) {
      std::string field;
      if (pos_ < in_.size() && in_[pos_] == '"') {
        any_quoted = true;
        std::size_t open = pos_++;
        while (true) {
          auto q = in_.find('"', pos_);
          if (q == std::string_view::npos) return set_error(open, "quoted field is never closed");
          field.append(in_.substr(pos_, q - pos_));
          pos_ = q + 1;
          if (pos_ < in_.size() && in_[pos_] == '"') {  // "" is one quote
            field += '"';
            ++pos_;
            continue;
          }
          break;
        }
        if (pos_ < in_.size() && in_[pos_] != delimiter_ && in_[pos_] != '\r' && in_[pos_] != '\n')
          return set_error(pos_, "unexpected character after a closing quote");
      } else {
        std::size_t start = pos_;
        while (pos_ < in_.size() && in_[pos_] != delimiter_ && in_[pos_] != '\r' && in_[pos_] != '\n') ++pos_;
        field.assign(in_.substr(start, pos_ - start));
      }
      fields.push_back(std::move(field));
      if (pos_ >= in_.size()) return true;
      char c = in_[pos_++];
      if (c == delimiter_) continue;
      if (c == '\r' && pos_ < in_.size() && in_[pos_] == '\n') ++pos_;
      return true;
    }
  }

  bool set_error(std::size_t offset, std::string_view what) {
    auto [line, column] = line_column(in_, offset);
    error_ = parse_error(format_of(delimiter_), line, column, what);
    pos_ = in_.size();
    return false;
  }

  std::string_view in_;
  char delimiter_;
  std::size_t pos_ = 0;
  std::size_t record_start_ = 0;
  std::optional<Error> error_;
};

void append_cell(std::string& out, std::string_view s, char delimiter, bool lone_cell) {
  bool quote = (lone_cell && s.empty()) ||
               s.find_first_of(delimiter == '\t' ? std::string_view("\t\"\r\n") : std::string_view(",\"\r\n")) !=
                   std::string_view::npos;
  if (!quote) {
    out += s;
    return;
  }
  out += '"';
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

}  // namespace

Result<Value> read_csv(std::string_view in, char delimiter, const ConvertOptions& o) {
  std::string_view fmt = format_of(delimiter);
  RecordReader reader(in, delimiter);
  std::vector<std::string> header;
  if (!reader.next(header)) {
    if (reader.error()) return fail(std::move(*reader.error()));
    return Value(Array());
  }
  if (header.size() > o.limits.max_columns)
    return fail(input_error(ErrorCode::kTooLarge, "column_limit", fmt, 1, 1,
                            "the header has " + std::to_string(header.size()) + " columns, over the limit of " +
                                std::to_string(o.limits.max_columns)));
  // Hashed, so a wide header costs time linear in its size.
  std::unordered_set<std::string_view> seen;
  seen.reserve(header.size());
  std::size_t max_segments = 1;
  for (const auto& column : header) {
    if (!seen.insert(column).second)
      return fail(input_error(ErrorCode::kUnprocessable, "duplicate_key", fmt, 1, 1,
                              "column \"" + column + "\" appears twice in the header"));
    max_segments = std::max<std::size_t>(max_segments, 1 + std::count(column.begin(), column.end(), '.'));
  }
  if (static_cast<int>(max_segments) + 1 > o.limits.max_depth)
    return fail(input_error(ErrorCode::kUnprocessable, "depth_limit", fmt, 1, 1,
                            "dotted header keys nest deeper than the limit"));
  auto shape = Unflattener::make(header);
  if (!shape) return fail(std::move(shape.error()));

  Budget budget(o.limits);
  Array rows;
  std::vector<std::string> fields;
  std::vector<Value> cells;
  while (reader.next(fields)) {
    if (fields.size() > header.size()) {
      return fail(parse_error(fmt, reader.record_line(), 1,
                              "record has " + std::to_string(fields.size()) + " fields but the header has " +
                                  std::to_string(header.size())));
    }
    if (!budget.add_nodes(header.size() + 2))
      return fail(input_error(budget.nodes_code(), budget.nodes_reason(), fmt, reader.record_line(), 1,
                              budget.nodes_message()));
    cells.clear();
    for (auto& f : fields) cells.push_back(o.infer_types ? infer_scalar(f) : Value(std::move(f)));
    while (cells.size() < header.size()) cells.emplace_back(std::string());  // short record: fill
    rows.push_back(shape->build(cells));
  }
  if (reader.error()) return fail(std::move(*reader.error()));
  return Value(std::move(rows));
}

Result<std::string> write_csv(const Value& v, char delimiter, const ConvertOptions& o) {
  std::string_view fmt = format_of(delimiter);
  std::vector<const Value*> rows;
  if (v.is_object()) {
    rows.push_back(&v);
  } else if (v.is_array()) {
    for (const auto& r : v.as_array()) rows.push_back(&r);
  } else {
    return fail(unrepresentable(fmt, "needs an array of objects, got " + std::string(kind_name(v.kind()))));
  }

  std::vector<std::string> header;
  std::unordered_map<std::string, std::size_t> column_of;
  std::vector<std::vector<std::pair<std::size_t, const Value*>>> table;
  table.reserve(rows.size());
  FlatRow flat;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    if (cancelled(o.limits)) return fail(cancelled_error());
    if (!rows[r]->is_object())
      return fail(unrepresentable(
          fmt, "row " + std::to_string(r + 1) + " is " + std::string(kind_name(rows[r]->kind())) + ", not an object"));
    flat.clear();
    flatten(*rows[r], flat);
    auto& cells = table.emplace_back();
    cells.reserve(flat.size());
    for (auto& [key, value] : flat) {
      auto [it, added] = column_of.try_emplace(key, header.size());
      if (added) header.push_back(key);
      cells.emplace_back(it->second, value);
    }
  }

  std::string out;
  if (header.empty()) return out;
  bool lone = header.size() == 1;
  for (std::size_t c = 0; c < header.size(); ++c) {
    if (c) out += delimiter;
    append_cell(out, header[c], delimiter, lone);
  }
  out += "\r\n";
  std::vector<const Value*> line(header.size());
  for (const auto& cells : table) {
    if (cancelled(o.limits)) return fail(cancelled_error());
    std::fill(line.begin(), line.end(), nullptr);
    for (const auto& [c, value] : cells) line[c] = value;
    for (std::size_t c = 0; c < header.size(); ++c) {
      if (c) out += delimiter;
      if (line[c] && line[c]->is_string())
        append_cell(out, line[c]->as_string(), delimiter, lone);
      else
        append_cell(out, line[c] ? scalar_text(*line[c]) : std::string(), delimiter, lone);
    }
    out += "\r\n";
  }
  return out;
}

}  // namespace llmd::convert::detail
