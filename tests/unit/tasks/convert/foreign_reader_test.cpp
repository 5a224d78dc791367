// Our YAML and TOML output read by other implementations: PyYAML (a YAML 1.1
// reader, so "yes" or "on" left unquoted would come back as booleans) and
// Python's tomllib. Each must see exactly the data the JSON says, with the
// same types and key order. Skipped when python3 or PyYAML is missing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "support/test_support.h"
#include "tasks/convert/convert.h"
#include "unit/tasks/convert/random_documents.h"

namespace llmd::convert {
namespace {

constexpr std::uint64_t kSeed = 7;
constexpr int kDocuments = 400;

// Compares two files with a strict, type-exact, order-exact equality.
constexpr const char* kCompareScript = R"PY(
import json, sys, yaml, tomllib
kind, ours, ref = sys.argv[1], sys.argv[2], sys.argv[3]
with open(ref, encoding="utf-8") as f: want = json.load(f)
with open(ours, "rb") as f: data = f.read()
got = yaml.safe_load(data.decode("utf-8")) if kind == "yaml" else tomllib.loads(data.decode("utf-8"))
def same(a, b, path):
    if type(a) is not type(b): return f"{path}: {type(a).__name__} {a!r} vs {type(b).__name__} {b!r}"
    if isinstance(a, dict):
        if list(a) != list(b): return f"{path}: keys {list(a)} vs {list(b)}"
        for k in a:
            r = same(a[k], b[k], f"{path}.{k}")
            if r: return r
    elif isinstance(a, list):
        if len(a) != len(b): return f"{path}: length {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            r = same(x, y, f"{path}[{i}]")
            if r: return r
    elif a != b: return f"{path}: {a!r} vs {b!r}"
    return None
r = same(got, want, "$")
if r: print(r); sys.exit(1)
)PY";

bool have_python_yaml() { return std::system("python3 -c 'import yaml, tomllib' >/dev/null 2>&1") == 0; }

// Writes `doc` as `via` and as JSON, then lets Python compare them.
void expect_python_reads_same(const Value& doc, Format via) {
  llmd::testing::TempDir dir;
  ConvertOptions o;
  auto ours = write(via, doc, o);
  ASSERT_TRUE(ours) << ours.error().message;
  auto json = write(Format::kJson, doc, o);
  ASSERT_TRUE(json) << json.error().message;
  llmd::testing::write_file(dir / "ours", *ours);
  llmd::testing::write_file(dir / "ref.json", *json);
  llmd::testing::write_file(dir / "compare.py", kCompareScript);
  std::string cmd = "python3 " + (dir / "compare.py").string() + " " + std::string(format_name(via)) + " " +
                    (dir / "ours").string() + " " + (dir / "ref.json").string() + " > " + (dir / "out.txt").string() +
                    " 2>&1";
  int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << llmd::testing::read_file(dir / "out.txt");
}

TEST(ForeignReaders, PyYamlReadsOurYamlAsTheSameData) {
  ASSERT_TRUE(have_python_yaml()) << "python3 with PyYAML and tomllib are needed (setup.sh installs python3-yaml)";
  test_docs::Gen g(kSeed);
  Array docs;
  for (int i = 0; i < kDocuments; ++i) docs.push_back(g.json_value(4));
  expect_python_reads_same(Value(std::move(docs)), Format::kYaml);
}

TEST(ForeignReaders, TomllibReadsOurTomlAsTheSameData) {
  ASSERT_TRUE(have_python_yaml()) << "python3 with PyYAML and tomllib are needed (setup.sh installs python3-yaml)";
  test_docs::Gen g(kSeed + 1);
  Object docs;
  for (int i = 0; i < kDocuments; ++i)
    docs.insert("d" + std::to_string(i), Value(g.object(4, /*allow_null=*/false, /*allow_big=*/false)));
  expect_python_reads_same(Value(std::move(docs)), Format::kToml);
}

}  // namespace
}  // namespace llmd::convert
