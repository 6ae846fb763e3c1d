/* loopback.h: real TCP connections on 127.0.0.1 for the unit tests. */
#ifndef SAFECLOSE_TEST_LOOPBACK_H
#define SAFECLOSE_TEST_LOOPBACK_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

struct tcp_pair {
	int listener, server, client;
};

static inline int tcp_listener(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 8) < 0)
		return -1;
	return fd;
}

static inline int tcp_pair_open(struct tcp_pair *p)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;

	p->server = p->client = -1;
	p->listener = tcp_listener();
	if (p->listener < 0 || getsockname(p->listener, (struct sockaddr *)&a, &len) < 0)
		return -1;
	p->client = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(p->client, (struct sockaddr *)&a, sizeof a) < 0)
		return -1;
	p->server = accept(p->listener, NULL, NULL);
	return p->server < 0 ? -1 : 0;
}

static inline void tcp_pair_close(struct tcp_pair *p)
{
	int *fds[] = { &p->listener, &p->server, &p->client };

	for (unsigned i = 0; i < 3; i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

static inline int queued_input(int fd)
{
	int n = 0;
	ioctl(fd, SIOCINQ, &n);
	return n;
}

/* Waits (bounded) until fd has at least `bytes` unread: loopback delivery is
 * asynchronous to send(). */
static inline int wait_input(int fd, int bytes)
{
	for (int i = 0; i < 200 && queued_input(fd) < bytes; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		poll(&p, 1, 10);
	}
	return queued_input(fd) >= bytes;
}

/* Waits (bounded) until every byte fd sent is acknowledged. */
static inline int wait_acknowledged(int fd)
{
	int n = 1;

	for (int i = 0; i < 200 && (ioctl(fd, SIOCOUTQ, &n) < 0 || n > 0); i++)
		poll(NULL, 0, 10);
	return n == 0;
}

static inline int tcp_state_of(int fd)
{
	struct tcp_info info;
	socklen_t len = sizeof info;

	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0 ? -1 : info.tcpi_state;
}

/* Waits (bounded) until fd reaches a TCP state. */
static inline int wait_state(int fd, int state)
{
	for (int i = 0; i < 200 && tcp_state_of(fd) != state; i++)
		poll(NULL, 0, 10);
	return tcp_state_of(fd) == state;
}

#endif
