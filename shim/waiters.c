/* waiters.c: owns the question "is a thread of ours blocked waiting for
 * input on this socket?", answered from /proc/self/task/TID/syscall (the
 * system call a blocked thread is in, and its arguments; always readable
 * for threads of one's own process) and, for poll and select, the
 * descriptor sets those arguments point to, read with process_vm_readv so
 * that a set freed in the meantime gives EFAULT, never a crash. Raw system
 * calls, fixed buffers: it runs on the background thread, under its lock. */
#include "rawsys.h"
#include "waiters.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "epoll_books.h"
#include "log.h"
#include "ownership.h"

#define POLL_CHUNK 64
#define NFDS_MAX 65536

/* One thread's line: "NR 0xA0 0xA1 ..." when blocked in a system call,
 * "running", or "-1 ..." when blocked outside one. True for the first. */
static bool read_waiter(const char *tid, struct waiter *w)
{
	char path[64], line[256];

	sc_format(path, sizeof path, "/proc/self/task/%s/syscall", tid);
	int fd = (int)raw_syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	long n = raw_syscall(SYS_read, fd, line, sizeof line - 1);
	raw_syscall(SYS_close, fd);
	if (n <= 0 || line[0] < '0' || line[0] > '9')
		return false;
	line[n] = '\0';
	char *p = line;
	w->nr = strtol(p, &p, 10);
	for (int i = 0; i < 3; i++)
		w->arg[i] = strtoul(p, &p, 16);
	return true;
}

int waiters_snapshot(struct waiter *out, int max)
{
	char buf[2048] __attribute__((aligned(8))), me[16];
	int dir = (int)raw_syscall(SYS_openat, AT_FDCWD, "/proc/self/task",
				   O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	long got;
	int n = 0;

	if (dir < 0)
		return -1;
	sc_format(me, sizeof me, "%ld", raw_syscall(SYS_gettid));
	while ((got = raw_syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
		for (long at = 0; at < got;) {
			const struct dirent64 *d = (const void *)(buf + at);
			at += d->d_reclen;
			if (d->d_name[0] < '0' || d->d_name[0] > '9' || __builtin_strcmp(d->d_name, me) == 0)
				continue;
			if (n == max) {
				raw_syscall(SYS_close, dir);
				return -1; /* more threads than we can look at: anyone may wait */
			}
			if (read_waiter(d->d_name, &out[n]))
				n++;
		}
	}
	raw_syscall(SYS_close, dir);
	return got < 0 ? -1 : n;
}

static bool is_socket(int fd, uint64_t cookie)
{
	uint64_t booked;

	return own_lookup(fd, &booked) && booked == cookie;
}

static bool read_ours(void *to, unsigned long from, size_t len)
{
	struct iovec local = { to, len }, remote = { (void *)from, len };

	return raw_syscall(SYS_process_vm_readv, raw_syscall(SYS_getpid), &local, 1, &remote, 1,
			   0) == (long)len;
}

/* poll/ppoll(fds, nfds): one of them asks for the socket's input. An array
 * that cannot be read any more: the thread has returned from its call. */
static bool polls_on(unsigned long fds, unsigned long nfds, uint64_t cookie)
{
	struct pollfd chunk[POLL_CHUNK] = { { 0 } }; /* filled by a raw call the analyzer cannot see */

	for (unsigned long at = 0; at < nfds && at < NFDS_MAX; at += POLL_CHUNK) {
		unsigned long n = nfds - at < POLL_CHUNK ? nfds - at : POLL_CHUNK;
		if (!read_ours(chunk, fds + at * sizeof *chunk, n * sizeof *chunk))
			return false;
		for (unsigned long i = 0; i < n; i++)
			if ((chunk[i].events & (POLLIN | POLLRDNORM | POLLRDHUP)) &&
			    is_socket(chunk[i].fd, cookie))
				return true;
	}
	return false;
}

/* select/pselect6(nfds, readfds, ...): the socket's bit is set in readfds. */
static bool selects_on(unsigned long nfds, unsigned long readfds, uint64_t cookie)
{
	int top = own_max_fd();

	for (int fd = 0; readfds && fd <= top && (unsigned long)fd < nfds && fd < FD_SETSIZE; fd++) {
		unsigned char byte = 0;
		if (is_socket(fd, cookie) && read_ours(&byte, readfds + (unsigned long)fd / 8, 1) &&
		    (byte >> (fd % 8) & 1))
			return true;
	}
	return false;
}

/* epoll_wait(epfd): a descriptor of the socket was added to that set. */
static bool epolls_on(int epfd, uint64_t cookie)
{
	int top = own_max_fd(), sets[EPB_SETS_MAX];

	for (int fd = 0; fd <= top; fd++) {
		if (!is_socket(fd, cookie))
			continue;
		int n = epb_sets_of(fd, sets);
		for (int i = 0; i < n; i++)
			if (sets[i] == epfd)
				return true;
		if (epb_registered(fd) && n == 0)
			return true; /* more sets than the books list */
	}
	return false;
}

static bool waits_on(const struct waiter *w, uint64_t cookie)
{
	switch (w->nr) {
	case SYS_read:
	case SYS_readv:
	case SYS_recvfrom:
	case SYS_recvmsg:
	case SYS_recvmmsg:
		return is_socket((int)w->arg[0], cookie);
#ifdef SYS_poll
	case SYS_poll:
#endif
	case SYS_ppoll:
		return polls_on(w->arg[0], w->arg[1], cookie);
#ifdef SYS_select
	case SYS_select:
#endif
	case SYS_pselect6:
		return selects_on(w->arg[0], w->arg[1], cookie);
#ifdef SYS_epoll_wait
	case SYS_epoll_wait:
#endif
	case SYS_epoll_pwait:
#ifdef SYS_epoll_pwait2
	case SYS_epoll_pwait2:
#endif
		return epolls_on((int)w->arg[0], cookie);
	default:
		return false;
	}
}

/* A descriptor of the socket is in an epoll set of ours: an event loop
 * waits on it whenever it waits, even one that is not blocked right now
 * (a level-triggered set that reports unread input at once never blocks). */
static bool in_an_epoll_set(uint64_t cookie)
{
	int top = own_max_fd();

	for (int fd = 0; fd <= top; fd++)
		if (is_socket(fd, cookie) && epb_registered(fd))
			return true;
	return false;
}

bool waiters_wait_on(const struct waiter *w, int n, uint64_t cookie)
{
	if (n < 0 || in_an_epoll_set(cookie))
		return true;
	for (int i = 0; i < n; i++)
		if (waits_on(&w[i], cookie))
			return true;
	return false;
}
