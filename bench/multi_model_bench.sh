#!/usr/bin/env bash
# Two models decoding at once through `llmd serve` (issue 13, item 7): one
# model decoding alone vs two models decoding at the same time, aggregate
# completion tokens/s measured by the client, for
#   auto:      the default `threads: auto` (serve divides the physical cores
#              among the models that may run at once, here max_loaded = 2)
#   all cores: `threads: <cores>` for each model — what every runner used
#              before (the runner's default is all cores)
# on two copies of one generated model (distinct files: no shared page cache).
# Target: auto, two at once >= 80 % of one model's aggregate tokens/s.
#
#   bench/multi_model_bench.sh [--build DIR] [--gen N] [--reps N] [--model FILE]
#
# DIR must be a Release build (target llmd):
#   cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DLLMD_BUILD_TESTS=OFF -DLLMD_BUILD_BENCH=ON
#   cmake --build build/release --target llmd -j2
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build/release"
gen=48
reps=2
model=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --gen) gen="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--gen N] [--reps N] [--model FILE]" >&2; exit 2 ;;
  esac
done
llmd="$build/bin/llmd"
[[ -x "$llmd" ]] || { echo "missing $llmd (build target llmd in $build)" >&2; exit 2; }
if [[ -z "$model" ]]; then
  model="$build/bench-models/qwen2.5-0.5b-q4_k_m.gguf"
  if [[ ! -f "$model" ]]; then
    mkdir -p "$(dirname "$model")"
    echo "generating $model ..." >&2
    "$llmd" dev make-test-model --shape qwen2.5-0.5b --quantize Q4_K_M --seed 1 --out "$model.tmp" >&2
    mv "$model.tmp" "$model"
  fi
fi

work="$(mktemp -d)"
serve_pid=""
stop_serve() {
  if [[ -n "$serve_pid" ]]; then
    kill -TERM "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
    serve_pid=""
  fi
}
trap 'stop_serve; rm -rf "$work"' EXIT
mkdir -p "$work/models"
cp "$model" "$work/models/m1.gguf"
cp "$model" "$work/models/m2.gguf"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cores=$(python3 - <<'PY'
import os, glob
seen = set()
for cpu in os.sched_getaffinity(0):
    t = f"/sys/devices/system/cpu/cpu{cpu}/topology/"
    try:
        seen.add((open(t + "physical_package_id").read().strip(), open(t + "core_id").read().strip()))
    except OSError:
        seen.add(("?", cpu))
print(len(seen))
PY
)

# start_serve THREADS_YAML -> serve_pid, port, token (a user), admin (a token)
start_serve() {
  port="$(free_port)"
  local base; base="$(free_port)"
  rm -rf "$work/data"
  cat >"$work/llmd.yaml" <<YAML
server: { port: $port, data_dir: $work/data }
database: "sqlite:$work/data/llmd.db"
auth: { initial_tokens: 1000000000, bcrypt_cost: 10 }
limits: { ip_rpm: 0, user_rpm: 0 }
logging: { level: warn, file: $work/serve.log }
models:
  dir: $work/models
  port_range: "$((base % 20000 + 30000))-$((base % 20000 + 30010))"
  max_loaded: 2
  idle_unload_seconds: 0
$1
YAML
  LLMD_ADMIN_PASSWORD=bench-admin-password "$llmd" serve -c "$work/llmd.yaml" 2>"$work/serve.err" &
  serve_pid=$!
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
  token=$(curl -sf -X POST "http://127.0.0.1:$port/api/v1/auth/register" -H 'Content-Type: application/json' \
    -d '{"username":"bench","password":"bench-password","email":"bench@example.com"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')
  admin=$(curl -sf -X POST "http://127.0.0.1:$port/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d '{"username":"admin","password":"bench-admin-password"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')
}
client() { python3 "$root/bench/multi_model/stream_client.py" --port "$port" --token "$token" --gen "$gen" "$@"; }
threads_of() {  # the threads each running instance got, from the admin's listing
  curl -sf "http://127.0.0.1:$port/api/v1/models" -H "Authorization: Bearer $admin" |
    python3 -c "import json,sys; print(' '.join(m['name'] + ':' + str(i.get('threads', '?')) for m in json.load(sys.stdin)['models'] for i in m['instances']))"
}
best() {  # best agg_tps of REPS runs of: client ARGS...
  local top="" line
  for _ in $(seq "$reps"); do
    line="$(client "$@")"
    echo "$line" >&2
    top="$(python3 -c 'import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]) if sys.argv[2] else None; print(json.dumps(a if b is None or a["agg_tps"]>b["agg_tps"] else b))' "$line" "$top")"
  done
  echo "$top"
}

echo "machine: $(uname -srm); $(nproc) logical CPUs, $cores physical cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" >&2
echo "model: $model ($(du -h "$model" | cut -f1)), $gen tokens per stream, best of $reps" >&2
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

declare -A alone two threads
for setup in auto all; do
  if [[ $setup == auto ]]; then
    start_serve ""
  else
    start_serve "  list:
    - { name: m1, file: m1.gguf, threads: $cores }
    - { name: m2, file: m2.gguf, threads: $cores }"
  fi
  client --models m1 --gen 4 >/dev/null  # loads m1
  client --models m2 --gen 4 >/dev/null  # loads m2: both run from here on
  threads[$setup]="$(threads_of)"
  alone[$setup]="$(best --models m1 --label "$setup: m1 alone")"
  two[$setup]="$(best --models m1,m2 --label "$setup: m1 + m2 at once")"
  stop_serve
done

agg() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])["agg_tps"])' "$1"; }
per() { python3 -c 'import json,sys; print(" + ".join(str(x) for x in json.loads(sys.argv[1])["per_model_tps"]))' "$1"; }
echo "| threads | workers' threads | one model alone tok/s | two at once: aggregate tok/s (per model) | two / one |"
echo "|---|---|---|---|---|"
for setup in auto all; do
  label=$([[ $setup == auto ]] && echo "auto (default)" || echo "$cores each (all cores, as before)")
  ratio=$(python3 -c "print(f'{100*$(agg "${two[$setup]}")/$(agg "${alone[$setup]}"):.0f} %')")
  echo "| $label | ${threads[$setup]} | $(agg "${alone[$setup]}") | $(agg "${two[$setup]}") ($(per "${two[$setup]}")) | $ratio |"
done
best_one=$(python3 -c "print(max($(agg "${alone[auto]}"), $(agg "${alone[all]}")))")
echo
echo "auto, two at once vs the best single model ($best_one tok/s): $(python3 -c "print(f'{100*$(agg "${two[auto]}")/$best_one:.0f} %')") (target >= 80 %)"
