/*
 * compat_prelude.h — force-included into every C++ and CUDA translation unit of a portable
 * kernel-builder extension (g++: `-include compat_prelude.h`; nvcc: its own `-include`, never
 * `-Xcompiler -include`, which makes cudafe see <bits/c++config.h> twice).
 *
 * Why: with glibc >= 2.30 headers, libstdc++ (GCC >= 11) implements steady_clock timed waits
 * inline with pthread_cond_clockwait / pthread_mutex_clocklock / pthread_rwlock_clock{rd,wr}lock,
 * which exist only from glibc 2.30 (versioned GLIBC_2.34 on a 2.36 host). Undefining the three
 * feature macros right after <bits/c++config.h> makes the headers use their portable fallback:
 * convert the deadline to system_clock and call pthread_cond_timedwait / *_timedlock, which glibc
 * 2.27 has (the shim forwards the *_timedlock ones to their old versions). The fallback is what
 * libstdc++ did before glibc 2.30: timed waits follow the wall clock if it jumps.
 *
 * <bits/c++config.h> has include guards, so nothing later redefines the macros. Plain C
 * translation units (the glibc shim may be one) and non-libstdc++ standard libraries are left alone.
 */
#ifndef KERNEL_BUILDER_COMPAT_PRELUDE_H
#define KERNEL_BUILDER_COMPAT_PRELUDE_H

#if defined(__cplusplus) && defined(__linux__) && defined(__has_include)
#if __has_include(<bits/c++config.h>)
#include <bits/c++config.h>
#undef _GLIBCXX_USE_PTHREAD_COND_CLOCKWAIT
#undef _GLIBCXX_USE_PTHREAD_MUTEX_CLOCKLOCK
#undef _GLIBCXX_USE_PTHREAD_RWLOCK_CLOCKLOCK
#endif
#endif

#endif /* KERNEL_BUILDER_COMPAT_PRELUDE_H */
