/*
 * quietserver -- pipeserver's protocol on one blocking connection at a time,
 * ended at a quiet moment: once the error reply is written, the server keeps
 * reading (and dropping) what the client sends until its reply has been
 * acknowledged and nothing is left unread, and only then calls close().
 * Like an event-loop server that reads everything as it comes (Node.js
 * dumping a request body it refused) and lets go of the connection a moment
 * after its reply was delivered: nothing is unread or unacknowledged at the
 * close, yet the client, still sending, is reset by its next request.
 *
 * usage: quietserver [--listen ADDR:PORT] [--conns N] [proto options]
 * Prints "READY <port>", then {"conns": N} once N connections are done.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "common.h"

static struct {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	struct proto_opts proto;
	unsigned long conns;
} opt = { .proto = PROTO_DEFAULTS, .conns = 1 };

static void usage(const char *msg)
{
	usage_exit("quietserver", msg,
		"usage: quietserver [--listen ADDR:PORT] [--conns N] [--reply-size N]\n"
		"  [--fail-at K] [--error-size N] [--read-size N]\n");
}

/* Bytes of our output the peer has not acknowledged yet (SIOCOUTQ). */
static int unacknowledged(int fd)
{
	int n = 0;

	if (ioctl(fd, SIOCOUTQ, &n) < 0)
		die("SIOCOUTQ");
	return n;
}

/* Drops what is queued; true when something was. */
static bool drop_input(int fd)
{
	static char buf[65536];
	bool got = false;
	ssize_t n;

	while ((n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
		got = true;
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		die("recv");
	return got;
}

/* Until the reply is acknowledged and a look at the input found nothing. */
static void wait_quiet(int fd)
{
	for (;;) {
		bool got = drop_input(fd);
		if (!got && unacknowledged(fd) == 0)
			return;
		/* The acknowledgement raises no event: look again shortly. */
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 1) < 0 && errno != EINTR)
			die("poll");
	}
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		PROTO_LONGOPTS,
		{ "conns", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	parse_addr(DEFAULT_LISTEN, ADDR_LISTEN, &opt.addr, &opt.addrlen);
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l': parse_addr(optarg, ADDR_LISTEN, &opt.addr, &opt.addrlen); break;
		case 'n': opt.conns = parse_num(optarg, 1, ULONG_MAX); break;
		case 'h': usage(NULL); break;
		default:
			if (!proto_option(&opt.proto, ch, optarg))
				usage(NULL);
		}
	}
	if (optind < argc)
		usage("unexpected argument");
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	int lfd = listen_ready(&opt.addr, opt.addrlen, 0, 16);

	for (unsigned long i = 0; i < opt.conns; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			die("accept");
		serve_requests(fd, fd, &opt.proto, NULL);
		wait_quiet(fd);
		close(fd);
	}
	printf("{\"conns\": %lu}\n", opt.conns);
	return 0;
}
