// Nested values <-> CSV columns with dotted keys ("b.x", "t.1", "t.2").
#include <algorithm>
#include <unordered_map>

#include "tasks/convert/detail.h"

namespace llmd::convert::detail {
namespace {

void flatten_into(const Value& v, std::string& path, FlatRow& out) {
  auto descend = [&](std::string_view key, const Value& child) {
    std::size_t mark = path.size();
    if (!path.empty()) path += '.';
    path += key;
    flatten_into(child, path, out);
    path.resize(mark);
  };
  if (v.is_object() && !v.as_object().empty()) {
    for (const auto& [k, child] : v.as_object()) descend(k, child);
  } else if (v.is_array() && !v.as_array().empty()) {
    const auto& a = v.as_array();
    for (std::size_t i = 0; i < a.size(); ++i) descend(std::to_string(i + 1), a[i]);
  } else {
    out.emplace_back(path, &v);  // scalars, and empty lists/objects as one empty cell
  }
}

// Splits "a.b.c" on dots; a key with an empty segment ("a..b", "v.") is kept whole.
std::vector<std::string> split_path(const std::string& key) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    auto dot = key.find('.', start);
    std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty()) return {key};
    parts.push_back(std::move(part));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

// "1", "2", ... without leading zeros; 0 otherwise.
std::size_t array_index(const std::string& s) {
  if (s.empty() || s.size() > 9 || s[0] == '0') return 0;
  std::size_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return 0;
    n = n * 10 + static_cast<std::size_t>(c - '0');
  }
  return n;
}

// Turns object nodes whose keys are exactly 1..n into arrays, recursively.
void settle(Unflattener::Node& node, bool is_root) {
  using Kind = Unflattener::Node::Kind;
  if (node.kind == Kind::kLeaf) return;
  for (auto& [k, child] : node.children) settle(child, false);
  if (is_root || node.children.empty()) return;
  std::vector<bool> seen(node.children.size() + 1, false);
  for (const auto& [k, child] : node.children) {
    std::size_t i = array_index(k);
    if (i == 0 || i > node.children.size() || seen[i]) return;
    seen[i] = true;
  }
  std::sort(node.children.begin(), node.children.end(),
            [](const auto& a, const auto& b) { return array_index(a.first) < array_index(b.first); });
  node.kind = Kind::kArray;
}

Value build_node(const Unflattener::Node& node, std::vector<Value>& cells) {
  using Kind = Unflattener::Node::Kind;
  switch (node.kind) {
    case Kind::kLeaf: return std::move(cells[node.column]);
    case Kind::kArray: {
      Array a;
      a.reserve(node.children.size());
      for (const auto& [k, child] : node.children) a.push_back(build_node(child, cells));
      return Value(std::move(a));
    }
    case Kind::kObject: {
      Object o;
      o.reserve(node.children.size());
      for (const auto& [k, child] : node.children) o.insert(k, build_node(child, cells));
      return Value(std::move(o));
    }
  }
  return Value();
}

}  // namespace

void flatten(const Value& row, FlatRow& out) {
  std::string path;
  if (row.is_object() && row.as_object().empty()) return;  // a row with no cells
  flatten_into(row, path, out);
}

Result<Unflattener> Unflattener::make(const std::vector<std::string>& header) {
  using Kind = Node::Kind;
  Unflattener u;
  u.root_.kind = Kind::kObject;
  // The parts so far, each as "<length>:<part>" (unambiguous whatever a part
  // holds) -> index of that node in its parent's children. Scanning the
  // parent's children for every column made a wide header quadratic.
  std::unordered_map<std::string, std::size_t> child_index;
  child_index.reserve(header.size());
  std::string path;
  for (std::size_t column = 0; column < header.size(); ++column) {
    auto parts = split_path(header[column]);
    Node* node = &u.root_;
    path.clear();
    for (std::size_t i = 0; i < parts.size(); ++i) {
      bool last = i + 1 == parts.size();
      path += std::to_string(parts[i].size());
      path += ':';
      path += parts[i];
      auto [it, added] = child_index.try_emplace(path, node->children.size());
      if (!added && (last || node->children[it->second].second.kind == Kind::kLeaf)) {
        return fail(ErrorCode::kUnprocessable,
                    "CSV header column \"" + header[column] + "\" conflicts with an earlier column", "csv_shape");
      }
      if (added) {
        Node child;
        child.kind = last ? Kind::kLeaf : Kind::kObject;
        child.column = column;
        node->children.emplace_back(parts[i], std::move(child));
      }
      node = &node->children[it->second].second;
    }
  }
  settle(u.root_, true);
  return u;
}

Value Unflattener::build(std::vector<Value>& cells) const { return build_node(root_, cells); }

}  // namespace llmd::convert::detail
