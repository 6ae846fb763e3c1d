/*
 * stress.h -- what the stress programs (storm, sigstorm, forkbooks) share: a
 * listener with a deep backlog, the client of one connection that checks it
 * got every byte of its reply and a clean end of stream, a work queue of
 * descriptors, and counts of the process's own descriptors.
 *
 * The protocol is the smallest that loses a reply to a reset: the client
 * sends a request and pipelines more input at once, the server writes a
 * reply of a known size without reading a byte, then lets go of the socket
 * (input unread: a plain close resets, and the reply still queued behind a
 * rate-limited link is lost).
 *
 * Header-only, like common.h; include it after defining _GNU_SOURCE.
 */
#ifndef TEST_APPS_STRESS_H
#define TEST_APPS_STRESS_H

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "tcp_pair.h"

#define STRESS_PIPELINED 4096   /* input the server never reads */

static inline int stress_listener(struct sockaddr_in *a)
{
	socklen_t len = sizeof *a;
	int one = 1, l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	*a = (struct sockaddr_in){ .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(l, (struct sockaddr *)a, sizeof *a) < 0 || listen(l, 1024) < 0 ||
	    getsockname(l, (struct sockaddr *)a, &len) < 0) {
		perror("listener");
		exit(1);
	}
	return l;
}

/* The reply's byte i, so that a client can tell a reply cut short. */
static inline char stress_byte(size_t i)
{
	return (char)('a' + i % 26);
}

static inline bool stress_write_reply(int fd, size_t size)
{
	char buf[16384];
	size_t off = 0;

	while (off < size) {
		size_t n = size - off < sizeof buf ? size - off : sizeof buf;
		for (size_t i = 0; i < n; i++)
			buf[i] = stress_byte(off + i);
		ssize_t w = write(fd, buf, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		off += (size_t)w;
	}
	return true;
}

/* What one client saw. */
enum stress_outcome { STRESS_COMPLETE, STRESS_LOST, STRESS_RESET, STRESS_FAILED };

/* Reads until end of stream, an error or ms milliseconds; every byte checked. */
static inline enum stress_outcome stress_read_reply(int c, size_t size, int ms)
{
	char buf[16384];
	size_t got = 0;
	bool wrong = false;
	int64_t until = pair_now_ms() + ms;

	for (;;) {
		struct pollfd p = { .fd = c, .events = POLLIN };
		int64_t left = until - pair_now_ms();
		if (left <= 0 || poll(&p, 1, (int)left) == 0)
			return STRESS_FAILED;
		ssize_t n = read(c, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == ECONNRESET ? STRESS_RESET : STRESS_FAILED;
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			wrong |= buf[i] != stress_byte(got + (size_t)i);
		got += (size_t)n;
	}
	return got == size && !wrong ? STRESS_COMPLETE : STRESS_LOST;
}

/* One connection: request and pipelined input, then the reply read whole. */
static inline enum stress_outcome stress_client(const struct sockaddr_in *a, size_t size)
{
	static const char junk[STRESS_PIPELINED] = { 'x' };
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	enum stress_outcome o = STRESS_FAILED;

	if (c < 0)
		return STRESS_FAILED;
	if (connect(c, (const struct sockaddr *)a, sizeof *a) == 0 &&
	    write(c, "REQUEST\n", 8) == 8 && write(c, junk, sizeof junk) == sizeof junk)
		o = stress_read_reply(c, size, 20000);
	close(c);
	return o;
}

struct stress_tally {
	atomic_ulong complete, lost, reset, failed;
};

static inline void stress_count(struct stress_tally *t, enum stress_outcome o)
{
	atomic_ulong *c[] = { &t->complete, &t->lost, &t->reset, &t->failed };
	atomic_fetch_add(c[o], 1);
}

/* ---- a queue of descriptors (one lock, a ring) ---------------------------- */

#define STRESS_QLEN 4096

struct stress_queue {
	pthread_mutex_t lock;
	pthread_cond_t more;
	int fds[STRESS_QLEN];
	unsigned head, tail;
};

#define STRESS_QUEUE_INIT { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, { 0 }, 0, 0 }

static inline void stress_push(struct stress_queue *q, int fd)
{
	pthread_mutex_lock(&q->lock);
	if (q->tail - q->head == STRESS_QLEN) {
		fputs("stress: queue full\n", stderr);
		exit(1);
	}
	q->fds[q->tail++ % STRESS_QLEN] = fd;
	pthread_cond_signal(&q->more);
	pthread_mutex_unlock(&q->lock);
}

/* The next descriptor, waiting for one; -1 is the sentinel that says stop. */
static inline int stress_pop(struct stress_queue *q)
{
	pthread_mutex_lock(&q->lock);
	while (q->head == q->tail)
		pthread_cond_wait(&q->more, &q->lock);
	int fd = q->fds[q->head++ % STRESS_QLEN];
	pthread_mutex_unlock(&q->lock);
	return fd;
}

/* The next descriptor, or -2 at once when there is none. */
static inline int stress_trypop(struct stress_queue *q)
{
	int fd = -2;

	pthread_mutex_lock(&q->lock);
	if (q->head != q->tail)
		fd = q->fds[q->head++ % STRESS_QLEN];
	pthread_mutex_unlock(&q->lock);
	return fd;
}

/* ---- the process's descriptors -------------------------------------------- */

/* Open descriptors (all, and those that are sockets), listener excluded. */
static inline void stress_fds(int listener, long *all, long *sockets)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	*all = *sockets = 0;
	while (d && (e = readdir(d))) {
		struct stat st;
		int fd = atoi(e->d_name);
		if (e->d_name[0] == '.' || fd == dirfd(d) || fd == listener)
			continue;
		(*all)++;
		if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode))
			(*sockets)++;
	}
	if (d)
		closedir(d);
}

/* Waits (up to ms) until no socket but the listener is open; the ms it took. */
static inline long stress_drain(int listener, int ms, long *sockets_left)
{
	int64_t start = pair_now_ms();
	long all;

	for (;;) {
		stress_fds(listener, &all, sockets_left);
		if (*sockets_left == 0 || pair_now_ms() - start >= ms)
			return (long)(pair_now_ms() - start);
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

static inline int stress_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

#endif
