/*
 * sigstorm -- close() from a signal handler that interrupts the same thread
 * while it closes, dup2()s, forks and exits.
 *
 *   sigstorm [--conns N] [--interval-us U] [--reply-size B] [--at-exit K]
 *            [--way close|dup2|fork|shutdown]
 *
 * An interval timer (setitimer, every U µs) raises SIGALRM in the server's
 * only thread; the handler closes the descriptor left in a slot for it, if
 * any. For each connection the server writes the reply, leaves a dup() of
 * the socket in the slot, and lets go of its own descriptor one of four ways
 * in turn: close(); dup2() of /dev/null over it and close(); fork() (the
 * child exit()s or _exit()s at once, holding its copy) and close(); or
 * shutdown(SHUT_WR) and close() (--way: only that one). Whichever of the handler's close and the
 * server's release comes last releases the socket. The handler fires all
 * the while, inside each of those calls. Last, K more connections get their
 * reply and a dup each in the handler's list, and the server calls exit()
 * at once: the handler closes them while exit() runs.
 *
 * A client process (forked first, before the timer) connects N + K times,
 * sends a request and pipelined input, and reads each reply whole, checking
 * every byte and the end of stream. Two JSON lines: the server's (what was
 * done: releases, handler_closes, forks, children_failed, eintr, and its
 * descriptors before and after the N connections, the listener excluded,
 * and the sockets still open once they are over, after waiting up to 10 s),
 * printed before its exit, and the client's (complete, lost, reset, failed).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "stress.h"

static void usage(const char *msg)
{
	if (msg)
		fprintf(stderr, "sigstorm: %s\n", msg);
	fputs("usage: sigstorm [--conns N] [--interval-us U] [--reply-size B] [--at-exit K]\n"
	      "                [--way close|dup2|fork|shutdown]\n",
	      stderr);
	exit(2);
}

static struct {
	long conns, interval_us, at_exit;
	size_t reply;
	int way;        /* -1: each in turn */
} opt = { .way = -1, .conns = 400, .interval_us = 200, .at_exit = 8, .reply = 65536 };

#define AT_EXIT_MAX 64

/* What the handler closes: one slot, then (at exit) a list. */
static atomic_int slot = -1;
static atomic_int exit_list[AT_EXIT_MAX];
static atomic_long handler_closes;

static void on_alarm(int sig)
{
	int saved = errno;
	int fd = atomic_exchange(&slot, -1);

	(void)sig;
	for (int i = 0; fd < 0 && i < AT_EXIT_MAX; i++)
		fd = atomic_exchange(&exit_list[i], -1);
	if (fd >= 0 && close(fd) == 0)
		atomic_fetch_add(&handler_closes, 1);
	errno = saved;
}

static void start_timer(void)
{
	struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };
	struct itimerval it = { { 0, opt.interval_us }, { 0, opt.interval_us } };

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL) < 0 || setitimer(ITIMER_REAL, &it, NULL) < 0) {
		perror("timer");
		exit(1);
	}
}

static void client(const struct sockaddr_in *a, long n)
{
	struct stress_tally t = { 0 };

	for (long i = 0; i < n; i++)
		stress_count(&t, stress_client(a, opt.reply));
	printf("{\"client\": true, \"conns\": %ld, \"complete\": %lu, \"lost\": %lu, "
	       "\"reset\": %lu, \"failed\": %lu}\n", n, atomic_load(&t.complete),
	       atomic_load(&t.lost), atomic_load(&t.reset), atomic_load(&t.failed));
	fflush(stdout);
	_exit(0);
}

static long forks, children_failed, releases, eintr;
static int devnull;

static int accept_reply(int listener)
{
	int s;

	while ((s = accept4(listener, NULL, NULL, SOCK_CLOEXEC)) < 0 && errno == EINTR)
		eintr++;
	if (s < 0) {
		perror("accept");
		exit(1);
	}
	if (!stress_write_reply(s, opt.reply))
		perror("write");
	return s;
}

