/* nh_child_conn.h: a connection over loopback for the tests whose children
 * (vfork, clone) must release nothing of their parent's: the accepted end,
 * close-on-exec as most runtimes make them, with a request on it the parent
 * has not read (a close now would reset), and its client. */
#ifndef NH_CHILD_CONN_H
#define NH_CHILD_CONN_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static inline int accepted_with_request(int *client)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 4) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &len) < 0)
		exit(1);
	*client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(*client, (struct sockaddr *)&a, sizeof a) < 0)
		exit(1);
	int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	close(l);
	if (s < 0 || write(*client, "request\n", 8) != 8)
		exit(1);
	return s;
}

/* The parent's next write, and what the peer reads of it. */
static inline void reply_and_report(int s, int client)
{
	ssize_t w = write(s, "reply\n", 6);
	printf("  parent's next write: %s\n", w == 6 ? "ok" : strerrorname_np(errno));
	char buf[16];
	ssize_t r = read(client, buf, sizeof buf);
	printf("  peer reads: %s\n", r == 6 && memcmp(buf, "reply\n", 6) == 0 ? "the reply"
				       : r == 0 ? "end-of-file" : "something else");
}

/* --close-pending: the parent then closes with input unread (the request,
 * and more sent after the reply, seen arrived), which the kernel answers
 * with a reset; what the peer reads after that close is printed. */
static inline void close_with_input_unread(int s, int client)
{
	struct pollfd arrived = { .fd = s, .events = POLLIN };

	if (write(client, "more\n", 5) != 5 || poll(&arrived, 1, 5000) != 1)
		exit(1);
	close(s);
	char buf[16];
	ssize_t r = read(client, buf, sizeof buf);
	printf("  after the parent's close with input unread, the peer reads: %s\n",
	       r == 0 ? "end-of-file" : r < 0 ? strerrorname_np(errno) : "more data");
}

#endif
