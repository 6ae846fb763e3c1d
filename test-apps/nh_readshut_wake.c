/*
 * nh_readshut_wake -- threads blocked reading a socket (in recv, in readv,
 * in poll for input) are woken when another thread shuts it down with
 * shutdown(SHUT_RDWR) after writing a reply, the common way to stop a
 * reader; the peer gets the whole reply and then end-of-file.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <sys/uio.h>

#include "nh_readside.h"

#define REPLY 200000

struct blocked {
	const char *how;
	int fd;
	long result;
	int err;
	int done;
	char buf[65536];
};

static void *reader(void *arg)
{
	struct blocked *b = arg;
	char *buf = b->buf;

	if (!strcmp(b->how, "recv")) {
		b->result = recv(b->fd, buf, sizeof b->buf, 0);
	} else if (!strcmp(b->how, "readv")) {
		struct iovec iov = { buf, sizeof b->buf };
		b->result = readv(b->fd, &iov, 1);
	} else {
		struct pollfd p = { .fd = b->fd, .events = POLLIN };
		b->result = poll(&p, 1, -1);
	}
	b->err = errno;
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static long peer_reads_all(int fd, bool *eof)
{
	static char buf[65536];
	long total = 0;
	ssize_t n;

	while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
		total += n;
	*eof = n == 0;
	return total;
}

int main(void)
{
	struct pair p = nh_pair();
	static struct blocked b[3] = { { .how = "recv" }, { .how = "readv" }, { .how = "poll" } };
	pthread_t t[3];
	static char reply[REPLY];
	bool eof;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 0; i < 3; i++) {
		b[i].fd = p.server;
		pthread_create(&t[i], NULL, reader, &b[i]);
	}
	struct timespec settle = { 0, 100 * 1000 * 1000 };
	nanosleep(&settle, NULL); /* the readers are in their calls by now */
	memset(reply, 'r', sizeof reply);
	for (size_t off = 0; off < sizeof reply;) {
		ssize_t n = send(p.server, reply + off, sizeof reply - off, 0);
		if (n <= 0)
			nh_die("send");
		off += (size_t)n;
	}
	printf("shutdown(SHUT_RDWR): %d\n", shutdown(p.server, SHUT_RDWR));
	long got = peer_reads_all(p.client, &eof);
	printf("the peer read %s, then %s\n", got == REPLY ? "the whole reply" : "part of it",
	       eof ? "end of file" : "an error");
	int64_t until = nh_now_ms() + 3000;
	for (int i = 0; i < 3; i++) {
		while (!__atomic_load_n(&b[i].done, __ATOMIC_ACQUIRE) && nh_now_ms() < until)
			nanosleep(&(struct timespec){ 0, 5 * 1000 * 1000 }, NULL);
		if (!__atomic_load_n(&b[i].done, __ATOMIC_ACQUIRE))
			printf("reader in %s: still blocked after 3 s\n", b[i].how);
		else
			printf("reader in %s: woken, returned %ld %s\n", b[i].how, b[i].result,
			       b[i].result < 0 ? strerrorname_np(b[i].err) : "");
	}
	fflush(stdout);
	_exit(0); /* a reader still blocked must not hold the exit */
}
