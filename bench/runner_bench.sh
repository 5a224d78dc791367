#!/usr/bin/env bash
# Runner throughput benchmark (issue 3). In one run, on the same generated
# Qwen2.5-0.5B-shaped Q4_K_M model and the same thread count:
#   (a) bare_decode: an in-process llama_decode loop (the ceiling)
#   (b) `llmd runner --parallel 1` over HTTP, one stream
#   (c) `llmd runner --parallel 8` over HTTP with 1, 2, 4, 8 concurrent streams
# Prints a Markdown table (paste it into bench/RESULTS.md) and the raw JSON lines.
#
#   bench/runner_bench.sh [--build DIR] [--threads N] [--prompt N] [--gen N] [--model FILE]
#                         [--gpu-layers N|all] [--jsonl FILE]
#
# --gpu-layers goes to both the runner and bare_decode: 0 (the default) the CPU only, all or a
# count on the GPU build's devices. --jsonl: where the raw lines go (default
# DIR/runner_bench.jsonl). bench/gpu_bench.sh runs this on the GPU and on the CPU.
#
# DIR must be a Release build with LLMD_BUILD_BENCH=ON (targets llmd, bare_decode):
#   cmake -S . -B build/runner-rel -DCMAKE_BUILD_TYPE=Release -DLLMD_BUILD_BENCH=ON
#   cmake --build build/runner-rel --target llmd bare_decode -j2
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build/runner-rel"
threads=2
prompt=128
gen=128
model=""
gpu_layers=0
jsonl=""
usage="usage: $0 [--build DIR] [--threads N] [--prompt N] [--gen N] [--model FILE] [--gpu-layers N|all] [--jsonl FILE]"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --prompt) prompt="$2"; shift 2 ;;
    --gen) gen="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --gpu-layers) gpu_layers="$2"; shift 2 ;;
    --jsonl) jsonl="$2"; shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
gpu_args=(--gpu-layers "$gpu_layers")
jsonl="${jsonl:-$build/runner_bench.jsonl}"
llmd="$build/bin/llmd"
bare="$build/bin/bare_decode"
for b in "$llmd" "$bare"; do
  [[ -x "$b" ]] || { echo "missing $b (build targets llmd and bare_decode in $build)" >&2; exit 2; }
done
if [[ -z "$model" ]]; then
  model="$build/bench-models/qwen2.5-0.5b-q4_k_m.gguf"
  if [[ ! -f "$model" ]]; then
    mkdir -p "$(dirname "$model")"
    echo "generating $model ..." >&2
    "$llmd" dev make-test-model --shape qwen2.5-0.5b --quantize Q4_K_M --seed 1 --out "$model.tmp" >&2
    mv "$model.tmp" "$model"
  fi
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
runner_pid=""
stop_runner() {
  if [[ -n "$runner_pid" ]]; then
    kill -TERM "$runner_pid" 2>/dev/null || true
    wait "$runner_pid" 2>/dev/null || true
    runner_pid=""
  fi
}
trap stop_runner EXIT
start_runner() {  # start_runner PARALLEL -> sets port
  port="$(free_port)"
  "$llmd" runner --model "$model" --port "$port" --threads "$threads" --parallel "$1" \
    --ctx $((prompt + gen + 64)) "${gpu_args[@]}" --log-level warn >"$build/runner_bench.log" 2>&1 &
  runner_pid=$!
  # Up to 3 minutes: a GPU's first load may compile kernels.
  for _ in $(seq 1 1800); do
    if curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "runner did not become ready; log:" >&2
  cat "$build/runner_bench.log" >&2
  exit 1
}
client() { python3 "$root/bench/runner/stream_client.py" --port "$port" --prompt "$prompt" --gen "$gen" "$@"; }

echo "machine: $(uname -srm); $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" >&2
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

raw=()
raw+=("$("$bare" --model "$model" --threads "$threads" --prompt "$prompt" --gen "$gen" --ctx $((prompt + gen + 64)) --reps 2 \
  "${gpu_args[@]}")")

start_runner 1
client --streams 1 --label warmup >/dev/null
raw+=("$(client --streams 1 --label "b: runner, parallel 1")")
stop_runner

start_runner 8
client --streams 1 --label warmup >/dev/null
for s in 1 2 4 8; do
  raw+=("$(client --streams "$s" --label "c: runner, parallel 8")")
done
stop_runner
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

printf '%s\n' "${raw[@]}" >"$jsonl"
python3 "$root/bench/runner/format_table.py" <"$jsonl"
echo
cat "$jsonl"
