/*
 * pipeclient -- a pipelining TCP client that keeps sending requests while it
 * reads the replies, like the client of the original bug report.
 *
 * One thread, one non-blocking socket, one poll() loop: request i goes out
 * at connect + (i-1) * --gap-ms, and everything that arrives is parsed on the
 * fly (counted, not kept) until the server's EOF, an error or --timeout-ms.
 * It then prints one JSON line saying what arrived and how the reading ended,
 * so a test can tell a complete reply and a clean EOF from a reply cut short
 * by a RST (ECONNRESET).
 *
 *   --proto line: requests "GET <i>\n", replies "OK|ERR <n> <len>\n" + body
 *                 (the protocol of pipeserver).
 *   --proto http: requests "GET <path> HTTP/1.1"; only the first response
 *                 is parsed (status, Content-Length, body bytes).
 *
 * Variations:
 *   --bad-at K     (line) request K is sent as "BAD <K>\n": pipeserver fails it.
 *   --hold-ms H    once the run is over, keep the socket open H ms more,
 *                  silent (neither sending nor reading), then close it: a
 *                  client that has its reply and lingers idle.
 *   --quit-after N (line) send N requests, read N complete OK replies, then
 *                  close the socket normally and stop: "end": "quit". A
 *                  well-behaved client that ends the connection itself. If the
 *                  server ends first, "end" says how, as usual.
 *   --forever      keep sending one request every --gap-ms (no --requests
 *                  limit), also after the server's EOF, until a send() or
 *                  recv() fails or --timeout-ms passes. "end" still says how
 *                  *reading* ended: once read() has returned 0 it stays "eof",
 *                  and a later send error (EPIPE, ECONNRESET) does not override
 *                  it; that later error shows in "reset_ms". If sending fails
 *                  before reading has ended, "end" is that send error
 *                  ("end_errno_where": "send"), as without --forever. If the
 *                  deadline passes after an EOF, "end" stays "eof" and
 *                  "reset_ms" is -1.
 *   --read-after-ms D  read nothing before D ms after connecting (sending
 *                  goes on): a client busy with its upload, whose kernel holds
 *                  the replies meanwhile. A RST in that time makes the kernel
 *                  drop them, and the first read finds ECONNRESET.
 *   --post-bytes N (http) each request is "POST <path>" with an N-byte body,
 *                  streamed as fast as the link takes it: an upload that a
 *                  server may reject (413) before reading it.
 *
 *   --closed-loop  (line) request i+1 goes out only once reply i is complete
 *                  (and not before its --gap-ms time): an interactive client.
 *                  The JSON line then has "latency_us", the time from each
 *                  request's last byte sent to its OK reply's last byte, in
 *                  microseconds, one per OK reply.
 *
 * Besides the fields above, the JSON line always has
 *   "sent_bytes" bytes handed to the kernel (a request cut short counts too);
 *   "eof_ms"    ms from connect until read() returned 0, or -1;
 *   "reset_ms"  ms from connect until the first ECONNRESET or EPIPE from
 *               send() or recv(), or -1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include "common.h"

#define RECV_CHUNK 65536
#define LINE_HDR_MAX 128
#define HTTP_HDR_MAX 16384

static struct {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	bool http;
	unsigned long requests, gap_ms, timeout_ms;
	unsigned long quit_after, bad_at;   /* 0: off */
	unsigned long post_bytes;           /* 0: GET */
	unsigned long read_after_ms;
	bool forever, closed_loop;
	unsigned long hold_ms;
	const char *path;
} opt = { .requests = 64, .gap_ms = 10, .timeout_ms = 20000, .path = "/" };

/* ---- time ----------------------------------------------------------------- */

/* poll() timeout for a deadline, rounded up so that we never wake just before it. */
static int poll_ms_until(int64_t deadline, int64_t now)
{
	int64_t ns = deadline - now;
	if (ns <= 0)
		return 0;
	return (int)((ns + 999999) / 1000000);
}

/* ---- line protocol parser --------------------------------------------------- */

enum err_reply { ERR_NONE, ERR_PARTIAL, ERR_COMPLETE };

struct line_parser {
	char hdr[LINE_HDR_MAX];
	size_t hlen;
	bool in_body, is_err, junk;
	unsigned long remaining;      /* body bytes of the current reply still due */
	unsigned long ok_replies, error_id;
	enum err_reply err;
};

