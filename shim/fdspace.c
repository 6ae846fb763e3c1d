/* fdspace.c: owns the sizing and mapping of the shim's tables indexed by
 * descriptor number (ownership books, epoll books, the reaper's own
 * descriptors): lazily backed anonymous memory, never malloc; the large
 * ones also lazily committed (fdspace_table). */
#include "fdspace.h"

#include <stdbool.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "rawsys.h"

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

bool fdspace_table_map(struct fdspace_table *t, uint32_t count, size_t size)
{
	size_t bytes = (size_t)count * size;
	unsigned char *none = NULL;

	if (__atomic_load_n(&t->base, __ATOMIC_ACQUIRE))
		return true;
	if (size > 64 || count > FDSPACE_MAX)
		return false;
	/* Whole chunks, so that the last one's mprotect stays inside. */
	bytes = (bytes + FDSPACE_CHUNK - 1) / FDSPACE_CHUNK * FDSPACE_CHUNK;
	void *p = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return false;
	/* Two callers at once store the same sizes; the first mapping wins. */
	__atomic_store_n(&t->size, size, __ATOMIC_RELAXED);
	__atomic_store_n(&t->count, count, __ATOMIC_RELAXED);
	if (!__atomic_compare_exchange_n(&t->base, &none, p, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		munmap(p, bytes);
	return true;
}

/* Chunk c of t writable: one mprotect the first time (two threads, or a
 * signal handler and the thread it interrupted, may both make it: the same
 * protection twice is harmless). The bit is set only after, so that whoever
 * sees it may write. */
static bool chunk_on(struct fdspace_table *t, unsigned char *base, size_t c)
{
	uint64_t bit = 1ull << (c % 64), *word = &t->on[c / 64];

	if (__atomic_load_n(word, __ATOMIC_ACQUIRE) & bit)
		return true;
	int saved_errno = errno;
	long r = raw_syscall(SYS_mprotect, base + c * FDSPACE_CHUNK, FDSPACE_CHUNK,
			     PROT_READ | PROT_WRITE);
	errno = saved_errno;
	if (r < 0)
		return false;
	__atomic_fetch_or(word, bit, __ATOMIC_RELEASE);
	return true;
}

void *fdspace_entry(struct fdspace_table *t, uint32_t i)
{
	unsigned char *base = __atomic_load_n(&t->base, __ATOMIC_ACQUIRE);
	size_t size = __atomic_load_n(&t->size, __ATOMIC_RELAXED);

	if (!base || i >= __atomic_load_n(&t->count, __ATOMIC_RELAXED))
		return NULL;
	size_t at = (size_t)i * size;
	/* An entry may straddle two chunks (sizes that do not divide one). */
	if (!chunk_on(t, base, at / FDSPACE_CHUNK) ||
	    !chunk_on(t, base, (at + size - 1) / FDSPACE_CHUNK))
		return NULL;
	return base + at;
}
