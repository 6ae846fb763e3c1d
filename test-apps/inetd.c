/*
 * inetd -- a minimal inetd/tcpserver: one exec'd handler per connection,
 * talking to the client on its stdin and stdout.
 *
 *   inetd [--listen ADDR:PORT] [--conns N] --handler PATH [-- ARG...]
 *
 * For each connection it fork()s; the child dup2()s the connection onto
 * descriptors 0 and 1, closes the original descriptor and the listener and
 * execv()s PATH with argv { PATH, ARG... }. The parent closes its copy of the
 * connection right after fork(). Prints "READY <port>" once listening; with
 * --conns N it stops accepting after N connections, reaps the N children and
 * prints one JSON line {"conns": N, "errors": E} (E: children that did not
 * exit with status 0, and failed forks). Descriptor 2 is left to the handler.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
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
	char **handler_argv;   /* { PATH, ARG..., NULL } */
} opt;

static unsigned long done, errors;

static void usage(const char *msg)
{
	usage_exit("inetd", msg,
		"usage: inetd [--listen ADDR:PORT] [--conns N] --handler PATH [-- ARG...]\n");
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "conns", required_argument, NULL, 'n' },
		{ "handler", required_argument, NULL, 'H' },
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

/* Reap finished children; with flags 0 wait for one. False once none is left. */
static bool reap(int flags)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, flags);
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
	execv(opt.handler_argv[0], opt.handler_argv);
	fprintf(stderr, "inetd: execv %s: %s\n", opt.handler_argv[0], strerror(errno));
	_exit(127);
}

int main(int argc, char **argv)
{
	unsigned long accepted = 0;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	int lfd = listen_ready(&opt.addr, opt.addrlen, 0, 128);

	while (opt.conns == 0 || accepted < opt.conns) {
		reap(WNOHANG);
		int fd = accept4(lfd, NULL, NULL, 0);
		if (fd < 0) {
			if (errno != EINTR && errno != ECONNABORTED)
				perror("accept4");
			continue;
		}
		accepted++;
		pid_t pid = fork();
		if (pid == 0)
			run_handler(lfd, fd);
		if (pid < 0) {
			perror("fork");
			done++;
			errors++;
		}
		close(fd);   /* the parent's copy goes at once */
	}
	close(lfd);
	while (done < accepted && reap(0))
		;
	printf("{\"conns\": %lu, \"errors\": %lu}\n", done, errors);
	free(opt.handler_argv);
	return 0;
}
