#!/usr/bin/env bash
# engine/gpu-detect.sh on faked machines: each case builds a fake root (LLMD_GPU_PROBE_ROOT) and a
# fake PATH (nvidia-smi, ldconfig, vulkaninfo), then checks the variant printed on stdout and the
# one reason line on stderr. No GPU, driver or network needed.
set -euo pipefail

detect="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../engine" && pwd)/gpu-detect.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
n=0
failures=0

# --- Building a fake machine. new_machine sets R (its root), B (its bin dir) and C (its ld cache).
new_machine() {
  n=$((n + 1))
  R="$tmp/$n/root" B="$tmp/$n/bin" C="$tmp/$n/ld.so.cache.txt"
  mkdir -p "$R" "$B"
  printf '0 libs found in cache `/etc/ld.so.cache'"'"'\n' >"$C"
  printf '#!/bin/sh\ncat "%s"\n' "$C" >"$B/ldconfig"
  printf '#!/bin/sh\necho "NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver." >&2\nexit 9\n' >"$B/nvidia-smi"
  printf '#!/bin/sh\necho "vulkaninfo: not installed" >&2\nexit 127\n' >"$B/vulkaninfo"
  chmod +x "$B"/*
}

# Libraries the loader finds through ldconfig's cache.
libs() {
  local name
  for name in "$@"; do
    printf '\t%s (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/%s\n' "$name" "$name" >>"$C"
  done
}

# An NVIDIA driver: /proc/driver/nvidia/version and an nvidia-smi that lists one GPU.
nvidia_driver() {  # nvidia_driver VERSION GPU_NAME [no-proc]
  local version="$1" gpu="$2"
  if [[ "${3:-}" != no-proc ]]; then
    mkdir -p "$R/proc/driver/nvidia"
    printf 'NVRM version: NVIDIA UNIX x86_64 Kernel Module  %s  Thu Feb 22 01:44:30 UTC 2024\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n' \
      "$version" >"$R/proc/driver/nvidia/version"
  fi
  cat >"$B/nvidia-smi" <<EOF
#!/bin/sh
case "\$1" in
  -L) echo "GPU 0: $gpu (UUID: GPU-8e2a7c1d-0000-0000-0000-000000000000)" ;;
  --query-gpu=driver_version) echo "$version" ;;
  *) exit 2 ;;
esac
EOF
  chmod +x "$B/nvidia-smi"
  libs libcuda.so.1
}

icd() {  # icd FILE LIBRARY_PATH [DIR]
  local dir="$R${3:-/usr/share/vulkan/icd.d}"
  mkdir -p "$dir"
  printf '{\n    "ICD": {\n        "api_version": "1.3.230",\n        "library_path": "%s"\n    },\n    "file_format_version": "1.0.0"\n}\n' \
    "$2" >"$dir/$1"
  if [[ "$2" == /* ]]; then
    mkdir -p "$R$(dirname "$2")"
    : >"$R$2"
  fi
}

# What Debian's mesa-vulkan-drivers installs, whatever the hardware.
mesa_icds() {
  icd lvp_icd.x86_64.json /usr/lib/x86_64-linux-gnu/libvulkan_lvp.so
  icd radeon_icd.x86_64.json /usr/lib/x86_64-linux-gnu/libvulkan_radeon.so
  icd intel_icd.x86_64.json /usr/lib/x86_64-linux-gnu/libvulkan_intel.so
}

render_node() {  # render_node PCI_VENDOR_ID
  mkdir -p "$R/dev/dri" "$R/sys/class/drm/renderD128/device"
  : >"$R/dev/dri/renderD128"
  echo "$1" >"$R/sys/class/drm/renderD128/device/vendor"
}

vulkaninfo_lists() {  # vulkaninfo_lists TYPE NAME [TYPE NAME...]: a vulkaninfo --summary with these devices
  {
    printf '#!/bin/sh\ncat <<"EOF"\nDevices:\n========\n'
    local i=0
    while (($# >= 2)); do
      printf 'GPU%d:\n\tapiVersion         = 1.3.230\n\tdeviceType         = PHYSICAL_DEVICE_TYPE_%s\n\tdeviceName         = %s\n' "$i" "$1" "$2"
      i=$((i + 1))
      shift 2
    done
    printf 'EOF\n'
  } >"$B/vulkaninfo"
  chmod +x "$B/vulkaninfo"
}

# --- Running it. expect NAME VARIANT REASON_REGEX [VAR=VALUE...]
expect() {
  local name="$1" want="$2" pattern="$3"
  shift 3
  local out err rc=0
  out="$(env -u LD_LIBRARY_PATH -u VK_ICD_FILENAMES -u VK_DRIVER_FILES -u LLMD_GPU \
    PATH="$B:$PATH" LLMD_GPU_PROBE_ROOT="$R" "$@" bash "$detect" 2>"$tmp/err")" || rc=$?
  err="$(cat "$tmp/err")"
  local problems=()
  ((rc == 0)) || problems+=("exit $rc")
  [[ "$out" == "$want" ]] || problems+=("printed '$out', want '$want'")
  [[ "$(wc -l <"$tmp/err")" -eq 1 ]] || problems+=("want exactly one reason line")
  grep -Eq -- "$pattern" <<<"$err" || problems+=("reason does not match /$pattern/")
  if ((${#problems[@]} == 0)); then
    echo "ok   $name: $out — $err"
  else
    echo "FAIL $name: $(IFS=';' && echo "${problems[*]}")"
    echo "     stderr: $err"
    failures=$((failures + 1))
  fi
}

# --- Cases.
new_machine
expect "no GPU at all" cpu '^no NVIDIA driver, and no Vulkan loader \(libvulkan\.so\.1, Debian package libvulkan1\): using the CPU build$'

new_machine
libs libvulkan.so.1
mesa_icds
expect "Mesa's ICDs installed, no GPU (the CI machine), no vulkaninfo" cpu \
  '^no NVIDIA driver, and no Vulkan driver for a GPU \(lavapipe is software; no GPU for intel, radeon\): using the CPU build$'

new_machine
libs libvulkan.so.1
mesa_icds
vulkaninfo_lists CPU "llvmpipe (LLVM 15.0.6, 256 bits)"
expect "only lavapipe, as vulkaninfo lists it" cpu \
  '^no NVIDIA driver, and vulkaninfo lists no GPU, only the software device llvmpipe \(LLVM 15\.0\.6, 256 bits\): using the CPU build$'

new_machine
libs libvulkan.so.1
icd lvp_icd.x86_64.json /usr/lib/x86_64-linux-gnu/libvulkan_lvp.so
expect "only lavapipe, no vulkaninfo" cpu '^no NVIDIA driver, and no Vulkan driver for a GPU \(lavapipe is software\): using the CPU build$'

new_machine
nvidia_driver 550.54.14 "NVIDIA RTX A4000"
libs libvulkan.so.1
expect "NVIDIA driver, no CUDA runtime, no Vulkan ICD" cpu \
  '^NVIDIA driver 550\.54\.14 \(NVIDIA RTX A4000\) found but no CUDA 12 or 13 runtime \(libcudart\.so\.12/\.13 with libcublas\), and no Vulkan driver \(no ICD manifest in .*\): using the CPU build'

new_machine
nvidia_driver 550.54.14 "NVIDIA RTX A4000"
expect "NVIDIA driver, no CUDA runtime, no Vulkan loader" cpu \
  'found but no CUDA 12 or 13 runtime .*, and no Vulkan loader \(libvulkan\.so\.1, Debian package libvulkan1\): using the CPU build'

new_machine
nvidia_driver 550.54.14 "NVIDIA RTX A4000"
libs libvulkan.so.1 libGLX_nvidia.so.0
icd nvidia_icd.json libGLX_nvidia.so.0
expect "NVIDIA driver, no CUDA runtime, NVIDIA's Vulkan ICD" vulkan \
  '^NVIDIA driver 550\.54\.14 \(NVIDIA RTX A4000\) found but no CUDA 12 or 13 runtime .*: using Vulkan \(NVIDIA, nvidia ICD\)$'

new_machine
nvidia_driver 550.54.14 "NVIDIA RTX A4000"
libs libvulkan.so.1
icd nvidia_icd.json libGLX_nvidia.so.0
expect "NVIDIA's Vulkan ICD without its library (a container without the graphics libraries)" cpu \
  'found but no CUDA 12 or 13 runtime .*, and no Vulkan driver for a GPU \(the library of nvidia is missing\): using the CPU build'

new_machine
nvidia_driver 550.54.14 "NVIDIA RTX A4000"
libs libvulkan.so.1
vulkaninfo_lists DISCRETE_GPU "NVIDIA RTX A4000" CPU "llvmpipe (LLVM 15.0.6, 256 bits)"
expect "NVIDIA without CUDA runtime, vulkaninfo lists the GPU" vulkan 'found but no CUDA 12 or 13 runtime .*: using Vulkan \(NVIDIA RTX A4000\)$'

new_machine
libs libvulkan.so.1
mesa_icds
render_node 0x1002
expect "AMD GPU with Mesa's radeon ICD" vulkan '^Vulkan GPU found \(AMD, radeon ICD\): using Vulkan$'

new_machine
libs libvulkan.so.1
mesa_icds
render_node 0x1002
vulkaninfo_lists DISCRETE_GPU "AMD Radeon RX 7900 XTX (RADV NAVI31)" CPU "llvmpipe (LLVM 15.0.6, 256 bits)"
expect "AMD GPU as vulkaninfo lists it" vulkan '^Vulkan GPU found \(AMD Radeon RX 7900 XTX \(RADV NAVI31\)\): using Vulkan$'

new_machine
libs libvulkan.so.1
icd intel_icd.x86_64.json /usr/lib/x86_64-linux-gnu/libvulkan_intel.so
render_node 0x1002
expect "Intel ICD but only an AMD render node" cpu '^no NVIDIA driver, and no Vulkan driver for a GPU \(no GPU for intel\): using the CPU build$'

new_machine
libs libvulkan.so.1
vulkaninfo_lists INTEGRATED_GPU "Intel(R) UHD Graphics 770 (ADL-S GT1)"
expect "integrated Intel GPU as vulkaninfo lists it" vulkan '^Vulkan GPU found \(Intel\(R\) UHD Graphics 770 \(ADL-S GT1\)\): using Vulkan$'

new_machine
nvidia_driver 580.65.06 "NVIDIA H100 80GB HBM3"
libs libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libvulkan.so.1 libGLX_nvidia.so.0
icd nvidia_icd.json libGLX_nvidia.so.0
expect "NVIDIA with the CUDA 13 runtime (and Vulkan too)" cuda \
  '^NVIDIA driver 580\.65\.06 \(NVIDIA H100 80GB HBM3\) with the CUDA 13 runtime: using CUDA$'
expect "forced cpu on that GPU machine" cpu '^LLMD_GPU=cpu: using the CPU build \(forced\)$' LLMD_GPU=cpu
expect "forced vulkan on that GPU machine" vulkan '^LLMD_GPU=vulkan: using Vulkan \(forced\)$' LLMD_GPU=vulkan
expect "LLMD_GPU=auto is the default" cuda 'using CUDA$' LLMD_GPU=auto
expect "LLMD_GPU is case-insensitive" cpu 'LLMD_GPU=cpu' LLMD_GPU=CPU
expect "VK_ICD_FILENAMES replaces the ICD directories" cuda 'using CUDA$' VK_ICD_FILENAMES=/nowhere.json

new_machine
nvidia_driver 550.54.14 "NVIDIA GeForce RTX 3090" no-proc
libs libcudart.so.12 libcublas.so.12 libcublasLt.so.12
expect "NVIDIA with the CUDA 12 runtime, driver known from nvidia-smi only" cuda \
  '^NVIDIA driver 550\.54\.14 \(NVIDIA GeForce RTX 3090\) with the CUDA 12 runtime: using CUDA$'

new_machine
nvidia_driver 550.54.14 "NVIDIA GeForce RTX 3090"
libs libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libvulkan.so.1 libGLX_nvidia.so.0
icd nvidia_icd.json libGLX_nvidia.so.0
expect "CUDA 13 runtime on a driver older than 580" vulkan \
  'found but the CUDA 13 runtime needs driver >= 580: using Vulkan \(NVIDIA, nvidia ICD\)$'

new_machine
nvidia_driver 550.54.14 "NVIDIA GeForce RTX 3090"
libs libcudart.so.12
expect "CUDA 12 runtime without cuBLAS" cpu 'found but the CUDA 12 runtime lacks libcublas\.so\.12 libcublasLt\.so\.12, and no Vulkan loader'

new_machine
nvidia_driver 550.54.14 "NVIDIA GeForce RTX 3090"
mkdir -p "$R/usr/local/cuda-12.4/lib64"
: >"$R/usr/local/cuda-12.4/lib64/libcudart.so.12"
expect "CUDA runtime installed but not on the loader path" cpu \
  'found but no CUDA runtime on the loader path \(/usr/local/cuda-12\.4/lib64/libcudart\.so\.12 is not in ldconfig.s cache; run ldconfig or set LD_LIBRARY_PATH\)'
for lib in libcublas.so.12 libcublasLt.so.12; do : >"$R/usr/local/cuda-12.4/lib64/$lib"; done
expect "... and with it on LD_LIBRARY_PATH" cuda 'with the CUDA 12 runtime: using CUDA$' LD_LIBRARY_PATH=/usr/local/cuda-12.4/lib64

new_machine
nvidia_driver 580.65.06 "NVIDIA H100 80GB HBM3"
: >"$C"
libs libcudart.so.13 libcublas.so.13 libcublasLt.so.13
expect "NVIDIA driver without its libcuda.so.1" cpu "found but the driver's libcuda\.so\.1 is not on the loader path"

new_machine
expect "forced vulkan without a GPU says what is missing" vulkan \
  '^LLMD_GPU=vulkan: using Vulkan \(forced\); note: no Vulkan loader' LLMD_GPU=vulkan
expect "forced cuda without a GPU says what is missing" cuda '^LLMD_GPU=cuda: using CUDA \(forced\); note: no NVIDIA driver$' LLMD_GPU=cuda

# A bad value: exit 2, nothing on stdout, a message naming the choices.
rc=0
out="$(env PATH="$B:$PATH" LLMD_GPU_PROBE_ROOT="$R" LLMD_GPU=metal bash "$detect" 2>"$tmp/err")" || rc=$?
if ((rc == 2)) && [[ -z "$out" ]] && grep -q 'LLMD_GPU=metal: expected auto, cpu, vulkan or cuda' "$tmp/err"; then
  echo "ok   a bad LLMD_GPU exits 2: $(cat "$tmp/err")"
else
  echo "FAIL a bad LLMD_GPU: exit $rc, stdout '$out', stderr '$(cat "$tmp/err")'"
  failures=$((failures + 1))
fi

if ((failures > 0)); then
  echo "$failures case(s) failed"
  exit 1
fi
echo "all cases passed"