static void line_reply_done(struct line_parser *p)
{
	p->in_body = false;
	if (p->is_err)
		p->err = ERR_COMPLETE;
	else
		p->ok_replies++;
}

static void line_header(struct line_parser *p)
{
	unsigned long n, len;
	char kind[4], extra;

	p->hdr[p->hlen] = '\0';
	p->hlen = 0;
	if (sscanf(p->hdr, "%3s %lu %lu %c", kind, &n, &len, &extra) != 3 ||
	    (strcmp(kind, "OK") != 0 && strcmp(kind, "ERR") != 0)) {
		/* Not our protocol: stop parsing, keep counting bytes. */
		fprintf(stderr, "pipeclient: bad reply header \"%.40s\"\n", p->hdr);
		p->junk = true;
		return;
	}
	p->is_err = kind[0] == 'E';
	if (p->is_err) {
		p->error_id = n;
		p->err = ERR_PARTIAL;
	}
	p->remaining = len;
	p->in_body = true;
	if (len == 0)
		line_reply_done(p);
}

static void line_feed(struct line_parser *p, const char *data, size_t n)
{
	while (n > 0 && !p->junk) {
		if (p->in_body) {
			size_t take = n < p->remaining ? n : p->remaining;
			p->remaining -= take;
			data += take;
			n -= take;
			if (p->remaining == 0)
				line_reply_done(p);
			continue;
		}
		char ch = *data++;
		n--;
		if (ch == '\n') {
			line_header(p);
		} else if (p->hlen + 1 < sizeof(p->hdr)) {
			/* A header that has begun with 'E' is an error reply in progress. */
			if (p->hlen == 0 && ch == 'E')
				p->err = ERR_PARTIAL;
			p->hdr[p->hlen++] = ch;
		} else {
			fprintf(stderr, "pipeclient: reply header too long\n");
			p->junk = true;
		}
	}
}

/* ---- HTTP parser (first response only) ------------------------------------ */

struct http_parser {
	char hdr[HTTP_HDR_MAX];
	size_t hlen;
	bool in_body, done;
	int status;
	long long content_length;     /* -1: none given, body runs to EOF */
	unsigned long long body_bytes;
	bool complete;
};

static void http_headers(struct http_parser *p)
{
	char *save, *line;

	p->hdr[p->hlen] = '\0';
	line = strtok_r(p->hdr, "\r\n", &save);
	if (!line || sscanf(line, "HTTP/%*d.%*d %d", &p->status) != 1)
		p->status = 0;
	while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
		if (strncasecmp(line, "Content-Length:", 15) == 0)
			p->content_length = strtoll(line + 15, NULL, 10);
	}
	p->in_body = true;
	if (p->content_length == 0) {
		p->complete = true;
		p->done = true;
	}
}

static void http_feed(struct http_parser *p, const char *data, size_t n)
{
	while (n > 0 && !p->done) {
		if (p->in_body) {
			unsigned long long take = n;
			if (p->content_length >= 0 &&
			    take > (unsigned long long)p->content_length - p->body_bytes)
				take = (unsigned long long)p->content_length - p->body_bytes;
			p->body_bytes += take;
			data += take;
			n -= (size_t)take;
			if (p->content_length >= 0 &&
			    p->body_bytes == (unsigned long long)p->content_length)
				p->complete = p->done = true;
			continue;
		}
		p->hdr[p->hlen++] = *data++;
		n--;
		if (p->hlen >= 4 && memcmp(p->hdr + p->hlen - 4, "\r\n\r\n", 4) == 0) {
			http_headers(p);
		} else if (p->hlen + 1 >= sizeof(p->hdr)) {
			fprintf(stderr, "pipeclient: response headers too long\n");
			p->done = true;
		}
	}
}

/* ---- the connection ------------------------------------------------------ */

struct client {
	int fd;
	int64_t start, connected, deadline;
	unsigned long sent;           /* requests fully handed to the kernel */
	unsigned long long sent_bytes;
	char *out;                    /* the request being sent */
	size_t out_off, out_len;
	bool sending;
	int send_errno;               /* first send() failure, 0 if none */
	unsigned long long bytes;
	const char *end;              /* how reading ended (or "quit", "timeout") */
	const char *end_where;
	bool stop;                    /* the run is over (--forever outlives end) */
	bool send_now;                /* --forever after EOF: the peer reset, send at once */
	char local[64];               /* our address:port, as the server sees its peer */
	int64_t eof_ms, reset_ms;     /* -1 until it happens */
	struct line_parser line;
	struct http_parser http;
	int64_t request_out;          /* --closed-loop: when the last request went out */
	long long *latency_us;        /* one per OK reply */
	unsigned long latencies;
};

