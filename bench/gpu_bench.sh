#!/usr/bin/env bash
# GPU vs CPU on one machine (issue 17). The generated Qwen2.5-0.5B-shaped model in F16 and
# Q4_K_M, each on the GPU build's devices (--gpu-layers all, devices auto) and on the CPU alone
# (--gpu-layers 0), all with the same binaries and libraries, through bench/runner_bench.sh:
#   bare_decode       the in-process llama_decode loop (the ceiling)
#   llmd runner       1 stream (--parallel 1) and 8 concurrent streams (--parallel 8)
# Prints a Markdown table and appends it, with the machine, the command and the date, to
# bench/RESULTS.md (--no-append: print only).
#
#   bench/gpu_bench.sh [--build DIR] [--threads N] [--prompt N] [--gen N] [--no-append]
#
# DIR (default build/release) must be a Release build with the GPU backend beside the binary and
# LLMD_BUILD_BENCH=ON, as `./setup.sh build` makes it on a machine with a GPU (or force one:
# `./setup.sh --gpu=cuda build`). --threads defaults to every core. About 3-5 minutes on one H100,
# most of it the CPU rows and generating the models (kept in DIR/bench-models for the next run).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
build="$root/build/release"
threads="$(nproc)"
prompt=128
gen=128
append=1
args=("$@")
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$(cd "$2" && pwd)"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --prompt) prompt="$2"; shift 2 ;;
    --gen) gen="$2"; shift 2 ;;
    --no-append) append=0; shift ;;
    *) echo "usage: $0 [--build DIR] [--threads N] [--prompt N] [--gen N] [--no-append]" >&2; exit 2 ;;
  esac
done
llmd="$build/bin/llmd"
for b in "$llmd" "$build/bin/bare_decode"; do
  [[ -x "$b" ]] || { echo "missing $b (build targets llmd and bare_decode in $build, LLMD_BUILD_BENCH=ON)" >&2; exit 2; }
done

# The GPU devices the runner sees ("  CUDA0: NVIDIA H100 80GB HBM3 (81079 MiB, 80577 MiB free) [gpu]").
devices="$("$llmd" runner --list-devices 2>&1)" || { echo "$devices" >&2; exit 1; }
gpu_devices="$(grep -E '^ +[^ ]+: .*\[(gpu|igpu)\]$' <<<"$devices" | sed 's/^ *//' || true)"
if [[ -z "$gpu_devices" ]]; then
  echo "no GPU device: \`llmd runner --list-devices\` in $build lists only:" >&2
  echo "$devices" | sed '$d' >&2
  echo "(is libggml-cuda.so or libggml-vulkan.so in $build/bin? see README, GPUs)" >&2
  exit 2
fi
backends=""
for lib in libggml-cuda.so libggml-vulkan.so; do
  if [[ -f "$build/bin/$lib" ]]; then backends+="${backends:+, }$lib"; fi
done

# The CUDA builds carry PTX for some GPUs (sm_90 among them): keep what the driver compiles
# from it between processes, so only the first run pays for it.
export CUDA_CACHE_MAXSIZE="${CUDA_CACHE_MAXSIZE:-4294967296}"

models="$build/bench-models"
mkdir -p "$models"
make_model() {  # make_model FILE [make-test-model flags]
  local out="$1"
  shift
  if [[ ! -f "$out" ]]; then
    echo "generating $out ..." >&2
    "$llmd" dev make-test-model --shape qwen2.5-0.5b --seed 1 "$@" --out "$out.tmp" >&2
    mv "$out.tmp" "$out"
  fi
}
f16="$models/qwen2.5-0.5b-f16.gguf"
q4="$models/qwen2.5-0.5b-q4_k_m.gguf"  # the same file runner_bench.sh generates
make_model "$f16"
make_model "$q4" --quantize Q4_K_M

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cpu_name="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "devices: $(paste -sd';' - <<<"$gpu_devices"); backends: $backends" >&2
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

specs=()
for entry in "F16:$f16" "Q4_K_M:$q4"; do
  name="${entry%%:*}" file="${entry#*:}"
  for placement in GPU:all CPU:0; do
    where="${placement%%:*}" layers="${placement#*:}"
    out="$work/$name-$where"
    echo "$name on the $where (--gpu-layers $layers) ..." >&2
    start=$SECONDS
    if ! "$root/bench/runner_bench.sh" --build "$build" --threads "$threads" --prompt "$prompt" --gen "$gen" \
      --model "$file" --gpu-layers "$layers" --jsonl "$out.jsonl" >"$out.log" 2>&1; then
      echo "runner_bench.sh failed for $name on the $where:" >&2
      tail -n 30 "$out.log" >&2
      exit 1
    fi
    echo "  done in $((SECONDS - start)) s" >&2
    specs+=("$name:$where:$out.jsonl")
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

table="$(python3 "$root/bench/runner/format_gpu_table.py" "${specs[@]}")"
if command -v nvidia-smi >/dev/null && gpu_name="$(nvidia-smi --query-gpu=name,memory.total,driver_version \
  --format=csv,noheader 2>/dev/null | head -n1)" && [[ -n "$gpu_name" ]]; then
  gpu_name="$(sed 's/, / (/; s/, /, driver /; s/$/)/' <<<"$gpu_name")"
else
  gpu_name="$(sed -n 's/^[^:]*: \(.*\) ([0-9]* MiB, .*/\1/p' <<<"$gpu_devices" | head -n1)"
fi
commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
[[ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]] && commit+=" + uncommitted changes"
date_utc="$(date -u '+%Y-%m-%d %H:%M UTC')"
command_line="bench/gpu_bench.sh${args[*]:+ ${args[*]}}"

report="$(
  cat <<EOF
## GPU vs CPU: runner and bare decode on one GPU (issue 17), $date_utc

* Machine: $gpu_name; $cpu_name, $(nproc) cores. Engine backends beside the binary: $backends;
  devices: $(paste -sd';' - <<<"$gpu_devices" | sed 's/;/; /g').
* Command: \`$command_line\` (threads $threads, prompt $prompt, generate $gen tokens), commit $commit, Release.
  Models generated by \`llmd dev make-test-model --shape qwen2.5-0.5b\` (F16) and with \`--quantize Q4_K_M\`.
  GPU rows: \`--gpu-layers all\`, devices auto; CPU rows: \`--gpu-layers 0\` (no device), same binaries.

$table
EOF
)"
echo "$report"
if ((append)); then
  printf '\n%s\n' "$report" >>"$root/bench/RESULTS.md"
  echo "appended to bench/RESULTS.md" >&2
fi
