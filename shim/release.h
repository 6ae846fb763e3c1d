/* release.h: what happens to a descriptor the program lets go of. */
#ifndef SAFECLOSE_RELEASE_H
#define SAFECLOSE_RELEASE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Called just before the kernel drops fd (close, or dup2/dup3 over it):
 * takes fd off the ownership books and, when it is the last reference to a
 * TCP socket that a plain close would reset, lingers on it first. fd stays
 * open; the caller closes it. errno is preserved. Async-signal-safe. */
void release_before_close(int fd);

/* The same, where the caller has just looked fd up (close(): on the books,
 * or one of the shim's own that the program took over). */
void release_known_before_close(int fd);

/* dup2/dup3(oldfd, newfd) is about to drop newfd: the same as a close of
 * newfd, but only when the call will succeed (oldfd open and different). */
void release_before_replace(int oldfd, int newfd);

/* close_range(first, last): every descriptor on the books in the range
 * (never the shim's own). */
void release_range(unsigned first, unsigned last);

/* closefrom(lowfd) where close_range() is refused: as glibc does then, walk
 * /proc/self/fd (getdents64 into a fixed buffer) and close every number from
 * lowfd up, each through the release path, never the shim's own. False when
 * the directory cannot be read (glibc's own fallback then decides).
 * Async-signal-safe. */
bool release_close_from(int lowfd);

/* The process is ending with sockets still open: each is let go of like a
 * close, and those that must linger, with those still lingering in the
 * background, go to the heir (heir.h), which lingers on them once the
 * process is gone; the process does not wait. Only when no heir can be made
 * do they linger here, the process waiting at most SAFECLOSE_EXIT_WAIT_MS.
 * from_exit: exit() or return from main; otherwise _exit(), which must stay
 * async-signal-safe. */
void release_at_exit(bool from_exit);

/* execve() is about to drop the close-on-exec descriptors and the shim's
 * thread: a heir is made that lingers on those sockets (and on those still
 * lingering in the background) once the exec has succeeded; nothing is
 * changed before. Returns the heir's ticket for release_after_failed_exec()
 * (-1: no heir; the sockets were released here, as a close, instead). */
int release_before_exec(void);

/* The exec returned (it failed): the heir goes, touching nothing, and the
 * program carries on with its connections as they were. errno is kept. */
void release_after_failed_exec(int ticket);

#endif
