#!/usr/bin/env python3
"""Formats bench/gpu_bench.sh's runs as a Markdown table: one row per (model, placement), each
from one runner_bench.sh JSON-lines file, then the GPU/CPU ratios.

  format_gpu_table.py MODEL:PLACEMENT:FILE.jsonl ...     e.g. F16:GPU:f16-gpu.jsonl F16:CPU:f16-cpu.jsonl

runner_bench.sh's lines: bare_decode first, then "b: runner, parallel 1" (1 stream), then
"c: runner, parallel 8" at 1, 2, 4 and 8 streams.
"""
import json
import sys


def load(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    bare = rows[0]
    one = next(r for r in rows[1:] if r["label"].startswith("b") and r["streams"] == 1)
    eight = next(r for r in rows[1:] if r["label"].startswith("c") and r["streams"] == 8)
    return {"bare": bare, "one": one, "eight": eight}


def main():
    runs = []
    for arg in sys.argv[1:]:
        model, placement, path = arg.split(":", 2)
        runs.append((model, placement, load(path)))

    print("| model | layers on | bare decode tok/s | prompt tok/s (bare) | runner, 1 stream tok/s "
          "| runner, 8 streams: aggregate tok/s | per stream | TTFT mean / max ms |")
    print("|---|---|---|---|---|---|---|---|")
    for model, placement, r in runs:
        print("| %s | %s | %.1f | %.0f | %.1f | %.1f | %.1f | %.0f / %.0f |" % (
            model, placement, r["bare"]["tg_tps"], r["bare"]["pp_tps"], r["one"]["per_stream_tps"],
            r["eight"]["agg_tps"], r["eight"]["per_stream_tps"], r["eight"]["ttft_ms_mean"],
            r["eight"]["ttft_ms_max"]))
    print()
    by = {(m, p): r for m, p, r in runs}
    for model in dict.fromkeys(m for m, _, _ in runs):
        gpu, cpu = by.get((model, "GPU")), by.get((model, "CPU"))
        if not gpu or not cpu:
            continue
        print("* %s: the GPU decodes %.1fx as fast as the CPU at 1 stream (runner), %.1fx at 8 streams "
              "(aggregate), %.1fx in the bare loop; the runner reaches %.0f %% of the bare loop on the GPU, "
              "%.0f %% on the CPU." % (
                  model, gpu["one"]["per_stream_tps"] / cpu["one"]["per_stream_tps"],
                  gpu["eight"]["agg_tps"] / cpu["eight"]["agg_tps"], gpu["bare"]["tg_tps"] / cpu["bare"]["tg_tps"],
                  100.0 * gpu["one"]["per_stream_tps"] / gpu["bare"]["tg_tps"],
                  100.0 * cpu["one"]["per_stream_tps"] / cpu["bare"]["tg_tps"]))


if __name__ == "__main__":
    main()
