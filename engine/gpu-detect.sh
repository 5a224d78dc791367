#!/usr/bin/env bash
# Picks the build of the pinned llama.cpp engine for this machine. Prints one word on stdout,
# the variant engine/install-gpu.sh installs beside the CPU build: cpu, vulkan or cuda; and one
# line on stderr that says why.
#
#   engine/gpu-detect.sh                    LLMD_GPU=auto (the default): detect
#   LLMD_GPU=vulkan engine/gpu-detect.sh    force cpu, vulkan or cuda
#
# auto, in order:
#   cuda    an NVIDIA driver (`nvidia-smi -L` lists a GPU, or /proc/driver/nvidia/version), its
#           libcuda.so.1, and a CUDA runtime the pinned builds link against on the loader path
#           (ldconfig's cache or LD_LIBRARY_PATH): libcudart, libcublas and libcublasLt .so.13
#           with a driver >= 580, or .so.12 with a driver >= 525.
#   vulkan  the Vulkan loader (libvulkan.so.1) and a driver for a real GPU: `vulkaninfo --summary`
#           lists a discrete, integrated or virtual GPU; without a working vulkaninfo, an ICD
#           manifest whose library is there and whose hardware is (NVIDIA's ICD with the NVIDIA
#           driver, Mesa's radeon/intel/nouveau ICDs with a DRM render node of that vendor).
#           Software renderers (lavapipe, SwiftShader) do not count.
#   cpu     otherwise, with the reason.
# A missing driver is never an error (exit 0). Exit 2: LLMD_GPU is not auto, cpu, vulkan or cuda.
#
# For tests every probe can be faked: each file path is read under $LLMD_GPU_PROBE_ROOT (default
# none, i.e. /), and nvidia-smi, ldconfig and vulkaninfo are the ones found first on PATH.
set -euo pipefail

root="${LLMD_GPU_PROBE_ROOT:-}"
root="${root%/}"
shopt -s nullglob

join() {  # join SEPARATOR ITEM... -> the items joined by SEPARATOR
  local sep="$1" out="" item
  shift
  for item in "$@"; do out+="${out:+$sep}$item"; done
  printf '%s' "$out"
}

# The path `name` resolves to for the dynamic loader (LD_LIBRARY_PATH first, then ldconfig's
# cache), on stdout; status 1 when it is not found.
ld_cache=""
ld_cache_read=0
find_lib() {
  local name="$1" dir dirs
  IFS=: read -ra dirs <<<"${LD_LIBRARY_PATH:-}"
  for dir in "${dirs[@]}"; do
    if [[ -n "$dir" && -e "$root$dir/$name" ]]; then
      printf '%s\n' "$dir/$name"
      return 0
    fi
  done
  if ((ld_cache_read == 0)); then
    ld_cache_read=1
    local ldconfig
    ldconfig="$(command -v ldconfig || true)"
    for dir in /usr/sbin /sbin; do
      [[ -z "$ldconfig" && -x "$dir/ldconfig" ]] && ldconfig="$dir/ldconfig"
    done
    [[ -n "$ldconfig" ]] && ld_cache="$("$ldconfig" -p 2>/dev/null || true)"
  fi
  # "	libcudart.so.13 (libc6,x86-64) => /usr/local/cuda-13.0/lib/libcudart.so.13"
  awk -v n="$name" '$1 == n && /x86-64/ { print $NF; found = 1; exit } END { exit !found }' <<<"$ld_cache"
}

# --- NVIDIA driver: sets nv_present (0/1), nv_version ("580.65.06" or ""), nv_gpus ("NVIDIA H100 80GB HBM3").
nv_present=0
nv_version=""
nv_gpus=""
probe_nvidia() {
  local listing
  if listing="$(timeout 15 nvidia-smi -L 2>/dev/null)" && grep -q '^GPU [0-9]' <<<"$listing"; then
    nv_present=1
    local names=()
    mapfile -t names < <(sed -n 's/^GPU [0-9]*: \(.*\) (UUID.*/\1/p' <<<"$listing")
    nv_gpus="$(join ', ' "${names[@]}")"
  fi
  if [[ -r "$root/proc/driver/nvidia/version" ]]; then
    nv_present=1
    # "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024"
    nv_version="$(grep -o 'Kernel Module *[0-9][0-9.]*' "$root/proc/driver/nvidia/version" | awk '{ print $NF; exit }' || true)"
  fi
  if ((nv_present)) && [[ -z "$nv_version" ]]; then
    nv_version="$(timeout 15 nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n1 | tr -d ' ' || true)"
  fi
}

nv_name() {  # "NVIDIA driver 550.54.14 (NVIDIA RTX A4000)"
  printf 'NVIDIA driver%s%s' "${nv_version:+ $nv_version}" "${nv_gpus:+ ($nv_gpus)}"
}

