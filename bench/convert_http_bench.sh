#!/usr/bin/env bash
# HTTP latency of POST /api/v1/tasks/convert for a ~1 KB JSON document
# (json -> yaml), full stack: auth, conversion on the worker pool, ledger
# write per call, usage record. wrk at 64 connections.
#
#   bench/convert_http_bench.sh [DURATION_SECONDS] [CONNECTIONS]
# Needs a Release build in build/release (./setup.sh build) and wrk.
# LLMD_BENCH_BIN=DIR takes llmd from DIR instead (a before/after pair);
# LLMD_BENCH_GROUP=1 makes the caller a member of a group with a weekly
# allowance and a price ratio (the scope every metered call resolves).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DURATION="${1:-10}"
CONNS="${2:-64}"
BIN="${LLMD_BENCH_BIN:-build/release/bin}"
[[ -x $BIN/llmd ]] || { echo "build first: ./setup.sh build" >&2; exit 1; }

work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port=18190
cat > "$work/llmd.yaml" <<YAML
server: { port: $port, data_dir: $work/data }
database: "sqlite:$work/data/llmd.db"
auth: { bcrypt_cost: 10 }
limits: { ip_rpm: 0, user_rpm: 0 }
logging: { file: $work/access.log }
YAML
printf 'bench-password-1\n' | $BIN/llmd admin -c "$work/llmd.yaml" user-add bench --email bench@example.org \
  --password-stdin --tokens 1000000000000 >/dev/null
$BIN/llmd serve -c "$work/llmd.yaml" &
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
token=$(curl -s "http://127.0.0.1:$port/api/v1/auth/login" -d '{"username":"bench","password":"bench-password-1"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
if [[ ${LLMD_BENCH_GROUP:-0} == 1 ]]; then
  printf 'bench-password-2\n' | $BIN/llmd admin -c "$work/llmd.yaml" user-add boss --email boss@example.org \
    --password-stdin --role admin >/dev/null
  admin=$(curl -s "http://127.0.0.1:$port/api/v1/auth/login" -d '{"username":"boss","password":"bench-password-2"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  group=$(curl -s "http://127.0.0.1:$port/api/v1/groups" -H "Authorization: Bearer $admin" \
    -d '{"name":"bench class","price_ratio":0.5,"allowance":{"amount":1000,"period":"week"}}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["group"]["id"])')
  curl -sf "http://127.0.0.1:$port/api/v1/groups/$group/members" -H "Authorization: Bearer $admin" \
    -d '{"username":"bench"}' >/dev/null
  echo "caller: a member of group $group (weekly allowance, price ratio 0.5)"
fi

# A ~1 KB document: 12 records with a few typed fields.
python3 - "$work/body.json" <<'PY'
import json, sys
doc = {"class": "三年二班", "students": [{"id": i, "name": f"student-{i}", "score": 80 + i, "passed": True,
        "zip": "01730"} for i in range(12)]}
body = {"source_format": "json", "target_format": "yaml", "content": json.dumps(doc, ensure_ascii=False)}
open(sys.argv[1], "w").write(json.dumps(body, ensure_ascii=False))
PY
cat > "$work/convert.lua" <<LUA
wrk.method = "POST"
local f = io.open("$work/body.json", "rb"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
LUA
echo "document: $(python3 -c "import json;print(len(json.load(open('$work/body.json'))['content'].encode()))") bytes"
wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$work/convert.lua" "http://127.0.0.1:$port/api/v1/tasks/convert"
echo "non-200 replies: $(grep '"msg":"request"' "$work/access.log" | grep -vc '"status":200' || true)"
