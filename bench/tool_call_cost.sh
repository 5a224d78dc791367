#!/usr/bin/env bash
# Cost per generated token of a grammar-forced tool call versus a free reply
# (issue 20), on the same runner, model and threads, in one run:
#   free:   a plain chat reply, ignore_eos, max_tokens N
#   forced: tool_choice "required" with one function (Llama 3.1's template
#           writes the call as JSON; the random-weight model is nudged to "{")
# Reports mean predicted_per_token_ms (runner timings) over R requests of each.
#
#   bench/tool_call_cost.sh [--build DIR] [--threads N] [--gen N] [--reps R]
#
# DIR: a Release build (target llmd). The model (Qwen2.5-0.5B shape, Q4_K_M,
# Llama 3.1 chat template) is generated on first use under DIR/bench-models.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build/release"
threads=2
gen=96
reps=5
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --gen) gen="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--threads N] [--gen N] [--reps R]" >&2; exit 2 ;;
  esac
done
llmd="$build/bin/llmd"
[[ -x "$llmd" ]] || { echo "missing $llmd" >&2; exit 2; }
model="$build/bench-models/qwen2.5-0.5b-q4_k_m-llama31.gguf"
if [[ ! -f "$model" ]]; then
  mkdir -p "$(dirname "$model")"
  echo "generating $model ..." >&2
  "$llmd" dev make-test-model --shape qwen2.5-0.5b --quantize Q4_K_M --seed 1 \
    --chat-template meta-llama-Llama-3.1-8B-Instruct --out "$model.tmp" >&2
  mv "$model.tmp" "$model"
fi
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$llmd" runner --model "$model" --port "$port" --threads "$threads" --parallel 1 --ctx 2048 --log-level warn \
  >"$build/tool_call_cost.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
echo "machine: $(uname -srm); $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" >&2
PORT="$port" GEN="$gen" REPS="$reps" python3 - <<'PY'
import json, os, urllib.request
port, gen, reps = os.environ["PORT"], int(os.environ["GEN"]), int(os.environ["REPS"])
def call(body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=600))
user = [{"role": "user", "content": "What is the weather in Paris today?"}]
tool = {"type": "function", "function": {"name": "get_weather", "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40},
                       "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city", "unit"]}}}
free = {"messages": user, "max_tokens": gen, "temperature": 0, "ignore_eos": True}
forced = {"messages": user, "tools": [tool], "tool_choice": "required", "parallel_tool_calls": False,
          "logit_bias": [["{", 100]], "max_tokens": gen, "temperature": 0}
rows = []
for label, body in (("free reply", free), ("forced tool call", forced)):
    call(body)  # warm-up
    ms, toks, calls = [], [], 0
    for _ in range(reps):
        r = call(body)
        t = r["timings"]
        ms.append(t["predicted_per_token_ms"]); toks.append(t["predicted_n"])
        calls += bool(r["choices"][0]["message"].get("tool_calls"))
    rows.append((label, sum(ms) / len(ms), sum(toks) / len(toks), calls))
print("| reply | ms per token | tokens per reply | replies with tool_calls |")
print("|---|---|---|---|")
for label, m, n, c in rows:
    print(f"| {label} | {m:.2f} | {n:.0f} | {c}/{reps} |")
print(f"\nforced / free cost per token: {rows[1][1] / rows[0][1]:.2f}x")
PY
