/* nh_thread_start.c: loading a library must not add threads to a program
 * that never asked for one, and nothing may start a thread inside a signal
 * handler (pthread_create allocates and locks). Prints how many threads the
 * process has (/proc/self/task) after it served connections that closed
 * cleanly, and in a forked child after a signal handler closed a connection
 * with unread input; then how long the child's _exit and exit took. */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tcp_pair.h"

static int threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

/* Served: the request read, a reply the peer reads, both sides closed. */
static void clean_connection(void)
{
	char buf[64];
	int client, s = tcp_pair(&client);

	if (read(s, buf, 8) != 8 || write(s, "REPLY\n", 6) != 6)
		exit(1);
	pair_received(client, 1000, buf, sizeof buf);
	close(client);
	close(s);
}

static int handler_fd = -1;

static void on_usr1(int sig)
{
	(void)sig;
	close(handler_fd);
}

/* In a child: a signal handler closes a connection the peer still sends on;
 * the peer is then reset, so nothing is left to wait for at the end. */
static void child(bool plain_exit, int report)
{
	int client;

	handler_fd = tcp_pair(&client);
	signal(SIGUSR1, on_usr1);
	raise(SIGUSR1);
	printf("  threads after the handler's close: %d\n", threads());
	struct linger abort_close = { 1, 0 };
	setsockopt(client, SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close);
	close(client);
	if (write(report, "x", 1) != 1)
		_exit(1);
	if (plain_exit)
		exit(0);
	_exit(0);
}

static void run_child(bool plain_exit)
{
	int report[2], status;
	char x;

	printf("child ending with %s:\n", plain_exit ? "exit" : "_exit");
	if (pipe(report) < 0)
		exit(1);
	pid_t pid = fork();
	if (pid == 0) {
		close(report[0]);
		child(plain_exit, report[1]);
	}
	close(report[1]);
	if (read(report[0], &x, 1) != 1)
		exit(1);
	int64_t t0 = pair_now_ms();
	waitpid(pid, &status, 0);
	close(report[0]);
	printf("  its end: %s, status %d\n", pair_timing(t0),
	       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 0; i < 3; i++)
		clean_connection();
	printf("threads after serving clean connections: %d\n", threads());
	run_child(false);
	run_child(true);
	return 0;
}
