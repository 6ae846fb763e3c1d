/* fdspace.c: owns the sizing and mapping of the shim's tables indexed by
 * descriptor number (ownership books, epoll books, the reaper's own
 * descriptors): lazily backed anonymous memory, never malloc. */
#include "fdspace.h"

#include <sys/mman.h>
#include <sys/resource.h>

#define FDSPACE_MAX (1u << 20)
/* A program running as root may raise its hard limit after start-up: cover
 * a generous floor whatever the limit is now (it costs address space only). */
#define FDSPACE_MIN (1u << 16)

uint32_t fdspace_size(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_max == RLIM_INFINITY ||
	    rl.rlim_max > FDSPACE_MAX)
		return FDSPACE_MAX;
	return rl.rlim_max < FDSPACE_MIN ? FDSPACE_MIN : (uint32_t)rl.rlim_max;
}

void *fdspace_map(size_t count, size_t size, int sharing)
{
	void *p = mmap(NULL, count * size, PROT_READ | PROT_WRITE,
		       sharing | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}
