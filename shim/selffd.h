/* selffd.h: the descriptors the shim holds for itself, and where they go. */
#ifndef SAFECLOSE_SELFFD_H
#define SAFECLOSE_SELFFD_H

#include <stdbool.h>

/* Records fd as the shim's own (false when the table cannot be made), or
 * forgets it. The program must see such a number as not open: close() of it
 * fails with EBADF and close_range() goes around it. */
bool selffd_mark(int fd);
void selffd_unmark(int fd);
bool selffd_owns(int fd);

/* Highest number ever marked (-1: none). */
int selffd_max(void);

/* Where the shim's descriptors go, and how many sockets may be queued or
 * linger at once (the hard descriptor budget): a quarter of RLIMIT_NOFILE,
 * at the top
 * of the limit, or from 1024 up when it is high, above the numbers select()
 * programs need. The limit is read again every 256 calls. */
int selffd_base(int *quota);

/* Moves fd to a number of the shim's own at or above selffd_base() and
 * marks it; -1 when there is none (fd is closed either way). */
int selffd_move_high(int fd, bool cloexec);

/* The program is about to put a file of its own at number fd (dup2 or dup3
 * onto it): when fd is one of the shim's, the shim's file moves to another
 * number of its own, which is returned (fd itself when it was not the
 * shim's, -1 when there is no room: the shim then loses that file). */
int selffd_relocate(int fd, bool cloexec);

/* close() of one of them, by the shim. */
void selffd_close(int fd);

/* close_range() that skips the shim's own descriptors (a program's bulk
 * close must not cut its lingering sockets short). */
int selffd_close_range_around(unsigned first, unsigned last, int flags);

#endif
