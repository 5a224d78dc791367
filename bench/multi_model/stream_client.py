#!/usr/bin/env python3
"""Streams one /v1/completions call per model through `llmd serve`, all at
once, and measures decoding from the client side (issue 13, item 7).

  stream_client.py --port P --token T --models a,b --gen 64 [--label x]

Prints one JSON line:
  models         the models called at the same time
  tokens         completion tokens per model (from the usage chunk)
  per_model_tps  (tokens - 1) / (last chunk - first chunk), per model
  agg_tps        all tokens / (last stream end - first first-token)
Standard library only.
"""
import argparse
import http.client
import json
import sys
import threading
import time


def one_stream(port, token, model, gen, prompt, out, i, barrier):
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": gen, "ignore_eos": True,
                       "temperature": 0, "stream": True, "stream_options": {"include_usage": True}})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    barrier.wait()
    conn.request("POST", "/v1/completions", body,
                 {"Content-Type": "application/json", "Authorization": "Bearer " + token})
    resp = conn.getresponse()
    if resp.status != 200:
        out[i] = {"error": f"{model}: HTTP {resp.status}: {resp.read()[:300]!r}"}
        return
    first = last = None
    tokens = None
    for raw in resp:
        line = raw.decode("utf-8", "replace").strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        ev = json.loads(line[6:])
        now = time.perf_counter()
        if ev.get("usage"):
            tokens = ev["usage"].get("completion_tokens")
        if ev.get("choices"):
            if first is None:
                first = now
            last = now
    conn.close()
    if tokens is None or first is None:
        out[i] = {"error": f"{model}: the stream ended without usage"}
        return
    out[i] = {"model": model, "first": first, "last": last, "tokens": tokens,
              "tps": (tokens - 1) / (last - first) if last > first else 0.0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--gen", type=int, default=64)
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    models = a.models.split(",")
    prompt = "The quick brown fox jumps over the lazy dog. " * 4
    results = [None] * len(models)
    barrier = threading.Barrier(len(models))
    threads = [threading.Thread(target=one_stream, args=(a.port, a.token, m, a.gen, prompt, results, i, barrier))
               for i, m in enumerate(models)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [r["error"] for r in results if r is None or "error" in r]
    if errors:
        print(json.dumps({"label": a.label, "errors": errors}))
        sys.exit(1)
    total = sum(r["tokens"] for r in results)
    span = max(r["last"] for r in results) - min(r["first"] for r in results)
    print(json.dumps({
        "label": a.label, "models": models,
        "tokens": [r["tokens"] for r in results],
        "per_model_tps": [round(r["tps"], 2) for r in results],
        "agg_tps": round(total / span, 2) if span > 0 else 0.0,
    }))


if __name__ == "__main__":
    main()
