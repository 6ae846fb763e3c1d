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
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static struct {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	unsigned long conns;
	struct proto_opts proto;
} opt = { .proto = PROTO_DEFAULTS };

/* ---- the worker: pipeserver's protocol on one blocking connection -------- */

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
		/* Connection errors go to the front as a status, not to stderr. */
		char status = serve_requests(fd, fd, &opt.proto, NULL) ? '0' : '1';
		close(fd);
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
	usage_exit("passfd", msg,
		"usage: passfd [--listen ADDR:PORT] [--conns N] [--reply-size N]\n"
		"  [--fail-at K] [--error-size N] [--read-size N]\n");
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "conns", required_argument, NULL, 'n' },
		PROTO_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	parse_addr(DEFAULT_LISTEN, ADDR_LISTEN, &opt.addr, &opt.addrlen);
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l': parse_addr(optarg, ADDR_LISTEN, &opt.addr, &opt.addrlen); break;
		case 'n': opt.conns = parse_num(optarg, 0, ULONG_MAX); break;
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

	int lfd = listen_ready(&opt.addr, opt.addrlen, 0, 128);

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
