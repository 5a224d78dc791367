#!/usr/bin/env bash
# Conversion throughput of llmd's engine next to Python (Debian python3-yaml
# with libyaml's C loader/dumper, json, csv, xml.etree) on the same files.
#
#   bench/convert_vs_python.sh [path/to/convert_bench] [MB]
#
# Build the bench in a Release tree first, e.g.
#   cmake -S . -B build/convert-rel -DCMAKE_BUILD_TYPE=Release && cmake --build build/convert-rel --target convert_bench
set -euo pipefail

BENCH=${1:-build/convert-rel/bin/convert_bench}
MB=${2:-10}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT

echo "== llmd convert engine ($(date -u +%FT%TZ), $(nproc) cores) =="
"$BENCH" --mb "$MB" --runs 3 --out "$DIR"

echo
echo "== python3 $(python3 -c 'import sys, yaml; print(sys.version.split()[0], "PyYAML", yaml.__version__, "libyaml" if yaml.__with_libyaml__ else "pure")') =="
DIR="$DIR" python3 - <<'PY'
import csv, io, json, os, time, xml.etree.ElementTree as ET
import yaml

d = os.environ["DIR"]
def load(name):
    with open(os.path.join(d, name), encoding="utf-8") as f:
        return f.read()

def best(fn, runs=3):
    t = 1e9
    for _ in range(runs):
        t0 = time.perf_counter(); fn(); t = min(t, time.perf_counter() - t0)
    return t

def flatten(v, prefix, out):
    if isinstance(v, dict) and v:
        for k, c in v.items(): flatten(c, f"{prefix}.{k}" if prefix else k, out)
    elif isinstance(v, list) and v:
        for i, c in enumerate(v, 1): flatten(c, f"{prefix}.{i}" if prefix else str(i), out)
    else:
        out[prefix] = "" if v is None else (("true" if v else "false") if isinstance(v, bool) else v)

def to_csv(rows):
    flat = []
    for r in rows:
        o = {}; flatten(r, "", o); flat.append(o)
    header = list(dict.fromkeys(k for o in flat for k in o))
    buf = io.StringIO(); w = csv.DictWriter(buf, header); w.writeheader(); w.writerows(flat)
    return buf.getvalue()

def to_xml(v, name, parent=None):
    if isinstance(v, list):
        for item in v: to_xml(item, name, parent)
        return parent
    e = ET.Element(name) if parent is None else ET.SubElement(parent, name)
    if isinstance(v, dict):
        for k, c in v.items(): to_xml(c, k, e)
    elif v is not None:
        e.text = str(v)
    return e

def from_xml(e):
    kids = list(e)
    if not kids and not e.attrib: return e.text
    o = {f"@{k}": v for k, v in e.attrib.items()}
    lists = set()
    for c in kids:
        v = from_xml(c)
        if c.tag not in o:
            o[c.tag] = v
        elif c.tag in lists:
            o[c.tag].append(v)
        else:
            o[c.tag] = [o[c.tag], v]; lists.add(c.tag)
    return o

j, y, x, c = load("data.json"), load("data.yaml"), load("data.xml"), load("data.csv")
cases = [
    ("json -> json", j, lambda: json.dumps(json.loads(j), ensure_ascii=False, indent=2)),
    ("json -> yaml", j, lambda: yaml.dump(json.loads(j), Dumper=yaml.CSafeDumper, sort_keys=False, allow_unicode=True)),
    ("yaml -> json", y, lambda: json.dumps(yaml.load(y, Loader=yaml.CSafeLoader), ensure_ascii=False, indent=2)),
    ("json -> xml", j, lambda: ET.tostring(to_xml({"item": json.loads(j)}, "root"), encoding="unicode")),
    ("xml -> json", x, lambda: json.dumps(from_xml(ET.fromstring(x.encode())), ensure_ascii=False, indent=2)),
    ("json -> csv", j, lambda: to_csv(json.loads(j))),
    ("csv -> json", c, lambda: json.dumps(list(csv.DictReader(io.StringIO(c, newline=""))), ensure_ascii=False, indent=2)),
]
print(f"{'conversion':16} {'in MB':>10} {'seconds':>10} {'MB/s':>10}")
for name, src, fn in cases:
    mb = len(src.encode()) / 1e6
    s = best(fn)
    print(f"{name:16} {mb:10.2f} {s:10.3f} {mb / s:10.1f}")
PY
