/*
 * inetd -- a minimal inetd/tcpserver: one exec'd handler per connection,
 * talking to the client on its stdin and stdout.
 *
 *   inetd [--listen ADDR:PORT] [--conns N] [--spawn] [--close-after-child]
 *         [--as-nobody] --handler PATH [-- ARG...]
 *
 * For each connection it fork()s; the child dup2()s the connection onto
 * descriptors 0 and 1, closes the original descriptor and the listener and
 * execv()s PATH with argv { PATH, ARG... }. The parent closes its copy of the
 * connection right after fork(). Prints "READY <port>" once listening; with
 * --conns N it stops accepting after N connections, reaps the N children and
 * prints one JSON line {"conns": N, "errors": E} (E: children that did not
 * exit with status 0, and failed forks). Descriptor 2 is left to the handler.
 * With --spawn the handler is started by posix_spawn() instead, the way Rust's
 * Command and glibc's own popen() start programs: the connection is accepted
 * close-on-exec and put on 0 and 1 by the spawn's dup2 file actions. With
 * --close-after-child the parent keeps its copy of the connection until that
 * handler has exited (a supervisor that outlives its handlers): the parent's
 * close is then the last one. With --as-nobody the forked child drops to
 * user and group 65534 before the exec, as inetd's and tcpserver's user
 * options do.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static struct {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	unsigned long conns;
	bool spawn;
	bool close_after_child;
	bool as_nobody;
	char **handler_argv;   /* { PATH, ARG..., NULL } */
} opt;

static unsigned long done, errors;

static void usage(const char *msg)
{
	usage_exit("inetd", msg,
		"usage: inetd [--listen ADDR:PORT] [--conns N] [--spawn] [--close-after-child]\n"
		"             [--as-nobody] --handler PATH [-- ARG...]\n");
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "conns", required_argument, NULL, 'n' },
		{ "handler", required_argument, NULL, 'H' },
		{ "spawn", no_argument, NULL, 's' },
		{ "close-after-child", no_argument, NULL, 'c' },
		{ "as-nobody", no_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *handler = NULL;
	int ch;

	parse_addr(DEFAULT_LISTEN, ADDR_LISTEN, &opt.addr, &opt.addrlen);
	/* "+": stop at the first non-option, so that "--" ends our options. */
	while ((ch = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l': parse_addr(optarg, ADDR_LISTEN, &opt.addr, &opt.addrlen); break;
		case 'n': opt.conns = parse_num(optarg, 0, ULONG_MAX); break;
		case 'H': handler = optarg; break;
		case 's': opt.spawn = true; break;
		case 'c': opt.close_after_child = true; break;
		case 'u': opt.as_nobody = true; break;
		default: usage(NULL);
		}
	}
	if (!handler)
		usage("--handler is required");
	if (optind < argc && strcmp(argv[optind - 1], "--") != 0)
		usage("handler arguments go after --");
	opt.handler_argv = calloc((size_t)(argc - optind) + 2, sizeof(char *));
	if (!opt.handler_argv)
		die("calloc");
	opt.handler_argv[0] = (char *)handler;
	for (int i = optind; i < argc; i++)
		opt.handler_argv[i - optind + 1] = argv[i];
}

/* Reap finished children (`which`: -1 any, or that one); with flags 0 wait
 * for one. False once none is left. */
static bool reap_child(pid_t which, int flags)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(which, &status, flags);
		if (pid > 0) {
			done++;
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				errors++;
			if (flags == 0)
				return true;
		} else if (pid < 0 && errno == EINTR) {
			continue;
		} else {
			return pid == 0;
		}
	}
}

/* The child: the connection becomes stdin and stdout, then the handler runs. */
static void run_handler(int lfd, int fd)
{
	if (dup2(fd, 0) < 0 || dup2(fd, 1) < 0) {
		perror("inetd: dup2");
		_exit(126);
	}
	if (fd > 1)
		close(fd);
	close(lfd);
	if (opt.as_nobody && (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)) {
		perror("inetd: setuid");
		_exit(126);
	}
	execv(opt.handler_argv[0], opt.handler_argv);
	fprintf(stderr, "inetd: execv %s: %s\n", opt.handler_argv[0], strerror(errno));
	_exit(127);
}

/* The same with posix_spawn: fd (close-on-exec) goes to 0 and 1 by file
 * actions. Returns the child's pid, or -1. */
static pid_t spawn_handler(int lfd, int fd)
{
	extern char **environ;
	posix_spawn_file_actions_t fa;
	pid_t pid;

	if (posix_spawn_file_actions_init(&fa) != 0 ||
	    posix_spawn_file_actions_adddup2(&fa, fd, 0) != 0 ||
	    posix_spawn_file_actions_adddup2(&fa, fd, 1) != 0 ||
	    posix_spawn_file_actions_addclose(&fa, lfd) != 0)
		die("posix_spawn_file_actions");
	int r = posix_spawn(&pid, opt.handler_argv[0], &fa, NULL, opt.handler_argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0) {
		errno = r;
		return -1;
	}
	return pid;
}

static bool reap(int flags)
{
	return reap_child(-1, flags);
}

int main(int argc, char **argv)
{
	unsigned long accepted = 0;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	int lfd = listen_ready(&opt.addr, opt.addrlen, 0, 128);

	while (opt.conns == 0 || accepted < opt.conns) {
		reap(WNOHANG);
		int fd = accept4(lfd, NULL, NULL, opt.spawn ? SOCK_CLOEXEC : 0);
		if (fd < 0) {
			if (errno != EINTR && errno != ECONNABORTED)
				perror("accept4");
			continue;
		}
		accepted++;
		pid_t pid = opt.spawn ? spawn_handler(lfd, fd) : fork();
		if (pid == 0)
			run_handler(lfd, fd);
		if (pid < 0) {
			perror(opt.spawn ? "posix_spawn" : "fork");
			done++;
			errors++;
		}
		if (pid > 0 && opt.close_after_child)
			reap_child(pid, 0);
		close(fd);   /* the parent's copy goes at once, or after its handler */
	}
	close(lfd);
	while (done < accepted && reap(0))
		;
	printf("{\"conns\": %lu, \"errors\": %lu}\n", done, errors);
	free(opt.handler_argv);
	return 0;
}
