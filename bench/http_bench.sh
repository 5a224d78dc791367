#!/usr/bin/env bash
# HTTP core benchmark: llmd serve (full middleware chain: request id, JSON
# access log to a file, metrics, routing) beside bench/bare_server (Beast/Asio
# only, same I/O threads), both under wrk in the same run.
#
#   bench/http_bench.sh [DURATION_SECONDS] [THREADS]
# Needs a Release build in build/release (./setup.sh build) and wrk.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DURATION="${1:-10}"
THREADS="${2:-2}"
BIN=build/release/bin
[[ -x $BIN/llmd && -x $BIN/bare_server ]] || { echo "build first: ./setup.sh build" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk missing (apt-get install wrk)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/echo.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"model":"qwen2","messages":[{"role":"user","content":"你好, world"}],"max_tokens":16}'
wrk.headers["Content-Type"] = "application/json"
LUA

wait_port() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/health" >/dev/null && return 0; sleep 0.1; done; return 1; }

LLMD_PORT=18180 BARE_PORT=18181
$BIN/bare_server $BARE_PORT "$THREADS" & 
LLMD_SERVER_PORT=$LLMD_PORT LLMD_SERVER_THREADS=$THREADS LLMD_LIMITS_IP_RPM=0 LLMD_SERVER_DATA_DIR="$work/data" \
  LLMD_DATABASE="sqlite:$work/data/llmd.db" LLMD_LOGGING_FILE="$work/access.log" \
  $BIN/llmd serve &
wait_port $BARE_PORT && wait_port $LLMD_PORT

# run NAME PORT PATH CONNECTIONS [SCRIPT] -> "rps p50 p99"
run() {
  local port=$2 path=$3 conns=$4 script=${5:-}
  local out
  out=$(wrk -t1 -c"$conns" -d"${DURATION}s" --latency ${script:+-s "$script"} "http://127.0.0.1:$port$path" 2>&1)
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  echo "$rps $p50 $p99"
}

echo "| route | conns | bare req/s | llmd req/s | ratio | bare p50 / p99 | llmd p50 / p99 |"
echo "|---|---|---|---|---|---|---|"
for route in health echo; do
  for conns in 1 64 512; do
    if [[ $route == health ]]; then path=/health script=""; else path=/api/v1/debug/echo script="$work/echo.lua"; fi
    read -r b_rps b_p50 b_p99 < <(run bare $BARE_PORT $path "$conns" "$script")
    read -r l_rps l_p50 l_p99 < <(run llmd $LLMD_PORT $path "$conns" "$script")
    ratio=$(awk -v a="$l_rps" -v b="$b_rps" 'BEGIN { printf "%.0f %%", 100 * a / b }')
    echo "| /$route | $conns | $b_rps | $l_rps | $ratio | $b_p50 / $b_p99 | $l_p50 / $l_p99 |"
  done
done
errors=$(grep -c '"status":5' "$work/access.log" || true)
echo
echo "llmd access-log lines: $(wc -l < "$work/access.log"), 5xx: $errors"
