/*
 * nh_readside.h -- what the read-side no-harm programs share: a connected
 * TCP pair on the loopback, errno names, coarse timing, and a watchdog that
 * turns a read that would block for good into EINTR after two seconds
 * (SIGALRM without SA_RESTART), so "blocked" is something a program can say.
 *
 * Header-only, like common.h: the Makefile builds each test-apps/X.c alone.
 */
#ifndef TEST_APPS_NH_READSIDE_H
#define TEST_APPS_NH_READSIDE_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct pair {
	int server, client;
};

static inline void nh_die(const char *what)
{
	printf("%s failed: %s\n", what, strerrorname_np(errno));
	exit(1);
}

/* A connection on 127.0.0.1: client connected, server accepted. */
static inline struct pair nh_pair(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct pair p;

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 8) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &len) < 0)
		nh_die("listen");
	p.client = socket(AF_INET, SOCK_STREAM, 0);
	if (p.client < 0 || connect(p.client, (struct sockaddr *)&a, sizeof a) < 0)
		nh_die("connect");
	p.server = accept(l, NULL, NULL);
	if (p.server < 0)
		nh_die("accept");
	close(l);
	return p;
}

/* Waits until fd has input (at most a second): the peer's bytes are queued. */
static inline void nh_wait_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, 1000) != 1)
		nh_die("waiting for input");
}

static inline int64_t nh_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nh_on_alarm(int sig)
{
	(void)sig;
}

/* From now on a call blocked for two seconds fails with EINTR. */
static inline void nh_arm_watchdog(void)
{
	struct sigaction sa = { .sa_handler = nh_on_alarm }; /* no SA_RESTART */

	sigaction(SIGALRM, &sa, NULL);
	alarm(2);
}

static inline void nh_disarm_watchdog(void)
{
	alarm(0);
}

/* "5 hello", "0", or "-1 EAGAIN" / "blocked (EINTR)" for a read's result. */
static inline void nh_print_read(const char *what, ssize_t n, const char *buf, int64_t took_ms)
{
	if (n < 0 && errno == EINTR)
		printf("%s: blocked\n", what);
	else if (n < 0)
		printf("%s: -1 %s\n", what, strerrorname_np(errno));
	else
		printf("%s: %zd \"%.*s\" %s\n", what, n, (int)n, buf,
		       took_ms < 500 ? "at once" : "after a wait");
}

/* The server's send queue kept full: the client does not read, so output
 * stays unacknowledged for as long as the program runs. */
static inline void nh_fill_send_queue(int fd)
{
	static char chunk[65536];
	int64_t until = nh_now_ms() + 2000;

	memset(chunk, 'x', sizeof chunk);
	while (nh_now_ms() < until) {
		ssize_t n = send(fd, chunk, sizeof chunk, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0)
			nh_die("send");
	}
	nh_die("filling the send queue");
}

#endif
