// Random documents for the conversion property tests: each generator makes
// exactly the documents one format can carry (see convert.h's conventions).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tasks/convert/document.h"

namespace llmd::convert::test_docs {

class Gen {
 public:
  explicit Gen(std::uint64_t seed) : rng_(seed) {}

  int below(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  bool chance(int percent) { return below(100) < percent; }

  // Any text, including YAML-ambiguous words, markup characters, Chinese and emoji.
  std::string text(bool allow_empty = true) {
    static const std::vector<std::string> kAtoms = {
        "a",           "Z",    "yes",  "no",  "on",    "off",   "y",        "N",
        "true",        "null", "~",    "1e3", "01730", "0x1F",  "-",        "- x",
        "a: b",        "#c",   " ",    "\n",  "\t",    "\"",    "'",        "\\",
        ",",           ";",    "<",    ">",   "&",     "&amp;", "]]>",      "{",
        "}",           "[",    "]",    "*",   "!",     "%",     "@",        "`",
        "|",           "=",    "<<",   ".",   "1.5",   "-7",    "张三",     "中文",
        "😀",           "é",    "\r\n", "=A1", "\x01",  "\x7f",  "\xC2\x85", "\xE2\x80\xA8",
        "\xEF\xBB\xBF"};  // SOH, DEL, NEL, LS, BOM
    std::string s;
    int n = allow_empty ? below(5) : 1 + below(4);
    for (int i = 0; i < n; ++i) s += kAtoms[static_cast<std::size_t>(below(static_cast<int>(kAtoms.size())))];
    return s;
  }

  // A name usable as an XML element, a CSV column path segment and a TOML key.
  std::string name() {
    static const std::vector<std::string> kNames = {"a",   "b",        "id",  "name", "zip",  "名字",  "item",
                                                    "x_1", "data-set", "yes", "on",   "null", "Title", "v2"};
    return kNames[static_cast<std::size_t>(below(static_cast<int>(kNames.size())))];
  }

  Value number() {
    switch (below(6)) {
      case 0: return Value(std::int64_t{INT64_MAX});
      case 1: return Value(std::int64_t{INT64_MIN});
      case 2: return Value(static_cast<std::int64_t>(std::uniform_int_distribution<std::int64_t>()(rng_)));
      case 3: return Value(1000000);
      case 4: return Value(std::uniform_real_distribution<double>(-1e6, 1e6)(rng_));
      default: return Value(std::ldexp(std::uniform_real_distribution<double>(0.5, 1)(rng_), below(2000) - 1000));
    }
  }

  // Anything JSON can hold.
  Value json_value(int depth, bool allow_null = true, bool allow_big = true) {
    int pick = below(depth > 0 ? 9 : 6);
    switch (pick) {
      case 0: return allow_null ? Value() : Value(text());
      case 1: return Value(chance(50));
      case 2: return number();
      case 3: return allow_big ? Value(BigInt{"123456789012345678901234567890"}) : number();
      case 4:
      case 5: return Value(text());
      case 6:
      case 7: return Value(object(depth, allow_null, allow_big));
      default: {
        Array a;
        int n = below(4);
        for (int i = 0; i < n; ++i) a.push_back(json_value(depth - 1, allow_null, allow_big));
        return Value(std::move(a));
      }
    }
  }

  Object object(int depth, bool allow_null = true, bool allow_big = true) {
    Object o;
    int n = below(5);
    for (int i = 0; i < n; ++i) o.insert(text(), json_value(depth - 1, allow_null, allow_big));
    return o;
  }

  // XML-shaped: one root element; children are strings, objects with
  // attributes, or lists of two or more entries (one entry would read back
  // as a single child). Strings are non-empty (empty reads back as null).
  Value xml_element(int depth) {
    if (depth <= 0 || chance(40)) return Value(xml_text());
    Object o;
    if (chance(30)) o.insert("@" + name(), Value(xml_text(true)));
    if (chance(20)) o.insert("@" + name(), Value(xml_text(true)));
    if (chance(20)) o.insert("#text", Value(xml_text()));
    int n = 1 + below(3);
    for (int i = 0; i < n; ++i) {
      std::string key = name();
      if (o.contains(key)) continue;
      if (chance(30)) {
        Array a;
        int m = 2 + below(2);
        for (int j = 0; j < m; ++j) a.push_back(xml_element(depth - 1));
        o.insert(key, Value(std::move(a)));
      } else {
        o.insert(key, xml_element(depth - 1));
      }
    }
    return Value(std::move(o));
  }

  // XML text: no CR (XML normalises line ends), no C0 controls (XML 1.0 has
  // none), no whitespace-only text.
  std::string xml_text(bool allow_empty = false) {
    while (true) {
      std::string s = text(allow_empty);
      if (s.find_first_of("\r\x01") != std::string::npos) continue;
      if (allow_empty && s.empty()) return s;
      if (s.find_first_not_of(" \t\n") == std::string::npos) continue;
      return s;
    }
  }

  // CSV-shaped: rows with the same nested shape; cells are strings.
  Value csv_rows() {
    Value shape = csv_shape(2);
    Array rows;
    int n = 1 + below(4);
    for (int i = 0; i < n; ++i) rows.push_back(fill(shape));
    return Value(std::move(rows));
  }

  std::mt19937_64& rng() { return rng_; }

 private:
  // Keys for CSV: never numeric and never dotted (they would unflatten).
  Value csv_shape(int depth) {
    Object o;
    int n = 1 + below(4);
    for (int i = 0; i < n; ++i) {
      std::string key = name();
      if (o.contains(key)) continue;
      int kind = depth > 0 ? below(4) : 0;
      if (kind == 1) {
        o.insert(key, csv_shape(depth - 1));
      } else if (kind == 2) {
        Array a;
        int m = 1 + below(3);
        for (int j = 0; j < m; ++j) a.push_back(depth > 1 && chance(30) ? csv_shape(depth - 2) : Value(""));
        o.insert(key, Value(std::move(a)));
      } else {
        o.insert(key, Value(""));
      }
    }
    return Value(std::move(o));
  }

  Value fill(const Value& shape) {
    if (shape.is_string()) return Value(text());
    if (shape.is_array()) {
      Array a;
      for (const auto& v : shape.as_array()) a.push_back(fill(v));
      return Value(std::move(a));
    }
    Object o;
    for (const auto& [k, v] : shape.as_object()) o.insert(k, fill(v));
    return Value(std::move(o));
  }

  std::mt19937_64 rng_;
};

}  // namespace llmd::convert::test_docs
