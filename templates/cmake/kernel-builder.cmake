# kernel-builder.cmake: functions used by a kernel's generated CMakeLists.txt.
#
# Decisions that kernel-builder also makes in Python (torch probing, variant naming, GPU
# architecture selection, metadata and digest) are delegated to the stdlib-only helpers in
# cmake/kbtools, so a generated tree and kernel-builder always agree.

include_guard(GLOBAL)

set(KB_CMAKE_DIR "${CMAKE_CURRENT_LIST_DIR}")
set(KB_TOOLS_DIR "${CMAKE_CURRENT_LIST_DIR}/kbtools")
set(KB_HEADER_EXTENSIONS h hh hpp hxx cuh inc inl ipp tcc)

# kb_tool(<out-var> <command> [args...]): run a kbtools command, fail configure on error.
function(kb_tool out_var)
  execute_process(
    COMMAND "${Python3_EXECUTABLE}" "${KB_TOOLS_DIR}" ${ARGN}
    RESULT_VARIABLE rc
    OUTPUT_VARIABLE out
    ERROR_VARIABLE err
    OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${err}")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()

# Find Python and describe its torch (without importing it); sets KB_TORCH_* and KB_BACKEND.
macro(kb_setup_torch)
  find_package(Python3 REQUIRED COMPONENTS Interpreter Development.Module)
  set(_kb_probe "${CMAKE_CURRENT_BINARY_DIR}/kb-probe.cmake")
  kb_tool(_kb_unused probe --cmake-out "${_kb_probe}")
  include("${_kb_probe}")
  if(NOT KB_TORCH_FOUND)
    message(FATAL_ERROR
      "torch is not installed for ${Python3_EXECUTABLE}. Install torch there, or pass "
      "-DPython3_EXECUTABLE=<python with torch>. (With pip, build with --no-build-isolation.)")
  endif()
  set(KB_BACKEND "${KB_TORCH_BACKEND}" CACHE STRING "Compute backend to build (default: the one torch was built for)")
  string(REGEX REPLACE "\\+.*$" "" KB_TORCH_RELEASE "${KB_TORCH_VERSION}")
  message(STATUS "kernel-builder: torch ${KB_TORCH_VERSION} (${Python3_EXECUTABLE}), backend ${KB_BACKEND}")

  # Torch 2.12 moved to C++20; older releases build as C++17.
  if(KB_TORCH_VERSION_SHORT VERSION_GREATER_EQUAL "2.12")
    set(KB_CXX_STANDARD 20)
  else()
    set(KB_CXX_STANDARD 17)
  endif()
  set(CMAKE_CXX_STANDARD ${KB_CXX_STANDARD})
  set(CMAKE_CXX_STANDARD_REQUIRED ON)
  set(CMAKE_CXX_EXTENSIONS OFF)

  # An interface target instead of find_package(Torch): Torch's CMake files probe for CUDA
  # libraries (cuBLAS, NVRTC...) that building an extension does not need.
  add_library(kb_torch INTERFACE)
  target_include_directories(kb_torch SYSTEM INTERFACE ${KB_TORCH_INCLUDE_DIRS})
  target_compile_definitions(kb_torch INTERFACE _GLIBCXX_USE_CXX11_ABI=${KB_TORCH_CXX11_ABI})
  target_link_libraries(kb_torch INTERFACE
    "${KB_TORCH_LIB_DIR}/${CMAKE_SHARED_LIBRARY_PREFIX}c10${CMAKE_SHARED_LIBRARY_SUFFIX}"
    "${KB_TORCH_LIB_DIR}/${CMAKE_SHARED_LIBRARY_PREFIX}torch_cpu${CMAKE_SHARED_LIBRARY_SUFFIX}")
endmacro()

# kb_check_bounds(<what> <version> <min> <max>): inclusive bounds; empty means unbounded.
function(kb_check_bounds what version min max)
  if(NOT "${min}" STREQUAL "" AND version VERSION_LESS min)
    message(FATAL_ERROR "${what} ${version} is too old. Minimum required version is ${min}.")
  endif()
  if(NOT "${max}" STREQUAL "")
    # maxver is inclusive on the given components: torch 2.12.3 satisfies maxver 2.12.
    string(REPLACE "." ";" _max_parts "${max}")
    string(REPLACE "." ";" _ver_parts "${version}")
    list(LENGTH _max_parts _n)
    list(SUBLIST _ver_parts 0 ${_n} _ver_head)
    string(REPLACE ";" "." _ver_head "${_ver_head}")
    if(_ver_head VERSION_GREATER max)
      message(FATAL_ERROR "${what} ${version} is too new. Maximum version is ${max}.")
    endif()
  endif()
endfunction()

# Enable CUDA for the CUDA backend; sets KB_CUDA_VERSION and KB_CUDA_KNOWN_ARCHS.
macro(kb_setup_cuda)
  # Architectures are chosen per source file (kb_add_section); keep CMake out of it.
  set(CMAKE_CUDA_ARCHITECTURES OFF)
  set(CMAKE_CUDA_STANDARD ${KB_CXX_STANDARD})
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  set(KB_CUDA_VERSION "${CUDAToolkit_VERSION_MAJOR}.${CUDAToolkit_VERSION_MINOR}")
  if(NOT "${KB_TORCH_CUDA}" STREQUAL "")
    string(REGEX MATCH "^[0-9]+\\.[0-9]+" _kb_torch_cuda "${KB_TORCH_CUDA}")
    if(NOT _kb_torch_cuda STREQUAL KB_CUDA_VERSION)
      message(FATAL_ERROR
        "CUDA toolkit ${KB_CUDA_VERSION} (${CMAKE_CUDA_COMPILER}) does not match torch's CUDA "
        "${_kb_torch_cuda}; use the CUDA ${_kb_torch_cuda} toolkit (CUDA_HOME / CMAKE_CUDA_COMPILER).")
    endif()
  endif()
  execute_process(COMMAND "${CMAKE_CUDA_COMPILER}" --list-gpu-arch
    OUTPUT_VARIABLE KB_CUDA_KNOWN_ARCHS ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
  string(REPLACE "\n" ";" KB_CUDA_KNOWN_ARCHS "${KB_CUDA_KNOWN_ARCHS}")
  # cuBLAS/cuSPARSE/cuSOLVER/cuRAND headers may come from the nvidia-* wheels.
  target_include_directories(kb_torch SYSTEM INTERFACE ${CUDAToolkit_INCLUDE_DIRS} ${KB_NVIDIA_INCLUDE_DIRS})
  target_link_libraries(kb_torch INTERFACE
    "${KB_TORCH_LIB_DIR}/${CMAKE_SHARED_LIBRARY_PREFIX}c10_cuda${CMAKE_SHARED_LIBRARY_SUFFIX}"
    "${KB_TORCH_LIB_DIR}/${CMAKE_SHARED_LIBRARY_PREFIX}torch_cuda${CMAKE_SHARED_LIBRARY_SUFFIX}"
    CUDA::cudart)
  set(KB_NVCC_FLAGS --expt-relaxed-constexpr --expt-extended-lambda -DENABLE_FP8 -Xfatbin=-compress-all)
  if(DEFINED ENV{NVCC_THREADS} AND NOT "$ENV{NVCC_THREADS}" STREQUAL "")
    list(APPEND KB_NVCC_FLAGS "--threads=$ENV{NVCC_THREADS}")
  elseif(NVCC_THREADS)
    list(APPEND KB_NVCC_FLAGS "--threads=${NVCC_THREADS}")
  endif()
endmacro()

# kb_add_extension(<target> <ops-name>): the Python extension module <ops-name>.abi3.so
# (_<module>_<backend>_<id>). The target's name does not change with the unique id, so neither
# do its objects' paths and flags: a new id recompiles only the sources that see it (the
# bindings and KB_ID_SOURCES, which kb_add_section gives TORCH_EXTENSION_NAME), not every one.
function(kb_add_extension name ops_name)
  add_library(${name} MODULE)
  set_target_properties(${name} PROPERTIES
    OUTPUT_NAME "${ops_name}"
    PREFIX ""
    SUFFIX ".abi3${CMAKE_SHARED_MODULE_SUFFIX}"
    CXX_VISIBILITY_PRESET hidden
    CUDA_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
  string(TOUPPER "${KB_BACKEND}" _backend_upper)
  target_compile_definitions(${name} PRIVATE
    Py_LIMITED_API=0x03090000
    ${_backend_upper}_KERNEL)
  if(KB_BACKEND STREQUAL "cuda")
    target_compile_definitions(${name} PRIVATE USE_CUDA=1)
    target_compile_options(${name} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:${KB_NVCC_FLAGS}>)
  elseif(KB_BACKEND STREQUAL "rocm")
    target_compile_definitions(${name} PRIVATE USE_ROCM=1)
  elseif(KB_BACKEND STREQUAL "xpu")
    target_compile_definitions(${name} PRIVATE USE_XPU=1)
  endif()
  if(NOT "${KB_STABLE_ABI}" STREQUAL "")
    # The torch stable ABI: TORCH_TARGET_VERSION = (major << 56) | (minor << 48).
    if(KB_TORCH_VERSION_SHORT VERSION_LESS KB_STABLE_ABI)
      message(FATAL_ERROR "stable-abi ${KB_STABLE_ABI} is newer than torch ${KB_TORCH_VERSION}: build with torch >= ${KB_STABLE_ABI}")
    endif()
    string(REPLACE "." ";" _parts "${KB_STABLE_ABI}")
    list(APPEND _parts 0)
    list(GET _parts 0 _major)
    list(GET _parts 1 _minor)
    math(EXPR _target "(${_major} << 56) | (${_minor} << 48)" OUTPUT_FORMAT HEXADECIMAL)
    target_compile_definitions(${name} PRIVATE TORCH_TARGET_VERSION=${_target})
  endif()
  target_include_directories(${name} PRIVATE ${Python3_INCLUDE_DIRS} "${KB_GENERATED_DIR}/torch-ext")
  # Record only the libraries the extension really uses (e.g. no libc10 for a stable-ABI kernel).
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
    target_link_options(${name} PRIVATE "LINKER:--as-needed")
  endif()
  kb_map_build_paths(${name})
  kb_map_relative_build_paths(${name})
  # The portability policy first: it puts the static C++ runtime ahead of torch's libraries.
  if(COMMAND kb_apply_portability)
    kb_apply_portability(${name})
  endif()
  target_link_libraries(${name} PRIVATE kb_torch)
endfunction()

# kb_map_build_paths(<target>): compile as if the kernel, the generated tree, the build folder,
# torch's site-packages and the CUDA toolkit were in fixed places, so that no folder of the
# building machine ends up in the binary (__FILE__ in assertion messages, also torch's
# headers'; nvcc's names for anonymous namespaces, which hash the source's path): the same
# sources and toolchain give the same bytes whichever folder or engine (local, Nix) builds
# them. GCC applies the last matching map, so the kernel folder, which may hold the others,
# comes first.
function(kb_map_build_paths target)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    return()
  endif()
  get_filename_component(_kernel "${KB_KERNEL_SOURCE_DIR}" ABSOLUTE)
  get_filename_component(_site "${KB_TORCH_DIR}" DIRECTORY)
  set(_maps "${_kernel}=/kernel-builder/kernel" "${_site}=/kernel-builder/site-packages")
  foreach(_include IN LISTS Python3_INCLUDE_DIRS)
    get_filename_component(_include "${_include}" ABSOLUTE)
    list(APPEND _maps "${_include}=/kernel-builder/python-include")
  endforeach()
  if(CUDAToolkit_LIBRARY_ROOT)
    list(APPEND _maps "${CUDAToolkit_LIBRARY_ROOT}=/kernel-builder/cuda")
  endif()
  list(APPEND _maps "${CMAKE_SOURCE_DIR}=/kernel-builder/generated" "${CMAKE_BINARY_DIR}=/kernel-builder/build")
  set(_names "")
  foreach(_map IN LISTS _maps)
    _kb_add_prefix_map(${target} "${_map}")
    string(REGEX REPLACE "^.*=" "" _name "${_map}")
    list(APPEND _names "${_name}")
  endforeach()
  # ccache leaves -ffile-prefix-map out of its key when it has a base folder (4.14 measured), so
  # objects cached under other names would be reused: the names go into a definition it hashes.
  list(REMOVE_DUPLICATES _names)
  string(SHA256 _digest "${_names}")
  string(SUBSTRING "${_digest}" 0 12 _digest)
  target_compile_definitions(${target} PRIVATE KB_PATH_MAPS=${_digest})
  if(KB_BACKEND STREQUAL "cuda")
    # The .cu files are added after this call: name them once the whole project is read.
    # (A deferred call's arguments are expanded when it runs; EVAL fixes their values now.)
    cmake_language(EVAL CODE "cmake_language(DEFER CALL kb_map_cuda_sources [==[${target}]==] [==[${_kernel}]==])")
  endif()
endfunction()

function(kb_map_cuda_sources target kernel_dir)
  get_target_property(_sources ${target} SOURCES)
  foreach(_src IN LISTS _sources)
    if(_src MATCHES "\\.cu$")
      get_filename_component(_mapped "${_src}" ABSOLUTE)
      cmake_path(RELATIVE_PATH _mapped BASE_DIRECTORY "${kernel_dir}")
      # nvcc also puts random numbers into symbol names unless given a seed (unique per file),
      # and the process id into the names of its temporary files unless they go next to the object.
      set_property(SOURCE "${_src}" APPEND PROPERTY COMPILE_OPTIONS "--frandom-seed=${_mapped}" "-objtemp")
      set(_mapped "/kernel-builder/kernel/${_mapped}")
      set_property(SOURCE "${_src}" APPEND PROPERTY COMPILE_OPTIONS "-Xcudafe=--orig_src_path_name=${_mapped}")
    endif()
  endforeach()
endfunction()

# kb_map_relative_build_paths(<target>): the same maps for the kernel folder and the generated
# tree spelled relative to the build folder (where the compiles run). A compiler cache with a
# base folder (CCACHE_BASEDIR) hands the compiler such relative paths so that a copy of the
# kernel at another path hits; mapped, they give the same bytes as the absolute ones. (nvcc
# gets its maps as a separate -Xcompiler argument: ccache keys on a joined one as it is.)
function(kb_map_relative_build_paths target)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    return()
  endif()
  set(_folders "${CMAKE_SOURCE_DIR}" "${KB_KERNEL_SOURCE_DIR}")
  set(_names /kernel-builder/generated /kernel-builder/kernel)
  set(_maps "")
  set(_longest 0)
  foreach(_folder _to IN ZIP_LISTS _folders _names)
    get_filename_component(_abs "${_folder}" ABSOLUTE)
    file(RELATIVE_PATH _rel "${CMAKE_BINARY_DIR}" "${_abs}")
    string(REGEX REPLACE "/+$" "" _rel "${_rel}")
    # Only folders outside the build folder: a map of "." would match every relative path.
    if(NOT _rel MATCHES "^\\.\\.(/|$)")
      continue()
    endif()
    # A relative prefix such as ".." matches every path that starts with it, and GCC applies
    # the last matching map: the longer (more specific) goes last. (With the generated tree
    # inside the kernel folder, that is the kernel's "../../..".)
    string(LENGTH "${_rel}" _length)
    if(_length GREATER _longest)
      list(APPEND _maps "${_rel}=${_to}")
      set(_longest ${_length})
    else()
      list(PREPEND _maps "${_rel}=${_to}")
    endif()
  endforeach()
  foreach(_map IN LISTS _maps)
    _kb_add_prefix_map(${target} "${_map}")
  endforeach()
endfunction()

# _kb_add_prefix_map(<target> <from>=<to>): one path map for the C/C++ compiler and for nvcc (as
# a separate -Xcompiler argument, which ccache rewrites under its base folder).
function(_kb_add_prefix_map target map)
  target_compile_options(${target} PRIVATE
    "$<$<COMPILE_LANGUAGE:C,CXX>:-ffile-prefix-map=${map}>"
    "$<$<COMPILE_LANGUAGE:CUDA>:SHELL:-Xcompiler \"-ffile-prefix-map=${map}\">")
endfunction()

# kb_bracket(<out-var> <value>): <value> as a bracket argument, for CMake code written now and
# run later (install(CODE)): the value stays data whatever characters it holds.
function(kb_bracket out_var value)
  if(value MATCHES "\r\n")
    message(FATAL_ERROR "'${value}': a carriage return before a newline cannot be written into CMake code")
  endif()
  string(LENGTH "${value}" _len)
  # The first closing bracket in value + closing bracket must be the one added at the end.
  set(_eq "")
  string(FIND "${value}]]" "]]" _pos)
  while(NOT _pos EQUAL _len)
    string(APPEND _eq "=")
    string(FIND "${value}]${_eq}]" "]${_eq}]" _pos)
  endwhile()
  set(_lead "")
  if(value MATCHES "^[\r\n]")
    set(_lead "\n")  # CMake drops a newline right after the opening bracket
  endif()
  set(${out_var} "[${_eq}[${_lead}${value}]${_eq}]" PARENT_SCOPE)
endfunction()

# kb_literal_options(<out-var> <options...>): compile options as literal text. Source and target
# options are read as generator expressions, so every `$` becomes `$<1:$>` (which yields `$`).
function(kb_literal_options out_var)
  set(_out "")
  foreach(_option IN LISTS ARGN)
    string(REPLACE "$" "$<1:$>" _option "${_option}")
    list(APPEND _out "${_option}")
  endforeach()
  set(${out_var} "${_out}" PARENT_SCOPE)
endfunction()

# kb_add_sections(<target>): the framework bindings and every [kernel.<name>] section of the
# backend being built, from the KB_SECTION_<i>_* variables of kernel-description.cmake.
function(kb_add_sections target)
  math(EXPR _last "${KB_SECTION_COUNT} - 1")
  foreach(_i RANGE 0 ${_last})
    if(KB_SECTION_${_i}_KIND STREQUAL "framework" OR KB_SECTION_${_i}_BACKEND STREQUAL KB_BACKEND)
      kb_add_section(${target} KB_SECTION_${_i})
    endif()
  endforeach()
endfunction()

# kb_add_ops_name(<target>): when the bindings take the ops namespace at link time
# (KB_OPS_NAME_AT_LINK, see registration.h), the stub that defines it and PyInit_<namespace>:
# the only translation unit compiled with TORCH_EXTENSION_NAME besides KB_ID_SOURCES.
function(kb_add_ops_name target)
  if(NOT KB_OPS_NAME_AT_LINK)
    return()
  endif()
  set(_stub "${KB_GENERATED_DIR}/torch-ext/kb-ops-name.cpp")
  target_sources(${target} PRIVATE "${_stub}")
  get_target_property(_ops_name ${target} OUTPUT_NAME)
  set_property(SOURCE "${_stub}" APPEND PROPERTY COMPILE_DEFINITIONS "TORCH_EXTENSION_NAME=${_ops_name}")
endfunction()

# kb_add_section(<target> <prefix>): one source section, described by the variables
# <prefix>_NAME, _KIND, _SOURCES, _INCLUDES, _CXX_FLAGS, _CUDA_FLAGS, _CAPABILITIES,
# _CUDA_MINVER, _ROCM_ARCHS, _HIP_FLAGS, _SYCL_FLAGS and _DEPENDS, with per-file flags:
# headers are listed but not compiled, .cu files get the section's archs and cuda-flags,
# C++ files (also inside a CUDA section) get cxx-flags. The framework's sources, and the
# kernel sources listed in KB_ID_SOURCES (those that name the macro, directly or through a
# header), get TORCH_EXTENSION_NAME=<the target's OUTPUT_NAME>.
function(kb_add_section target prefix)
  set(_name "${${prefix}_NAME}")
  set(_minver "${${prefix}_CUDA_MINVER}")
  if(_minver AND KB_CUDA_VERSION AND KB_CUDA_VERSION VERSION_LESS _minver)
    message(STATUS "kernel-builder: skipping kernel.${_name}: needs CUDA >= ${_minver}, toolkit is ${KB_CUDA_VERSION}")
    return()
  endif()

  set(_includes "")
  foreach(_inc IN LISTS ${prefix}_INCLUDES)
    list(APPEND _includes "${KB_KERNEL_SOURCE_DIR}/${_inc}")
  endforeach()
  # Header dependencies (CUTLASS) are located by kbtools: CUTLASS_SRC_DIR or the nvidia-cutlass wheel.
  foreach(_dep IN LISTS ${prefix}_DEPENDS)
    if(_dep MATCHES "^cutlass_")
      kb_tool(_dep_includes find-dependency --name "${_dep}" --section "${_name}")
      list(APPEND _includes ${_dep_includes})
    endif()
  endforeach()

  set(_gencode "")
  if(KB_BACKEND STREQUAL "cuda" AND NOT ${prefix}_KIND STREQUAL "framework")
    list(JOIN KB_CUDA_KNOWN_ARCHS " " _known)
    set(_args cuda-archs --section "${_name}" --toolkit "${KB_CUDA_VERSION}" --known "${_known}")
    if(${prefix}_CAPABILITIES)
      list(JOIN ${prefix}_CAPABILITIES " " _caps)
      list(APPEND _args --requested "${_caps}")
    endif()
    if(KB_CUDA_ARCHS)
      list(JOIN KB_CUDA_ARCHS " " _targets)
      list(APPEND _args --targets "${_targets}")
    endif()
    kb_tool(_archs ${_args})
    message(STATUS "kernel-builder: kernel.${_name}: CUDA capabilities ${_archs}")
    set_property(GLOBAL APPEND PROPERTY KB_ALL_GPU_ARCHS ${_archs})
    list(JOIN _archs " " _archs_text)
    kb_tool(_gencode gencode --archs "${_archs_text}")
  endif()
  kb_literal_options(_cxx_flags ${${prefix}_CXX_FLAGS} ${${prefix}_SYCL_FLAGS})
  kb_literal_options(_cuda_flags ${${prefix}_CUDA_FLAGS})
  kb_literal_options(_hip_flags ${${prefix}_HIP_FLAGS})

  foreach(_src IN LISTS ${prefix}_SOURCES)
    set(_path "${KB_KERNEL_SOURCE_DIR}/${_src}")
    get_filename_component(_ext "${_src}" LAST_EXT)
    string(TOLOWER "${_ext}" _ext)
    string(SUBSTRING "${_ext}" 1 -1 _ext)
    if(_ext IN_LIST KB_HEADER_EXTENSIONS)
      continue()
    endif()
    target_sources(${target} PRIVATE "${_path}")
    if(${prefix}_KIND STREQUAL "framework" AND KB_OPS_NAME_AT_LINK)
      # The bindings take the namespace from kb-ops-name.cpp (kb_add_ops_name).
      set_property(SOURCE "${_path}" APPEND PROPERTY COMPILE_DEFINITIONS KB_OPS_NAME_AT_LINK=1 TORCH_EXTENSION_NAME=kb_ops_name_at_link)
    elseif(${prefix}_KIND STREQUAL "framework" OR _src IN_LIST KB_ID_SOURCES)
      get_target_property(_ops_name ${target} OUTPUT_NAME)
      set_property(SOURCE "${_path}" APPEND PROPERTY COMPILE_DEFINITIONS "TORCH_EXTENSION_NAME=${_ops_name}")
    endif()
    if(_includes)
      set_property(SOURCE "${_path}" APPEND PROPERTY INCLUDE_DIRECTORIES ${_includes})
    endif()
    if(_ext STREQUAL "cu")
      set_property(SOURCE "${_path}" APPEND PROPERTY COMPILE_OPTIONS ${_gencode} ${_cuda_flags})
    elseif(_ext MATCHES "^(cpp|cc|cxx|c\\+\\+|c)$")
      set_property(SOURCE "${_path}" APPEND PROPERTY COMPILE_OPTIONS ${_cxx_flags})
    elseif(_ext STREQUAL "hip")
      set_property(SOURCE "${_path}" APPEND PROPERTY COMPILE_OPTIONS ${_hip_flags})
    endif()
  endforeach()
endfunction()

# kb_install_variant(<target> VARIANT <name> PYTHON_DIR <dir> METADATA <template>)
# Lays out <prefix>/<variant>/: the kernel's Python package (files with the KB_PYEXT
# extensions, subfolders kept, symbolic links resolved by `kbtools copy-package`), _ops.py,
# the extension, and metadata.json (compiled archs and digest).
function(kb_install_variant target)
  cmake_parse_arguments(PARSE_ARGV 1 I "" "PYTHON_DIR;METADATA;VARIANT" "")
  install(FILES "${CMAKE_CURRENT_BINARY_DIR}/_ops.py" DESTINATION "${I_VARIANT}")
  install(TARGETS ${target} LIBRARY DESTINATION "${I_VARIANT}")
  get_property(_archs GLOBAL PROPERTY KB_ALL_GPU_ARCHS)
  list(REMOVE_DUPLICATES _archs)
  list(JOIN _archs " " _archs_text)
  # The install step runs CMake code written here: every value goes in as a bracket argument.
  kb_bracket(_python "${Python3_EXECUTABLE}")
  kb_bracket(_tools "${KB_TOOLS_DIR}")
  kb_bracket(_package "${I_PYTHON_DIR}")
  kb_bracket(_root "${KB_KERNEL_SOURCE_DIR}")
  kb_bracket(_variant "${I_VARIANT}")
  kb_bracket(_metadata "${I_METADATA}")
  get_target_property(_ops_name ${target} OUTPUT_NAME)
  kb_bracket(_id "${_ops_name}")
  set(_ext_args "")
  foreach(_ext IN LISTS KB_PYEXT)
    kb_bracket(_quoted "${_ext}")
    string(APPEND _ext_args " --ext ${_quoted}")
  endforeach()
  set(_archs_arg "")
  if(KB_BACKEND STREQUAL "cuda" OR KB_BACKEND STREQUAL "rocm")
    kb_bracket(_quoted "${_archs_text}")
    set(_archs_arg "--archs ${_quoted}")
  endif()
  install(CODE "
    execute_process(
      COMMAND ${_python} ${_tools} copy-package --source ${_package} --root ${_root}
        --prefix \"\${CMAKE_INSTALL_PREFIX}\" --variant ${_variant} ${_ext_args}
      RESULT_VARIABLE _rc)
    if(NOT _rc EQUAL 0)
      message(FATAL_ERROR \"installing the Python package failed\")
    endif()
    execute_process(
      COMMAND ${_python} ${_tools} write-metadata
        --prefix \"\${CMAKE_INSTALL_PREFIX}\" --variant ${_variant}
        --template ${_metadata} --id ${_id} ${_archs_arg}
      RESULT_VARIABLE _rc)
    if(NOT _rc EQUAL 0)
      message(FATAL_ERROR \"writing metadata.json failed\")
    endif()")
  # `local_install`: build and install into <kernel>/build/<variant>/ in one step.
  add_custom_target(local_install
    COMMAND "${CMAKE_COMMAND}" --install "${CMAKE_BINARY_DIR}"
    DEPENDS ${target}
    COMMENT "Installing the variant into the install prefix")
endfunction()
