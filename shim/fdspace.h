/* fdspace.h: tables indexed by descriptor number. */
#ifndef SAFECLOSE_FDSPACE_H
#define SAFECLOSE_FDSPACE_H

#include <stddef.h>
#include <stdint.h>

/* How many descriptor numbers the per-descriptor tables cover: the hard
 * RLIMIT_NOFILE, at least 2^16 and at most 2^20. Numbers beyond are never on any book. */
uint32_t fdspace_size(void);

/* Zeroed private memory for `count` entries of `size` bytes; pages are only
 * touched (and so only cost memory) where descriptors are used. NULL when
 * the mapping fails. sharing: MAP_PRIVATE or MAP_SHARED. */
void *fdspace_map(size_t count, size_t size, int sharing);

#endif
