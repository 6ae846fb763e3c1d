/*
 * scribble.h -- what a compromised worker could do to the memory it shares
 * with its parent: drop to nobody, then write garbage over every shared,
 * writable mapping of a memfd it finds in /proc/self/maps.
 *
 * Header-only, like common.h; include it after defining _GNU_SOURCE.
 */
#ifndef TEST_APPS_SCRIBBLE_H
#define TEST_APPS_SCRIBBLE_H

#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define NOBODY_ID 65534

/* As a privilege-separated server's worker drops its rights. */
static inline int drop_to_nobody(void)
{
	return setgroups(0, NULL) < 0 || setgid(NOBODY_ID) < 0 || setuid(NOBODY_ID) < 0 ? -1 : 0;
}

/* Garbage (xorshift64) over each rw-s mapping of a "/memfd:" file; returns
 * how many there were. */
static inline int scribble_shared_memfds(void)
{
	FILE *maps = fopen("/proc/self/maps", "r");
	char line[512], perms[8];
	unsigned long start, end;
	uint64_t x = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	int count = 0;

	while (maps && fgets(line, sizeof line, maps)) {
		if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) != 3 || perms[1] != 'w' ||
		    perms[3] != 's' || !strstr(line, " /memfd:"))
			continue;
		for (uint64_t *p = (uint64_t *)start; p < (uint64_t *)end; p++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			*p = x;
		}
		count++;
	}
	if (maps)
		fclose(maps);
	return count;
}

#endif
