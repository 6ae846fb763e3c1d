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
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static struct {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	unsigned long conns;
	char **handler_argv;   /* { PATH, ARG..., NULL } */
} opt;

static unsigned long done, errors;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void usage(const char *msg)
{
	if (msg)
		fprintf(stderr, "inetd: %s\n", msg);
	fprintf(stderr, "usage: inetd [--listen ADDR:PORT] [--conns N] --handler PATH [-- ARG...]\n");
	exit(2);
}

static unsigned long parse_num(const char *s, unsigned long max)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);

	if (errno || end == s || *end || s[0] == '-' || v > max)
		usage("bad number");
	return (unsigned long)v;
}

/* "1.2.3.4:PORT" or "[v6addr]:PORT". */
static void parse_addr(const char *s)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(s, ':');
	size_t hlen;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		usage("bad --listen address");
	hlen = (size_t)(colon - s);
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	in_port_t port = htons((in_port_t)parse_num(colon + 1, 65535));

	memset(&opt.addr, 0, sizeof(opt.addr));
	struct sockaddr_in *a4 = (struct sockaddr_in *)&opt.addr;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&opt.addr;
	if (hlen > 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host[hlen - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
			usage("bad IPv6 address");
		a6->sin6_family = AF_INET6;
		a6->sin6_port = port;
		opt.addrlen = sizeof(*a6);
	} else {
		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			usage("bad IPv4 address");
		a4->sin_family = AF_INET;
		a4->sin_port = port;
		opt.addrlen = sizeof(*a4);
	}
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

	parse_addr("127.0.0.1:7000");
	/* "+": stop at the first non-option, so that "--" ends our options. */
	while ((ch = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l': parse_addr(optarg); break;
		case 'n': opt.conns = parse_num(optarg, ULONG_MAX); break;
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

static int listen_socket(void)
{
	int one = 1;
	int fd = socket(opt.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		die("SO_REUSEADDR");
	if (bind(fd, (struct sockaddr *)&opt.addr, opt.addrlen) < 0)
		die("bind");
	if (listen(fd, 128) < 0)
		die("listen");
	return fd;
}

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		die("getsockname");
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
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
	int lfd = listen_socket();
	printf("READY %d\n", bound_port(lfd));
	fflush(stdout);

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
