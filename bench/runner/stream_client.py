#!/usr/bin/env python3
"""Load generator for `llmd runner` (or llama-server): N concurrent streamed
/completion requests with a fixed-length token prompt and a fixed number of
generated tokens (ignore_eos), measured from the client side.

  stream_client.py --port P --streams 4 --prompt 128 --gen 128 [--label x]

Prints one JSON line:
  streams, prompt_tokens, gen_tokens,
  agg_tps          all generated tokens / (last stream end - first first-token)
  per_stream_tps   mean over streams of (tokens-1) / (last token - first token)
  pp_tps           mean of the server's prompt_per_second (prompt processing)
  ttft_ms          mean and max time from sending to the first token
Standard library only (no pip on the bench machines).
"""
import argparse
import http.client
import json
import random
import sys
import threading
import time


def one_stream(port, prompt, gen, out, i, start_barrier):
    body = json.dumps({"prompt": prompt, "n_predict": gen, "ignore_eos": True, "stream": True,
                       "cache_prompt": False, "temperature": 0})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    start_barrier.wait()
    t_send = time.perf_counter()
    conn.request("POST", "/completion", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        out[i] = {"error": f"HTTP {resp.status}: {resp.read()[:200]!r}"}
        return
    t_first = None
    t_last = None
    n_chunks = 0
    final = None
    for raw in resp:
        line = raw.decode("utf-8", "replace").strip()
        if not line.startswith("data: "):
            continue
        ev = json.loads(line[6:])
        now = time.perf_counter()
        if ev.get("stop"):
            final = ev
            t_last = now
            break
        if t_first is None:
            t_first = now
        n_chunks += 1
    conn.close()
    if final is None or t_first is None:
        out[i] = {"error": "stream ended without a final event"}
        return
    predicted = final["tokens_predicted"]
    timings = final.get("timings", {})
    out[i] = {
        "send": t_send, "first": t_first, "last": t_last, "tokens": predicted,
        "ttft_ms": (t_first - t_send) * 1000.0,
        "tps": (predicted - 1) / (t_last - t_first) if t_last > t_first else 0.0,
        "pp_tps": timings.get("prompt_per_second", 0.0),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--streams", type=int, default=1)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--label", default="")
    a = ap.parse_args()

    rnd = random.Random(12345)
    results = [None] * a.streams
    barrier = threading.Barrier(a.streams)
    threads = []
    for i in range(a.streams):
        # Distinct prompts: no stream reuses another's cache.
        prompt = [100 + rnd.randrange(30000) for _ in range(a.prompt)]
        t = threading.Thread(target=one_stream, args=(a.port, prompt, a.gen, results, i, barrier))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    errors = [r["error"] for r in results if r is None or "error" in r]
    if errors:
        print(json.dumps({"label": a.label, "errors": errors}))
        sys.exit(1)
    total = sum(r["tokens"] for r in results)
    span = max(r["last"] for r in results) - min(r["first"] for r in results)
    print(json.dumps({
        "label": a.label, "streams": a.streams, "prompt_tokens": a.prompt, "gen_tokens": a.gen,
        "agg_tps": round(total / span, 2),
        "per_stream_tps": round(sum(r["tps"] for r in results) / len(results), 2),
        "pp_tps": round(sum(r["pp_tps"] for r in results) / len(results), 2),
        "ttft_ms_mean": round(sum(r["ttft_ms"] for r in results) / len(results), 1),
        "ttft_ms_max": round(max(r["ttft_ms"] for r in results), 1),
    }))


if __name__ == "__main__":
    main()
