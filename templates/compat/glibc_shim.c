/*
 * glibc_shim.c — linked into every portable kernel-builder extension (Linux, x86_64 / aarch64).
 *
 * Goal: the extension, built on a new glibc (Debian 12: 2.36) with libstdc++ linked statically,
 * must need only symbols that glibc 2.27 provides. The link passes `-Wl,--wrap=<sym>` for every
 * name in wrap-symbols.txt, so each undefined reference to `sym` (from the extension's objects
 * and from the libstdc++.a members pulled in) becomes a reference to `__wrap_sym`, defined here.
 * Everything defined here is hidden: nothing is exported, nothing interposes on other libraries.
 *
 * Three kinds of entries:
 *  1. Forwarders (KB_SAME / KB_FORWARD). glibc 2.34 merged libpthread and libdl into libc and
 *     gave the moved functions a new default version (GLIBC_2.34); glibc 2.28–2.38 also gave a
 *     few libm/libc functions new versions. The old versions are still there as compat symbols,
 *     so `__wrap_X` tail-jumps to `X@<old version>` (bound with .symver). A jump, not a call:
 *     variadic functions and caller-address-sensitive ones (dlopen, dlsym(RTLD_NEXT)) see the
 *     original caller. On glibc 2.27 those versions live in libpthread.so.0 / libdl.so.2, which
 *     the link forces into NEEDED (glibc resolves versions over the whole lookup scope).
 *  2. Reimplementations of functions glibc 2.27 lacks: stat/lstat/fstat/fstatat (+64, real
 *     symbols only since 2.33) via the old __xstat family, arc4random* (2.36) via getrandom,
 *     gettid (2.30) via syscall.
 *  3. `__libc_single_threaded` (2.32), read inline by libstdc++ >= 11: a hidden copy fixed at 0
 *     ("threads may exist"), so reference counts always use atomics — always correct.
 *
 * Forwarders are emitted for every listed name, used or not, so the extension references each
 * old version once (an unused one only costs a dynamic symbol entry). All targets exist in
 * glibc 2.27; the post-link gate (kernel_builder.checks.portability) verifies every reference
 * against the glibc 2.27 symbol list, so a wrong version here fails the build, not the user.
 *
 * Compiles as C or C++ (the CMake module compiles it with the target's C++ compiler).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#if !defined(__GLIBC__)
#error "glibc_shim.c is only meant for glibc targets"
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define KB_HIDDEN __attribute__((visibility("hidden")))

/* ---- old symbol versions, per architecture ------------------------------------------------ */
#if defined(__x86_64__)
#define KB_GLIBC_2_2_5 "GLIBC_2.2.5"
#define KB_GLIBC_2_3_3 "GLIBC_2.3.3"
#define KB_GLIBC_2_3_4 "GLIBC_2.3.4"
#define KB_GLIBC_2_4 "GLIBC_2.4"
#define KB_GLIBC_2_7 "GLIBC_2.7"
#define KB_GLIBC_2_11 "GLIBC_2.11"
#define KB_GLIBC_2_12 "GLIBC_2.12"
#define KB_GLIBC_2_18 "GLIBC_2.18"
#define KB_STAT_VER 1 /* _STAT_VER_LINUX */
#if defined(__CET__) && (__CET__ & 1)
#define KB_LANDING "endbr64\n\t"
#else
#define KB_LANDING ""
#endif
#define KB_TAILCALL(sym) "jmp " sym "@PLT"
#elif defined(__aarch64__)
/* aarch64 starts at GLIBC_2.17: every older x86_64 version maps to it. */
#define KB_GLIBC_2_2_5 "GLIBC_2.17"
#define KB_GLIBC_2_3_3 "GLIBC_2.17"
#define KB_GLIBC_2_3_4 "GLIBC_2.17"
#define KB_GLIBC_2_4 "GLIBC_2.17"
#define KB_GLIBC_2_7 "GLIBC_2.17"
#define KB_GLIBC_2_11 "GLIBC_2.17"
#define KB_GLIBC_2_12 "GLIBC_2.17"
#define KB_GLIBC_2_18 "GLIBC_2.18"
#define KB_STAT_VER 0 /* _STAT_VER_KERNEL */
#if defined(__ARM_FEATURE_BTI_DEFAULT)
#define KB_LANDING "bti c\n\t"
#else
#define KB_LANDING ""
#endif
#define KB_TAILCALL(sym) "b " sym
#else
#error "glibc_shim.c supports x86_64 and aarch64"
#endif