static void close_checked(int fd)
{
	/* close() is not restarted: EINTR would mean the descriptor is gone. */
	if (close(fd) != 0)
		perror("close");
	releases++;
}

static void fork_and_close(long i, int s)
{
	pid_t pid = fork();

	if (pid == 0) {
		if (i % 8 < 4)
			exit(0);
		_exit(0);
	}
	if (pid < 0) {
		perror("fork");
		children_failed++;
	}
	close_checked(s);
	int status;
	while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		eintr++;
	if (pid > 0 && (!WIFEXITED(status) || WEXITSTATUS(status)))
		children_failed++;
	forks += pid > 0;
}

static void let_go(long i, int s)
{
	switch (opt.way >= 0 ? opt.way : i % 4) {
	case 0:
		close_checked(s);
		break;
	case 1:
		if (dup2(devnull, s) != s)
			perror("dup2");
		close_checked(s);
		break;
	case 2:
		fork_and_close(i, s);
		break;
	default:
		if (shutdown(s, SHUT_WR) != 0)
			perror("shutdown");
		close_checked(s);
	}
}

/* The next connection only once the handler has taken the last dup. */
static void wait_for_handler(void)
{
	while (atomic_load(&slot) >= 0)
		pause();
}

static int way_number(const char *name)
{
	static const char *const ways[] = { "close", "dup2", "fork", "shutdown" };

	for (int i = 0; i < 4; i++)
		if (!strcmp(name, ways[i]))
			return i;
	usage("--way close|dup2|fork|shutdown");
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "conns", required_argument, NULL, 'n' },
		{ "interval-us", required_argument, NULL, 'u' },
		{ "reply-size", required_argument, NULL, 'r' },
		{ "at-exit", required_argument, NULL, 'x' },
		{ "way", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	struct sockaddr_in a;
	long fds_before, fds_after, socks;

	for (int ch; (ch = getopt_long(argc, argv, "", longopts, NULL)) != -1;) {
		switch (ch) {
		case 'n': opt.conns = atol(optarg); break;
		case 'u': opt.interval_us = atol(optarg); break;
		case 'r': opt.reply = (size_t)atol(optarg); break;
		case 'x': opt.at_exit = atol(optarg); break;
		case 'w': opt.way = way_number(optarg); break;
		default: usage(NULL);
		}
	}
	if (opt.conns < 1 || opt.interval_us < 1 || opt.interval_us >= 1000000 ||
	    opt.at_exit < 0 || opt.at_exit > AT_EXIT_MAX || opt.reply < 1)
		usage("a number out of range");
	for (int i = 0; i < AT_EXIT_MAX; i++)
		atomic_init(&exit_list[i], -1);
	signal(SIGPIPE, SIG_IGN);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	int listener = stress_listener(&a);

	fflush(stdout);
	if (fork() == 0) {
		close(listener);
		client(&a, opt.conns + opt.at_exit);
	}
	stress_fds(listener, &fds_before, &socks);
	start_timer();
	for (long i = 0; i < opt.conns; i++) {
		int s = accept_reply(listener);
		int d = dup(s);
		if (d < 0)
			perror("dup");
		else
			atomic_store(&slot, d);
		let_go(i, s);
		wait_for_handler();
	}
	long left, drain_ms = stress_drain(listener, 10000, &left);
	stress_fds(listener, &fds_after, &socks);
	printf("{\"server\": true, \"conns\": %ld, \"releases\": %ld, \"handler_closes\": %ld, "
	       "\"forks\": %ld, \"children_failed\": %ld, \"eintr\": %ld, \"fds_before\": %ld, "
	       "\"fds_after\": %ld, \"sockets_left\": %ld, \"drain_ms\": %ld}\n", opt.conns, releases,
	       atomic_load(&handler_closes), forks, children_failed, eintr, fds_before, fds_after,
	       left, drain_ms);
	fflush(stdout);

	for (long i = 0; i < opt.at_exit; i++) {
		int s = accept_reply(listener);
		atomic_store(&exit_list[i], s);
	}
	exit(0);
}
