#!/usr/bin/env bash
# One fixed load on a fresh runner, for before/after timing with farm-bench:
#   farm-bench --vs 'bench/runner/ab_load.sh OLD/llmd M 4' -- bench/runner/ab_load.sh NEW/llmd M 4
# Starts `LLMD runner` on MODEL (parallel 8, 2 threads), sends STREAMS
# concurrent 128-token prompts and generates 128 tokens each, then stops.
set -euo pipefail
llmd="$1" model="$2" streams="$3"
root="$(cd "$(dirname "$0")/../.." && pwd)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$llmd" runner --model "$model" --port "$port" --threads 2 --parallel 8 --ctx 320 --log-level warn >/dev/null 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.05; done
python3 "$root/bench/runner/stream_client.py" --port "$port" --prompt 128 --gen 128 --streams "$streams" --label ab