static void usage(const char *msg)
{
	usage_exit("pipeclient", msg,
		"usage: pipeclient --connect ADDR:PORT [--proto line|http] [--requests N]\n"
		"  [--gap-ms G] [--path P] [--timeout-ms T] [--quit-after N] [--forever]\n"
		"  [--bad-at K] [--post-bytes N] [--read-after-ms D] [--hold-ms H]\n"
		"  [--closed-loop]\n");
}

/* Exit 1 with the JSON line the harness expects when there is no connection. */
static void connect_failed(int e)
{
	printf("{\"end\": \"connect-failed\", \"errno\": \"%s\"}\n", errname(e));
	exit(1);
}

static void do_connect(struct client *c)
{
	int err = 0;
	socklen_t len = sizeof(err);
	struct pollfd pfd;

	c->fd = socket(opt.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		connect_failed(errno);
	if (connect(c->fd, (struct sockaddr *)&opt.addr, opt.addrlen) == 0)
		return;
	if (errno != EINPROGRESS)
		connect_failed(errno);
	for (;;) {
		pfd = (struct pollfd){ .fd = c->fd, .events = POLLOUT };
		int r = poll(&pfd, 1, poll_ms_until(c->deadline, now_ns()));
		if (r > 0)
			break;
		if (r == 0)
			connect_failed(ETIMEDOUT);
		if (errno != EINTR)
			connect_failed(errno);
	}
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err)
		connect_failed(err);
}

static void build_request(struct client *c)
{
	unsigned long i = c->sent + 1;
	size_t cap = strlen(opt.path) + 128 + opt.post_bytes;
	int n;

	c->out = realloc(c->out, cap);
	if (!c->out)
		die("realloc");
	if (opt.http && opt.post_bytes)
		n = snprintf(c->out, cap, "POST %s HTTP/1.1\r\nHost: localhost\r\n"
			     "Content-Length: %lu\r\n\r\n", opt.path, opt.post_bytes);
	else if (opt.http)
		n = snprintf(c->out, cap, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", opt.path);
	else
		n = snprintf(c->out, cap, "%s %lu\n", i == opt.bad_at ? "BAD" : "GET", i);
	c->out_len = (size_t)n;
	if (opt.http && opt.post_bytes) {
		memset(c->out + c->out_len, 'x', opt.post_bytes);
		c->out_len += opt.post_bytes;
	}
	c->out_off = 0;
}

static int64_t next_send_time(const struct client *c)
{
	return c->connected + (int64_t)c->sent * (int64_t)opt.gap_ms * 1000000;
}

static int64_t read_start(const struct client *c)
{
	return c->connected + (int64_t)opt.read_after_ms * 1000000;
}

static int64_t since_connect_ms(const struct client *c)
{
	return (now_ns() - c->connected) / 1000000;
}

/* Remember when the connection was first found reset. */
static void note_errno(struct client *c, int e)
{
	if ((e == ECONNRESET || e == EPIPE) && c->reset_ms < 0)
		c->reset_ms = since_connect_ms(c);
}

static void set_end(struct client *c, const char *end, const char *where)
{
	if (c->end)
		return;
	c->end = end;
	c->end_where = where;
	if (!opt.forever)
		c->stop = true;
}

/* --closed-loop: a request is out whose reply is not complete yet. */
static bool awaiting_reply(const struct client *c)
{
	return opt.closed_loop && c->line.ok_replies + (c->line.err != ERR_NONE) < c->sent;
}

/* Push the current request out; start the next one when its time has come. */
static void pump_send(struct client *c, int64_t now)
{
	while (c->sending) {
		if (c->out_off == c->out_len) {
			if (!opt.forever && c->sent >= opt.requests) {
				c->sending = false;
				return;
			}
			if ((now < next_send_time(c) && !c->send_now) || awaiting_reply(c))
				return;
			c->send_now = false;
			build_request(c);
		}
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* Stop sending; the reading side says how the connection ended. */
			c->send_errno = errno;
			c->sending = false;
			note_errno(c, errno);
			if (opt.forever)
				c->stop = true;
			return;
		}
		c->out_off += (size_t)n;
		c->sent_bytes += (unsigned long long)n;
		if (c->out_off == c->out_len) {
			c->sent++;
			c->request_out = now_ns();
		}
	}
}

