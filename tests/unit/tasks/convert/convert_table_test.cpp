// Table-driven specification of the conversion conventions: each row is one
// input, one pair of formats, and the exact output or error expected.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "tasks/convert/convert.h"

namespace llmd::convert {
namespace {

struct Case {
  std::string name;
  Format from;
  Format to;
  std::string input;
  std::string expected;                 // exact output when no error is expected
  std::optional<ErrorCode> error = {};  // expected failure
  std::string reason = {};              // expected Error::reason
  std::string message_has = {};         // substring of the error message
  bool infer_types = false;
  bool pretty = false;
  int max_depth = 0;  // 0: default limit
  std::size_t max_nodes = 0;
  std::size_t max_bytes = 0;
};

constexpr std::string_view kDecl = R"(<?xml version="1.0" encoding="UTF-8"?>)";

std::string xml(std::string_view body) { return std::string(kDecl) + std::string(body); }

Case ok(std::string name, Format from, Format to, std::string in, std::string out) {
  return Case{std::move(name), from, to, std::move(in), std::move(out)};
}

Case err(std::string name, Format from, Format to, std::string in, ErrorCode code, std::string reason,
         std::string message_has = {}) {
  Case c{std::move(name), from, to, std::move(in), {}};
  c.error = code;
  c.reason = std::move(reason);
  c.message_has = std::move(message_has);
  return c;
}

Case infer(Case c) {
  c.infer_types = true;
  return c;
}

Case pretty(Case c) {
  c.pretty = true;
  return c;
}

Case depth(Case c, int d) {
  c.max_depth = d;
  return c;
}

using F = Format;
using E = ErrorCode;

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      // ---- JSON -> YAML ----
      ok("JsonToYamlScalars", F::kJson, F::kYaml, R"({"name":"Ann","age":30,"ok":true,"none":null,"pi":1.5})",
         "name: Ann\nage: 30\nok: true\nnone: null\npi: 1.5\n"),
      ok("JsonToYamlNested", F::kJson, F::kYaml, R"({"a":{"b":[1,2]},"c":[],"d":{}})",
         "a:\n  b:\n    - 1\n    - 2\nc: []\nd: {}\n"),
      ok("JsonToYamlQuotesYaml11Words", F::kJson, F::kYaml,
         R"({"a":"yes","b":"no","c":"on","d":"off","e":"y","f":"N","g":"true","h":"null","i":"~","j":"1e3","k":"01730","l":"123","m":"2024-01-01","n":"","o":"Yes","p":".inf","q":"0x1F"})",
         "a: \"yes\"\nb: \"no\"\nc: \"on\"\nd: \"off\"\ne: \"y\"\nf: \"N\"\ng: \"true\"\nh: \"null\"\ni: \"~\"\n"
         "j: \"1e3\"\nk: \"01730\"\nl: \"123\"\nm: \"2024-01-01\"\n\"n\": \"\"\no: \"Yes\"\np: \".inf\"\nq: "
         "\"0x1F\"\n"),
      ok("JsonToYamlQuotesIndicators", F::kJson, F::kYaml,
         R"({"s":"a: b","t":"#x","u":"- z","v":" lead","w":"trail ","x":"&a","y":"*b","z":"[1]"})",
         "s: \"a: b\"\nt: \"#x\"\nu: \"- z\"\nv: \" lead\"\nw: \"trail \"\nx: \"&a\"\n\"y\": \"*b\"\nz: \"[1]\"\n"),
      ok("JsonToYamlIntegersExact", F::kJson, F::kYaml,
         R"({"max":9223372036854775807,"min":-9223372036854775808,"m":1000000,"big":123456789012345678901234567890,"u":18446744073709551615})",
         "max: 9223372036854775807\nmin: -9223372036854775808\nm: 1000000\nbig: 123456789012345678901234567890\n"
         "u: 18446744073709551615\n"),
      ok("JsonToYamlFloats", F::kJson, F::kYaml, R"({"a":1.0,"b":0.1,"c":1e300,"d":-2.5e-7})",
         "a: 1.0\nb: 0.1\nc: 1.0e+300\nd: -2.5e-07\n"),
      ok("JsonToYamlListOfObjects", F::kJson, F::kYaml, R"([{"a":1,"b":2},{"a":3}])", "- a: 1\n  b: 2\n- a: 3\n"),
      ok("JsonToYamlNestedLists", F::kJson, F::kYaml, R"([[1,2],[3],[]])", "- - 1\n  - 2\n- - 3\n- []\n"),
      ok("JsonToYamlUnicode", F::kJson, F::kYaml, R"({"名字":"张三","emoji":"😀 ok"})", "名字: 张三\nemoji: 😀 ok\n"),
      ok("JsonToYamlMultilineEscaped", F::kJson, F::kYaml, R"({"s":"a\nb\t\"c\"\\"})",
         "s: \"a\\nb\\t\\\"c\\\"\\\\\"\n"),
      ok("JsonToYamlKeyOrderKept", F::kJson, F::kYaml, R"({"z":1,"a":2,"m":3})", "z: 1\na: 2\nm: 3\n"),
      ok("JsonToYamlTopScalar", F::kJson, F::kYaml, R"("hello")", "hello\n"),
      ok("JsonToYamlEscapesBreaksAndNonPrintables", F::kJson, F::kYaml, R"({"s":"a\u2028b\u0085c\u007f\u0000"})",
         "s: \"a\\u2028b\\u0085c\\u007F\\u0000\"\n"),
      ok("JsonToYamlMergeKeyIsQuoted", F::kJson, F::kYaml, R"({"<<":1})", "\"<<\": 1\n"),

      // ---- YAML -> JSON ----
      ok("YamlToJsonCoreSchema", F::kYaml, F::kJson,
         "a: yes\nb: on\nc: 01730\nd: 0x1F\ne: 1e3\nf: ~\ng: \"true\"\nh: 1_000\ni: True\nj: -0.5\n",
         R"({"a":"yes","b":"on","c":"01730","d":31,"e":1000.0,"f":null,"g":"true","h":"1_000","i":true,"j":-0.5})"),
      ok("YamlToYamlInfinityKept", F::kYaml, F::kYaml, "a: .inf\nb: -.Inf\nc: .nan\n", "a: .inf\nb: -.inf\nc: .nan\n"),
      err("YamlInfinityToJsonRejected", F::kYaml, F::kJson, "a: .inf\n", E::kUnprocessable, "unrepresentable"),
      ok("YamlToJsonMergeKeys", F::kYaml, F::kJson, "base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n  z: 4\n",
         R"({"base":{"x":1,"y":2},"derived":{"x":1,"y":3,"z":4}})"),
      ok("YamlToJsonMergeList", F::kYaml, F::kJson, "a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc:\n  <<: [*a, *b]\n",
         R"({"a":{"x":1},"b":{"x":2,"y":2},"c":{"x":1,"y":2}})"),
      ok("YamlToJsonAliasExpanded", F::kYaml, F::kJson, "a: &l [1, 2]\nb: *l\n", R"({"a":[1,2],"b":[1,2]})"),
      ok("YamlToJsonTwoDocuments", F::kYaml, F::kJson, "a: 1\n---\nb: 2\n", R"([{"a":1},{"b":2}])"),
      ok("YamlToJsonBigIntegers", F::kYaml, F::kJson, "n: 18446744073709551616\nm: 9223372036854775807\nk: 1000000\n",
         R"({"n":18446744073709551616,"m":9223372036854775807,"k":1000000})"),
      ok("YamlToJsonExplicitTags", F::kYaml, F::kJson, "a: !!str 123\nb: !!int \"42\"\nc: !!float 1\n",
         R"({"a":"123","b":42,"c":1.0})"),
      ok("YamlToJsonBlockScalar", F::kYaml, F::kJson, "s: |\n  line1\n  line2\n", R"({"s":"line1\nline2\n"})"),
      ok("YamlToJsonUnicode", F::kYaml, F::kJson, "名字: 张三\n表情: 😀\n", R"({"名字":"张三","表情":"😀"})"),
      ok("YamlToJsonKeyOrderKept", F::kYaml, F::kJson, "z: 1\na: 2\nm: 3\n", R"({"z":1,"a":2,"m":3})"),
      ok("YamlToJsonEmptyIsNull", F::kYaml, F::kJson, "", "null"),
      ok("YamlToJsonBom", F::kYaml, F::kJson,
         "\xEF\xBB\xBF"
         "a: 1\n",
         R"({"a":1})"),
      err("YamlDuplicateKey", F::kYaml, F::kJson, "a: 1\na: 2\n", E::kUnprocessable, "duplicate_key",
          "line 2, column 1"),
      err("YamlSyntaxError", F::kYaml, F::kJson, "a: [1, 2\nb: 3\n", E::kInvalidArgument, "parse_error",
          "YAML parse error at line"),
      err("YamlBombRejected", F::kYaml, F::kJson,
          "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
          "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
          "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i "
          "[*h,*h,*h,*h,*h,*h,*h,*h,*h]\n",
          E::kUnprocessable, "node_limit"),

      err("YamlRecursiveAliasRejected", F::kYaml, F::kJson, "a: &x [1, *x]\n", E::kUnprocessable, "alias_cycle",
          "line 1, column 11"),

      // ---- XML -> JSON ----
      ok("XmlAttributeAndChildWithSameName", F::kXml, F::kJson, R"(<a b="1"><b>2</b></a>)",
         R"({"a":{"@b":"1","b":"2"}})"),
      ok("XmlSingleChildIsNotAList", F::kXml, F::kJson, "<r><x>1</x></r>", R"({"r":{"x":"1"}})"),
      ok("XmlRepeatedChildrenBecomeList", F::kXml, F::kJson, "<r><x>1</x><y/><x>2</x></r>",
         R"({"r":{"x":["1","2"],"y":null}})"),
      ok("XmlEmptyElementIsNull", F::kXml, F::kJson, "<a/>", R"({"a":null})"),
      ok("XmlMixedTextGoesToHashText", F::kXml, F::kJson, R"(<p id="7">hi<b>x</b></p>)",
         R"({"p":{"@id":"7","#text":"hi","b":"x"}})"),
      ok("XmlValuesStayStrings", F::kXml, F::kJson, "<r><zip>01730</zip><n>42</n><t>true</t></r>",
         R"({"r":{"zip":"01730","n":"42","t":"true"}})"),
      infer(ok("XmlInferTypesKeepsZip", F::kXml, F::kJson,
               "<r><zip>01730</zip><n>42</n><f>1.5</f><t>true</t><big>99999999999999999999</big></r>",
               R"({"r":{"zip":"01730","n":42,"f":1.5,"t":true,"big":99999999999999999999}})")),
      err("XmlXxeRejected", F::kXml, F::kJson,
          R"(<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>)",
          E::kUnprocessable, "xml_entities_forbidden", "line 1"),
      err("XmlEntityBombRejected", F::kXml, F::kJson,
          "<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n<!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">\n]>\n<lolz>&lol2;</lolz>",
          E::kUnprocessable, "xml_entities_forbidden"),
      ok("XmlPlainDoctypeIgnored", F::kXml, F::kJson, "<!DOCTYPE html><html><p>x</p></html>", R"({"html":{"p":"x"}})"),
      err("XmlMalformed", F::kXml, F::kJson, "<a>\n<b></a>", E::kInvalidArgument, "parse_error",
          "XML parse error at line 2"),
      err("XmlTwoRoots", F::kXml, F::kJson, "<a/><b/>", E::kInvalidArgument, "parse_error", "more than one root"),
      ok("XmlCdataIsText", F::kXml, F::kJson, "<a><![CDATA[<x>&]]></a>", R"({"a":"<x>&"})"),
      ok("XmlCommentsDropped", F::kXml, F::kJson, "<a><!-- c --><b>1</b></a>", R"({"a":{"b":"1"}})"),
      ok("XmlUnicode", F::kXml, F::kJson, "<r><名>张三😀</名></r>", R"({"r":{"名":"张三😀"}})"),
      ok("XmlNamespacesKeptVerbatim", F::kXml, F::kJson, R"(<x:a xmlns:x="urn:x"><x:b>1</x:b></x:a>)",
         R"({"x:a":{"@xmlns:x":"urn:x","x:b":"1"}})"),
      ok("XmlEntitiesAndCharRefs", F::kXml, F::kJson, "<a>&lt;&amp;&#x4E2D;</a>", R"({"a":"<&中"})"),

      // ---- JSON -> XML ----
      ok("JsonToXmlAttributesAndText", F::kJson, F::kXml, R"({"a":{"@id":"1","#text":"hi"}})",
         xml(R"(<a id="1">hi</a>)")),
      ok("JsonToXmlListWrappedInRoot", F::kJson, F::kXml, "[1,2]", xml("<root><item>1</item><item>2</item></root>")),
      ok("JsonToXmlManyKeysWrapped", F::kJson, F::kXml, R"({"a":1,"b":true})", xml("<root><a>1</a><b>true</b></root>")),
      ok("JsonToXmlRepeatedElements", F::kJson, F::kXml, R"({"r":{"x":[1,2]}})", xml("<r><x>1</x><x>2</x></r>")),
      ok("JsonToXmlNullIsEmptyElement", F::kJson, F::kXml, R"({"r":{"x":null}})", xml("<r><x/></r>")),
      ok("JsonToXmlEscapes", F::kJson, F::kXml, R"({"r":{"@q":"\"<&>","t":"a<b&c"}})",
         xml(R"(<r q="&quot;&lt;&amp;>"><t>a&lt;b&amp;c</t></r>)")),
      ok("JsonToXmlBigIntegerExact", F::kJson, F::kXml, R"({"n":9223372036854775807})",
         xml("<n>9223372036854775807</n>")),
      err("JsonToXmlInvalidName", F::kJson, F::kXml, R"({"1a":1})", E::kUnprocessable, "unrepresentable",
          "not a valid XML element name"),
      pretty(ok("JsonToXmlPretty", F::kJson, F::kXml, R"({"r":{"a":"1","b":{"c":"2"}}})",
                std::string(kDecl) + "\n<r>\n  <a>1</a>\n  <b>\n    <c>2</c>\n  </b>\n</r>\n")),

      // ---- CSV / TSV -> JSON ----
      ok("CsvBasicKeepsZip", F::kCsv, F::kJson, "name,zip\nAnn,01730\n", R"([{"name":"Ann","zip":"01730"}])"),
      ok("CsvQuotesCommasNewlines", F::kCsv, F::kJson, "a,b\n\"x, y\",\"line1\nline2\"\n\"he said \"\"hi\"\"\",z\n",
         R"([{"a":"x, y","b":"line1\nline2"},{"a":"he said \"hi\"","b":"z"}])"),
      ok("CsvCrlfAndBom", F::kCsv, F::kJson,
         "\xEF\xBB\xBF"
         "a,b\r\n1,2\r\n",
         R"([{"a":"1","b":"2"}])"),
      ok("CsvShortRecordFilled", F::kCsv, F::kJson, "a,b,c\n1,2\n", R"([{"a":"1","b":"2","c":""}])"),
      err("CsvLongRecordRejected", F::kCsv, F::kJson, "a,b\n1,2\n1,2,3\n", E::kInvalidArgument, "parse_error",
          "CSV parse error at line 3"),
      ok("CsvUnflattensDottedKeys", F::kCsv, F::kJson, "id,b.x,b.y,t.1,t.2\n1,2,3,4,5\n",
         R"([{"id":"1","b":{"x":"2","y":"3"},"t":["4","5"]}])"),
      infer(ok("CsvInferTypes", F::kCsv, F::kJson, "n,f,b,z,s,e\n42,1.5,true,01730,+5,\n",
               R"([{"n":42,"f":1.5,"b":true,"z":"01730","s":"+5","e":""}])")),
      err("CsvUnterminatedQuote", F::kCsv, F::kJson, "a\n\"abc\n", E::kInvalidArgument, "parse_error",
          "line 2, column 1"),
      err("CsvJunkAfterQuote", F::kCsv, F::kJson, "a,b\n\"x\"y,1\n", E::kInvalidArgument, "parse_error",
          "line 2, column 4"),
      ok("TsvBasic", F::kTsv, F::kJson, "a\tb\n1\t2\n", R"([{"a":"1","b":"2"}])"),
      ok("CsvBlankLinesSkipped", F::kCsv, F::kJson, "a\n1\n\n2\n", R"([{"a":"1"},{"a":"2"}])"),
      ok("CsvLoneCrLineEnds", F::kCsv, F::kJson, "a\r1\r2", R"([{"a":"1"},{"a":"2"}])"),
      err("CsvHeaderConflict", F::kCsv, F::kJson, "a,a.b\n1,2\n", E::kUnprocessable, "csv_shape"),
      err("CsvDuplicateHeader", F::kCsv, F::kJson, "a,a\n1,2\n", E::kUnprocessable, "duplicate_key"),
      ok("CsvEmptyInputIsEmptyList", F::kCsv, F::kJson, "", "[]"),
      ok("CsvUnicode", F::kCsv, F::kJson, "名字,表情\n张三,😀\n", R"([{"名字":"张三","表情":"😀"}])"),

      // ---- JSON -> CSV / TSV ----
      ok("JsonToCsvUnionHeaderAndFlatten", F::kJson, F::kCsv, R"([{"a":1,"b":{"x":true}},{"a":2,"c":"q,r"}])",
         "a,b.x,c\r\n1,true,\r\n2,,\"q,r\"\r\n"),
      ok("JsonToCsvListIndices", F::kJson, F::kCsv, R"([{"t":[1,2]}])", "t.1,t.2\r\n1,2\r\n"),
      ok("JsonToCsvQuotesAndNewlines", F::kJson, F::kCsv, R"([{"a":"say \"hi\"\nbye"}])",
         "a\r\n\"say \"\"hi\"\"\nbye\"\r\n"),
      ok("JsonToCsvLoneEmptyCellQuoted", F::kJson, F::kCsv, R"([{"a":""}])", "a\r\n\"\"\r\n"),
      ok("JsonToCsvBigIntegerExact", F::kJson, F::kCsv, R"([{"n":123456789012345678901234567890}])",
         "n\r\n123456789012345678901234567890\r\n"),
      err("JsonToCsvScalarRejected", F::kJson, F::kCsv, "42", E::kUnprocessable, "unrepresentable"),
      err("JsonToCsvScalarRowRejected", F::kJson, F::kCsv, R"([{"a":1},2])", E::kUnprocessable, "unrepresentable",
          "row 2"),
      ok("JsonToTsvQuotesTabs", F::kJson, F::kTsv, R"([{"a":"x\ty","b":"p,q"}])", "a\tb\r\n\"x\ty\"\tp,q\r\n"),

      // ---- TOML ----
      ok("TomlToJsonTablesAndArrays", F::kToml, F::kJson,
         "title = \"T\"\n[owner]\nname = \"N\"\ndob = 1979-05-27T07:32:00Z\n[[items]]\nid = 1\n[[items]]\nid = 2\n",
         R"({"title":"T","owner":{"name":"N","dob":"1979-05-27T07:32:00Z"},"items":[{"id":1},{"id":2}]})"),
      ok("TomlToJsonKeyOrderKept", F::kToml, F::kJson, "z = 1\na = 2\n[m]\nq = 1\nb = 2\n",
         R"({"z":1,"a":2,"m":{"q":1,"b":2}})"),
      ok("TomlToJsonIntegerExtremes", F::kToml, F::kJson, "max = 9223372036854775807\nm = 1_000_000\n",
         R"({"max":9223372036854775807,"m":1000000})"),
      ok("JsonToTomlSections", F::kJson, F::kToml, R"({"title":"T","owner":{"name":"N"},"items":[{"id":1},{"id":2}]})",
         "title = \"T\"\n\n[owner]\nname = \"N\"\n\n[[items]]\nid = 1\n\n[[items]]\nid = 2\n"),
      ok("JsonToTomlKeepsOrderWithInlineTable", F::kJson, F::kToml, R"({"a":{"x":1},"b":2})", "a = { x = 1 }\nb = 2\n"),
      ok("JsonToTomlQuotedKeysAndUnicode", F::kJson, F::kToml, R"({"a b":1,"名":"值😀"})",
         "\"a b\" = 1\n\"名\" = \"值😀\"\n"),
      ok("JsonToTomlWrapsList", F::kJson, F::kToml, "[1,2]", "root = [1, 2]\n"),
      err("JsonToTomlNullRejected", F::kJson, F::kToml, R"({"a":{"b":null}})", E::kUnprocessable, "unrepresentable",
          "\"a.b\""),
      err("JsonToTomlBigIntegerRejected", F::kJson, F::kToml, R"({"n":18446744073709551616})", E::kUnprocessable,
          "unrepresentable"),
      err("TomlSyntaxError", F::kToml, F::kJson, "a = 1\nb = \n", E::kInvalidArgument, "parse_error",
          "TOML parse error at line 2"),
      err("TomlDuplicateKey", F::kToml, F::kJson, "a = 1\na = 2\n", E::kInvalidArgument, "parse_error", "line 2"),

      // ---- JSON input, limits, encoding ----
      err("JsonSyntaxErrorLineColumn", F::kJson, F::kYaml, "{\"a\": 1,\n \"b\": }", E::kInvalidArgument, "parse_error",
          "JSON parse error at line 2, column 7"),
      err("JsonDuplicateKey", F::kJson, F::kYaml, R"({"a":1,"a":2})", E::kUnprocessable, "duplicate_key"),
      err("InvalidUtf8Rejected", F::kJson, F::kYaml, "{\"a\":\"\xff\"}", E::kInvalidArgument, "invalid_utf8",
          "line 1, column 7"),
      err("InvalidUtf8RejectedInCsv", F::kCsv, F::kJson, "a\n\xc3\x28\n", E::kInvalidArgument, "invalid_utf8",
          "CSV error at line 2"),
      ok("JsonBomAccepted", F::kJson, F::kJson, "\xEF\xBB\xBF{\"a\":1}", R"({"a":1})"),
      depth(ok("JsonDepthAtLimit", F::kJson, F::kJson, "[[[[[1]]]]]", "[[[[[1]]]]]"), 5),
      depth(err("JsonDepthOnePast", F::kJson, F::kJson, "[[[[[[1]]]]]]", E::kUnprocessable, "depth_limit"), 5),
      depth(ok("YamlDepthAtLimit", F::kYaml, F::kJson, "a:\n b:\n  c:\n   d:\n    e: 1\n",
               R"({"a":{"b":{"c":{"d":{"e":1}}}}})"),
            5),
      depth(err("YamlDepthOnePast", F::kYaml, F::kJson, "a:\n b:\n  c:\n   d:\n    e:\n     f: 1\n", E::kUnprocessable,
                "depth_limit"),
            5),
      depth(ok("XmlDepthAtLimit", F::kXml, F::kJson, "<a><b><c><d x=\"1\"/></c></b></a>",
               R"({"a":{"b":{"c":{"d":{"@x":"1"}}}}})"),
            5),
      depth(err("XmlDepthOnePast", F::kXml, F::kJson, "<a><b><c><d><e x=\"1\"/></d></c></b></a>", E::kUnprocessable,
                "depth_limit"),
            5),
      depth(ok("TomlDepthAtLimit", F::kToml, F::kJson, "a.b.c.d = [1]\n", R"({"a":{"b":{"c":{"d":[1]}}}})"), 5),
      depth(err("TomlDepthOnePast", F::kToml, F::kJson, "a.b.c.d = [[1]]\n", E::kUnprocessable, "depth_limit"), 5),
      depth(
          err("YamlAliasPastDepth", F::kYaml, F::kJson, "x: &x [[[1]]]\ny: [[*x]]\n", E::kUnprocessable, "depth_limit"),
          5),
      pretty(ok("JsonPretty", F::kJson, F::kJson, R"({"a":[1,{"b":null}],"c":{}})",
                "{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ],\n  \"c\": {}\n}\n")),
      ok("JsonEscapesControlCharacters", F::kJson, F::kJson, "[\"\\u0001\\u001f\\u00e9\"]",
         "[\"\\u0001\\u001F\xC3\xA9\"]"),
  };
  return all;
}

class ConvertTable : public ::testing::TestWithParam<Case> {};

TEST_P(ConvertTable, ProducesExpectedOutputOrError) {
  const Case& c = GetParam();
  ConvertOptions o;
  o.infer_types = c.infer_types;
  o.pretty = c.pretty;
  if (c.max_depth) o.limits.max_depth = c.max_depth;
  if (c.max_nodes) o.limits.max_nodes = c.max_nodes;
  if (c.max_bytes) o.limits.max_input_bytes = c.max_bytes;
  auto r = convert(c.input, c.from, c.to, o);
  if (c.error) {
    ASSERT_FALSE(r.has_value()) << "expected an error, got:\n" << *r;
    EXPECT_EQ(r.error().code, *c.error) << r.error().message;
    EXPECT_EQ(r.error().reason, c.reason) << r.error().message;
    EXPECT_NE(r.error().message.find(c.message_has), std::string::npos) << r.error().message;
  } else {
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(*r, c.expected);
  }
}

INSTANTIATE_TEST_SUITE_P(Conventions, ConvertTable, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

TEST(ConvertTableSize, HasAtLeastSixtyCases) { EXPECT_GE(cases().size(), 60u); }

}  // namespace
}  // namespace llmd::convert
