/*
 * nh_exec_fails.c -- a failed exec leaves the program's connection as it was.
 *
 * A server-side connection, close-on-exec (as Go, Rust, Python and nginx
 * accept them), holds output the peer has not taken yet (the peer's receive
 * window is small and it does not read) and sits in an epoll set. Then the
 * program tries to replace itself and fails: execve() of a path that does
 * not exist, and execvp() through a PATH of several directories, none of
 * which holds the program (an upgrade re-exec that fails, a shell or
 * Python's os.execvp trying each entry). It prints what it observes, one
 * fact a line: what each exec returned and how soon, whether the connection
 * still takes writes, whether it is still in the epoll set, whether the
 * program has a child to wait for (it made none), and, after the program
 * closes it, everything the peer received. With --subreaper the program is
 * a child subreaper first (as supervisors and container inits are), so
 * that orphans of its descendants come back to it.
 *
 * usage: nh_exec_fails [--subreaper]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "common.h"

#define FIRST_PART 65536
#define SECOND_PART 10

static void usage(const char *msg)
{
	usage_exit("nh_exec_fails", msg, "usage: nh_exec_fails [--subreaper]\n");
}

/* A connected pair on loopback: *server as accept4(SOCK_CLOEXEC) gives it,
 * *peer with a receive buffer small enough that our output waits. */
static void connect_pair(int *server, int *peer)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int small = 4096, big = 1 << 20;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &len) < 0)
		die("listen");
	*peer = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*peer < 0 || setsockopt(*peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) < 0 ||
	    connect(*peer, (struct sockaddr *)&a, sizeof a) < 0)
		die("connect");
	*server = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (*server < 0 || setsockopt(*server, SOL_SOCKET, SO_SNDBUF, &big, sizeof big) < 0)
		die("accept");
	close(l);
}

static const char *how_soon(int64_t start_ns)
{
	return now_ns() - start_ns < 1000000000 ? "returned at once" : "blocked";
}

static void report_exec(const char *what, int r, int err, int64_t start_ns)
{
	printf("%s: %d %s, %s\n", what, r, r < 0 ? errname(err) : "", how_soon(start_ns));
}

static void try_execve(void)
{
	char *const argv[] = { "nh-no-such-program", NULL };
	int64_t start = now_ns();
	int r = execve("/nonexistent/nh-no-such-program", argv, environ);

	report_exec("execve of a missing path", r, errno, start);
}

static void try_execvp(void)
{
	char *const argv[] = { "nh-no-such-program", NULL };

	setenv("PATH", "/nonexistent-a:/nonexistent-b:/nonexistent-c", 1);
	int64_t start = now_ns();
	int r = execvp("nh-no-such-program", argv);
	report_exec("execvp through three PATH entries", r, errno, start);
}

static void report_send(const char *what, int fd, size_t n)
{
	static char buf[FIRST_PART];
	ssize_t r = send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);

	printf("%s: %zd %s\n", what, r, r < 0 ? errname(errno) : "");
}

/* The peer reads everything until the end of the stream. */
static void report_peer(int peer)
{
	char buf[4096];
	size_t total = 0;
	ssize_t n;

	while ((n = read(peer, buf, sizeof buf)) > 0)
		total += (size_t)n;
	printf("peer received: %zu bytes, then %s\n", total, n == 0 ? "end of stream" : errname(errno));
}

int main(int argc, char **argv)
{
	int server, peer;

	if (argc > 2 || (argc == 2 && strcmp(argv[1], "--subreaper") != 0))
		usage("unknown argument");
	if (argc == 2 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		die("prctl");
	setvbuf(stdout, NULL, _IONBF, 0);
	connect_pair(&server, &peer);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = server };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, server, &ev) < 0)
		die("epoll");

	report_send("first write", server, FIRST_PART);
	try_execve();
	try_execvp();
	report_send("write after the failed execs", server, SECOND_PART);
	ev.events = EPOLLIN | EPOLLOUT;
	int r = epoll_ctl(ep, EPOLL_CTL_MOD, server, &ev);
	printf("epoll_ctl MOD after the failed execs: %d %s\n", r, r < 0 ? errname(errno) : "");
	pid_t child = waitpid(-1, NULL, WNOHANG);
	printf("waitpid(-1) after the failed execs: %d %s\n", (int)child,
	       child < 0 ? errname(errno) : "");
	printf("close: %d\n", close(server));
	report_peer(peer);
	return 0;
}