/* Read whatever is queued. Sets c->end when the reading side has ended. */
static void pump_recv(struct client *c)
{
	static char buf[RECV_CHUNK];

	for (int i = 0; i < 64; i++) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			c->bytes += (unsigned long long)n;
			unsigned long replies = c->line.ok_replies;
			if (opt.http)
				http_feed(&c->http, buf, (size_t)n);
			else
				line_feed(&c->line, buf, (size_t)n);
			if (opt.closed_loop && c->line.ok_replies > replies && c->latency_us)
				c->latency_us[c->latencies++] = (now_ns() - c->request_out) / 1000;
			if (opt.quit_after && c->line.ok_replies >= opt.quit_after) {
				/* All we asked for is in: hang up ourselves. */
				set_end(c, "quit", "");
				return;
			}
			continue;
		}
		if (n == 0) {
			if (c->eof_ms < 0)
				c->eof_ms = since_connect_ms(c);
			/*
			 * After a RST, the send() that hit it took the error and recv()
			 * then only sees the connection shut: that is not a clean EOF.
			 */
			if (c->send_errno)
				set_end(c, errname(c->send_errno), "send");
			else
				set_end(c, "eof", "");
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		note_errno(c, errno);
		set_end(c, errname(errno), "recv");
		c->stop = true;   /* with --forever too: recv failed */
		return;
	}
}

static void run(struct client *c)
{
	c->sending = opt.forever || opt.requests > 0;
	while (!c->stop) {
		int64_t now = now_ns();
		if (now >= c->deadline) {
			/* With --forever after an EOF, "end" keeps saying "eof". */
			set_end(c, "timeout", "");
			break;
		}
		/* Read before sending, so that a RST is seen by recv(), not consumed by send(). */
		bool reading = now >= read_start(c);
		if (reading)
			pump_recv(c);
		if (c->stop)
			break;
		pump_send(c, now);
		if (c->stop) {
			/* --forever: send failed. Take what reading still has to say. */
			pump_recv(c);
			set_end(c, errname(c->send_errno), "send");
			break;
		}

		/*
		 * After the EOF (--forever) the socket polls readable for good: wait
		 * only for the next send time, or POLLERR/POLLHUP (a RST), then.
		 */
		struct pollfd pfd = { .fd = c->fd, .events = c->end || !reading ? 0 : POLLIN };
		int64_t wake = reading ? c->deadline : read_start(c);
		if (c->sending && c->out_off < c->out_len)
			pfd.events |= POLLOUT;
		else if (c->sending && next_send_time(c) < wake && !awaiting_reply(c))
			wake = next_send_time(c);
		if (!reading && !pfd.events)
			pfd.fd = -1;   /* a RST polls as an error for good: sleep until reading */
		if (poll(&pfd, 1, poll_ms_until(wake, now_ns())) < 0 && errno != EINTR)
			die("poll");
		/*
		 * After an EOF recv() keeps returning 0 even once a RST came in:
		 * the next send() is what reports it, so send right away.
		 */
		if (c->end && (pfd.revents & (POLLERR | POLLHUP)))
			c->send_now = true;
	}
	if (opt.hold_ms)
		poll(NULL, 0, (int)opt.hold_ms);
	close(c->fd);
}

/* Our own endpoint "ADDR:PORT": the server's peer, which names the
 * connection (an A/B test computes its arm from it). */
static void note_local_address(struct client *c)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof a;
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (getsockname(c->fd, (struct sockaddr *)&a, &len) == 0) {
		if (a.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&a;
			inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
			port = ntohs(in->sin_port);
		} else if (a.ss_family == AF_INET6) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a;
			inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
			port = ntohs(in6->sin6_port);
		}
	}
	snprintf(c->local, sizeof c->local, "%s:%d", host, port);
}

