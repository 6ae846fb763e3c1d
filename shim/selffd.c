/* selffd.c: owns the record of the shim's own descriptors (the lingering
 * sockets, the background thread's pipe and epoll set, the ownership books)
 * and their placement: high numbers, a bounded share of RLIMIT_NOFILE, never
 * in the way of the program's own bulk closes. */
#include "selffd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "config.h"
#include "fdspace.h"
#include "rawsys.h"
#include "real.h"

/* Descriptor numbers below this are what select() can watch (FD_SETSIZE). */
#define SELECT_LIMIT 1024
#define PLACEMENT_REFRESH 256

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

static uint64_t *bits;
static uint32_t bits_size;
static int max_marked = -1;

static bool table(void)
{
	if (LOAD(&bits))
		return true;
	uint32_t size = fdspace_size();
	uint64_t *fresh = fdspace_map(size / 64 + 1, sizeof *fresh, MAP_PRIVATE);
	uint64_t *none = NULL;

	if (!fresh)
		return false;
	bits_size = size;
	if (!__atomic_compare_exchange_n(&bits, &none, fresh, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		munmap(fresh, (size / 64 + 1) * sizeof *fresh);
	return true;
}

bool selffd_mark(int fd)
{
	if (fd < 0 || !table() || (uint32_t)fd >= bits_size)
		return false;
	__atomic_or_fetch(&bits[fd / 64], 1ull << (fd % 64), __ATOMIC_ACQ_REL);
	int seen = LOAD(&max_marked);
	while (fd > seen && !__atomic_compare_exchange_n(&max_marked, &seen, fd, false,
							 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
	return true;
}

void selffd_unmark(int fd)
{
	if (selffd_owns(fd))
		__atomic_and_fetch(&bits[fd / 64], ~(1ull << (fd % 64)), __ATOMIC_ACQ_REL);
}

bool selffd_owns(int fd)
{
	uint64_t *b = LOAD(&bits);

	return b && fd >= 0 && (uint32_t)fd < bits_size && (LOAD(&b[fd / 64]) >> (fd % 64) & 1);
}

int selffd_max(void)
{
	return LOAD(&max_marked);
}

/* Raw: glibc's close() is a cancellation point, and this is the shim's. */
void selffd_close(int fd)
{
	selffd_unmark(fd);
	raw_syscall(SYS_close, fd);
}

static int compute_base(int *quota)
{
	struct rlimit rl;
	long soft = table() ? (long)bits_size : SELECT_LIMIT;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)soft)
		soft = (long)rl.rlim_cur;
	/* The descriptor budget alone: SAFECLOSE_MAX_LINGER is a soft cap the
	 * thread keeps by ending the worst linger (reaper.c). */
	long q = soft / 4;
	*quota = (int)q;
	return soft - q > SELECT_LIMIT ? SELECT_LIMIT : (int)(soft - q);
}

static int cached_base, cached_quota;
static uint32_t uses;

int selffd_base(int *quota)
{
	if (__atomic_fetch_add(&uses, 1, __ATOMIC_RELAXED) % PLACEMENT_REFRESH == 0) {
		int q, base = compute_base(&q);
		STORE(&cached_quota, q);
		STORE(&cached_base, base);
	}
	*quota = LOAD(&cached_quota);
	return LOAD(&cached_base);
}

int selffd_move_high(int fd, bool cloexec)
{
	int quota;

	if (fd < 0)
		return -1;
	int high = real.fcntl(fd, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, compute_base(&quota));
	real.close(fd);
	if (high >= 0 && !selffd_mark(high)) {
		real.close(high);
		return -1;
	}
	return high;
}

int selffd_relocate(int fd, bool cloexec)
{
	int quota;

	if (!selffd_owns(fd))
		return fd;
	int moved = real.fcntl(fd, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, compute_base(&quota));
	if (moved >= 0 && !selffd_mark(moved)) {
		real.close(moved);
		moved = -1;
	}
	selffd_unmark(fd);
	return moved;
}

int selffd_close_range_around(unsigned first, unsigned last, int flags)
{
	int top = selffd_max(), failed = 0;
	unsigned from = first;

	for (long fd = first; fd <= (long)last && fd <= top; fd++) {
		if (!selffd_owns((int)fd))
			continue;
		if ((unsigned)fd > from && real.close_range(from, (unsigned)fd - 1, flags) < 0)
			failed = errno;
		from = (unsigned)fd + 1;
	}
	if (from <= last && real.close_range(from, last, flags) < 0)
		failed = errno;
	if (failed)
		errno = failed;
	return failed ? -1 : 0;
}
