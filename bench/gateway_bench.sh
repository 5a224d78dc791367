#!/usr/bin/env bash
# Gateway overhead: the same `llmd runner` called directly and through
# `llmd serve` (API-key auth, balancer, reservation + settlement in SQLite,
# usage record, access log), both under wrk in the same run. The model is the
# generated tiny one and replies are 1 token (or a short stream), so the
# numbers show what the gateway adds, not what the model costs. The last row
# is the prompt count serve makes before each chat call, on its own.
#
#   bench/gateway_bench.sh [DURATION_SECONDS]
# Needs a Release build in build/release (./setup.sh build), wrk and curl.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DURATION="${1:-10}"
BIN=build/release/bin
[[ -x $BIN/llmd ]] || { echo "build first: ./setup.sh build" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk missing (apt-get install wrk)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
MODEL=build/release/bench-tiny-qwen2.gguf
[[ -f $MODEL ]] || $BIN/llmd dev make-test-model --arch qwen2 --seed 7 --out "$MODEL" >/dev/null

wait_port() { for _ in $(seq 300); do curl -sf "http://127.0.0.1:$1/health" >/dev/null && return 0; sleep 0.1; done; return 1; }

RUNNER_PORT=18280 SERVE_PORT=18281
$BIN/llmd runner --model "$MODEL" --port $RUNNER_PORT --threads 1 --parallel 8 --ctx 256 --alias tiny \
  --log-level warn >"$work/runner.log" 2>&1 &
wait_port $RUNNER_PORT
cat >"$work/llmd.yaml" <<YAML
server: { port: $SERVE_PORT, data_dir: $work/data }
database: "sqlite:$work/data/llmd.db"
auth: { initial_tokens: 1000000000, bcrypt_cost: 10 }
limits: { ip_rpm: 0, user_rpm: 0 }
logging: { file: $work/serve.log }
models: { dir: $work/models }
upstreams:
  - { name: direct, url: "http://127.0.0.1:$RUNNER_PORT", model: tiny }
YAML
mkdir -p "$work/models"
LLMD_ADMIN_PASSWORD=bench-admin-password $BIN/llmd serve -c "$work/llmd.yaml" 2>"$work/serve.err" &
wait_port $SERVE_PORT

token=$(curl -sf -X POST "http://127.0.0.1:$SERVE_PORT/api/v1/auth/register" -H 'Content-Type: application/json' \
  -d '{"username":"bench","password":"bench-password","email":"bench@example.com"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')
key=$(curl -sf -X POST "http://127.0.0.1:$SERVE_PORT/api/v1/auth/keys" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' -d '{"name":"bench"}' | sed -E 's/.*"key":"([^"]+)".*/\1/')

# One wrk script per request shape.
script() {  # $1 = file, $2 = stream (true|false), $3 = max_tokens
  cat >"$1" <<LUA
wrk.method = "POST"
wrk.body = '{"model":"tiny","messages":[{"role":"user","content":"你好"}],"max_tokens":$3,"seed":1,"stream":$2}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
LUA
}
script "$work/one.lua" false 1
script "$work/stream.lua" true 16

# run PORT CONNS SCRIPT [PATH] -> "rps p50 p99"
run() {
  local out
  out=$(wrk -t1 -c"$2" -d"${DURATION}s" --latency -s "$3" "http://127.0.0.1:$1${4:-/v1/chat/completions}" 2>&1)
  if grep -q "Non-2xx" <<<"$out"; then echo "non-2xx answers: $out" >&2; exit 1; fi
  echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(awk '$1=="50%" {print $2}' <<<"$out") $(awk '$1=="99%" {print $2}' <<<"$out")"
}

echo "| request | conns | direct req/s | via serve req/s | ratio | direct p50 / p99 | via serve p50 / p99 |"
echo "|---|---|---|---|---|---|---|"
for shape in one stream; do
  for conns in 1 8; do
    read -r d_rps d_p50 d_p99 < <(run $RUNNER_PORT "$conns" "$work/$shape.lua")
    read -r s_rps s_p50 s_p99 < <(run $SERVE_PORT "$conns" "$work/$shape.lua")
    ratio=$(awk -v a="$s_rps" -v b="$d_rps" 'BEGIN { printf "%.0f %%", 100 * a / b }')
    label=$([[ $shape == one ]] && echo "chat, 1 token" || echo "chat stream, 16 tokens")
    echo "| $label | $conns | $d_rps | $s_rps | $ratio | $d_p50 / $d_p99 | $s_p50 / $s_p99 |"
  done
done
echo
# Part of every chat call through serve: the reservation counts the prompt
# first with the worker's /apply-template (the same body, rendered and tokenized).
read -r c_rps c_p50 c_p99 < <(run $RUNNER_PORT 1 "$work/one.lua" /apply-template)
echo "| the prompt count serve asks first (runner /apply-template) | 1 | $c_rps | | | $c_p50 / $c_p99 | |"
echo
charged=$(curl -sf "http://127.0.0.1:$SERVE_PORT/api/v1/auth/profile" -H "Authorization: Bearer $token" |
  sed -E 's/.*"tokens":([0-9]+).*/\1/')
echo "tokens left on the bench account: $charged of 1000000000 (every call through serve was charged)"
