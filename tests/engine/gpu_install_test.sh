#!/usr/bin/env bash
# engine/install-gpu.sh with a fake npm on PATH (no network): it installs the chosen GPU package
# only when the tarball's sha512 matches package-lock.json, keeps the CPU build (exit 0) when the
# fetch fails or the checksum does not match, is quiet on a rerun, and removes a variant that is no
# longer chosen. Runs on a copy of the engine scripts in a temporary directory with a fake machine
# without a GPU (LLMD_GPU_PROBE_ROOT), so the real engine/ is not touched. Needs node and tar.
#
# The checks are strings that check() evaluates after each run, hence single quotes and
# variables (such as $before) that only those strings read:
# shellcheck disable=SC2016,SC2034
set -euo pipefail

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../engine" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failures=0

engine="$tmp/engine"
mkdir -p "$engine" "$tmp/bin" "$tmp/root" "$tmp/registry"
cp "$src/install-gpu.sh" "$src/gpu-detect.sh" "$engine/"
printf '#!/bin/sh\nexit 0\n' >"$tmp/bin/ldconfig"
printf '#!/bin/sh\nexit 9\n' >"$tmp/bin/nvidia-smi"
printf '#!/bin/sh\nexit 127\n' >"$tmp/bin/vulkaninfo"

# The registry: a small tarball per GPU package, named as npm pack names them.
integrity() {
  node -e 'console.log("sha512-" + require("crypto").createHash("sha512").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$1"
}
make_package() {  # make_package NAME FILE_IN_PACKAGE
  local dir="$tmp/pkg/$1"
  mkdir -p "$dir/package/$(dirname "$2")"
  printf '{"name":"@node-llama-cpp/%s","version":"3.21.1"}\n' "$1" >"$dir/package/package.json"
  echo "fake $1" >"$dir/package/$2"
  tar -czf "$tmp/registry/node-llama-cpp-$1-3.21.1.tgz" -C "$dir" package
}
make_package linux-x64-vulkan bins/linux-x64-vulkan/libggml-vulkan.so
make_package linux-x64-cuda bins/linux-x64-cuda/libggml-cuda.so
make_package linux-x64-cuda-ext bins/linux-x64-cuda/fallback/libggml-cuda.so
{
  echo '{ "name": "llmd-engine", "lockfileVersion": 3, "packages": {'
  for p in linux-x64-vulkan linux-x64-cuda linux-x64-cuda-ext; do
    printf '  "node_modules/@node-llama-cpp/%s": { "version": "3.21.1", "integrity": "%s", "optional": true },\n' \
      "$p" "$(integrity "$tmp/registry/node-llama-cpp-$p-3.21.1.tgz")"
  done
  echo '  "": { "name": "llmd-engine" } } }'
} >"$engine/package-lock.json"
# Same name and version, other bytes: what a tampered registry or mirror would serve.
mkdir -p "$tmp/tampered/package/bins/linux-x64-vulkan"
echo "tampered" >"$tmp/tampered/package/bins/linux-x64-vulkan/libggml-vulkan.so"
tar -czf "$tmp/tampered.tgz" -C "$tmp/tampered" package

# npm: only `npm pack ... --pack-destination DIR SPEC`; FAKE_NPM=ok|offline|tampered; every call logged.
cat >"$tmp/bin/npm" <<EOF
#!/usr/bin/env bash
echo "\$*" >>"$tmp/npm-calls"
[[ "\$1" == pack ]] || exit 1
shift
dest="" spec=""
while ((\$#)); do
  case "\$1" in
    --pack-destination) dest="\$2"; shift 2 ;;
    -*) shift ;;
    *) spec="\$1"; shift ;;
  esac
done
file="\${spec#@}"
file="\${file/\//-}"
file="\${file/@/-}.tgz"
case "\${FAKE_NPM:-ok}" in
  offline)
    echo "npm error code ENOTFOUND" >&2
    echo "npm error network request to https://registry.npmjs.org/@node-llama-cpp%2f... failed" >&2
    exit 1 ;;
  tampered) cp "$tmp/tampered.tgz" "\$dest/\$file" ;;
  *) cp "$tmp/registry/\$file" "\$dest/\$file" ;;