/* ---- 1. forwarders: __wrap_NAME jumps to TARGET@VERSION ---------------------------------- */
#define KB_FORWARD_S(name, target, version)                                                    \
    __asm__(".symver kb_old_" name ", " target "@" version "\n"                                \
            ".pushsection .text.__wrap_" name ",\"ax\",%progbits\n"                            \
            ".globl __wrap_" name "\n"                                                         \
            ".hidden __wrap_" name "\n"                                                        \
            ".type __wrap_" name ", %function\n"                                               \
            ".p2align 4\n"                                                                    \
            "__wrap_" name ":\n\t" KB_LANDING KB_TAILCALL("kb_old_" name) "\n"                 \
            ".size __wrap_" name ", .-__wrap_" name "\n"                                       \
            ".popsection\n")
#define KB_FORWARD(name, target, version) KB_FORWARD_S(#name, #target, version)
#define KB_SAME(name, version) KB_FORWARD_S(#name, #name, version)

/* libpthread.so.0 functions that glibc 2.32/2.34 re-versioned when moving them into libc. */
KB_SAME(__pthread_key_create, KB_GLIBC_2_2_5);
KB_SAME(_pthread_cleanup_pop, KB_GLIBC_2_2_5);
KB_SAME(_pthread_cleanup_push, KB_GLIBC_2_2_5);
KB_SAME(pthread_attr_getguardsize, KB_GLIBC_2_2_5);
KB_SAME(pthread_attr_getstack, KB_GLIBC_2_2_5);
KB_SAME(pthread_attr_getstackaddr, KB_GLIBC_2_2_5);
KB_SAME(pthread_attr_getstacksize, KB_GLIBC_2_2_5);
KB_SAME(pthread_attr_setguardsize, KB_GLIBC_2_2_5);
KB_SAME(pthread_attr_setstack, KB_GLIBC_2_2_5);
KB_SAME(pthread_attr_setstackaddr, KB_GLIBC_2_2_5);
KB_SAME(pthread_attr_setstacksize, KB_GLIBC_2_2_5);
KB_SAME(pthread_barrier_destroy, KB_GLIBC_2_2_5);
KB_SAME(pthread_barrier_init, KB_GLIBC_2_2_5);
KB_SAME(pthread_barrier_wait, KB_GLIBC_2_2_5);
KB_SAME(pthread_barrierattr_destroy, KB_GLIBC_2_2_5);
KB_SAME(pthread_barrierattr_init, KB_GLIBC_2_2_5);
KB_SAME(pthread_barrierattr_setpshared, KB_GLIBC_2_2_5);
KB_SAME(pthread_cancel, KB_GLIBC_2_2_5);
KB_SAME(pthread_condattr_getpshared, KB_GLIBC_2_2_5);
KB_SAME(pthread_condattr_setpshared, KB_GLIBC_2_2_5);
KB_SAME(pthread_create, KB_GLIBC_2_2_5);
KB_SAME(pthread_detach, KB_GLIBC_2_2_5);
KB_SAME(pthread_getattr_np, KB_GLIBC_2_2_5);
KB_SAME(pthread_getconcurrency, KB_GLIBC_2_2_5);
KB_SAME(pthread_getcpuclockid, KB_GLIBC_2_2_5);
KB_SAME(pthread_getspecific, KB_GLIBC_2_2_5);
KB_SAME(pthread_join, KB_GLIBC_2_2_5);
KB_SAME(pthread_key_create, KB_GLIBC_2_2_5);
KB_SAME(pthread_key_delete, KB_GLIBC_2_2_5);
KB_SAME(pthread_kill, KB_GLIBC_2_2_5);
KB_SAME(pthread_mutex_timedlock, KB_GLIBC_2_2_5);
KB_SAME(pthread_mutex_trylock, KB_GLIBC_2_2_5);
KB_SAME(pthread_mutexattr_destroy, KB_GLIBC_2_2_5);
KB_SAME(pthread_mutexattr_getpshared, KB_GLIBC_2_2_5);
KB_SAME(pthread_mutexattr_gettype, KB_GLIBC_2_2_5);
KB_SAME(pthread_mutexattr_init, KB_GLIBC_2_2_5);
KB_SAME(pthread_mutexattr_setpshared, KB_GLIBC_2_2_5);
KB_SAME(pthread_mutexattr_settype, KB_GLIBC_2_2_5);
KB_SAME(pthread_once, KB_GLIBC_2_2_5);
KB_SAME(pthread_rwlock_destroy, KB_GLIBC_2_2_5);
KB_SAME(pthread_rwlock_init, KB_GLIBC_2_2_5);
KB_SAME(pthread_rwlock_rdlock, KB_GLIBC_2_2_5);
KB_SAME(pthread_rwlock_timedrdlock, KB_GLIBC_2_2_5);
KB_SAME(pthread_rwlock_timedwrlock, KB_GLIBC_2_2_5);
KB_SAME(pthread_rwlock_tryrdlock, KB_GLIBC_2_2_5);
KB_SAME(pthread_rwlock_trywrlock, KB_GLIBC_2_2_5);
KB_SAME(pthread_rwlock_unlock, KB_GLIBC_2_2_5);
KB_SAME(pthread_rwlock_wrlock, KB_GLIBC_2_2_5);
KB_SAME(pthread_rwlockattr_destroy, KB_GLIBC_2_2_5);
KB_SAME(pthread_rwlockattr_getkind_np, KB_GLIBC_2_2_5);
KB_SAME(pthread_rwlockattr_getpshared, KB_GLIBC_2_2_5);
KB_SAME(pthread_rwlockattr_init, KB_GLIBC_2_2_5);
KB_SAME(pthread_rwlockattr_setkind_np, KB_GLIBC_2_2_5);
KB_SAME(pthread_rwlockattr_setpshared, KB_GLIBC_2_2_5);
KB_SAME(pthread_setconcurrency, KB_GLIBC_2_2_5);
KB_SAME(pthread_setspecific, KB_GLIBC_2_2_5);
KB_SAME(pthread_sigmask, KB_GLIBC_2_2_5);
KB_SAME(pthread_spin_destroy, KB_GLIBC_2_2_5);
KB_SAME(pthread_spin_init, KB_GLIBC_2_2_5);
KB_SAME(pthread_spin_lock, KB_GLIBC_2_2_5);
KB_SAME(pthread_spin_trylock, KB_GLIBC_2_2_5);
KB_SAME(pthread_spin_unlock, KB_GLIBC_2_2_5);
KB_SAME(pthread_testcancel, KB_GLIBC_2_2_5);
KB_SAME(sem_close, KB_GLIBC_2_2_5);
KB_SAME(sem_destroy, KB_GLIBC_2_2_5);
KB_SAME(sem_getvalue, KB_GLIBC_2_2_5);
KB_SAME(sem_init, KB_GLIBC_2_2_5);
KB_SAME(sem_open, KB_GLIBC_2_2_5);
KB_SAME(sem_post, KB_GLIBC_2_2_5);
KB_SAME(sem_timedwait, KB_GLIBC_2_2_5);
KB_SAME(sem_trywait, KB_GLIBC_2_2_5);
KB_SAME(sem_unlink, KB_GLIBC_2_2_5);
KB_SAME(sem_wait, KB_GLIBC_2_2_5);
KB_SAME(__pthread_cleanup_routine, KB_GLIBC_2_3_3);
KB_SAME(__pthread_register_cancel, KB_GLIBC_2_3_3);
KB_SAME(__pthread_register_cancel_defer, KB_GLIBC_2_3_3);
KB_SAME(__pthread_unregister_cancel, KB_GLIBC_2_3_3);
KB_SAME(__pthread_unregister_cancel_restore, KB_GLIBC_2_3_3);
KB_SAME(__pthread_unwind_next, KB_GLIBC_2_3_3);
KB_SAME(pthread_barrierattr_getpshared, KB_GLIBC_2_3_3);
KB_SAME(pthread_condattr_getclock, KB_GLIBC_2_3_3);
KB_SAME(pthread_condattr_setclock, KB_GLIBC_2_3_3);
KB_SAME(pthread_timedjoin_np, KB_GLIBC_2_3_3);
KB_SAME(pthread_tryjoin_np, KB_GLIBC_2_3_3);
KB_SAME(pthread_attr_getaffinity_np, KB_GLIBC_2_3_4);
KB_SAME(pthread_attr_setaffinity_np, KB_GLIBC_2_3_4);
KB_SAME(pthread_getaffinity_np, KB_GLIBC_2_3_4);
KB_SAME(pthread_setaffinity_np, KB_GLIBC_2_3_4);
KB_SAME(pthread_setschedprio, KB_GLIBC_2_3_4);
KB_SAME(pthread_mutex_getprioceiling, KB_GLIBC_2_4);
KB_SAME(pthread_mutex_setprioceiling, KB_GLIBC_2_4);
KB_SAME(pthread_mutexattr_getprioceiling, KB_GLIBC_2_4);
KB_SAME(pthread_mutexattr_getprotocol, KB_GLIBC_2_4);
KB_SAME(pthread_mutexattr_setprioceiling, KB_GLIBC_2_4);
KB_SAME(pthread_mutexattr_setprotocol, KB_GLIBC_2_4);
KB_SAME(pthread_sigqueue, KB_GLIBC_2_11);
KB_SAME(pthread_getname_np, KB_GLIBC_2_12);
KB_SAME(pthread_mutex_consistent, KB_GLIBC_2_12);
KB_SAME(pthread_mutexattr_getrobust, KB_GLIBC_2_12);
KB_SAME(pthread_mutexattr_setrobust, KB_GLIBC_2_12);
KB_SAME(pthread_setname_np, KB_GLIBC_2_12);
KB_SAME(pthread_getattr_default_np, KB_GLIBC_2_18);
KB_SAME(pthread_setattr_default_np, KB_GLIBC_2_18);

