#!/usr/bin/env python3
"""Summarises a pytest JUnit report of llama.cpp's server tests run against
`llmd runner`, and checks it against the tests expected to pass.

  summarize.py RESULTS.xml EXPECTED_PASS.txt SUMMARY.txt [--all-expected-ran]

Exit status 1 when an expected test ran and did not pass, or, with
--all-expected-ran, when one did not run at all."""
import collections
import sys
import xml.etree.ElementTree as ET


def outcomes(path):
    result = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        if not case.get("classname"):
            continue  # pytest's own record of an interrupted session
        module = case.get("classname").replace(".", "/")
        test_id = f"{module}.py::{case.get('name')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped":
                outcome = "skipped"
        result[test_id] = outcome
    return result


def main(results, expected_path, summary_path, strict=None):
    got = outcomes(results)
    with open(expected_path) as f:
        expected = [line.split(" #")[0].strip() for line in f if not line.startswith("#")]
    expected = [e for e in expected if e]
    by_file = collections.defaultdict(collections.Counter)
    for test_id, outcome in got.items():
        by_file[test_id.split("::")[0]][outcome] += 1
    lines = [f"{'file':45} passed failed skipped"]
    for name in sorted(by_file):
        c = by_file[name]
        lines.append(f"{name:45} {c['passed']:6} {c['failed']:6} {c['skipped']:7}")
    total = collections.Counter(got.values())
    lines.append(f"{'total':45} {total['passed']:6} {total['failed']:6} {total['skipped']:7}")
    lines.append("")
    lines += [f"{outcome:8} {test_id}" for test_id, outcome in sorted(got.items())]
    with open(summary_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines[: len(by_file) + 2]))
    regressions = [e for e in expected if got.get(e, "not run" if strict else "passed") != "passed"]
    for e in regressions:
        print(f"REGRESSION: {e}: {got.get(e, 'not run')}")
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
