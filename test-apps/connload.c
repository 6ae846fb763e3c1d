/*
 * connload -- many short HTTP connections against a real server, each
 * checked for its whole reply.
 *
 *   connload --connect ADDR:PORT --path P [--conns N] [--parallel C] [--pipelined]
 *
 * C threads make N connections in all, one after the other each: connect,
 * send "GET P HTTP/1.1" (with --pipelined a second request in the same
 * write, with a 16 KiB header, which an HTTP/1.0 server such as python3 -m
 * http.server leaves unread when it closes after the first reply), read the status line, the
 * headers and Content-Length bytes of body, then expect the end of stream.
 * One JSON line: conns, complete (status 200, the whole body, then EOF),
 * lost (a reply cut short), reset (ECONNRESET), failed (anything else:
 * connect refused, a timeout of 20 s), ms (the run's wall time).
 */
#define _GNU_SOURCE
#include <getopt.h>

#include "common.h"
#include "stress.h"

static void usage(const char *msg)
{
	usage_exit("connload", msg, "usage: connload --connect ADDR:PORT --path P [--conns N] "
		   "[--parallel C] [--pipelined]\n");
}

static struct {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	const char *path;
	long conns, parallel;
	bool pipelined;
} opt = { .conns = 1000, .parallel = 4 };

static struct stress_tally tally;
static atomic_long next_conn;

/* Reads at most n bytes (up to the end of stream) before the deadline. */
static ssize_t read_some(int c, char *buf, size_t n, int64_t until)
{
	for (;;) {
		struct pollfd p = { .fd = c, .events = POLLIN };
		int64_t left = until - pair_now_ms();
		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		ssize_t r = read(c, buf, n);
		if (r >= 0 || errno != EINTR)
			return r;
	}
}

static enum stress_outcome failure(void)
{
	return errno == ECONNRESET ? STRESS_RESET : STRESS_FAILED;
}

static enum stress_outcome read_response(int c)
{
	char buf[65536];
	size_t got = 0;
	int64_t until = pair_now_ms() + 20000;
	char *end = NULL;

	while (!end) {
		if (got == sizeof buf - 1)
			return STRESS_FAILED;
		ssize_t r = read_some(c, buf + got, sizeof buf - 1 - got, until);
		if (r < 0)
			return got ? STRESS_LOST : failure();
		if (r == 0)
			return STRESS_LOST;
		got += (size_t)r;
		buf[got] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	const char *cl = strcasestr(buf, "\r\nContent-Length:");
	if (strncmp(buf, "HTTP/1.", 7) || strncmp(buf + 8, " 200 ", 5) || !cl || cl > end)
		return STRESS_FAILED;
	long want = atol(cl + 17), body = (long)(got - (size_t)(end + 4 - buf));
	while (body < want) {
		ssize_t r = read_some(c, buf, sizeof buf, until);
		if (r < 0)
			return errno == ECONNRESET ? STRESS_RESET : STRESS_LOST;
		if (r == 0)
			return STRESS_LOST;
		body += r;
	}
	/* HTTP/1.0 (or a second reply we do not want): only the end of stream counts. */
	ssize_t r;
	while ((r = read_some(c, buf, sizeof buf, until)) > 0)
		;
	if (r < 0)
		return failure();
	return body == want ? STRESS_COMPLETE : STRESS_LOST;
}

/* The second request carries a header longer than a server's read buffer
 * (Python's is 8 KiB): most of it is still unread when the server closes. */
#define PAD 16384

static enum stress_outcome one(void)
{
	char req[1024 + PAD];
	int n = snprintf(req, 1024, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", opt.path);
	int c = socket(opt.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	enum stress_outcome o = STRESS_FAILED;

	if (opt.pipelined) {
		memcpy(req + n, req, (size_t)n - 2);
		n += n - 2;
		n += snprintf(req + n, 16, "X-Pad: ");
		memset(req + n, 'p', PAD - 32);
		n += PAD - 32;
		n += snprintf(req + n, 8, "\r\n\r\n");
	}
	if (c < 0)
		return STRESS_FAILED;
	if (connect(c, (struct sockaddr *)&opt.addr, opt.addrlen) == 0 && write_all(c, req, (size_t)n))
		o = read_response(c);
	close(c);
	return o;
}

static void *worker(void *arg)
{
	(void)arg;
	while (atomic_fetch_add(&next_conn, 1) < opt.conns)
		stress_count(&tally, one());
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "path", required_argument, NULL, 'P' },
		{ "conns", required_argument, NULL, 'n' },
		{ "parallel", required_argument, NULL, 'p' },
		{ "pipelined", no_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	bool have_addr = false;
	pthread_t t[64];

	for (int ch; (ch = getopt_long(argc, argv, "", longopts, NULL)) != -1;) {
		switch (ch) {
		case 'c': parse_addr(optarg, ADDR_CONNECT, &opt.addr, &opt.addrlen); have_addr = true; break;
		case 'P': opt.path = optarg; break;
		case 'n': opt.conns = (long)parse_num(optarg, 1, 100000000); break;
		case 'p': opt.parallel = (long)parse_num(optarg, 1, 64); break;
		case 'l': opt.pipelined = true; break;
		default: usage(NULL);
		}
	}
	if (!have_addr || !opt.path || strlen(opt.path) > 900)
		usage("--connect and --path (at most 900 bytes) are required");
	int64_t start = pair_now_ms();
	for (long i = 0; i < opt.parallel; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (long i = 0; i < opt.parallel; i++)
		pthread_join(t[i], NULL);
	printf("{\"conns\": %ld, \"complete\": %lu, \"lost\": %lu, \"reset\": %lu, \"failed\": %lu, "
	       "\"ms\": %lld}\n", opt.conns, atomic_load(&tally.complete), atomic_load(&tally.lost),
	       atomic_load(&tally.reset), atomic_load(&tally.failed),
	       (long long)(pair_now_ms() - start));
	return 0;
}