# --- CUDA: sets cuda_major (13 or 12) or cuda_why (the reason it cannot be used).
cuda_major=""
cuda_why=""
probe_cuda() {
  if ((nv_present == 0)); then
    cuda_why="no NVIDIA driver"
    return 1
  fi
  if ! find_lib libcuda.so.1 >/dev/null; then
    cuda_why="the driver's libcuda.so.1 is not on the loader path"
    return 1
  fi
  local major min lib missing notes=() driver_major="${nv_version%%.*}"
  for major in 13 12; do
    missing=()
    for lib in "libcudart.so.$major" "libcublas.so.$major" "libcublasLt.so.$major"; do
      find_lib "$lib" >/dev/null || missing+=("$lib")
    done
    if ((${#missing[@]} == 3)); then
      continue
    elif ((${#missing[@]} > 0)); then
      notes+=("the CUDA $major runtime lacks ${missing[*]}")
      continue
    fi
    min=$([[ $major == 13 ]] && echo 580 || echo 525)
    if [[ "$driver_major" =~ ^[0-9]+$ ]] && ((driver_major < min)); then
      notes+=("the CUDA $major runtime needs driver >= $min")
      continue
    fi
    cuda_major="$major"
    return 0
  done
  if ((${#notes[@]} > 0)); then
    cuda_why="$(join '; ' "${notes[@]}")"
    return 1
  fi
  # A runtime that is installed but that the loader cannot find is the usual near miss.
  local candidates=("$root"/usr/local/cuda*/lib64/libcudart.so.1[23] "$root"/usr/local/cuda*/targets/x86_64-linux/lib/libcudart.so.1[23]
    "$root"/usr/local/cuda*/lib/libcudart.so.1[23] "$root"/opt/cuda/lib64/libcudart.so.1[23])
  if ((${#candidates[@]} > 0)); then
    cuda_why="no CUDA runtime on the loader path (${candidates[0]#"$root"} is not in ldconfig's cache; run ldconfig or set LD_LIBRARY_PATH)"
  else
    cuda_why="no CUDA 12 or 13 runtime (libcudart.so.12/.13 with libcublas)"
  fi
  return 1
}

# --- Vulkan: sets vk_desc (what was found) or vk_why (why not).
vk_desc=""
vk_why=""

# The ICD manifests the Vulkan loader would read (VK_DRIVER_FILES / VK_ICD_FILENAMES replace the
# search directories), one path per line, under the probe root.
icd_manifests() {
  local list="${VK_DRIVER_FILES:-${VK_ICD_FILENAMES:-}}" entries entry f
  if [[ -n "$list" ]]; then
    IFS=: read -ra entries <<<"$list"
  else
    entries=(/etc/xdg/vulkan/icd.d /etc/vulkan/icd.d /usr/local/etc/vulkan/icd.d /usr/local/share/vulkan/icd.d
      /usr/share/vulkan/icd.d)
  fi
  for entry in "${entries[@]}"; do
    [[ -n "$entry" ]] || continue
    if [[ -d "$root$entry" ]]; then
      for f in "$root$entry"/*.json; do printf '%s\n' "$f"; done
    elif [[ -f "$root$entry" ]]; then
      printf '%s\n' "$root$entry"
    fi
  done
}

# Whether the driver library a manifest names is there: an absolute path, one relative to the
# manifest, or a bare name the loader finds.
icd_library_present() {  # manifest library_path
  local manifest="$1" lib="$2"
  case "$lib" in
    "") return 1 ;;
    /*) [[ -e "$root$lib" ]] ;;
    */*) [[ -e "$(dirname "$manifest")/$lib" ]] ;;
    *) find_lib "$lib" >/dev/null ;;
  esac
}

# PCI vendor ids of the DRM render nodes (/dev/dri/renderD*), one per line.
render_node_vendors() {
  local node
  for node in "$root"/dev/dri/renderD*; do
    cat "$root/sys/class/drm/$(basename "$node")/device/vendor" 2>/dev/null || echo unknown
  done
}

probe_vulkan_manifests() {
  local manifests=() manifest short lib vendor want software=() no_lib=() no_device=() found=()
  mapfile -t manifests < <(icd_manifests)
  if ((${#manifests[@]} == 0)); then
    vk_why="no Vulkan driver (no ICD manifest in /usr/share/vulkan/icd.d or /etc/vulkan/icd.d)"
    return 1
  fi
  local vendors
  vendors="$(render_node_vendors)"
  for manifest in "${manifests[@]}"; do
    short="$(basename "$manifest" .json)"
    short="${short%.x86_64}"
    short="${short%_icd}"
    lib="$(sed -n 's/.*"library_path"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$manifest" | head -n1)"
    case "$short $lib" in
      lvp* | *libvulkan_lvp*) software+=(lavapipe) && continue ;;
      *swiftshader*) software+=(SwiftShader) && continue ;;
    esac
    if ! icd_library_present "$manifest" "$lib"; then
      no_lib+=("$short")
      continue
    fi
    case "$short $lib" in
      nvidia* | *nvidia*) want=nvidia vendor=NVIDIA ;;
      radeon* | *radeon*) want=0x1002 vendor=AMD ;;
      intel* | *intel*) want=0x8086 vendor=Intel ;;
      nouveau* | *nouveau*) want=0x10de vendor=NVIDIA ;;
      *) want="" vendor="$short" ;;
    esac
    if [[ "$want" == nvidia ]]; then
      if ((nv_present)); then found+=("NVIDIA, $short ICD"); else no_device+=("$short"); fi
    elif [[ -n "$vendors" ]] && { [[ -z "$want" ]] || grep -qix "$want" <<<"$vendors"; }; then
      found+=("$vendor, $short ICD")
    else
      no_device+=("$short")
    fi
  done
  if ((${#found[@]} > 0)); then
    vk_desc="$(join '; ' "${found[@]}")"
    return 0
  fi
  local parts=()
  ((${#software[@]} > 0)) && parts+=("$(join ', ' "${software[@]}") is software")
  ((${#no_device[@]} > 0)) && parts+=("no GPU for $(join ', ' "${no_device[@]}")")
  ((${#no_lib[@]} > 0)) && parts+=("the library of $(join ', ' "${no_lib[@]}") is missing")
  vk_why="no Vulkan driver for a GPU ($(join '; ' "${parts[@]}"))"
  return 1
}

probe_vulkan() {
  if ! find_lib libvulkan.so.1 >/dev/null; then
    vk_why="no Vulkan loader (libvulkan.so.1, Debian package libvulkan1)"
    return 1
  fi
  local summary devices gpus=() others=()
  if summary="$(timeout 30 vulkaninfo --summary 2>/dev/null)"; then
    # "deviceType = PHYSICAL_DEVICE_TYPE_DISCRETE_GPU" comes before "deviceName = ..." per device.
    devices="$(awk -F' = ' '/^[[:space:]]*deviceType/ { t = $2 } /^[[:space:]]*deviceName/ { print t "\t" $2 }' <<<"$summary")"
    mapfile -t gpus < <(awk -F'\t' '$1 ~ /_(DISCRETE|INTEGRATED|VIRTUAL)_GPU$/ { print $2 }' <<<"$devices")
    if ((${#gpus[@]} > 0)); then
      vk_desc="$(join '; ' "${gpus[@]}")"
      return 0
    fi
    mapfile -t others < <(awk -F'\t' 'NF > 1 { print $2 }' <<<"$devices")
    if ((${#others[@]} > 0)); then
      vk_why="vulkaninfo lists no GPU, only the software device $(join '; ' "${others[@]}")"
    else
      vk_why="vulkaninfo lists no Vulkan device"
    fi
    return 1
  fi
  probe_vulkan_manifests
}

say() {  # say VARIANT REASON
  printf '%s\n' "$1"
  printf '%s\n' "$2" >&2
}

choice="${LLMD_GPU:-auto}"
choice="${choice,,}"
case "$choice" in
  auto) ;;
  cpu)
    say cpu "LLMD_GPU=cpu: using the CPU build (forced)"
    exit 0
    ;;
  vulkan)
    probe_nvidia
    note=""
    probe_vulkan || note="; note: $vk_why"
    say vulkan "LLMD_GPU=vulkan: using Vulkan (forced)$note"
    exit 0
    ;;
  cuda)
    probe_nvidia
    note=""
    probe_cuda || note="; note: $cuda_why"
    say cuda "LLMD_GPU=cuda: using CUDA (forced)$note"
    exit 0
    ;;
  *)
    echo "gpu-detect: LLMD_GPU=${LLMD_GPU}: expected auto, cpu, vulkan or cuda" >&2
    exit 2
    ;;
esac

probe_nvidia
if probe_cuda; then
  say cuda "$(nv_name) with the CUDA $cuda_major runtime: using CUDA"
elif probe_vulkan; then
  if ((nv_present)); then
    say vulkan "$(nv_name) found but $cuda_why: using Vulkan ($vk_desc)"
  else
    say vulkan "Vulkan GPU found ($vk_desc): using Vulkan"
  fi
elif ((nv_present)); then
  say cpu "$(nv_name) found but $cuda_why, and $vk_why: using the CPU build (see README, GPUs)"
else
  say cpu "no NVIDIA driver, and $vk_why: using the CPU build"
fi
