#!/usr/bin/env bash
# Installs the GPU builds of the pinned llama.cpp engine beside the CPU build (run by install.sh):
#   vulkan  node_modules/@node-llama-cpp/linux-x64-vulkan/bins/linux-x64-vulkan/libggml-vulkan.so
#   cuda    node_modules/@node-llama-cpp/linux-x64-cuda/bins/linux-x64-cuda/libggml-cuda.so (CUDA 13)
#           node_modules/@node-llama-cpp/linux-x64-cuda-ext/bins/linux-x64-cuda/fallback/libggml-cuda.so
#           (CUDA 12; node-llama-cpp loads it when the CUDA 13 one does not load)
# The variant is gpu-detect.sh's (LLMD_GPU=auto|cpu|vulkan|cuda); LLMD_GPU_EXTRA="vulkan" (or
# "cuda", comma- or space-separated) installs more regardless, e.g. to test the Vulkan build through
# Mesa's software driver on a machine without a GPU. Packages of variants no longer chosen are
# removed. node_modules/.llmd-gpu-packages lists the installed packages, one per line.
#
# Each package is fetched at exactly the version package-lock.json pins (`npm pack`, from the npm
# cache when it is there) and installed only when its sha512 matches the lock's integrity.
# Idempotent and quiet when everything is in place (each package is stamped with its integrity).
# Never fails setup for a GPU reason: a failed fetch or a wrong checksum prints one line and leaves
# the CPU build; exit 0. Exit 2: a bad LLMD_GPU or LLMD_GPU_EXTRA.
# Needs: bash, node + npm, tar.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

scope="node_modules/@node-llama-cpp"
manifest="node_modules/.llmd-gpu-packages"
choice_stamp="node_modules/.llmd-gpu-choice"
all_packages=(linux-x64-vulkan linux-x64-cuda linux-x64-cuda-ext)

packages_of() {  # packages_of VARIANT -> its packages, one per line
  case "$1" in
    cpu) ;;
    vulkan) echo linux-x64-vulkan ;;
    cuda) printf '%s\n' linux-x64-cuda linux-x64-cuda-ext ;;
    *) return 1 ;;
  esac
}

work=""
fetch_failed=0  # the registry did not answer: do not wait for it again for the next package
cleanup() { [[ -z "$work" ]] || rm -rf "$work"; }
reason_file="$(mktemp)"
trap 'cleanup; rm -f "$reason_file"' EXIT

# "VERSION INTEGRITY" of a package as package-lock.json pins it; status 1 when it is not there.
pinned() {
  node -e '
    const lock = JSON.parse(require("fs").readFileSync("package-lock.json", "utf8"));
    const entry = (lock.packages || {})["node_modules/" + process.argv[1]];
    if (!entry || !entry.version || !entry.integrity) process.exit(1);
    console.log(entry.version + " " + entry.integrity);' "$1"
}

# The npm-style integrity ("sha512-<base64>") of a file.
sha512_integrity() {
  node -e '
    const hash = require("crypto").createHash("sha512");
    require("fs").createReadStream(process.argv[1])
      .on("data", (d) => hash.update(d))
      .on("end", () => console.log("sha512-" + hash.digest("base64")));' "$1"
}

