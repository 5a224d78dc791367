// XML reader and writer on pugixml.
//
// Mapping: <a x="1"><b>t</b><b>u</b></a>  <->  {"a": {"@x": "1", "b": ["t", "u"]}}
// * attributes become "@name" keys, text next to attributes or child
//   elements becomes "#text"; an element with only text becomes a string and
//   an empty element null;
// * repeated sibling elements become an array at the first one's position;
// * comments and processing instructions are dropped.
// Security: pugixml never loads external entities or DTDs; in addition a
// DOCTYPE that declares entities is rejected ("xml_entities_forbidden"), so an
// XXE or entity-expansion payload is refused before any conversion. A DOCTYPE
// without declarations is ignored.
#include <pugixml.hpp>

#include "tasks/convert/detail.h"

namespace llmd::convert::detail {
namespace {

class Reader {
 public:
  // Starts one level and one value deep: the object that holds the root element.
  Reader(std::string_view input, const ConvertOptions& o) : input_(input), o_(o), budget_(o.limits) {
    budget_.add_nodes();
    budget_.enter();
  }

  Result<Value> element(const pugi::xml_node& node) {
    if (!budget_.add_nodes())
      return fail_at(node, budget_.nodes_code(), budget_.nodes_reason(), budget_.nodes_message());
    bool has_children = false;
    for (auto child : node.children()) {
      if (child.type() == pugi::node_element) {
        has_children = true;
        break;
      }
    }
    if (!has_children && node.first_attribute().empty()) {
      std::string text = collect_text(node);
      if (text.empty()) return Value();
      return scalar(std::move(text));
    }
    if (!budget_.enter()) return fail_at(node, ErrorCode::kUnprocessable, "depth_limit", budget_.depth_message());
    Object o;
    for (auto attr : node.attributes()) {
      if (!budget_.add_nodes())
        return fail_at(node, budget_.nodes_code(), budget_.nodes_reason(), budget_.nodes_message());
      // pugixml does not check Unique Att Spec; a repeated attribute is not
      // well-formed XML and is refused like a duplicate JSON key.
      if (!o.insert(std::string("@") + attr.name(), scalar(attr.value())))
        return fail_at(node, ErrorCode::kUnprocessable, "duplicate_key",
                       "duplicate attribute \"" + std::string(attr.name()) + "\" on element <" + node.name() + ">");
    }
    for (auto child : node.children()) {
      switch (child.type()) {
        case pugi::node_element: {
          auto v = element(child);
          if (!v) return v;
          Value* existing = o.find(child.name());
          if (!existing) {
            o.insert(child.name(), std::move(*v));
          } else if (existing->is_array()) {  // an element's own value is never an array
            existing->as_array().push_back(std::move(*v));
          } else {
            Array a;
            a.push_back(std::move(*existing));
            a.push_back(std::move(*v));
            *existing = Value(std::move(a));
          }
          break;
        }
        case pugi::node_pcdata:
        case pugi::node_cdata: {
          Value* text = o.find("#text");
          if (!text)
            o.insert("#text", Value(std::string(child.value())));
          else
            *text = Value(text->as_string() + child.value());
          break;
        }
        default: break;
      }
    }
    if (o_.infer_types) {
      if (Value* text = o.find("#text")) *text = infer_scalar(text->as_string());
    }
    budget_.leave();
    return Value(std::move(o));
  }

 private:
  static std::string collect_text(const pugi::xml_node& node) {
    std::string text;
    for (auto child : node.children())
      if (child.type() == pugi::node_pcdata || child.type() == pugi::node_cdata) text += child.value();
    return text;
  }

  Value scalar(std::string text) const { return o_.infer_types ? infer_scalar(text) : Value(std::move(text)); }

  std::unexpected<Error> fail_at(const pugi::xml_node& node, ErrorCode code, std::string_view reason,
                                 const std::string& what) const {
    auto offset = node.offset_debug();
    auto [line, column] = line_column(input_, offset < 0 ? 0 : static_cast<std::size_t>(offset));
    return fail(input_error(code, reason, "XML", line, column, what));
  }

  std::string_view input_;
  const ConvertOptions& o_;
  Budget budget_;
};

bool is_name_start(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || c >= 0x80;
}

bool is_xml_name(std::string_view s) {
  if (s.empty() || !is_name_start(static_cast<unsigned char>(s[0]))) return false;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (!(is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  }
  return true;
}

// XML 1.0 cannot carry C0 control characters other than tab, LF and CR.
bool is_xml_text(std::string_view s) {
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return false;
  }
  return true;
}

class Writer {
 public:
  explicit Writer(const ConvertOptions& o) : o_(o) {}