/* libdl.so.2 functions re-versioned in 2.34 (the link forces NEEDED libdl.so.2). */
KB_SAME(dladdr, KB_GLIBC_2_2_5);
KB_SAME(dlclose, KB_GLIBC_2_2_5);
KB_SAME(dlerror, KB_GLIBC_2_2_5);
KB_SAME(dlopen, KB_GLIBC_2_2_5);
KB_SAME(dlsym, KB_GLIBC_2_2_5);
KB_SAME(dlvsym, KB_GLIBC_2_2_5);
KB_SAME(dladdr1, KB_GLIBC_2_3_3);
KB_SAME(dlinfo, KB_GLIBC_2_3_3);
KB_SAME(dlmopen, KB_GLIBC_2_3_4);

/* libm: new versions in 2.29 (exp/log/pow family: SVID error handling dropped), 2.32, 2.35;
   the old versions compute the same values. */
KB_SAME(exp, KB_GLIBC_2_2_5);
KB_SAME(exp2, KB_GLIBC_2_2_5);
KB_SAME(log, KB_GLIBC_2_2_5);
KB_SAME(log2, KB_GLIBC_2_2_5);
KB_SAME(pow, KB_GLIBC_2_2_5);
KB_SAME(exp10f, KB_GLIBC_2_2_5);
KB_SAME(hypot, KB_GLIBC_2_2_5);
KB_SAME(hypotf, KB_GLIBC_2_2_5);

