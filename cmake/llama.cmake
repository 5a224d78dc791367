# llama.cpp (release v0.4.0) for llmd.
#
# Default: the prebuilt shared libraries of the npm package @node-llama-cpp/linux-x64@3.21.1 (plus the
# GPU backend of any GPU variant engine/install.sh installed: linux-x64-vulkan, linux-x64-cuda) and
# the headers from the same release's source bundle, both put in place by engine/install.sh.
# The libraries (and every libggml-cpu-<level>.so variant, chosen at run time by
# ggml_backend_load_all_from_path) are copied next to the binaries in ${PROJECT_BINARY_DIR}/bin
# and installed beside `llmd`; binaries get the rpath $ORIGIN so they run from any directory.
#
# -DLLMD_SYSTEM_LLAMA=ON uses an installed llama.cpp instead (find_package(llama), else pkg-config).
#
# Provides: llmd::llama (INTERFACE: headers + libllama, libggml, libggml-base),
#           llmd::llama_common (INTERFACE: llama.cpp's common layer — chat templates and their Jinja
#             engine, tool-call/reasoning parsers, JSON-schema grammars — the prebuilt
#             libllama-common.so of the same release with its headers),
#           llmd_llama_runtime (custom target copying the runtime libraries into bin/),
#           LLMD_LLAMA_VOCAB_DIR (vocab-only GGUFs used by the test-model generator).

option(LLMD_SYSTEM_LLAMA "Use a system-installed llama.cpp instead of engine/ (npm prebuilt)" OFF)

set(LLMD_ENGINE_DIR "${PROJECT_SOURCE_DIR}/engine" CACHE PATH "engine/ directory (npm prebuilt llama.cpp)")
set(LLMD_LLAMA_VOCAB_DIR "${LLMD_ENGINE_DIR}/llama/vocab" CACHE PATH "Directory of vocab-only GGUFs")

add_library(llmd_llama INTERFACE)
add_library(llmd::llama ALIAS llmd_llama)
add_library(llmd_llama_common INTERFACE)
add_library(llmd::llama_common ALIAS llmd_llama_common)
target_link_libraries(llmd_llama_common INTERFACE llmd_llama)
add_custom_target(llmd_llama_runtime)

if(LLMD_SYSTEM_LLAMA)
  find_package(llama CONFIG QUIET)
  if(TARGET llama)
    target_link_libraries(llmd_llama INTERFACE llama)
    if(TARGET ggml::ggml)
      target_link_libraries(llmd_llama INTERFACE ggml::ggml)
    endif()
    if(TARGET ggml::ggml-base)
      target_link_libraries(llmd_llama INTERFACE ggml::ggml-base)
    endif()
  else()
    find_package(PkgConfig REQUIRED)
    pkg_check_modules(LLAMA REQUIRED IMPORTED_TARGET llama)
    target_link_libraries(llmd_llama INTERFACE PkgConfig::LLAMA)
    find_library(LLMD_GGML_LIB ggml REQUIRED)
    find_library(LLMD_GGML_BASE_LIB ggml-base REQUIRED)
    target_link_libraries(llmd_llama INTERFACE ${LLMD_GGML_LIB} ${LLMD_GGML_BASE_LIB})
  endif()
  find_library(LLMD_LLAMA_COMMON_LIB llama-common REQUIRED)
  find_path(LLMD_LLAMA_COMMON_INCLUDE chat.h PATH_SUFFIXES llama/common common REQUIRED)
  target_link_libraries(llmd_llama_common INTERFACE ${LLMD_LLAMA_COMMON_LIB})
  target_include_directories(llmd_llama_common SYSTEM INTERFACE "${LLMD_LLAMA_COMMON_INCLUDE}")
  message(STATUS "llama.cpp: system installation")
  return()
endif()

set(LLMD_LLAMA_LIB_DIR "${LLMD_ENGINE_DIR}/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
    CACHE PATH "Directory of the prebuilt llama.cpp shared libraries")
set(LLMD_LLAMA_INCLUDE_DIR "${LLMD_ENGINE_DIR}/llama/include" CACHE PATH "llama.cpp headers")
set(LLMD_LLAMA_COMMON_INCLUDE_DIR "${LLMD_ENGINE_DIR}/llama/common" CACHE PATH "llama.cpp common-layer headers")
set(LLMD_LLAMA_TEMPLATES_DIR "${LLMD_ENGINE_DIR}/llama/templates" CACHE PATH "llama.cpp's real model chat templates")

set(_llmd_llama_libs
  "${LLMD_LLAMA_LIB_DIR}/libllama.v0.4.0.so"
  "${LLMD_LLAMA_LIB_DIR}/libggml.v0.4.0.so"
  "${LLMD_LLAMA_LIB_DIR}/libggml-base.so"
  "${LLMD_LLAMA_LIB_DIR}/libllama-common.so")
