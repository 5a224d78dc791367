#!/usr/bin/env bash
# llmd setup: installs what is missing (Debian packages, the pinned llama.cpp
# engine from npm), builds, and then serves or tests.
#
#   ./setup.sh serve [llmd serve flags]   build Release and start `llmd serve`
#   ./setup.sh test                       build Debug (ASan+UBSan) and run every test
#   ./setup.sh build                      build Release only
#
# --gpu=auto|cpu|vulkan|cuda (before or right after the command; default: $LLMD_GPU, else
# auto) picks the engine build installed beside the CPU one: auto detects the machine
# (engine/gpu-detect.sh). The choice is not remembered: set LLMD_GPU to keep one.
#
# Idempotent and quiet when everything is already there. Needs root (or sudo)
# only when a Debian package is missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
JOBS="${JOBS:-$(nproc)}"

# Build and run dependencies (Debian 12 package names).
BUILD_PACKAGES=(
  build-essential cmake pkg-config ccache git ca-certificates curl
  libboost1.81-dev nlohmann-json3-dev libyaml-cpp-dev libspdlog-dev libcli11-dev
  libsqlite3-dev libssl-dev libpugixml-dev libtomlplusplus-dev
  libmariadb-dev libhiredis-dev libcurl4-openssl-dev
  libuchardet-dev libicu-dev
  libavformat-dev libavcodec-dev libavutil-dev libswresample-dev
  libvulkan1 # the Vulkan loader, for the engine's Vulkan build (harmless without a GPU)
)
# Only needed for the test suite and benchmarks. mesa-vulkan-drivers brings lavapipe,
# Mesa's software Vulkan driver: with libvulkan1 (above) the suite runs the engine's
# Vulkan build without a GPU.
TEST_PACKAGES=(
  googletest libgtest-dev libgmock-dev wrk python3 python3-yaml
  python3-pytest python3-requests python3-wget python3-filelock python3-numpy python3-prometheus-client
  mariadb-server redis-server
  ffmpeg
  chromium fonts-wqy-microhei
  mesa-vulkan-drivers
)

log() { printf '==> %s\n' "$*" >&2; }

missing_packages() {
  local p status
  for p in "$@"; do
    status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
    [[ "$status" == "install ok installed" ]] || printf '%s\n' "$p"
  done
}

ensure_packages() {
  local missing
  mapfile -t missing < <(missing_packages "$@")
  ((${#missing[@]} == 0)) && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=()
  [[ $EUID -ne 0 ]] && sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Node.js/npm (for the pinned llama.cpp engine and the web UI): Debian's
# packages unless a node/npm is already on PATH (e.g. from NodeSource).
ensure_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    ensure_packages nodejs npm
  fi
}

# The pinned engine, with the GPU build LLMD_GPU picks (auto: what the machine has) and
# any in LLMD_GPU_EXTRA; a missing driver leaves the CPU build with a one-line reason.
ensure_engine() {
  ensure_node
  if [[ -x engine/install.sh ]]; then
    engine/install.sh
  fi
}

# The web UI (web/dist, served by `llmd serve`): `npm ci` only when
# node_modules is missing or package-lock.json changed since the last one.
build_web() {
  ensure_node
  # Vite needs Node.js >= 20 (Debian 12's own nodejs is 18): without it the
  # UI is not built and `llmd serve` says so at `/`; the API is unaffected.
  local node_major
  node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  if ((node_major < 20)); then
    log "web UI not built: Node.js >= 20 is needed, found $(node --version 2>/dev/null || echo none) (see README, Troubleshooting)"
    return 0
  fi
  local lock_sum stamp=web/node_modules/.llmd-lock-sha256
  lock_sum="$(sha256sum web/package-lock.json | cut -d' ' -f1)"
  if [[ ! -d web/node_modules || "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]]; then
    log "installing web UI dependencies (npm ci)"
    (cd web && npm ci --no-audit --no-fund --loglevel=error)
    printf '%s\n' "$lock_sum" >"$stamp"
  fi
  log "building the web UI"
  (cd web && npm run --silent build >/dev/null)
}

# Node packages the test suite drives llmd with (the official OpenAI,
# Anthropic and Ollama clients): directory and the package that shows it is installed.
ensure_test_clients() {
  ensure_node
  local entry dir package
  for entry in openai-node:openai anthropic-node:@anthropic-ai/sdk ollama-node:ollama; do
    dir="tests/clients/${entry%%:*}"
    package="${entry#*:}"
    if [[ ! -f "$dir/node_modules/$package/package.json" ]]; then
      log "installing test client packages (npm ci in $dir)"
      (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
    fi
  done
}

configure_and_build() {  # $1 = build dir, rest = cmake flags
  local dir="$1"
  shift
  if [[ ! -f "$dir/CMakeCache.txt" ]]; then
    log "configuring $dir"
    cmake -S . -B "$dir" "$@" >/dev/null
  else
    cmake -S . -B "$dir" "$@" >/dev/null
  fi
  log "building $dir"
  cmake --build "$dir" -j "$JOBS"
}

build_release() {
  ensure_packages "${BUILD_PACKAGES[@]}"
  ensure_engine
  configure_and_build build/release -DCMAKE_BUILD_TYPE=Release -DLLMD_BUILD_TESTS=OFF -DLLMD_BUILD_BENCH=ON
  build_web
}

usage() {
  echo "usage: ./setup.sh [--gpu=auto|cpu|vulkan|cuda] serve [flags] | test | build" >&2
  exit 2
}

# --gpu=X or --gpu X: sets LLMD_GPU; `shift_gpu_flags "$@"` leaves the rest in rest_args.
rest_args=()
shift_gpu_flags() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --gpu=*) LLMD_GPU="${1#--gpu=}" && shift ;;
      --gpu)
        [[ $# -ge 2 ]] || usage
        LLMD_GPU="$2"
        shift 2
        ;;
      *) break ;;
    esac
  done
  rest_args=("$@")
}

shift_gpu_flags "$@"
set -- "${rest_args[@]+"${rest_args[@]}"}"
cmd="${1:-}"
[[ $# -gt 0 ]] && shift
shift_gpu_flags "$@"
set -- "${rest_args[@]+"${rest_args[@]}"}"
if [[ -n "${LLMD_GPU:-}" ]]; then
  case "${LLMD_GPU,,}" in
    auto | cpu | vulkan | cuda) export LLMD_GPU="${LLMD_GPU,,}" ;;
    *) echo "setup.sh: --gpu=$LLMD_GPU: expected auto, cpu, vulkan or cuda" >&2 && exit 2 ;;
  esac
fi

case "$cmd" in
  serve)
    build_release
    log "starting llmd serve (Ctrl-C to stop)"
    exec build/release/bin/llmd serve "$@"
    ;;
  build)
    build_release
    ;;
  test)
    ensure_packages "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    # The Vulkan build too, GPU or not: the suite runs it through lavapipe.
    export LLMD_GPU_EXTRA="vulkan${LLMD_GPU_EXTRA:+,$LLMD_GPU_EXTRA}"
    ensure_engine
    build_web
    ensure_test_clients
    configure_and_build build/debug -DCMAKE_BUILD_TYPE=Debug -DLLMD_SANITIZE=ON -DLLMD_BUILD_BENCH=OFF
    log "running tests"
    export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
    export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$ROOT/tests/lsan.supp}"
    cd build/debug
    ctest --output-on-failure -j "$JOBS" --timeout 600
    ;;
  *)
    usage
    ;;
esac
