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
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LINE 65536

static struct {
	unsigned long reply_size, error_size, read_size, fail_at;
	bool end_exit;
} opt = { .reply_size = 1000, .error_size = 1000000, .read_size = 4096, .fail_at = 13 };

static void usage(const char *msg)
{
	if (msg)
		fprintf(stderr, "stdhandler: %s\n", msg);
	fprintf(stderr, "usage: stdhandler [--reply-size N] [--fail-at K] [--error-size N]\n"
		"  [--read-size N] [--end close|exit]\n");
	exit(2);
}

static unsigned long parse_num(const char *s, unsigned long min, unsigned long max)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);

	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		usage("bad number");
	return (unsigned long)v;
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "reply-size", required_argument, NULL, 'r' },
		{ "fail-at", required_argument, NULL, 'f' },
		{ "error-size", required_argument, NULL, 'e' },
		{ "read-size", required_argument, NULL, 's' },
		{ "end", required_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const unsigned long big = 1UL << 30;
	int ch;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'r': opt.reply_size = parse_num(optarg, 0, big); break;
		case 'f': opt.fail_at = parse_num(optarg, 0, ULONG_MAX); break;
		case 'e': opt.error_size = parse_num(optarg, 0, big); break;
		case 's': opt.read_size = parse_num(optarg, 1, big); break;
		case 'E':
			if (strcmp(optarg, "exit") == 0)
				opt.end_exit = true;
			else if (strcmp(optarg, "close") != 0)
				usage("bad --end");
			break;
		default: usage(NULL);
		}
	}
	if (optind < argc)
		usage("unexpected argument");
}

/* All of buf to fd 1. */
static bool write_all(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(1, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror("stdhandler: write");
			return false;
		}
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

/* "<kind> <n> <len>\n" plus len body bytes, in one buffer, as pipeserver does. */
static bool reply(const char *kind, unsigned long n, unsigned long len)
{
	char hdr[64];
	int hlen = snprintf(hdr, sizeof(hdr), "%s %lu %lu\n", kind, n, len);
	char *out = malloc((size_t)hlen + len);
	bool ok;

	if (!out) {
		perror("stdhandler: malloc");
		exit(1);
	}
	memcpy(out, hdr, (size_t)hlen);
	for (unsigned long i = 0; i < len; i++)
		out[(size_t)hlen + i] = (char)('a' + i % 26);
	ok = write_all(out, (size_t)hlen + len);
	free(out);
	return ok;
}

/* Serve until the error reply is out, EOF or an I/O error. False on an error. */
static bool serve(void)
{
	size_t cap = opt.read_size + MAX_LINE, len = 0;
	char *in = malloc(cap);
	unsigned long nreq = 0;
	bool ok = true;

	if (!in) {
		perror("stdhandler: malloc");
		exit(1);
	}
	for (;;) {
		char *nl = len ? memchr(in, '\n', len) : NULL;
		size_t take;

		if (nl) {
			take = (size_t)(nl - in) + 1;
		} else if (len >= MAX_LINE) {
			take = len;   /* an over-long line counts as one request */
		} else {
			/* No full request buffered: one read() of at most --read-size. */
			ssize_t n = read(0, in + len, opt.read_size);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				perror("stdhandler: read");
				ok = false;
			}
			if (n <= 0)
				break;
			len += (size_t)n;
			continue;
		}
		bool bad = take >= 3 && memcmp(in, "BAD", 3) == 0;
		memmove(in, in + take, len - take);
		len -= take;
		nreq++;
		if (nreq == opt.fail_at || bad) {
			ok = reply("ERR", nreq, opt.error_size);
			break;
		}
		if (!reply("OK", nreq, opt.reply_size)) {
			ok = false;
			break;
		}
	}
	free(in);
	return ok;
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	bool ok = serve();
	if (opt.end_exit)
		exit(ok ? 0 : 1);   /* 0 and 1 still open: exit lets go of them */
	close(1);
	close(0);
	return ok ? 0 : 1;
}
