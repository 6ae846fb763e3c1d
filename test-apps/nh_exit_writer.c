/*
 * nh_exit_writer.c -- exit() while another thread is still writing.
 *
 * A child process serves one connection: a second thread writes to it
 * without pause while the main thread calls exit(0), as a server does when
 * it is told to stop with a response still being streamed. The process must
 * end the way exit() ends it: status 0, every thread stopped where it was by
 * the kernel, never a write failing with EPIPE (SIGPIPE, status 141 in a
 * shell) because the connection was shut under it. The parent is the peer;
 * it reads nothing until the child has ended, so the writer is still
 * writing (or blocked on full buffers) when exit() is called, and then
 * reads until the end of the stream. One fact a line: how the child ended,
 * how the stream ended.
 *
 * usage: nh_exit_writer
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "common.h"

/* More than the peer's small window takes, so output waits at exit; far
 * less than the writer's send buffer, so these writes never block. */
#define WRITES_BEFORE_EXIT 8

static void usage(const char *msg)
{
	usage_exit("nh_exit_writer", msg, "usage: nh_exit_writer\n");
}

static int listen_loopback(struct sockaddr_in *a)
{
	socklen_t len = sizeof *a;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	*a = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (l < 0 || bind(l, (struct sockaddr *)a, sizeof *a) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)a, &len) < 0)
		die("listen");
	return l;
}

static int conn;
static int started[2];

static void *writer(void *unused)
{
	static char buf[4096];

	(void)unused;
	for (unsigned long n = 0;; n++) {
		if (write(conn, buf, sizeof buf) < 0)
			_exit(3); /* never reached: SIGPIPE comes first */
		if (n == WRITES_BEFORE_EXIT && write(started[1], "w", 1) != 1)
			_exit(4);
	}
	return NULL;
}

static void child(int listener)
{
	pthread_t t;
	char c;

	int big = 1 << 20;

	conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0 || setsockopt(conn, SOL_SOCKET, SO_SNDBUF, &big, sizeof big) < 0 || pipe(started) < 0 || pthread_create(&t, NULL, writer, NULL) != 0)
		_exit(5);
	if (read(started[0], &c, 1) != 1)
		_exit(6);
	exit(0); /* the writer is still writing */
}

static void report_child(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) < 0)
		die("waitpid");
	if (WIFEXITED(status))
		printf("child: exited with status %d\n", WEXITSTATUS(status));
	else
		printf("child: killed by %s\n", sigabbrev_np(WTERMSIG(status)));
}

int main(int argc, char **argv)
{
	struct sockaddr_in a;

	(void)argv;
	if (argc != 1)
		usage("no arguments");
	setvbuf(stdout, NULL, _IONBF, 0);
	int listener = listen_loopback(&a);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0)
		child(listener);
	close(listener);
	int small = 4096;
	int peer = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (peer < 0 || setsockopt(peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) < 0 || connect(peer, (struct sockaddr *)&a, sizeof a) < 0)
		die("connect");

	report_child(pid);
	char buf[4096];
	ssize_t n;
	size_t total = 0;
	while ((n = read(peer, buf, sizeof buf)) > 0)
		total += (size_t)n;
	printf("peer: %s after %s\n", n == 0 ? "end of stream" : errname(errno),
	       total >= WRITES_BEFORE_EXIT * 4096 ? "the data" : "too little data");
	return 0;
}
