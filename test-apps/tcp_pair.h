/*
 * tcp_pair.h -- what the no-harm programs about descriptors and threads
 * share: a connected TCP pair on loopback whose accepted side has unread
 * input (the kind of socket a lingering close acts on), a peer read with a
 * bound, and coarse timing words.
 *
 * Header-only, like common.h; include it after defining _GNU_SOURCE.
 */
#ifndef TEST_APPS_TCP_PAIR_H
#define TEST_APPS_TCP_PAIR_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline int64_t pair_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "returned at once" or "blocked", for a call that took since_ms until now. */
static inline const char *pair_timing(int64_t since_ms)
{
	return pair_now_ms() - since_ms < 500 ? "returned at once" : "blocked";
}

static inline int pair_listener(struct sockaddr_in *a)
{
	socklen_t len = sizeof *a;
	int l = socket(AF_INET, SOCK_STREAM, 0);

	*a = (struct sockaddr_in){ .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (l < 0 || bind(l, (struct sockaddr *)a, sizeof *a) < 0 || listen(l, 16) < 0 ||
	    getsockname(l, (struct sockaddr *)a, &len) < 0) {
		perror("listener");
		exit(1);
	}
	return l;
}

/* The accepted side of a fresh connection; *client is the other end, which
 * has sent a request the accepted side never reads. */
static inline int tcp_pair(int *client)
{
	struct sockaddr_in a;
	int l = pair_listener(&a);

	*client = socket(AF_INET, SOCK_STREAM, 0);
	if (*client < 0 || connect(*client, (struct sockaddr *)&a, sizeof a) < 0) {
		perror("connect");
		exit(1);
	}
	int s = accept(l, NULL, NULL);
	if (s < 0) {
		perror("accept");
		exit(1);
	}
	close(l);
	if (write(*client, "REQUEST\n", 8) != 8) {
		perror("write request");
		exit(1);
	}
	/* The request is in s's receive queue before anything else happens. */
	struct pollfd p = { .fd = s, .events = POLLIN };
	poll(&p, 1, 2000);
	return s;
}

/* What the peer receives within ms milliseconds (up to its end of stream or
 * the end of a line), as text; "(nothing)" when it received no byte. */
static inline const char *pair_received(int fd, int ms, char *buf, size_t size)
{
	size_t got = 0;
	int64_t until = pair_now_ms() + ms;

	while (got + 1 < size) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = until - pair_now_ms();
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		ssize_t n = read(fd, buf + got, size - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (buf[got - 1] == '\n')
			break;
	}
	buf[got] = '\0';
	while (got && buf[got - 1] == '\n')
		buf[--got] = '\0';
	return got ? buf : "(nothing)";
}

#endif
