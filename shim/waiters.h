/* waiters.h: which threads of this process are blocked waiting for input on
 * a socket, as the kernel shows them (/proc/self/task/TID/syscall). The
 * read-side emulation asks before it carries out a real SHUT_RD: that call
 * exists only to wake such a thread, and it makes the kernel reset what the
 * peer sends next, so it is made only when someone waits. */
#ifndef SAFECLOSE_WAITERS_H
#define SAFECLOSE_WAITERS_H

#include <stdbool.h>
#include <stdint.h>

#define WAITERS_MAX 256

/* One thread, blocked in a system call: its number and arguments. */
struct waiter {
	long nr;
	unsigned long arg[3];
};

/* The threads of this process other than the caller that are blocked in a
 * system call, at most WAITERS_MAX into out; their count, or -1 when the
 * kernel will not say (no /proc, a process that is not dumpable): then
 * anyone may be waiting. */
int waiters_snapshot(struct waiter *out, int max);

/* Whether one of the n threads of a snapshot waits for input on the socket
 * `cookie`, through any descriptor of this process on the books: read,
 * readv, recvfrom, recvmsg, recvmmsg on it; poll, ppoll, select, pselect6
 * asking for its input; epoll_wait on a set it was added to. A socket in
 * any epoll set of ours counts as waited for, blocked or not (an event
 * loop); n < 0: true. */
bool waiters_wait_on(const struct waiter *w, int n, uint64_t cookie);

#endif
