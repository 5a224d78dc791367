#!/usr/bin/env bash
# Runs llama.cpp's own server tests (tools/server/tests of the pinned
# release, unchanged; engine/install.sh extracts them) against
# `llmd runner`, through the ./llama-server shim, on generated models.
#
#   tests/llama_server/run.sh LLMD_BINARY OUT_DIR          the tests in expected_pass.txt (CI)
#   tests/llama_server/run.sh LLMD_BINARY OUT_DIR --all    every file in test_files.txt (the report)
#   tests/llama_server/run.sh LLMD_BINARY OUT_DIR unit/test_x.py ...
#
# Writes OUT_DIR/results.xml (JUnit), OUT_DIR/pytest.log and
# OUT_DIR/summary.txt (every result), and fails when a test listed in
# expected_pass.txt ran and did not pass (a regression). PYTEST_ADDOPTS
# passes more pytest flags (e.g. "-n 2" with python3-pytest-xdist).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
binary="$(realpath "$1")"
out="$(realpath -m "$2")"
shift 2
suite="$root/engine/llama/server-tests"
[[ -d "$suite/unit" ]] || { echo "llama-server tests missing: run engine/install.sh" >&2; exit 1; }
python=/usr/bin/python3  # Debian's, with python3-pytest & co.

mkdir -p "$out/models"
model() {  # name, make-test-model flags...
  local name="$1"
  shift
  if [[ ! -f "$out/models/$name.gguf" ]]; then
    "$binary" dev make-test-model --seed 7 --out "$out/models/$name.tmp.gguf" "$@"
    mv "$out/models/$name.tmp.gguf" "$out/models/$name.gguf"
  fi
}
model qwen2 --arch qwen2
model qwen2-fim --arch qwen2 --fim
model qwen3-reranker --arch qwen3 --reranker

# Laid out as in the llama.cpp tree: the tests name templates by their path
# there (../../../models/templates/NAME.jinja).
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tools/server" "$work/models"
cp -r "$suite" "$work/tools/server/tests"
ln -s "$root/engine/llama/templates" "$work/models/templates"

# Every preset's model is a generated one: the tiny ChatML model, the one
# with fill-in-the-middle tokens for the infill preset, a Qwen3-Reranker-shaped
# one for the reranker preset.
export LLMD_COMPAT_MODELS="{\"*\": \"$out/models/qwen2.gguf\",
  \"ggml-org/test-model-stories260K-infill\": \"$out/models/qwen2-fim.gguf\",
  \"ggml-org/models/jina-reranker-v1-tiny-en/ggml-model-f16.gguf\": \"$out/models/qwen3-reranker.gguf\"}"
export LLMD_BINARY="$binary"
export LLAMA_SERVER_BIN_PATH="$here/llama-server"
export PYTHONPATH="$here/pylib"
PORT="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export PORT

listed() { sed -e 's/[[:space:]]*#.*//' -e '/^[[:space:]]*$/d' "$1"; }
strict=()
if (($# == 0)); then
  mapfile -t files < <(listed "$here/expected_pass.txt")
  strict=(--all-expected-ran)
elif [[ "$1" == "--all" ]]; then
  mapfile -t files < <(listed "$here/test_files.txt")
else
  files=("$@")
fi
cd "$work/tools/server/tests"
"$python" -m pytest -p no:cacheprovider -q -o addopts= --junitxml="$out/results.xml" \
  "${files[@]}" > "$out/pytest.log" 2>&1 || true  # the summary judges
"$python" "$here/summarize.py" "$out/results.xml" "$here/expected_pass.txt" "$out/summary.txt" "${strict[@]}"