/* fcntl64 (2.28; what fcntl becomes under _FILE_OFFSET_BITS=64) is fcntl on 64-bit targets. */
KB_FORWARD(fcntl64, fcntl, KB_GLIBC_2_2_5);

/* glibc >= 2.38 headers redirect the strto* and *scanf functions to C23 variants (__isoc23_*)
   under _GNU_SOURCE. The old functions only lack the "0b" prefix. Inert on older hosts. */
KB_FORWARD(__isoc23_strtol, strtol, KB_GLIBC_2_2_5);
KB_FORWARD(__isoc23_strtoul, strtoul, KB_GLIBC_2_2_5);
KB_FORWARD(__isoc23_strtoll, strtoll, KB_GLIBC_2_2_5);
KB_FORWARD(__isoc23_strtoull, strtoull, KB_GLIBC_2_2_5);
KB_FORWARD(__isoc23_strtoimax, strtoimax, KB_GLIBC_2_2_5);
KB_FORWARD(__isoc23_strtoumax, strtoumax, KB_GLIBC_2_2_5);
KB_FORWARD(__isoc23_wcstol, wcstol, KB_GLIBC_2_2_5);
KB_FORWARD(__isoc23_wcstoul, wcstoul, KB_GLIBC_2_2_5);
KB_FORWARD(__isoc23_wcstoll, wcstoll, KB_GLIBC_2_2_5);
KB_FORWARD(__isoc23_wcstoull, wcstoull, KB_GLIBC_2_2_5);
KB_FORWARD(__isoc23_sscanf, __isoc99_sscanf, KB_GLIBC_2_7);
KB_FORWARD(__isoc23_vsscanf, __isoc99_vsscanf, KB_GLIBC_2_7);
KB_FORWARD(__isoc23_fscanf, __isoc99_fscanf, KB_GLIBC_2_7);
KB_FORWARD(__isoc23_vfscanf, __isoc99_vfscanf, KB_GLIBC_2_7);
KB_FORWARD(__isoc23_scanf, __isoc99_scanf, KB_GLIBC_2_7);
KB_FORWARD(__isoc23_vscanf, __isoc99_vscanf, KB_GLIBC_2_7);

