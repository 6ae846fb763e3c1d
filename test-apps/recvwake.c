/*
 * recvwake -- a server that stops its reader thread the common way: by
 * shutting the socket down under it.
 *
 * It accepts one connection and starts a reader thread that sits in recv()
 * on it, reading the client's requests and discarding them. The main thread
 * writes one reply, "ERR 1 <len>\n" plus --reply-size body bytes (the error
 * reply of pipeserver's protocol, so pipeclient reports it as error_reply
 * complete/partial), then calls shutdown(fd, SHUT_RDWR) to wake the reader,
 * joins it with a timeout (pthread_timedjoin_np, --join-timeout-ms), closes
 * the socket and prints one JSON line:
 *   reader_woken         the reader returned from recv() after the shutdown,
 *                        within the join timeout
 *   woken_after_ms       ms from shutdown() to the reader's return; -1 if it
 *                        did not return in time (it is then left blocked and
 *                        the process exits under it)
 *   reader_result        how its last recv() ended: "eof", an errno name
 *                        ("ECONNRESET", ...), or "blocked" if it never returned
 *   reader_ended_early   the reader had already returned before shutdown()
 *                        (the client went away first): reader_woken is then false
 *   reader_bytes         request bytes the reader read and discarded
 *
 * Shutting down the read side is itself a reset trigger on Linux (data that
 * arrives afterwards is answered with a RST), so the client usually loses
 * part of the reply; the point of this program is whether the reader wakes.
 *
 *   recvwake [--listen ADDR:PORT] [--reply-size N] [--join-timeout-ms T]
 * Prints "READY <port>" once listening.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	unsigned long reply_size, join_timeout_ms;
} opt = { .reply_size = 1000000, .join_timeout_ms = 10000 };

struct reader {
	int fd;
	int result;                /* 0: EOF, else the errno of the failing recv() */
	unsigned long long bytes;
	int64_t ended_ns;          /* written before the thread returns */
};

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *errname(int e)
{
	static char buf[32];
	const char *name = strerrorname_np(e);

	if (name)
		return name;
	snprintf(buf, sizeof(buf), "E%d", e);
	return buf;
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	static char buf[65536];

	for (;;) {
		ssize_t n = recv(r->fd, buf, sizeof(buf), 0);
		if (n > 0) {
			r->bytes += (unsigned long long)n;   /* requests: read and dropped */
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		r->result = n == 0 ? 0 : errno;
		break;
	}
	__atomic_store_n(&r->ended_ns, now_ns(), __ATOMIC_RELEASE);
	return NULL;
}

/* The whole reply with blocking writes. False if the connection failed. */
static bool write_reply(int fd)
{
	char hdr[64];
	int hlen = snprintf(hdr, sizeof(hdr), "ERR 1 %lu\n", opt.reply_size);
	size_t len = (size_t)hlen + opt.reply_size;
	char *out = malloc(len ? len : 1);
	size_t off = 0;
	bool ok = true;

	if (!out)
		die("malloc");
	memcpy(out, hdr, (size_t)hlen);
	for (unsigned long i = 0; i < opt.reply_size; i++)
		out[(size_t)hlen + i] = (char)('a' + i % 26);
	while (off < len) {
		ssize_t n = write(fd, out + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "recvwake: write: %s\n", strerror(errno));
			ok = false;
			break;
		}
		off += (size_t)n;
	}
	free(out);
	return ok;
}

static void usage(const char *msg)
{
	if (msg)
		fprintf(stderr, "recvwake: %s\n", msg);
	fprintf(stderr, "usage: recvwake [--listen ADDR:PORT] [--reply-size N] "
		"[--join-timeout-ms T]\n");
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
		{ "reply-size", required_argument, NULL, 'r' },
		{ "join-timeout-ms", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	parse_addr("127.0.0.1:7000");
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l': parse_addr(optarg); break;
		case 'r': opt.reply_size = parse_num(optarg, 1UL << 30); break;
		case 'j': opt.join_timeout_ms = parse_num(optarg, 86400000); break;
		default: usage(NULL);
		}
	}
	if (optind < argc)
		usage("unexpected argument");
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
	if (listen(fd, 16) < 0)
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

int main(int argc, char **argv)
{
	static struct reader r;
	pthread_t tid;
	int fd, err;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	int lfd = listen_socket();
	printf("READY %d\n", bound_port(lfd));
	fflush(stdout);

	do
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	while (fd < 0 && (errno == EINTR || errno == ECONNABORTED));
	if (fd < 0)
		die("accept4");
	close(lfd);

	r.fd = fd;
	err = pthread_create(&tid, NULL, reader_main, &r);
	if (err) {
		fprintf(stderr, "pthread_create: %s\n", strerror(err));
		return 1;
	}

	write_reply(fd);

	/* Stop the reader: shut the socket down under its blocked recv(). */
	bool early = __atomic_load_n(&r.ended_ns, __ATOMIC_ACQUIRE) != 0;
	int64_t shut_ns = now_ns();
	if (shutdown(fd, SHUT_RDWR) < 0)
		fprintf(stderr, "recvwake: shutdown: %s\n", strerror(errno));

	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);   /* pthread_timedjoin_np's clock */
	deadline.tv_sec += (time_t)(opt.join_timeout_ms / 1000);
	deadline.tv_nsec += (long)(opt.join_timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	do
		err = pthread_timedjoin_np(tid, NULL, &deadline);
	while (err == EINTR);
	bool joined = err == 0;
	if (err && err != ETIMEDOUT)
		fprintf(stderr, "pthread_timedjoin_np: %s\n", strerror(err));

	close(fd);

	bool woken = joined && !early;
	long long after_ms = woken ? (r.ended_ns - shut_ns) / 1000000 : -1;
	if (woken && after_ms < 0)
		after_ms = 0;   /* ended just as shutdown() was called */
	printf("{\"reader_woken\": %s, \"woken_after_ms\": %lld, \"reader_result\": \"%s\", "
	       "\"reader_ended_early\": %s, \"reader_bytes\": %llu}\n",
	       woken ? "true" : "false", after_ms,
	       !joined ? "blocked" : r.result == 0 ? "eof" : errname(r.result),
	       early ? "true" : "false", joined ? r.bytes : 0ULL);
	/* A reader still blocked in recv() ends with the process. */
	return 0;
}
