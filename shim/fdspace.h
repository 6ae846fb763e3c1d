/* fdspace.h: tables indexed by descriptor number. */
#ifndef SAFECLOSE_FDSPACE_H
#define SAFECLOSE_FDSPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How many descriptor numbers the per-descriptor tables cover: the hard
 * RLIMIT_NOFILE, at least 2^16 and at most 2^20. Numbers beyond are never on any book. */
uint32_t fdspace_size(void);

/* Zeroed private memory for `count` entries of `size` bytes; pages are only
 * touched (and so only cost memory) where descriptors are used. NULL when
 * the mapping fails. sharing: MAP_PRIVATE or MAP_SHARED. */
void *fdspace_map(size_t count, size_t size, int sharing);

/* A table of up to 2^20 entries of at most 64 bytes whose memory is
 * committed a chunk at a time, when an entry in it is first asked for:
 * MAP_NORESERVE is ignored under vm.overcommit_memory=2, where a writable
 * private mapping is charged in full when it is made and again at every
 * fork. Mapped PROT_NONE (charged nothing), made writable chunk by chunk. */
#define FDSPACE_CHUNK (64u << 10) /* bytes made writable at once */
struct fdspace_table {
	unsigned char *base;
	size_t size;    /* of one entry */
	uint32_t count; /* entries */
	uint64_t on[(64u << 20) / FDSPACE_CHUNK / 64]; /* chunks made writable */
};

/* Maps t's address space for count entries of size bytes, unless another
 * call (another thread's, at the same time too) has; false when the mapping
 * fails. */
bool fdspace_table_map(struct fdspace_table *t, uint32_t count, size_t size);

/* Whether t is mapped: asked first where the map is reached per call, so
 * that the count (fdspace_size(), a getrlimit) is worked out only once. */
static inline bool fdspace_table_mapped(struct fdspace_table *t)
{
	return __atomic_load_n(&t->base, __ATOMIC_ACQUIRE) != NULL;
}

/* Entry i of t (zeroed when first asked for), its chunk made writable if it
 * was not; NULL when i is past the table or the chunk's memory cannot be
 * had (the commit limit): then it is as if i were past the table.
 * Async-signal-safe and thread-safe. */
void *fdspace_entry(struct fdspace_table *t, uint32_t i);

#endif