/* ---- 2. reimplementations ------------------------------------------------------------------ */

/* stat family: real symbols only since 2.33; before, the headers called __xstat & co. with a
   structure-version argument, which is exactly what these do. */
extern int kb_old_xstat(int, const char *, struct stat *);
extern int kb_old_lxstat(int, const char *, struct stat *);
extern int kb_old_fxstat(int, int, struct stat *);
extern int kb_old_fxstatat(int, int, const char *, struct stat *, int);
extern int kb_old_xstat64(int, const char *, struct stat64 *);
extern int kb_old_lxstat64(int, const char *, struct stat64 *);
extern int kb_old_fxstat64(int, int, struct stat64 *);
extern int kb_old_fxstatat64(int, int, const char *, struct stat64 *, int);
__asm__(".symver kb_old_xstat, __xstat@" KB_GLIBC_2_2_5);
__asm__(".symver kb_old_lxstat, __lxstat@" KB_GLIBC_2_2_5);
__asm__(".symver kb_old_fxstat, __fxstat@" KB_GLIBC_2_2_5);
__asm__(".symver kb_old_fxstatat, __fxstatat@" KB_GLIBC_2_4);
__asm__(".symver kb_old_xstat64, __xstat64@" KB_GLIBC_2_2_5);
__asm__(".symver kb_old_lxstat64, __lxstat64@" KB_GLIBC_2_2_5);
__asm__(".symver kb_old_fxstat64, __fxstat64@" KB_GLIBC_2_2_5);
__asm__(".symver kb_old_fxstatat64, __fxstatat64@" KB_GLIBC_2_4);

