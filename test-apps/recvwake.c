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
#include <errno.h>
#include <getopt.h>
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

#include "common.h"

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
	size_t len;
	char *out = make_reply("ERR", 1, opt.reply_size, &len);
	bool ok;

	if (!out)
		die("malloc");
	ok = write_all(fd, out, len);
	if (!ok)
		perror_as("recvwake", "write");
	free(out);
	return ok;
}

static void usage(const char *msg)
{
	usage_exit("recvwake", msg,
		"usage: recvwake [--listen ADDR:PORT] [--reply-size N] "
		"[--join-timeout-ms T]\n");
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

	parse_addr(DEFAULT_LISTEN, ADDR_LISTEN, &opt.addr, &opt.addrlen);
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l': parse_addr(optarg, ADDR_LISTEN, &opt.addr, &opt.addrlen); break;
		case 'r': opt.reply_size = parse_num(optarg, 0, 1UL << 30); break;
		case 'j': opt.join_timeout_ms = parse_num(optarg, 0, 86400000); break;
		default: usage(NULL);
		}
	}
	if (optind < argc)
		usage("unexpected argument");
}

int main(int argc, char **argv)
{
	static struct reader r;
	pthread_t tid;
	int fd, err;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	int lfd = listen_ready(&opt.addr, opt.addrlen, 0, 16);

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
