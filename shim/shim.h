/* shim.h: what every file of the shim shares: the export macro and the
 * millisecond clock. Everything not marked SC_EXPORT stays hidden
 * (-fvisibility=hidden), so the library exports only the interposed symbols. */
#ifndef SAFECLOSE_SHIM_H
#define SAFECLOSE_SHIM_H

#include <stdint.h>
#include <time.h>

#define SC_EXPORT __attribute__((visibility("default")))

/* Monotonic milliseconds; clock_gettime is async-signal-safe. */
static inline uint64_t sc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif
