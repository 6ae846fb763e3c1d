/* nh_cancel_close.c: close() is a cancellation point. A thread with a
 * cancellation pending calls close() on a connection with unread input (one
 * a lingering close would act on): glibc acts on the cancellation first, the
 * thread ends and the descriptor stays open. Prints what the thread and the
 * program saw, how many sockets the process holds, and how long its exit
 * takes (timed by a parent). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tcp_pair.h"

static int conn;

static void *cancelled_closer(void *unused)
{
	(void)unused;
	pthread_cancel(pthread_self());
	close(conn);
	printf("close in the cancelled thread returned\n");
	return NULL;
}

static int sockets_open(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char path[300], target[64];
	int n = 0;

	while (d && (e = readdir(d))) {
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(path, target, sizeof target - 1);
		if (len > 0 && (target[len] = '\0', strncmp(target, "socket:", 7) == 0))
			n++;
	}
	if (d)
		closedir(d);
	return n;
}

static void program(int report)
{
	int client;
	pthread_t t;
	void *result;

	conn = tcp_pair(&client);
	pthread_create(&t, NULL, cancelled_closer, NULL);
	pthread_join(t, &result);
	printf("thread: %s\n", result == PTHREAD_CANCELED ? "cancelled" : "returned");
	errno = 0;
	printf("descriptor after the cancelled close: %s\n",
	       fcntl(conn, F_GETFD) >= 0 ? "open" : strerrorname_np(errno));
	printf("sockets open: %d\n", sockets_open());
	/* The peer goes away with a reset, so nothing is left to linger on. */
	struct linger abort_close = { 1, 0 };
	setsockopt(client, SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close);
	close(client);
	if (write(report, "x", 1) != 1)
		_exit(1);
	exit(0);
}

int main(void)
{
	int report[2], status;
	char x;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (pipe(report) < 0)
		return 1;
	pid_t pid = fork();
	if (pid == 0) {
		close(report[0]);
		program(report[1]);
	}
	close(report[1]);
	if (read(report[0], &x, 1) != 1)
		return 1;
	int64_t t0 = pair_now_ms();
	waitpid(pid, &status, 0);
	printf("exit: %s, status %d\n", pair_timing(t0), WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return 0;
}