  Result<void> element(pugi::xml_node parent, const std::string& name, const Value& v) {
    if (cancelled(o_.limits)) return fail(cancelled_error());
    if (!is_xml_name(name)) return fail(unrepresentable("XML", "\"" + name + "\" is not a valid XML element name"));
    if (v.is_array()) {
      if (v.as_array().empty()) {
        parent.append_child(name.c_str());  // an empty list becomes one empty element
        return {};
      }
      for (const auto& item : v.as_array()) {
        if (item.is_array()) {
          // A list inside a list: one element per inner list, its entries as items.
          auto holder = parent.append_child(name.c_str());
          for (const auto& inner : item.as_array())
            if (auto r = element(holder, o_.item_name, inner); !r) return r;
        } else if (auto r = element(parent, name, item); !r) {
          return r;
        }
      }
      return {};
    }
    auto node = parent.append_child(name.c_str());
    if (!v.is_object()) return text(node, v);
    for (const auto& [k, child] : v.as_object()) {
      if (k.starts_with('@')) {
        std::string attr = k.substr(1);
        if (!is_xml_name(attr))
          return fail(unrepresentable("XML", "\"" + attr + "\" is not a valid XML attribute name"));
        if (!child.is_scalar())
          return fail(unrepresentable("XML", "attribute \"" + k + "\" holds " + std::string(kind_name(child.kind()))));
        std::string value = scalar_text(child);
        if (!is_xml_text(value)) return fail(unrepresentable("XML", "control character in attribute \"" + k + "\""));
        node.append_attribute(attr.c_str()).set_value(value.c_str());
      } else if (k == "#text") {
        if (!child.is_scalar())
          return fail(unrepresentable("XML", "\"#text\" holds " + std::string(kind_name(child.kind()))));
        if (auto r = text(node, child); !r) return r;
      } else if (auto r = element(node, k, child); !r) {
        return r;
      }
    }
    return {};
  }

 private:
  Result<void> text(pugi::xml_node node, const Value& v) {
    if (v.is_null()) return {};
    std::string s = scalar_text(v);
    if (!is_xml_text(s)) return fail(unrepresentable("XML", "control character in text"));
    if (s.find('\0') != std::string::npos) return fail(unrepresentable("XML", "NUL in text"));
    node.append_child(pugi::node_pcdata).set_value(s.c_str());
    return {};
  }

  const ConvertOptions& o_;
};

struct StringSink : pugi::xml_writer {
  std::string out;
  void write(const void* data, size_t size) override { out.append(static_cast<const char*>(data), size); }
};

}  // namespace

Result<Value> read_xml(std::string_view in, const ConvertOptions& o) {
  pugi::xml_document doc;
  auto parsed =
      doc.load_buffer(in.data(), in.size(), pugi::parse_default | pugi::parse_doctype | pugi::parse_ws_pcdata_single,
                      pugi::encoding_utf8);
  if (!parsed) {
    auto [line, column] = line_column(in, static_cast<std::size_t>(std::max<std::ptrdiff_t>(parsed.offset, 0)));
    return fail(parse_error("XML", line, column, parsed.description()));
  }
  pugi::xml_node root;
  for (auto node : doc.children()) {
    if (node.type() == pugi::node_doctype) {
      std::string_view decl = node.value();
      if (decl.find("<!ENTITY") != std::string_view::npos) {
        auto [line, column] =
            line_column(in, static_cast<std::size_t>(std::max<std::ptrdiff_t>(node.offset_debug(), 0)));
        return fail(input_error(ErrorCode::kUnprocessable, "xml_entities_forbidden", "XML", line, column,
                                "DOCTYPE entity declarations are not allowed"));
      }
    } else if (node.type() == pugi::node_element) {
      if (root) {
        auto [line, column] =
            line_column(in, static_cast<std::size_t>(std::max<std::ptrdiff_t>(node.offset_debug(), 0)));
        return fail(parse_error("XML", line, column, "more than one root element"));
      }
      root = node;
    }
  }
  if (!root) return fail(parse_error("XML", 1, 1, "no root element"));
  Reader reader(in, o);
  auto v = reader.element(root);
  if (!v) return v;
  Object top;
  top.insert(root.name(), std::move(*v));
  return Value(std::move(top));
}

Result<std::string> write_xml(const Value& v, const ConvertOptions& o) {
  pugi::xml_document doc;
  auto decl = doc.append_child(pugi::node_declaration);
  decl.append_attribute("version").set_value("1.0");
  decl.append_attribute("encoding").set_value("UTF-8");
  Writer writer(o);
  Result<void> r;
  // One key holding a non-list value is the root element itself; anything
  // else is wrapped: an object's keys become children of <root>, a list's
  // entries <item> children, a scalar the text of <root>.
  if (v.is_object() && v.as_object().size() == 1 && !v.as_object().begin()->second.is_array()) {
    const auto& [name, value] = *v.as_object().begin();
    r = writer.element(doc, name, value);
  } else if (v.is_array()) {
    if (!is_xml_name(o.root_name))
      return fail(unrepresentable("XML", "\"" + o.root_name + "\" is not a valid XML element name"));
    auto root = doc.append_child(o.root_name.c_str());
    if (!v.as_array().empty()) r = writer.element(root, o.item_name, v);
  } else {
    r = writer.element(doc, o.root_name, v);
  }
  if (!r) return fail(std::move(r.error()));
  StringSink sink;
  std::string indent(static_cast<std::size_t>(o.indent), ' ');
  doc.save(sink, indent.c_str(), o.pretty ? pugi::format_indent : pugi::format_raw, pugi::encoding_utf8);
  return std::move(sink.out);
}

}  // namespace llmd::convert::detail
