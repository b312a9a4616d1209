# portable.cmake — make a torch extension built on a new Linux run on glibc >= 2.27.
#
#   include(${CMAKE_CURRENT_SOURCE_DIR}/cmake/portable.cmake)
#   kb_apply_portability(<module-library-target>)   # before linking torch's libraries
#
# Call it before target_link_libraries() adds torch's shared libraries: it links libstdc++.a
# as an item, which must precede them (torch >= 2.12 exports some std:: members that would
# otherwise satisfy the extension's references with torch's runtime).
#
# The recipe (measured on Debian 12: glibc 2.36, GCC 12): libstdc++ linked statically and hidden
# (--exclude-libs,ALL), libgcc_s kept dynamic, a glibc shim reached through -Wl,--wrap, a
# force-included prelude header, only PyInit_* exported, dynamic CUDA runtime, no RPATH, and
# NEEDED libpthread.so.0 / libdl.so.2 forced so that the old symbol versions resolve on glibc
# 2.27. The compat files live in ../compat next to this module (the generated tree has cmake/
# and compat/ side by side). kernel_builder.checks.portability checks the result after linking.
#
# KB_COMPAT_DISABLE (cache list) switches parts off, for experiments and for the test that
# proves the post-link gate catches a leaky build: prelude, shim, exclude-libs, version-script,
# static-libstdc++, libgcc-helpers, gc-sections. Outside Linux the function does nothing.
#
# -Wl,--no-undefined is deliberately absent: a Python extension must not link libpython, so
# PyModule_Create2 & co. are undefined at link time by design.

include_guard(GLOBAL)

set(KB_COMPAT_DISABLE "" CACHE STRING
    "Parts of the portability recipe to switch off (prelude;shim;exclude-libs;version-script;static-libstdc++;libgcc-helpers;gc-sections)")
set(_KB_COMPAT_PARTS prelude shim exclude-libs version-script static-libstdc++ libgcc-helpers gc-sections)

# Symbols to wrap, one per line in wrap-symbols.txt ('#' starts a comment).
function(_kb_read_wrap_symbols file out_var)
  file(STRINGS "${file}" lines)
  set(symbols "")
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "#.*$" "" line "${line}")
    string(STRIP "${line}" line)
    if(line STREQUAL "")
      continue()
    endif()
    if(NOT line MATCHES "^[A-Za-z_][A-Za-z0-9_]*$")
      message(FATAL_ERROR "${file}: '${line}' is not a symbol name")
    endif()
    list(APPEND symbols "${line}")
  endforeach()
  set(${out_var} "${symbols}" PARENT_SCOPE)
endfunction()

# Link options for the host link only: never for an nvcc device-link step, which would get
# them wrapped in -Xcompiler. The host link driver on Linux is gcc/g++ (also for CUDA
# targets), hence plain -Wl, options; commas are escaped for the generator expression.
function(_kb_host_link_options target)
  foreach(option IN LISTS ARGN)
    string(REPLACE "," "$<COMMA>" option "${option}")
    target_link_options(${target} PRIVATE "$<HOST_LINK:${option}>")
  endforeach()
endfunction()

function(_kb_enabled part out_var)
  if(part IN_LIST KB_COMPAT_DISABLE)
    set(${out_var} FALSE PARENT_SCOPE)
  else()
    set(${out_var} TRUE PARENT_SCOPE)
  endif()
endfunction()

