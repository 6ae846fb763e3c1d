/* rawsys.h: system calls that bypass every exported symbol, the shim's own
 * included. The shim exports syscall() itself (libuv closes sockets through
 * it), so its internal calls and its stand-ins for not-yet-resolved libc
 * functions must not go through that name: on x86_64 and aarch64 they trap
 * directly; elsewhere they fall back to libc's syscall(). errno is set as
 * libc would set it. */
#ifndef SAFECLOSE_RAWSYS_H
#define SAFECLOSE_RAWSYS_H

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Under clang's static analyzer (make lint) the libc call stands in for the
 * inline assembly, whose writes through the arguments it cannot see: it
 * would take every buffer a raw read fills for garbage. */
static inline long raw_syscall6(long n, long a, long b, long c, long d, long e, long f)
{
	long r;
#if defined(__x86_64__) && !defined(__clang_analyzer__)
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	__asm__ volatile("syscall"
			 : "=a"(r)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
#elif defined(__aarch64__) && !defined(__clang_analyzer__)
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;
	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	r = x0;
#else
	return syscall(n, a, b, c, d, e, f);
#endif
	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

/* In a function declared like syscall(long number, ...): its six possible
 * arguments into a[6] (read as longs, as glibc's own syscall() does). */
#define SYSCALL_VARARGS(number, a)                          \
	do {                                                \
		va_list ap_;                                \
		va_start(ap_, number);                      \
		for (int i_ = 0; i_ < 6; i_++)              \
			(a)[i_] = va_arg(ap_, long);        \
		va_end(ap_);                                \
	} while (0)

/* poll() and a sleep without glibc's cancellation points: nothing on the
 * close path may end the calling thread half-way (a cancelled close() would
 * leave the shim's counts and descriptors behind). */
static inline int raw_poll(struct pollfd *fds, unsigned long n, int timeout_ms)
{
	struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L };

	return (int)raw_syscall6(SYS_ppoll, (long)fds, (long)n, (long)(timeout_ms < 0 ? NULL : &ts),
				 0, 8, 0);
}

static inline void raw_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	raw_syscall6(SYS_nanosleep, (long)&ts, 0, 0, 0, 0, 0);
}

#define RAW_SYSCALL_ARGS(n, a, b, c, d, e, f, ...) \
	raw_syscall6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))
/* raw_syscall(SYS_x, up to six arguments) */
#define raw_syscall(...) RAW_SYSCALL_ARGS(__VA_ARGS__, 0, 0, 0, 0, 0, 0)

#endif
