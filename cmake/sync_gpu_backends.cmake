# Run at every build (cmake -P): makes the GPU backends beside the binaries
# match the engine variants engine/install.sh installed. ggml loads every
# libggml-<backend>.so it finds there (ggml_backend_load_all_from_path), so a
# variant removed from engine/ (LLMD_GPU=cpu) must leave bin/ too. The CUDA 12
# build (linux-x64-cuda-ext's fallback/) goes to cuda12/, where init_backends()
# looks when the CUDA 13 build found no device.
#   -DENGINE_DIR=<engine/>  -DDEST=<bin/>
cmake_minimum_required(VERSION 3.21)
set(_pkgs "${ENGINE_DIR}/node_modules/@node-llama-cpp")
set(_backends
  "libggml-vulkan.so|${_pkgs}/linux-x64-vulkan/bins/linux-x64-vulkan/libggml-vulkan.so"
  "libggml-cuda.so|${_pkgs}/linux-x64-cuda/bins/linux-x64-cuda/libggml-cuda.so"
  "cuda12/libggml-cuda.so|${_pkgs}/linux-x64-cuda-ext/bins/linux-x64-cuda/fallback/libggml-cuda.so")
foreach(_entry IN LISTS _backends)
  string(REPLACE "|" ";" _pair "${_entry}")
  list(GET _pair 0 _name)
  list(GET _pair 1 _from)
  if(EXISTS "${_from}")
    get_filename_component(_dir "${DEST}/${_name}" DIRECTORY)
    file(MAKE_DIRECTORY "${_dir}")
    file(COPY_FILE "${_from}" "${DEST}/${_name}" ONLY_IF_DIFFERENT)
  elseif(EXISTS "${DEST}/${_name}")
    file(REMOVE "${DEST}/${_name}")
  endif()
endforeach()