static void print_result(const struct client *c)
{
	static const char *const err_names[] = { "none", "partial", "complete" };
	long long elapsed = (now_ns() - c->start) / 1000000;

	printf("{\"sent\": %lu, \"sent_bytes\": %llu, \"bytes\": %llu, \"local\": \"%s\", ",
	       c->sent, c->sent_bytes, c->bytes, c->local);
	if (opt.http)
		printf("\"status\": %d, \"content_length\": %lld, \"body_bytes\": %llu, "
		       "\"first_complete\": %s, ",
		       c->http.status, c->http.content_length, c->http.body_bytes,
		       /* A response without Content-Length ends with the connection. */
		       (c->http.complete || (c->http.in_body && c->http.content_length < 0 &&
					     strcmp(c->end, "eof") == 0)) ? "true" : "false");
	else
		printf("\"ok_replies\": %lu, \"error_reply\": \"%s\", \"error_id\": %lu, ",
		       c->line.ok_replies, err_names[c->line.err], c->line.error_id);
	if (opt.closed_loop) {
		printf("\"latency_us\": [");
		for (unsigned long i = 0; i < c->latencies; i++)
			printf("%s%lld", i ? ", " : "", c->latency_us[i]);
		printf("], ");
	}
	printf("\"end\": \"%s\", \"end_errno_where\": \"%s\", \"eof_ms\": %lld, "
	       "\"reset_ms\": %lld, \"elapsed_ms\": %lld}\n",
	       c->end, c->end_where, (long long)c->eof_ms, (long long)c->reset_ms, elapsed);
}

/* ---- options ------------------------------------------------------------- */

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "proto", required_argument, NULL, 'p' },
		{ "requests", required_argument, NULL, 'n' },
		{ "gap-ms", required_argument, NULL, 'g' },
		{ "path", required_argument, NULL, 'P' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "quit-after", required_argument, NULL, 'q' },
		{ "forever", no_argument, NULL, 'F' },
		{ "bad-at", required_argument, NULL, 'b' },
		{ "post-bytes", required_argument, NULL, 'B' },
		{ "read-after-ms", required_argument, NULL, 'R' },
		{ "hold-ms", required_argument, NULL, 'H' },
		{ "closed-loop", no_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool have_addr = false;
	int ch;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': parse_addr(optarg, ADDR_CONNECT, &opt.addr, &opt.addrlen); have_addr = true; break;
		case 'p':
			if (strcmp(optarg, "http") == 0)
				opt.http = true;
			else if (strcmp(optarg, "line") != 0)
				usage("bad --proto");
			break;
		case 'n': opt.requests = parse_num(optarg, 0, ULONG_MAX); break;
		case 'g': opt.gap_ms = parse_num(optarg, 0, ULONG_MAX); break;
		case 'P': opt.path = optarg; break;
		case 't': opt.timeout_ms = parse_num(optarg, 0, ULONG_MAX); break;
		case 'q': opt.quit_after = parse_num(optarg, 0, ULONG_MAX); break;
		case 'F': opt.forever = true; break;
		case 'b': opt.bad_at = parse_num(optarg, 0, ULONG_MAX); break;
		case 'B': opt.post_bytes = parse_num(optarg, 0, 1UL << 30); break;
		case 'R': opt.read_after_ms = parse_num(optarg, 0, 86400000); break;
		case 'H': opt.hold_ms = parse_num(optarg, 0, 86400000); break;
		case 'L': opt.closed_loop = true; break;
		default: usage(NULL);
		}
	}
	if (!have_addr)
		usage("--connect is required");
	if (optind < argc)
		usage("unexpected argument");
	if (opt.gap_ms > 86400000 || opt.timeout_ms > 86400000)
		usage("--gap-ms and --timeout-ms are at most a day");
	if (opt.http && (opt.quit_after || opt.bad_at))
		usage("--quit-after and --bad-at need --proto line");
	if (opt.post_bytes && !opt.http)
		usage("--post-bytes needs --proto http");
	if (opt.quit_after && opt.forever)
		usage("--quit-after and --forever exclude each other");
	if (opt.forever && opt.gap_ms == 0)
		usage("--forever needs --gap-ms > 0");
	if (opt.closed_loop && (opt.http || opt.forever))
		usage("--closed-loop needs --proto line and a number of requests");
	if (opt.quit_after)
		opt.requests = opt.quit_after;
}

int main(int argc, char **argv)
{
	static struct client c;

	parse_args(argc, argv);
	c.http.content_length = -1;
	c.eof_ms = c.reset_ms = -1;
	c.start = now_ns();
	c.deadline = c.start + (int64_t)opt.timeout_ms * 1000000;
	if (opt.closed_loop && !(c.latency_us = calloc(opt.requests + 1, sizeof *c.latency_us)))
		die("calloc");
	do_connect(&c);
	note_local_address(&c);
	c.connected = now_ns();
	run(&c);
	print_result(&c);
	free(c.out);
	free(c.latency_us);
	return 0;
}
