/*
 * stdhandler -- pipeserver's request/response service on stdin and stdout,
 * as an inetd or tcpserver handler (see inetd.c): the connection is
 * descriptors 0 and 1.
 *
 *   stdhandler [--reply-size N] [--fail-at K] [--error-size N] [--read-size N]
 *              [--end close|exit]
 *
 * Requests are lines read with read(0); request n gets "OK <n> <reply-size>\n"
 * plus body, written with write(1). Request --fail-at K (default 13), or any
 * line starting with "BAD", gets "ERR <n> <error-size>\n" plus body, and the
 * handler ends at once without reading anything more:
 *   --end close  (default) close(1), then close(0): the last close releases
 *                the connection with the client's later requests unread;
 *   --end exit   exit(0) with 0 and 1 still open: the kernel lets go of them.
 * It ends the same way when the client closes or a read or write fails
 * (exit status 1 on an I/O error). Nothing is printed on stdout but replies.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static struct {
	struct proto_opts proto;
	bool end_exit;
} opt = { .proto = PROTO_DEFAULTS };

static void usage(const char *msg)
{
	usage_exit("stdhandler", msg,
		"usage: stdhandler [--reply-size N] [--fail-at K] [--error-size N]\n"
		"  [--read-size N] [--end close|exit]\n");
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		PROTO_LONGOPTS,
		{ "end", required_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'E':
			if (strcmp(optarg, "exit") == 0)
				opt.end_exit = true;
			else if (strcmp(optarg, "close") != 0)
				usage("bad --end");
			break;
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
	signal(SIGPIPE, SIG_IGN);
	bool ok = serve_requests(0, 1, &opt.proto, "stdhandler");
	if (opt.end_exit)
		exit(ok ? 0 : 1);   /* 0 and 1 still open: exit lets go of them */
	close(1);
	close(0);
	return ok ? 0 : 1;
}
