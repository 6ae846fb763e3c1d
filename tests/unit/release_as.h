/* release_as.h: the release path's question to the books, as the unit tests
 * ask it: own_release(), then the check every caller that acts makes (the
 * number still names the booked socket, `cookie`; a stale one is left
 * alone, OWN_UNKNOWN). */
#ifndef SAFECLOSE_TEST_RELEASE_AS_H
#define SAFECLOSE_TEST_RELEASE_AS_H

#include <stdbool.h>
#include <stdint.h>

#include "ownership.h"

static inline enum own_verdict release_as(int fd, uint64_t cookie, bool in_epoll)
{
	struct own_released books;
	enum own_verdict verdict = own_release(fd, in_epoll, &books);

	return verdict != OWN_UNKNOWN && books.booked != cookie ? OWN_UNKNOWN : verdict;
}

#endif
