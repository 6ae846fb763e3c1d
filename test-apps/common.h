/*
 * common.h -- what the test programs share: ADDR:PORT parsing, the listening
 * socket and its "READY <port>" line, write-all, pipeserver's request/reply
 * protocol ("OK|ERR <n> <len>\n" plus an a-z body, its options and its
 * blocking serve loop), errno names and a monotonic clock.
 *
 * Header-only, because the Makefile builds each test-apps/X.c alone into
 * build/X. Include it after defining _GNU_SOURCE; the includer defines
 * usage(), since only it knows its own synopsis.
 */
#ifndef TEST_APPS_COMMON_H
#define TEST_APPS_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Defined by each program, as a call of usage_exit() with its own synopsis. */
static void usage(const char *msg);

/* Status 2 tells a usage error from a run that failed (1). */
static inline void usage_exit(const char *prog, const char *msg, const char *synopsis)
{
	if (msg)
		fprintf(stderr, "%s: %s\n", prog, msg);
	fputs(synopsis, stderr);
	exit(2);
}

static inline void die(const char *what)
{
	perror(what);
	exit(1);
}

/* who NULL: the bare perror() form, which some programs have always printed. */
static inline void perror_as(const char *who, const char *what)
{
	if (who)
		fprintf(stderr, "%s: %s: %s\n", who, what, strerror(errno));
	else
		perror(what);
}

/* CLOCK_MONOTONIC: intervals that a clock step cannot bend. */
static inline int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The JSON lines name errors; strerrorname_np() has no name for some numbers. */
static inline const char *errname(int e)
{
	static char buf[32];
	const char *name = strerrorname_np(e);

	if (name)
		return name;
	snprintf(buf, sizeof(buf), "E%d", e);
	return buf;
}

/* ---- options ------------------------------------------------------------- */

static inline unsigned long parse_num(const char *s, unsigned long min, unsigned long max)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);

	/* strtoull() would take "-1" for a huge number. */
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		usage("bad number");
	return (unsigned long)v;
}

#define DEFAULT_LISTEN "127.0.0.1:7000"

/*
 * A listener may ask for port 0 (READY then tells which port it got); a
 * client needs the port of a server, and says so as "bad port".
 */
enum addr_role { ADDR_LISTEN, ADDR_CONNECT };

/* "1.2.3.4:PORT" or "[v6addr]:PORT". */
static inline void parse_addr(const char *s, enum addr_role role,
			      struct sockaddr_storage *addr, socklen_t *addrlen)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(s, ':');
	size_t hlen;
	unsigned long port;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		usage(role == ADDR_CONNECT ? "bad --connect address" : "bad --listen address");
	hlen = (size_t)(colon - s);
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (role == ADDR_CONNECT) {
		port = parse_num(colon + 1, 0, ULONG_MAX);
		if (port == 0 || port > 65535)
			usage("bad port");
	} else {
		port = parse_num(colon + 1, 0, 65535);
	}

	memset(addr, 0, sizeof(*addr));
	struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
	if (hlen > 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host[hlen - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
			usage("bad IPv6 address");
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((in_port_t)port);
		*addrlen = sizeof(*a6);
	} else {
		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			usage("bad IPv4 address");
		a4->sin_family = AF_INET;
		a4->sin_port = htons((in_port_t)port);
		*addrlen = sizeof(*a4);
	}
}

/* ---- listening ----------------------------------------------------------- */

static inline int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		die("getsockname");
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/*
 * The listening socket, then "READY <port>" on stdout: the harness starts the
 * clients on that line, and with port 0 it is how they learn the port.
 * type_flags: SOCK_* flags besides SOCK_STREAM | SOCK_CLOEXEC.
 */
static inline int listen_ready(const struct sockaddr_storage *addr, socklen_t addrlen,
			       int type_flags, int backlog)
{
	int one = 1;
	int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC | type_flags, 0);

	if (fd < 0)
		die("socket");
	/* A rerun must not wait for the last run's connections in TIME_WAIT. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		die("SO_REUSEADDR");
	if (bind(fd, (const struct sockaddr *)addr, addrlen) < 0)
		die("bind");
	if (listen(fd, backlog) < 0)
		die("listen");
	printf("READY %d\n", bound_port(fd));
	fflush(stdout);
	return fd;
}

/* False on a write error, with errno set for the caller to report or count. */
static inline bool write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

/* ---- pipeserver's protocol ----------------------------------------------- */

