/* release.h: what happens to a descriptor the program lets go of. */
#ifndef SAFECLOSE_RELEASE_H
#define SAFECLOSE_RELEASE_H

/* Called just before the kernel drops fd (close, or dup2/dup3 over it):
 * takes fd off the ownership books and, when it is the last reference to a
 * TCP socket that a plain close would reset, lingers on it first. fd stays
 * open; the caller closes it. errno is preserved. Async-signal-safe. */
void release_before_close(int fd);

/* dup2/dup3(oldfd, newfd) is about to drop newfd: the same as a close of
 * newfd, but only when the call will succeed (oldfd open and different). */
void release_before_replace(int oldfd, int newfd);

#endif
