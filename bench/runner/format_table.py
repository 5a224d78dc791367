#!/usr/bin/env python3
"""Formats runner_bench.sh's raw JSON lines (stdin) as a Markdown table."""
import json
import sys

rows = [json.loads(line) for line in sys.stdin if line.strip()]
bare = rows[0]
print("| setup | streams | aggregate tok/s | per-stream tok/s | prompt tok/s | TTFT mean / max ms |")
print("|---|---|---|---|---|---|")
print("| a: bare llama_decode | 1 | %.2f | %.2f | %.1f | - |" % (bare["tg_tps"], bare["tg_tps"], bare["pp_tps"]))
for r in rows[1:]:
    print("| %s | %d | %.2f | %.2f | %.1f | %.0f / %.0f |" % (
        r["label"], r["streams"], r["agg_tps"], r["per_stream_tps"], r["pp_tps"], r["ttft_ms_mean"], r["ttft_ms_max"]))
b = rows[1]
one = [r for r in rows[1:] if r["label"].startswith("c") and r["streams"] == 1][0]
four = [r for r in rows[1:] if r["label"].startswith("c") and r["streams"] == 4][0]
print()
print("(b) vs (a): %.1f %% of the bare decode loop (target >= 95 %%)" % (100.0 * b["per_stream_tps"] / bare["tg_tps"]))
print("4 streams vs 1: %.2fx aggregate (target >= 2.5x)" % (four["agg_tps"] / one["agg_tps"]))