function(kb_apply_portability target)
  if(NOT CMAKE_SYSTEM_NAME STREQUAL "Linux")
    return()
  endif()
  if(NOT TARGET ${target})
    message(FATAL_ERROR "kb_apply_portability: no target named '${target}'")
  endif()
  get_target_property(type ${target} TYPE)
  if(NOT type MATCHES "^(MODULE|SHARED)_LIBRARY$")
    message(FATAL_ERROR "kb_apply_portability: '${target}' is a ${type}, expected a MODULE library")
  endif()
  foreach(part IN LISTS KB_COMPAT_DISABLE)
    if(NOT part IN_LIST _KB_COMPAT_PARTS)
      message(FATAL_ERROR "KB_COMPAT_DISABLE: unknown part '${part}' (known: ${_KB_COMPAT_PARTS})")
    endif()
  endforeach()

  cmake_path(SET compat NORMALIZE "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/../compat")
  set(prelude "${compat}/compat_prelude.h")
  set(shim "${compat}/glibc_shim.c")
  set(wrap_list "${compat}/wrap-symbols.txt")
  set(exports "${compat}/exports.map")
  foreach(file IN ITEMS "${prelude}" "${shim}" "${wrap_list}" "${exports}")
    if(NOT EXISTS "${file}")
      message(FATAL_ERROR "kb_apply_portability: missing ${file}")
    endif()
  endforeach()
  get_property(languages GLOBAL PROPERTY ENABLED_LANGUAGES)

  # Compile: hidden symbols, no STB_GNU_UNIQUE (it would pin the library in memory and leak
  # template statics across extensions), the prelude in every C++ and CUDA translation unit.
  set_target_properties(${target} PROPERTIES
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    CUDA_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    CUDA_RUNTIME_LIBRARY Shared       # cudart_static adds ~33 GLIBC_2.34 references
    SKIP_BUILD_RPATH ON
    BUILD_RPATH ""
    INSTALL_RPATH ""
    INSTALL_RPATH_USE_LINK_PATH OFF)
  target_compile_options(${target} PRIVATE
    "$<$<COMPILE_LANG_AND_ID:CXX,GNU>:-fno-gnu-unique>"
    "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-fno-gnu-unique>")
  _kb_enabled(prelude use_prelude)
  if(use_prelude)
    # nvcc needs its own -include: through -Xcompiler the header would be seen twice.
    target_compile_options(${target} PRIVATE
      "$<$<COMPILE_LANGUAGE:CXX>:SHELL:-include \"${prelude}\">"
      "$<$<COMPILE_LANGUAGE:CUDA>:SHELL:-include \"${prelude}\">")
  endif()

  # The shim and the --wrap list go together: a --wrap without its __wrap_ definition would
  # leave an undefined symbol behind.
  _kb_enabled(shim use_shim)
  if(use_shim)
    target_sources(${target} PRIVATE "${shim}")
    if("CXX" IN_LIST languages)
      set(shim_language CXX)
    elseif("C" IN_LIST languages)
      set(shim_language C)
    else()
      message(FATAL_ERROR "kb_apply_portability: enable CXX (or C) to compile ${shim}")
    endif()
    set_source_files_properties("${shim}" TARGET_DIRECTORY ${target} PROPERTIES
      LANGUAGE ${shim_language})
    _kb_read_wrap_symbols("${wrap_list}" wrap_symbols)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${wrap_list}")
    foreach(symbol IN LISTS wrap_symbols)
      _kb_host_link_options(${target} "-Wl,--wrap=${symbol}")
    endforeach()
  endif()

  # Link: static libstdc++ (libgcc_s stays dynamic: static libgcc's unwinder needs
  # _dl_find_object@GLIBC_2.35), its symbols hidden, only PyInit_* exported.
  _kb_enabled(static-libstdc++ use_static_libstdcxx)
  if(use_static_libstdcxx)
    _kb_host_link_options(${target} "-static-libstdc++")
    # -static-libstdc++ alone puts libstdc++.a after torch's libraries. torch >= 2.12 exports
    # some C++20 std:: members (weak, unversioned) from libc10/libtorch_cpu, which would then
    # satisfy our references: a stream built by torch's runtime and destroyed by ours crashes.
    # Naming the archive as a link item puts it ahead of every shared library.
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      execute_process(COMMAND "${CMAKE_CXX_COMPILER}" -print-file-name=libstdc++.a
        OUTPUT_VARIABLE libstdcxx OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE status)
      if(status EQUAL 0 AND IS_ABSOLUTE "${libstdcxx}" AND EXISTS "${libstdcxx}")
        target_link_libraries(${target} PRIVATE "${libstdcxx}")
      else()
        message(WARNING "kb_apply_portability: libstdc++.a not found; C++ runtime symbols may bind to torch's copy")
      endif()
    endif()
  endif()
  # libgcc's arithmetic helpers from the static libgcc.a, ahead of libgcc_s: GCC 12 resolves
  # _Float16 conversions (__extendhfsf2, ...) to libgcc_s.so.1@GCC_12.0.0, which older systems
  # lack. The unwinder (libgcc_eh) is not in libgcc.a; libgcc_s stays for it.
  _kb_enabled(libgcc-helpers use_libgcc_helpers)
  if(use_libgcc_helpers AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    execute_process(COMMAND "${CMAKE_CXX_COMPILER}" -print-libgcc-file-name
      OUTPUT_VARIABLE libgcc OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE status)
    if(status EQUAL 0 AND EXISTS "${libgcc}")
      target_link_libraries(${target} PRIVATE "${libgcc}")
    else()
      message(WARNING "kb_apply_portability: libgcc.a not found; _Float16 code may need GCC_12.0.0")
    endif()
  endif()
  # Only the sections something reaches: libstdc++.a and the shim are compiled one function per
  # section, so the static runtime's unused members and the shim's unused wrappers (with their
  # references to glibc) are left out. relu's module: 1.48 MB -> 0.74 MB (docs/performance.md).
  _kb_enabled(gc-sections use_gc_sections)
  if(use_gc_sections)
    _kb_host_link_options(${target} "-Wl,--gc-sections")
  endif()
  _kb_enabled(exclude-libs use_exclude_libs)
  if(use_exclude_libs)
    _kb_host_link_options(${target} "-Wl,--exclude-libs,ALL")
  endif()
  _kb_enabled(version-script use_version_script)
  if(use_version_script)
    _kb_host_link_options(${target} "-Wl,--version-script=${exports}")
    set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS "${exports}")
  endif()

  # The forwarders' old versions live in libpthread.so.0 / libdl.so.2 on glibc < 2.34: keep
  # both in NEEDED even where the linker defaults to --as-needed.
  _kb_host_link_options(${target}
    "SHELL:-Wl,--push-state,--no-as-needed -l:libpthread.so.0 -l:libdl.so.2 -Wl,--pop-state")

  # A link map, for the post-link gate's "where does this symbol come from" report.
  get_target_property(binary_dir ${target} BINARY_DIR)
  set(link_map "${binary_dir}/${target}.map")
  _kb_host_link_options(${target} "-Wl,-Map=${link_map}")
  set_target_properties(${target} PROPERTIES KB_LINK_MAP "${link_map}")
  set_property(TARGET ${target} APPEND PROPERTY ADDITIONAL_CLEAN_FILES "${link_map}")
endfunction()
