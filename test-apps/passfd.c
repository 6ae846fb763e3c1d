/*
 * passfd -- a front process that accepts connections and hands each one to a
 * worker process over a Unix socket (SCM_RIGHTS), the way pre-forked servers
 * and socket-activation front ends pass connections around.
 *
 *   passfd [--listen ADDR:PORT] [--conns N] [--reply-size N] [--fail-at K]
 *          [--error-size N] [--read-size N]
 *
 * At start the front makes a socketpair(AF_UNIX, SOCK_SEQPACKET) and forks
 * the worker (before it listens or accepts). For each accepted connection
 * the front sendmsg()s the descriptor to the worker and close()s its own
 * copy right away: while the descriptor is in flight, and afterwards, the
 * worker's copy is what keeps the connection.
 *
 * The worker recvmsg()s each descriptor and serves it with pipeserver's
 * protocol: request n gets "OK <n> <reply-size>\n" plus body; request
 * --fail-at K (default 13), or a line starting with "BAD", gets
 * "ERR <n> <error-size>\n" plus body, then close() with whatever the client
 * sent after it unread. It then tells the front (one status byte per
 * connection). Prints "READY <port>" once listening; with --conns N, after
 * the worker has served N connections the front closes the socketpair (the
 * worker exits on EOF), reaps the worker and prints {"conns": N, "errors": E}
 * (E: connections the worker saw a read or write error on, plus hand-over
 * failures).
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

#define MAX_LINE 65536

static struct {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	unsigned long conns;
	unsigned long reply_size, error_size, read_size, fail_at;
} opt = { .reply_size = 1000, .error_size = 1000000, .read_size = 4096, .fail_at = 13 };

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* ---- the worker: pipeserver's protocol on one blocking connection -------- */

static bool write_all(int fd, const char *buf, size_t len)
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

static bool reply(int fd, const char *kind, unsigned long n, unsigned long len)
{
	char hdr[64];
	int hlen = snprintf(hdr, sizeof(hdr), "%s %lu %lu\n", kind, n, len);
	char *out = malloc((size_t)hlen + len);
	bool ok;

	if (!out)
		die("malloc");
	memcpy(out, hdr, (size_t)hlen);
	for (unsigned long i = 0; i < len; i++)
		out[(size_t)hlen + i] = (char)('a' + i % 26);
	ok = write_all(fd, out, (size_t)hlen + len);
	free(out);
	return ok;
}

/* Serve until the error reply is out, EOF or an I/O error; then close(). False on an error. */
static bool serve(int fd)
{
	size_t len = 0;
	char *in = malloc(opt.read_size + MAX_LINE);
	unsigned long nreq = 0;
	bool ok = true;

	if (!in)
		die("malloc");
	for (;;) {
		char *nl = len ? memchr(in, '\n', len) : NULL;
		size_t take;

		if (nl) {
			take = (size_t)(nl - in) + 1;
		} else if (len >= MAX_LINE) {
			take = len;
		} else {
			ssize_t n = read(fd, in + len, opt.read_size);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				ok = false;
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
			ok = reply(fd, "ERR", nreq, opt.error_size);
			break;
		}
		if (!reply(fd, "OK", nreq, opt.reply_size)) {
			ok = false;
			break;
		}
	}
	free(in);
	close(fd);
	return ok;
}

/* One descriptor from the front, or -1 at EOF. */
static int receive_fd(int sock)
{
	char byte;
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};

	for (;;) {
		ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("worker: recvmsg");
		if (n == 0)
			return -1;
		break;
	}
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)) || (msg.msg_flags & MSG_CTRUNC)) {
		fprintf(stderr, "passfd worker: message without a descriptor\n");
		exit(1);
	}
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof(fd));
	return fd;
}

static void worker(int sock)
{
	int fd;

	while ((fd = receive_fd(sock)) >= 0) {
		char status = serve(fd) ? '0' : '1';
		if (write_all(sock, &status, 1) == false)
			die("worker: status");
	}
	close(sock);
	exit(0);
}

/* ---- the front ------------------------------------------------------------ */

static bool send_fd(int sock, int fd)
{
	char byte = 'c';
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};

	memset(&ctl, 0, sizeof(ctl));
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(fd));
	for (;;) {
		if (sendmsg(sock, &msg, MSG_NOSIGNAL) == 1)
			return true;
		if (errno != EINTR) {
			perror("passfd: sendmsg");
			return false;
		}
	}
}

static void usage(const char *msg)
{
	if (msg)
		fprintf(stderr, "passfd: %s\n", msg);
	fprintf(stderr, "usage: passfd [--listen ADDR:PORT] [--conns N] [--reply-size N]\n"
		"  [--fail-at K] [--error-size N] [--read-size N]\n");
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
	in_port_t port = htons((in_port_t)parse_num(colon + 1, 0, 65535));

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
		{ "reply-size", required_argument, NULL, 'r' },
		{ "fail-at", required_argument, NULL, 'f' },
		{ "error-size", required_argument, NULL, 'e' },
		{ "read-size", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const unsigned long big = 1UL << 30;
	int ch;

	parse_addr("127.0.0.1:7000");
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l': parse_addr(optarg); break;
		case 'n': opt.conns = parse_num(optarg, 0, ULONG_MAX); break;
		case 'r': opt.reply_size = parse_num(optarg, 0, big); break;
		case 'f': opt.fail_at = parse_num(optarg, 0, ULONG_MAX); break;
		case 'e': opt.error_size = parse_num(optarg, 0, big); break;
		case 's': opt.read_size = parse_num(optarg, 1, big); break;
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

int main(int argc, char **argv)
{
	unsigned long accepted = 0, served = 0, errors = 0;
	int sv[2];

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair");
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(sv[0]);
		worker(sv[1]);
	}
	close(sv[1]);

	int lfd = listen_socket();
	printf("READY %d\n", bound_port(lfd));
	fflush(stdout);

	while (opt.conns == 0 || accepted < opt.conns) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EINTR && errno != ECONNABORTED)
				perror("accept4");
			continue;
		}
		accepted++;
		if (!send_fd(sv[0], fd)) {
			errors++;
			served++;   /* the worker will never report this one */
		}
		/* Handed over: the front lets go of its copy at once. */
		close(fd);
	}
	close(lfd);

	/* The worker reports each connection it has finished. */
	while (served < accepted) {
		char status;
		ssize_t n = read(sv[0], &status, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "passfd: the worker is gone\n");
			errors += accepted - served;
			break;
		}
		served++;
		if (status != '0')
			errors++;
	}
	close(sv[0]);   /* EOF: the worker exits */
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	printf("{\"conns\": %lu, \"errors\": %lu}\n", accepted, errors);
	return 0;
}