# Installs one package into $scope/<name>; status 1 (after one line on stderr) when it cannot.
install_package() {
  local name="$1" pin version integrity
  local spec="@node-llama-cpp/$name" stamp="$scope/$name/.llmd-variant-stamp"
  if ! pin="$(pinned "$spec")"; then
    echo "engine: $spec is not pinned in package-lock.json: not installed" >&2
    return 1
  fi
  read -r version integrity <<<"$pin"
  [[ -f "$stamp" && "$(cat "$stamp")" == "$pin" ]] && return 0

  # Another version than the lock's is not kept, even if the new one cannot be fetched: it
  # would load against a CPU build it was not released with.
  rm -rf "${scope:?}/$name"
  ((fetch_failed == 0)) || return 1
  echo "engine: installing $spec@$version"
  mkdir -p "$scope"
  # Inside node_modules, so that moving the result into place is a rename.
  work="$(mktemp -d node_modules/.llmd-gpu-work.XXXXXX)" || {
    echo "engine: cannot create a work directory in $here/node_modules: keeping the CPU build" >&2
    return 1
  }
  # One retry, soon: an offline machine should not hold setup for minutes.
  if ! npm pack --prefer-offline --loglevel=error --fetch-retries=1 --fetch-retry-mintimeout=5000 \
    --fetch-retry-maxtimeout=20000 --pack-destination "$work" "$spec@$version" >/dev/null 2>"$work/npm.log"; then
    local why
    why="$(grep -m1 -E '^npm (ERR!|error) ' "$work/npm.log" || head -n1 "$work/npm.log" || true)"
    echo "engine: could not fetch $spec@$version from the npm registry (${why:-npm pack failed}): keeping the CPU build" >&2
    fetch_failed=1
    cleanup && work=""
    return 1
  fi
  local tarballs=("$work"/*.tgz)
  if [[ ${#tarballs[@]} -ne 1 || ! -f "${tarballs[0]}" ]]; then
    echo "engine: npm pack $spec@$version left no tarball: keeping the CPU build" >&2
    cleanup && work=""
    return 1
  fi
  local actual
  actual="$(sha512_integrity "${tarballs[0]}")"
  if [[ "$actual" != "$integrity" ]]; then
    echo "engine: $spec@$version from the registry does not match package-lock.json's sha512 (got ${actual:0:24}...): refused, keeping the CPU build" >&2
    cleanup && work=""
    return 1
  fi
  mkdir "$work/x"
  if ! tar -xzf "${tarballs[0]}" -C "$work/x" --no-same-owner --no-same-permissions || [[ ! -d "$work/x/package" ]]; then
    echo "engine: cannot unpack $spec@$version: keeping the CPU build" >&2
    cleanup && work=""
    return 1
  fi
  printf '%s\n' "$pin" >"$work/x/package/.llmd-variant-stamp"
  if ! mv "$work/x/package" "$scope/$name"; then
    echo "engine: cannot move $spec@$version into $scope: keeping the CPU build" >&2
    cleanup && work=""
    return 1
  fi
  cleanup && work=""
}

rc=0
variant="$("$here/gpu-detect.sh" 2>"$reason_file")" || rc=$?
reason="$(head -n1 "$reason_file")"
if ((rc == 2)); then
  echo "engine: $reason" >&2
  exit 2
elif ((rc != 0)) || ! packages_of "$variant" >/dev/null; then
  # A probe that breaks on an odd machine must not break setup.
  reason="GPU detection failed (exit $rc: ${reason:-no reason given}): using the CPU build"
  variant=cpu
fi

extras="${LLMD_GPU_EXTRA:-}"
variants=("$variant")
IFS=', ' read -ra extra_list <<<"$extras"
for extra in "${extra_list[@]}"; do
  if ! packages_of "$extra" >/dev/null; then
    echo "engine: LLMD_GPU_EXTRA=$extras: expected vulkan, cuda or cpu (comma- or space-separated)" >&2
    exit 2
  fi
  variants+=("$extra")
done

wanted=()
for v in "${variants[@]}"; do
  mapfile -t -O "${#wanted[@]}" wanted < <(packages_of "$v")
done

# Say what was chosen and why once, when it changes.
mkdir -p node_modules
choice="$variant${extras:+ + $extras}"
if [[ "$(cat "$choice_stamp" 2>/dev/null)" != "$choice" ]]; then
  echo "engine: $reason${extras:+ (also installing: $extras)}"
  printf '%s\n' "$choice" >"$choice_stamp"
fi

is_wanted() {
  local w
  for w in "${wanted[@]}"; do [[ "$w" == "$1" ]] && return 0; done
  return 1
}

for name in "${all_packages[@]}"; do
  if ! is_wanted "$name" && [[ -d "$scope/$name" ]]; then
    echo "engine: removing @node-llama-cpp/$name (not chosen)"
    rm -rf "${scope:?}/$name"
  fi
done

installed=()
for name in "${all_packages[@]}"; do
  is_wanted "$name" || continue
  if install_package "$name"; then installed+=("$name"); fi
done

# Rewritten only when it changes, so a build that watches it reconfigures only then.
list="$(printf '%s\n' "${installed[@]+"${installed[@]}"}" | sed '/^$/d')"
if [[ ! -f "$manifest" || "$(cat "$manifest")" != "$list" ]]; then
  printf '%s' "$list${list:+$'\n'}" >"$manifest"
fi
