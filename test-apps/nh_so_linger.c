/* nh_so_linger.c: a program that sets SO_LINGER {1, N} asks for a close()
 * that blocks until its output is acknowledged or N seconds pass, and gets
 * it from the kernel. The socket here has output its peer will not take (the
 * peer does not read, both buffers are full): close() blocks for N seconds.
 * Then a second connection with SO_LINGER {1, 0}: an abortive close, the
 * peer sees a reset. Prints the close's result and timing, what the peers
 * saw, and how long the program's exit took (in a child, so the parent can
 * time it). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tcp_pair.h"

#define LINGER_S 1

/* Writes until the kernel takes no more: the peer reads nothing. */
static void fill(int s)
{
	static char chunk[65536];
	int flags = fcntl(s, F_GETFL);

	fcntl(s, F_SETFL, flags | O_NONBLOCK);
	while (write(s, chunk, sizeof chunk) > 0)
		;
	fcntl(s, F_SETFL, flags);
}

/* The accepted side of a connection whose request was read. The client
 * side, which never reads, is dropped with a reset when closed (its own
 * SO_LINGER {1, 0}), so that only the server side's close is timed. */
static int served_pair(int *client)
{
	char req[8];
	int s = tcp_pair(client);
	struct linger abort_close = { 1, 0 };

	setsockopt(*client, SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close);
	if (read(s, req, sizeof req) != sizeof req)
		exit(1);
	return s;
}

static void closes_with(int onoff, int seconds)
{
	int client, s = served_pair(&client);
	struct linger lg = { onoff, seconds };

	setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	if (seconds)
		fill(s);
	int64_t t0 = pair_now_ms();
	int r = close(s);
	printf("close with SO_LINGER {%d, %d}: %d %s, %s\n", onoff, seconds, r,
	       r < 0 ? strerrorname_np(errno) : "ok", pair_timing(t0));
	if (!seconds) {
		char b;
		errno = 0;
		struct pollfd p = { .fd = client, .events = POLLIN };
		poll(&p, 1, 2000);
		ssize_t n = read(client, &b, 1);
		printf("  peer's read: %zd %s\n", n, n < 0 ? strerrorname_np(errno) : "ok");
	}
	close(client);
}

int main(void)
{
	int status, report[2];

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (pipe(report) < 0)
		return 1;
	pid_t pid = fork();
	if (pid == 0) {
		int client;
		close(report[0]);
		closes_with(1, LINGER_S);
		closes_with(1, 0);
		/* What the program still holds at exit: another {1, N} socket
		 * with output waiting (its peer, the client, is reset first). */
		int s = served_pair(&client);
		struct linger lg = { 1, LINGER_S };
		setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		fill(s);
		if (write(report[1], "x", 1) != 1)
			_exit(1);
		exit(0);
	}
	close(report[1]);
	char x;
	if (read(report[0], &x, 1) != 1)
		return 1;
	int64_t t0 = pair_now_ms();
	waitpid(pid, &status, 0);
	printf("exit holding a {1, %d} socket: %s, status %d\n", LINGER_S, pair_timing(t0),
	       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return 0;
}