esac
echo "\$file"
EOF
chmod +x "$tmp/bin"/*

scope="$engine/node_modules/@node-llama-cpp"
calls() { if [[ -f "$tmp/npm-calls" ]]; then wc -l <"$tmp/npm-calls"; else echo 0; fi; }

# run VAR=VALUE...: runs install-gpu.sh; sets rc, out (stdout) and err (stderr).
run() {
  rc=0
  env -u LLMD_GPU -u LLMD_GPU_EXTRA -u LD_LIBRARY_PATH -u VK_ICD_FILENAMES -u VK_DRIVER_FILES \
    PATH="$tmp/bin:$PATH" LLMD_GPU_PROBE_ROOT="$tmp/root" "$@" bash "$engine/install-gpu.sh" \
    >"$tmp/out" 2>"$tmp/err" || rc=$?
  out="$(cat "$tmp/out")" err="$(cat "$tmp/err")"
}

check() {  # check NAME COMMAND...: passes when the command succeeds (`eval '...'` for a compound one)
  local name="$1"
  shift
  if "$@"; then
    echo "ok   $name"
  else
    echo "FAIL $name"
    echo "     exit $rc; stdout: ${out//$'\n'/ | }; stderr: ${err//$'\n'/ | }"
    failures=$((failures + 1))
  fi
}
installed() { cat "$engine/node_modules/.llmd-gpu-packages"; }
has() { [[ -f "$scope/$1/.llmd-variant-stamp" ]]; }
none_installed() { [[ ! -e "$scope/linux-x64-vulkan" && ! -e "$scope/linux-x64-cuda" && ! -e "$scope/linux-x64-cuda-ext" && -z "$(installed)" ]]; }
matches() { grep -Eq -- "$2" <<<"$1"; }
one_line() { [[ -n "$1" && "$(wc -l <<<"$1")" -eq 1 ]]; }

# --- No network: one line, the CPU build stays, exit 0.
FAKE_NPM=offline run LLMD_GPU=vulkan
check "offline: exit 0, nothing installed" eval '((rc == 0)) && none_installed'
check "offline: one line that says why" eval 'one_line "$err" && matches "$err" "^engine: could not fetch @node-llama-cpp/linux-x64-vulkan@3\.21\.1 from the npm registry \(npm error code ENOTFOUND\): keeping the CPU build$"'
check "offline: the choice and its reason are said" matches "$out" '^engine: LLMD_GPU=vulkan: using Vulkan \(forced\); note: no Vulkan loader'
before="$(calls)"
FAKE_NPM=offline run LLMD_GPU=cuda
check "offline, two packages: one line, the registry asked once" eval '((rc == 0)) && none_installed && one_line "$err" && [[ "$(calls)" == $((before + 1)) ]]'

# --- A tarball that does not match the lock: refused.
FAKE_NPM=tampered run LLMD_GPU=vulkan
check "tampered: exit 0, refused, nothing installed" eval '((rc == 0)) && none_installed'
check "tampered: one line that says why" eval 'one_line "$err" && matches "$err" "^engine: @node-llama-cpp/linux-x64-vulkan@3\.21\.1 from the registry does not match package-lock.json.s sha512 .*: refused, keeping the CPU build$"'
check "tampered: no work directory left behind" eval '[[ -z "$(find "$engine/node_modules" -maxdepth 1 -name ".llmd-gpu-work.*")" ]]'

# --- The real thing: installed, stamped, listed; a rerun is quiet and fetches nothing.
run LLMD_GPU=vulkan
check "vulkan: installed at the lock's version" eval '((rc == 0)) && [[ -z "$err" ]] && has linux-x64-vulkan && [[ -f "$scope/linux-x64-vulkan/bins/linux-x64-vulkan/libggml-vulkan.so" ]]'
check "vulkan: listed in .llmd-gpu-packages" eval '[[ "$(installed)" == linux-x64-vulkan ]]'
check "vulkan: the install is said" matches "$out" '^engine: installing @node-llama-cpp/linux-x64-vulkan@3\.21\.1$'
before="$(calls)"
run LLMD_GPU=vulkan
check "vulkan again: quiet, no fetch" eval '((rc == 0)) && [[ -z "$out$err" && "$(calls)" == "$before" ]] && has linux-x64-vulkan'

# --- Forced cpu after vulkan: removed.
run LLMD_GPU=cpu
check "cpu: the Vulkan build is removed" eval '((rc == 0)) && none_installed'
check "cpu: says so" matches "$out" 'engine: removing @node-llama-cpp/linux-x64-vulkan \(not chosen\)'

# --- LLMD_GPU_EXTRA: installed even though detection says cpu (this fake machine has no GPU).
run LLMD_GPU_EXTRA=vulkan
check "extra vulkan on a machine without a GPU: installed" eval '((rc == 0)) && has linux-x64-vulkan && [[ "$(installed)" == linux-x64-vulkan ]]'
check "extra vulkan: the reason names both" matches "$out" '^engine: no NVIDIA driver, .*: using the CPU build \(also installing: vulkan\)$'

# --- cuda: both CUDA packages (CUDA 13 build + CUDA 12 fallback); the Vulkan one goes.
run LLMD_GPU=cuda
check "cuda: cuda and cuda-ext installed, vulkan removed" eval '((rc == 0)) && has linux-x64-cuda && has linux-x64-cuda-ext && [[ ! -e "$scope/linux-x64-vulkan" ]]'
check "cuda: listed" eval '[[ "$(installed)" == "$(printf "linux-x64-cuda\nlinux-x64-cuda-ext")" ]]'

# --- A stamp from another version: replaced; if the fetch fails, removed rather than kept.
echo "3.20.0 sha512-old" >"$scope/linux-x64-cuda/.llmd-variant-stamp"
FAKE_NPM=offline run LLMD_GPU=cuda
check "stale cuda build and no network: removed, exit 0" eval '((rc == 0)) && [[ ! -e "$scope/linux-x64-cuda" ]] && has linux-x64-cuda-ext && [[ "$(installed)" == linux-x64-cuda-ext ]]'

# --- Bad values: exit 2 with a message, nothing changed.
run LLMD_GPU_EXTRA=metal
check "a bad LLMD_GPU_EXTRA exits 2" eval '((rc == 2)) && matches "$err" "LLMD_GPU_EXTRA=metal: expected vulkan, cuda or cpu" && has linux-x64-cuda-ext'
run LLMD_GPU=metal
check "a bad LLMD_GPU exits 2" eval '((rc == 2)) && matches "$err" "LLMD_GPU=metal: expected auto, cpu, vulkan or cuda" && has linux-x64-cuda-ext'

# --- A detector that breaks on an odd machine: the CPU build, exit 0.
printf '#!/bin/sh\necho "probe crashed" >&2\nexit 1\n' >"$engine/gpu-detect.sh"
run
check "a broken detector: the CPU build, exit 0" eval '((rc == 0)) && none_installed && [[ ! -e "$scope/linux-x64-cuda-ext" ]]'
check "a broken detector: says so" matches "$out" '^engine: GPU detection failed \(exit 1: probe crashed\): using the CPU build$'

if ((failures > 0)); then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