KB_HIDDEN int __wrap_stat(const char *path, struct stat *buf) {
    return kb_old_xstat(KB_STAT_VER, path, buf);
}
KB_HIDDEN int __wrap_lstat(const char *path, struct stat *buf) {
    return kb_old_lxstat(KB_STAT_VER, path, buf);
}
KB_HIDDEN int __wrap_fstat(int fd, struct stat *buf) {
    return kb_old_fxstat(KB_STAT_VER, fd, buf);
}
KB_HIDDEN int __wrap_fstatat(int dirfd, const char *path, struct stat *buf, int flags) {
    return kb_old_fxstatat(KB_STAT_VER, dirfd, path, buf, flags);
}
KB_HIDDEN int __wrap_stat64(const char *path, struct stat64 *buf) {
    return kb_old_xstat64(KB_STAT_VER, path, buf);
}
KB_HIDDEN int __wrap_lstat64(const char *path, struct stat64 *buf) {
    return kb_old_lxstat64(KB_STAT_VER, path, buf);
}
KB_HIDDEN int __wrap_fstat64(int fd, struct stat64 *buf) {
    return kb_old_fxstat64(KB_STAT_VER, fd, buf);
}
KB_HIDDEN int __wrap_fstatat64(int dirfd, const char *path, struct stat64 *buf, int flags) {
    return kb_old_fxstatat64(KB_STAT_VER, dirfd, path, buf, flags);
}

/* gettid (2.30). */
KB_HIDDEN pid_t __wrap_gettid(void) {
    return (pid_t)syscall(SYS_gettid);
}

/* arc4random family (2.36), used by libstdc++'s random_device("arc4random"/default). Bytes
   come from the getrandom syscall (Linux >= 3.17), else from /dev/urandom; like glibc, the
   process aborts if neither works. errno is left unchanged. */
static void kb_fatal(const char *message, size_t length) {
    ssize_t ignored = write(2, message, length);
    (void)ignored;
    abort();
}

static int kb_read_urandom(unsigned char *out, size_t length) {
    int fd;
    do {
        fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -1;
    while (length > 0) {
        ssize_t got = read(fd, out, length);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            close(fd);
            return -1;
        }
        out += got;
        length -= (size_t)got;
    }
    close(fd);
    return 0;
}

static void kb_random_bytes(void *buffer, size_t length) {
    static const char message[] = "kernel-builder glibc shim: cannot get entropy for arc4random\n";
    unsigned char *out = (unsigned char *)buffer;
    int saved_errno = errno;
    while (length > 0) {
        long got = syscall(SYS_getrandom, out, length, 0);
        if (got > 0) {
            out += got;
            length -= (size_t)got;
        } else if (got < 0 && errno == EINTR) {
            continue;
        } else {
            if (kb_read_urandom(out, length) != 0)
                kb_fatal(message, sizeof message - 1);
            break;
        }
    }
    errno = saved_errno;
}

KB_HIDDEN uint32_t __wrap_arc4random(void) {
    uint32_t value;
    kb_random_bytes(&value, sizeof value);
    return value;
}

KB_HIDDEN void __wrap_arc4random_buf(void *buffer, size_t length) {
    kb_random_bytes(buffer, length);
}

KB_HIDDEN uint32_t __wrap_arc4random_uniform(uint32_t upper_bound) {
    uint32_t threshold, value;
    if (upper_bound < 2)
        return 0;
    threshold = (uint32_t)(-upper_bound) % upper_bound; /* 2**32 mod upper_bound */
    do {
        value = __wrap_arc4random();
    } while (value < threshold);
    return value % upper_bound;
}

/* ---- 3. __libc_single_threaded (2.32) ------------------------------------------------------ */
KB_HIDDEN char __libc_single_threaded = 0;

#ifdef __cplusplus
}
#endif
