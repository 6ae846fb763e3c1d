/*
 * hostilepeer -- a client of pipeserver's protocol that asks for the error
 * close and then never stops sending.
 *
 *   hostilepeer --connect ADDR:PORT --mode slowloris|flood [--gap-ms G]
 *               [--timeout-ms T]
 *
 * It sends "BAD 1" (pipeserver answers with its error reply and closes) and
 * 4 KiB more at once, then reads everything that arrives while it sends on:
 * slowloris one byte every G ms (1000), flood as much as the socket takes,
 * until a send fails (the server's side is gone: its reset) or T ms (10000).
 * One JSON line: error_reply ("complete"|"partial"|"none"), end (how reading
 * ended: "eof", "ECONNRESET", ...), eof_ms and reset_ms (ms from connect to
 * the end of stream and to the server's reset: a failed send, or the error
 * poll() reports after the end of stream; -1 if none), sent_after_eof
 * (bytes handed to the kernel after the end of stream).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>

#include "common.h"

static void usage(const char *msg)
{
	usage_exit("hostilepeer", msg, "usage: hostilepeer --connect ADDR:PORT --mode slowloris|flood "
		   "[--gap-ms G] [--timeout-ms T]\n");
}

static struct {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	bool flood, have_addr, have_mode;
	long gap_ms, timeout_ms;
} opt = { .gap_ms = 1000, .timeout_ms = 10000 };

static int64_t ms_since(int64_t start_ns)
{
	return (now_ns() - start_ns) / 1000000;
}

/* What arrived: the header "ERR 1 <len>\n" and then len body bytes. */
struct reply {
	char hdr[REPLY_HDR_MAX];
	size_t hlen, body, want;
	bool have_hdr;
};

static void take(struct reply *r, const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (r->have_hdr) {
			r->body += n - i;
			return;
		}
		if (r->hlen < sizeof r->hdr - 1)
			r->hdr[r->hlen++] = buf[i];
		if (buf[i] == '\n') {
			r->hdr[r->hlen] = '\0';
			unsigned long id, len;
			r->have_hdr = sscanf(r->hdr, "ERR %lu %lu", &id, &len) == 2;
			r->want = len;
		}
	}
}

static void parse(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "mode", required_argument, NULL, 'm' },
		{ "gap-ms", required_argument, NULL, 'g' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	for (int ch; (ch = getopt_long(argc, argv, "", longopts, NULL)) != -1;) {
		switch (ch) {
		case 'c':
			parse_addr(optarg, ADDR_CONNECT, &opt.addr, &opt.addrlen);
			opt.have_addr = true;
			break;
		case 'm':
			if (strcmp(optarg, "slowloris") && strcmp(optarg, "flood"))
				usage("--mode slowloris|flood");
			opt.flood = !strcmp(optarg, "flood");
			opt.have_mode = true;
			break;
		case 'g': opt.gap_ms = (long)parse_num(optarg, 1, 86400000); break;
		case 't': opt.timeout_ms = (long)parse_num(optarg, 1, 86400000); break;
		default: usage(NULL);
		}
	}
	if (!opt.have_addr || !opt.have_mode)
		usage("--connect and --mode are required");
}

int main(int argc, char **argv)
{
	static char junk[65536];
	struct reply r = { .hlen = 0 };
	int64_t start = now_ns(), eof_ms = -1, reset_ms = -1, next_byte = 0;
	unsigned long sent_after_eof = 0;
	const char *end = "timeout";

	parse(argc, argv);
	memset(junk, 'x', sizeof junk);
	int c = socket(opt.addr.ss_family, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&opt.addr, opt.addrlen) < 0)
		die("connect");
	if (!write_all(c, "BAD 1\n", 6) || !write_all(c, junk, 4096))
		die("write");
	fcntl(c, F_SETFL, O_NONBLOCK);
	while (reset_ms < 0 && ms_since(start) < opt.timeout_ms) {
		int64_t now = ms_since(start);
		bool due = opt.flood || now >= next_byte;
		struct pollfd p = { .fd = c, .events = (eof_ms < 0 ? POLLIN : 0) |
						      (opt.flood ? POLLOUT : 0) };
		int wait = opt.flood ? 100 : (int)(due ? 0 : next_byte - now);
		if (poll(&p, 1, wait) < 0 && errno != EINTR)
			die("poll");
		/* After the end of stream only the server's reset can be reported. */
		if (p.revents & (POLLERR | POLLHUP) && eof_ms >= 0) {
			reset_ms = ms_since(start);
			break;
		}
		if (p.revents & (POLLIN | POLLERR | POLLHUP) && eof_ms < 0) {
			ssize_t n = read(c, junk, sizeof junk);
			if (n == 0) {
				eof_ms = ms_since(start);
				end = "eof";
			} else if (n < 0 && errno != EAGAIN) {
				end = errname(errno);
				break;
			} else if (n > 0) {
				take(&r, junk, (size_t)n);
			}
		}
		if (opt.flood ? !(p.revents & POLLOUT) : ms_since(start) < next_byte)
			continue;
		ssize_t w = send(c, junk, opt.flood ? sizeof junk : 1, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN)
			reset_ms = ms_since(start);
		else if (w > 0 && eof_ms >= 0)
			sent_after_eof += (unsigned long)w;
		next_byte = ms_since(start) + opt.gap_ms;
	}
	const char *reply = !r.have_hdr ? "none" : r.body == r.want ? "complete" : "partial";
	printf("{\"error_reply\": \"%s\", \"end\": \"%s\", \"eof_ms\": %lld, \"reset_ms\": %lld, "
	       "\"sent_after_eof\": %lu}\n", reply, end, (long long)eof_ms, (long long)reset_ms,
	       sent_after_eof);
	return 0;
}
