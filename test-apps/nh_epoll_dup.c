/*
 * nh_epoll_dup -- a connection registered in an epoll set under one number,
 * kept open under another, then closed: once its last descriptor is closed
 * the set reports nothing for it any more (an event loop would otherwise get
 * its old data back: a pointer to a connection it has freed).
 *
 *   nh_epoll_dup dup    dup(fd), close(fd), close(copy)
 *   nh_epoll_dup fork   fork(), the parent closes fd; the child, which has no
 *                       use for the parent's event loop, closes its copy of
 *                       the epoll set and then the connection
 *
 * The connection has input it never read, so the last close is one that
 * would linger.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "common.h"

static void usage(const char *msg)
{
	usage_exit("nh_epoll_dup", msg, "usage: nh_epoll_dup dup|fork\n");
}

#define OLD_DATA 0xc0ffeeull

static void connected_pair(int *client, int *conn)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int listener = socket(AF_INET, SOCK_STREAM, 0);

	if (listener < 0 || bind(listener, (struct sockaddr *)&a, sizeof a) < 0 ||
	    listen(listener, 1) < 0 || getsockname(listener, (struct sockaddr *)&a, &len) < 0)
		die("listener");
	*client = socket(AF_INET, SOCK_STREAM, 0);
	if (*client < 0 || connect(*client, (struct sockaddr *)&a, sizeof a) < 0)
		die("connect");
	if ((*conn = accept(listener, NULL, NULL)) < 0)
		die("accept");
	close(listener);
}

/* What the set reports within `ms` milliseconds. */
static void report(int ep, const char *when, int ms)
{
	struct epoll_event ev;
	int n = epoll_wait(ep, &ev, 1, ms);

	if (n < 0)
		die("epoll_wait");
	printf("%s: %d event%s%s\n", when, n, n == 1 ? "" : "s",
	       n == 1 && ev.data.u64 == OLD_DATA ? ", with the connection's data" : "");
}

static void print_result(const char *what, int r)
{
	printf("%s: %d %s\n", what, r, r < 0 ? strerrorname_np(errno) : "");
}

/* Input the program never reads: its last close is one that would linger. */
static void unread_input(int client, int conn)
{
	struct pollfd p = { .fd = conn, .events = POLLIN };

	if (write(client, "unread", 6) != 6 || poll(&p, 1, 5000) != 1)
		die("input");
}

static void dup_then_close_both(int ep, int conn)
{
	int copy = dup(conn);

	printf("dup: %s\n", copy >= 0 ? "a new number" : strerrorname_np(errno));
	print_result("close(original)", close(conn));
	report(ep, "after closing the original", 0);
	print_result("close(copy)", close(copy));
	report(ep, "after closing the copy", 200);
}

static void fork_then_close_both(int ep, int conn)
{
	int closed[2], go[2];
	char c;

	if (pipe(closed) < 0 || pipe(go) < 0)
		die("pipe");
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (read(go[0], &c, 1) != 1 || close(ep) != 0)
			_exit(1);
		int r = close(conn);
		if (write(closed[1], r == 0 ? "0" : "1", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(1);
		_exit(0);
	}
	print_result("parent: close", close(conn));
	report(ep, "after the parent's close", 0);
	if (write(go[1], "g", 1) != 1 || read(closed[0], &c, 1) != 1)
		die("child");
	printf("child: close: %s\n", c == '0' ? "0" : "failed");
	report(ep, "after the child's close", 200);
	if (write(go[1], "g", 1) != 1)
		die("child");
	int status;
	waitpid(pid, &status, 0);
	printf("child: exit status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

int main(int argc, char **argv)
{
	if (argc != 2 || (strcmp(argv[1], "dup") && strcmp(argv[1], "fork")))
		usage(NULL);
	int client, conn, ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.u64 = OLD_DATA };

	setvbuf(stdout, NULL, _IOLBF, 0);
	connected_pair(&client, &conn);
	print_result("EPOLL_CTL_ADD", epoll_ctl(ep, EPOLL_CTL_ADD, conn, &ev));
	unread_input(client, conn);
	if (!strcmp(argv[1], "dup"))
		dup_then_close_both(ep, conn);
	else
		fork_then_close_both(ep, conn);
	close(client);
	return 0;
}