foreach(_f IN LISTS _llmd_llama_libs ITEMS "${LLMD_LLAMA_INCLUDE_DIR}/llama.h" "${LLMD_LLAMA_INCLUDE_DIR}/gguf.h"
                                           "${LLMD_LLAMA_COMMON_INCLUDE_DIR}/chat.h")
  if(NOT EXISTS "${_f}")
    message(FATAL_ERROR "llama.cpp engine not installed (${_f} missing): run engine/install.sh "
                        "(or ./setup.sh), or configure with -DLLMD_SYSTEM_LLAMA=ON")
  endif()
endforeach()

foreach(_name IN ITEMS llama ggml ggml-base llama-common)
  list(POP_FRONT _llmd_llama_libs _path)
  add_library(llmd_llama_${_name} SHARED IMPORTED GLOBAL)
  get_filename_component(_soname "${_path}" NAME)
  set_target_properties(llmd_llama_${_name} PROPERTIES
    IMPORTED_LOCATION "${_path}"
    IMPORTED_SONAME "${_soname}")
  if(_name STREQUAL "llama-common")
    target_link_libraries(llmd_llama_common INTERFACE llmd_llama_${_name})
  else()
    target_link_libraries(llmd_llama INTERFACE llmd_llama_${_name})
  endif()
endforeach()
# SYSTEM: warnings in llama.cpp's headers are not ours to fix.
target_include_directories(llmd_llama SYSTEM INTERFACE "${LLMD_LLAMA_INCLUDE_DIR}")
target_include_directories(llmd_llama_common SYSTEM INTERFACE "${LLMD_LLAMA_COMMON_INCLUDE_DIR}")

# Runtime libraries: the three above plus the CPU backend variants loaded at run time.
file(GLOB _llmd_llama_runtime_files CONFIGURE_DEPENDS
  "${LLMD_LLAMA_LIB_DIR}/libllama.v0.4.0.so"
  "${LLMD_LLAMA_LIB_DIR}/libggml.v0.4.0.so"
  "${LLMD_LLAMA_LIB_DIR}/libggml-base.so"
  "${LLMD_LLAMA_LIB_DIR}/libllama-common.so"
  "${LLMD_LLAMA_LIB_DIR}/libggml-cpu-*.so")
set(_llmd_runtime_dir "${PROJECT_BINARY_DIR}/bin")
set(_llmd_runtime_outputs "")
foreach(_f IN LISTS _llmd_llama_runtime_files)
  get_filename_component(_n "${_f}" NAME)
  list(APPEND _llmd_runtime_outputs "${_llmd_runtime_dir}/${_n}")
endforeach()
add_custom_command(
  OUTPUT ${_llmd_runtime_outputs}
  COMMAND ${CMAKE_COMMAND} -E make_directory "${_llmd_runtime_dir}"
  COMMAND ${CMAKE_COMMAND} -E copy_if_different ${_llmd_llama_runtime_files} "${_llmd_runtime_dir}/"
  DEPENDS ${_llmd_llama_runtime_files}
  COMMENT "Copying llama.cpp runtime libraries to bin/"
  VERBATIM)
add_custom_target(llmd_llama_runtime_copy ALL DEPENDS ${_llmd_runtime_outputs})
add_dependencies(llmd_llama_runtime llmd_llama_runtime_copy)
# GPU backends of the engine variants installed (engine/install.sh, LLMD_GPU):
# libggml-vulkan.so / libggml-cuda.so, loaded at run time like the CPU
# variants. They need only libggml-base.so, byte-identical across variants.
add_custom_target(llmd_llama_gpu_backends ALL
  COMMAND ${CMAKE_COMMAND} -E make_directory "${_llmd_runtime_dir}"
  COMMAND ${CMAKE_COMMAND} -DENGINE_DIR=${LLMD_ENGINE_DIR} -DDEST=${_llmd_runtime_dir}
          -P "${PROJECT_SOURCE_DIR}/cmake/sync_gpu_backends.cmake"
  COMMENT "Syncing the GPU backends of the installed engine variants to bin/"
  VERBATIM)
add_dependencies(llmd_llama_runtime llmd_llama_gpu_backends)

include(GNUInstallDirs)
install(FILES ${_llmd_llama_runtime_files} DESTINATION ${CMAKE_INSTALL_BINDIR})
install(CODE "file(GLOB _gpu \"${_llmd_runtime_dir}/libggml-vulkan.so\" \"${_llmd_runtime_dir}/libggml-cuda.so\")
              if(_gpu)
                file(INSTALL \${_gpu} DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
              endif()
              if(EXISTS \"${_llmd_runtime_dir}/cuda12/libggml-cuda.so\")
                file(INSTALL \"${_llmd_runtime_dir}/cuda12/libggml-cuda.so\"
                     DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/cuda12\")
              endif()")

# Binaries find the libraries beside themselves, in the build tree and once installed.
set(CMAKE_BUILD_RPATH "\$ORIGIN")
set(CMAKE_INSTALL_RPATH "\$ORIGIN")
message(STATUS "llama.cpp: prebuilt ${LLMD_LLAMA_LIB_DIR}")