/* A line longer than this without '\n' is taken as one (garbage) request. */
#define MAX_LINE 65536
/* "ERR", two 20-digit numbers, the spaces and the newline, with room to spare. */
#define REPLY_HDR_MAX 64

static inline size_t reply_header(char hdr[REPLY_HDR_MAX], const char *kind,
				  unsigned long n, unsigned long len)
{
	return (size_t)snprintf(hdr, REPLY_HDR_MAX, "%s %lu %lu\n", kind, n, len);
}

static inline void reply_body(char *out, unsigned long len)
{
	for (unsigned long i = 0; i < len; i++)
		out[i] = (char)('a' + i % 26);
}

/*
 * Header and body in one buffer, so that the reply goes out in as few
 * write()s as the kernel allows. NULL if malloc() fails.
 */
static inline char *make_reply(const char *kind, unsigned long n, unsigned long len,
			       size_t *total)
{
	char hdr[REPLY_HDR_MAX];
	size_t hlen = reply_header(hdr, kind, n, len);
	char *out = malloc(hlen + len);

	if (!out)
		return NULL;
	memcpy(out, hdr, hlen);
	reply_body(out + hlen, len);
	*total = hlen + len;
	return out;
}

struct proto_opts {
	unsigned long reply_size, error_size, read_size, fail_at;
};

#define PROTO_DEFAULTS { .reply_size = 1000, .error_size = 1000000, .read_size = 4096, .fail_at = 13 }

/*
 * The same place in every program's table: getopt_long() lists the
 * candidates of an ambiguous abbreviation ("--re") in table order.
 */
#define PROTO_LONGOPTS \
	{ "reply-size", required_argument, NULL, 'r' }, \
	{ "fail-at", required_argument, NULL, 'f' }, \
	{ "error-size", required_argument, NULL, 'e' }, \
	{ "read-size", required_argument, NULL, 's' }

/* False if ch is none of PROTO_LONGOPTS. */
static inline bool proto_option(struct proto_opts *p, int ch, const char *arg)
{
	const unsigned long big = 1UL << 30;

	switch (ch) {
	case 'r': p->reply_size = parse_num(arg, 0, big); return true;
	case 'f': p->fail_at = parse_num(arg, 0, ULONG_MAX); return true;
	case 'e': p->error_size = parse_num(arg, 0, big); return true;
	case 's': p->read_size = parse_num(arg, 1, big); return true;
	default: return false;
	}
}

/*
 * who: the name I/O errors are reported under; NULL leaves them to the
 * caller, which counts them, and a fatal error is then reported bare.
 */
static inline bool send_reply(int fd, const char *kind, unsigned long n, unsigned long len,
			      const char *who)
{
	size_t total;
	char *out = make_reply(kind, n, len, &total);
	bool ok;

	if (!out) {
		perror_as(who, "malloc");
		exit(1);
	}
	ok = write_all(fd, out, total);
	if (!ok && who)
		perror_as(who, "write");
	free(out);
	return ok;
}

/*
 * pipeserver's protocol on one blocking connection, requests from rfd and
 * replies to wfd, until the error reply is out, EOF or an I/O error (false).
 * who: as for send_reply().
 */
static inline bool serve_requests(int rfd, int wfd, const struct proto_opts *p, const char *who)
{
	size_t len = 0;
	char *in = malloc(p->read_size + MAX_LINE);
	unsigned long nreq = 0;
	bool ok = true;

	if (!in) {
		perror_as(who, "malloc");
		exit(1);
	}
	for (;;) {
		char *nl = len ? memchr(in, '\n', len) : NULL;
		size_t take;

		if (nl) {
			take = (size_t)(nl - in) + 1;
		} else if (len >= MAX_LINE) {
			take = len;
		} else {
			/* No full request buffered: one read() of at most read_size, like pipeserver. */
			ssize_t n = read(rfd, in + len, p->read_size);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				if (who)
					perror_as(who, "read");
				ok = false;
			}
			if (n <= 0)
				break;
			len += (size_t)n;
			continue;
		}
		/* "BAD ..." fails like fail_at: the client asks for the error close. */
		bool bad = take >= 3 && memcmp(in, "BAD", 3) == 0;
		memmove(in, in + take, len - take);
		len -= take;
		nreq++;
		if (nreq == p->fail_at || bad) {
			ok = send_reply(wfd, "ERR", nreq, p->error_size, who);
			break;
		}
		if (!send_reply(wfd, "OK", nreq, p->reply_size, who)) {
			ok = false;
			break;
		}
	}
	free(in);
	return ok;
}

#endif
