#!/usr/bin/env bash
# Installs the pinned llama.cpp engine (release v0.4.0) for the build:
#   engine/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/*.so  prebuilt shared libraries
#   engine/llama/include/   llama.h, llama-cpp.h, ggml*.h, gguf.h (headers only, from the source bundle)
#   engine/llama/common/    the headers of llama.cpp's common layer (chat templates, tool-call and
#                           reasoning parsers, sampling), matching the prebuilt libllama-common.so
#   engine/llama/templates/ the real model chat templates shipped with the release (*.jinja), for tests
#   engine/llama/vocab/     vocab-only GGUFs the test-model generator borrows tokenizers from
#   engine/llama/server-tests/  llama-server's own tests (tools/server/tests), run against `llmd runner`
#   engine/node_modules/@node-llama-cpp/linux-x64-{vulkan,cuda,cuda-ext}/  the GPU builds this
#                           machine can use, beside the CPU build (install-gpu.sh; LLMD_GPU=auto|cpu|
#                           vulkan|cuda forces a choice, LLMD_GPU_EXTRA=vulkan adds one)
# Idempotent and quiet when everything is already in place (stamped with the lock file's hash).
# Needs: bash, node + npm (registry reachable on first run), git, sha256sum, tar.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
modules_stamp="node_modules/.llmd-engine-stamp"
llama_stamp="llama/.llmd-engine-stamp"
# Bumped whenever step 2 extracts more from the bundle, so existing installs refresh.
llama_layout="5"
libdir="node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
bundle="node_modules/node-llama-cpp/llama/gitRelease.bundle"

# 1. npm packages: only the direct deps (node-llama-cpp lists every platform's
#    binaries, CUDA among them, as optional deps); no install scripts.
if [[ ! -f "$modules_stamp" || "$(cat "$modules_stamp")" != "$lock_hash" || ! -f "$libdir/libllama.v0.4.0.so" ]]; then
  echo "engine: installing pinned llama.cpp packages (npm ci)"
  npm ci --ignore-scripts --omit=optional --no-audit --no-fund --loglevel=error >/dev/null
  [[ -f "$libdir/libllama.v0.4.0.so" ]] || { echo "engine: $libdir/libllama.v0.4.0.so missing after npm ci" >&2; exit 1; }
  [[ -f "$bundle" ]] || { echo "engine: $bundle missing after npm ci" >&2; exit 1; }
  echo "$lock_hash" > "$modules_stamp"
fi

# 2. Headers + vocab GGUFs from the release's source bundle.
if [[ ! -f "$llama_stamp" || "$(cat "$llama_stamp")" != "$lock_hash $llama_layout" ]]; then
  echo "engine: extracting llama.cpp headers and vocab files from the source bundle"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  git -c advice.detachedHead=false clone --quiet "$bundle" "$tmp/src"
  rm -rf llama.new
  mkdir -p llama.new/include llama.new/vocab llama.new/common/jinja llama.new/templates
  cp "$tmp"/src/include/*.h "$tmp"/src/ggml/include/*.h llama.new/include/
  cp "$tmp"/src/common/*.h "$tmp"/src/common/*.hpp llama.new/common/
  cp "$tmp"/src/common/jinja/*.h llama.new/common/jinja/
  cp "$tmp"/src/models/templates/*.jinja llama.new/templates/
  cp -r "$tmp"/src/tools/server/tests llama.new/server-tests
  cp "$tmp"/src/models/ggml-vocab-qwen2.gguf "$tmp"/src/models/ggml-vocab-llama-spm.gguf llama.new/vocab/
  cp "$tmp"/src/LICENSE llama.new/LICENSE
  echo "$lock_hash $llama_layout" > llama.new/.llmd-engine-stamp
  rm -rf llama
  mv llama.new llama
fi

# 3. The GPU builds (Vulkan, CUDA) gpu-detect.sh or LLMD_GPU picks, checked against the lock.
#    Never fails for want of a GPU, a driver or the network: the CPU build stays.
"$here/install-gpu.sh"
