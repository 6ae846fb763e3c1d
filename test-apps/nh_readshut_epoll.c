/*
 * nh_readshut_epoll -- a socket stays in the program's own epoll set after
 * shutdown(SHUT_RD) or shutdown(SHUT_RDWR): EPOLL_CTL_MOD succeeds (libuv
 * aborts when it does not), the set still reports the socket, and the read
 * side's end shows (EPOLLRDHUP, and EPOLLHUP once both sides are shut).
 *
 *   nh_readshut_epoll rd|rdwr
 */
#define _GNU_SOURCE
#include <sys/epoll.h>

#include "nh_readside.h"

/* The events the set reports for the socket within two seconds, gathered
 * until `wanted` are all seen. */
static uint32_t events_within_2s(int ep, uint32_t wanted)
{
	uint32_t seen = 0;
	int64_t until = nh_now_ms() + 2000;

	while ((seen & wanted) != wanted && nh_now_ms() < until) {
		struct epoll_event ev;
		int n = epoll_wait(ep, &ev, 1, 50);
		if (n == 1)
			seen |= ev.events;
		else if (n < 0 && errno != EINTR)
			nh_die("epoll_wait");
	}
	return seen;
}

static void print_events(const char *when, uint32_t seen)
{
	printf("%s: EPOLLIN %s, EPOLLRDHUP %s, EPOLLHUP %s\n", when,
	       seen & EPOLLIN ? "yes" : "no", seen & EPOLLRDHUP ? "yes" : "no",
	       seen & EPOLLHUP ? "yes" : "no");
}

int main(int argc, char **argv)
{
	int how = argc > 1 && !strcmp(argv[1], "rdwr") ? SHUT_RDWR : SHUT_RD;
	struct pair p = nh_pair();
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = p.server };
	char buf[64];

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("EPOLL_CTL_ADD: %d\n", epoll_ctl(ep, EPOLL_CTL_ADD, p.server, &ev));
	if (send(p.client, "hello", 5, 0) != 5)
		nh_die("send");
	print_events("before the shutdown", events_within_2s(ep, EPOLLIN));

	printf("shutdown(%s): %d\n", how == SHUT_RD ? "SHUT_RD" : "SHUT_RDWR",
	       shutdown(p.server, how));
	ev.events = EPOLLIN | EPOLLRDHUP;
	int r = epoll_ctl(ep, EPOLL_CTL_MOD, p.server, &ev);
	printf("EPOLL_CTL_MOD: %d %s\n", r, r < 0 ? strerrorname_np(errno) : "");
	uint32_t wanted = EPOLLIN | EPOLLRDHUP | (how == SHUT_RDWR ? EPOLLHUP : 0);
	print_events("after the shutdown", events_within_2s(ep, wanted));

	ssize_t n = read(p.server, buf, sizeof buf);
	printf("read: %zd\n", n);
	n = read(p.server, buf, sizeof buf);
	printf("read again: %zd\n", n);
	if (how == SHUT_RDWR) {
		n = recv(p.client, buf, sizeof buf, 0);
		printf("the peer reads: %zd (end of file)\n", n);
	}
	r = epoll_ctl(ep, EPOLL_CTL_DEL, p.server, NULL);
	printf("EPOLL_CTL_DEL: %d %s\n", r, r < 0 ? strerrorname_np(errno) : "");
	printf("close: %d\n", close(p.server));
	close(p.client);
	return 0;
}
