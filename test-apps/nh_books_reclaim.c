/*
 * nh_books_reclaim -- a long-lived server's connections, many times over:
 * each accepted connection is handed to a worker over SCM_RIGHTS and closed
 * (as Node's cluster master does), and every 16th round a child that holds
 * a batch of sockets is killed with SIGKILL. The cost of a socket()+close()
 * at the end must be the cost at the start, and the last connection (a
 * reply, then input it never read) is closed like any other.
 *
 *   nh_books_reclaim ROUNDS
 *
 * Prints what it did and a coarse verdict on the cost ("the same" within a
 * factor of three, best of many batches: a table scanned per call costs far
 * more); the ratio itself goes to stderr.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "common.h"

static void usage(const char *msg)
{
	usage_exit("nh_books_reclaim", msg, "usage: nh_books_reclaim ROUNDS\n");
}

#define BATCH 32  /* sockets a killed child holds */

static int listener_on_loopback(struct sockaddr_in *addr)
{
	socklen_t len = sizeof *addr;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	*addr = (struct sockaddr_in){ .sin_family = AF_INET,
				      .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (fd < 0 || bind(fd, (struct sockaddr *)addr, sizeof *addr) < 0 ||
	    listen(fd, 64) < 0 || getsockname(fd, (struct sockaddr *)addr, &len) < 0)
		die("listener");
	return fd;
}

static void connect_pair(int listener, const struct sockaddr_in *addr, int *client, int *conn)
{
	*client = socket(AF_INET, SOCK_STREAM, 0);
	if (*client < 0 || connect(*client, (const struct sockaddr *)addr, sizeof *addr) < 0)
		die("connect");
	*conn = accept(listener, NULL, NULL);
	if (*conn < 0)
		die("accept");
}

/* fd over SCM_RIGHTS; the worker end is read with read(), which drops the
 * passed descriptor: the worker is done with it at once. */
static void give_away(int channel, int worker, int fd)
{
	char byte = 'x', ctl[CMSG_SPACE(sizeof(int))] = { 0 }, sink[16];
	struct iovec iov = { &byte, 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			      .msg_controllen = sizeof ctl };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	if (sendmsg(channel, &msg, 0) != 1 || read(worker, sink, sizeof sink) != 1)
		die("SCM_RIGHTS");
}

/* A child holding BATCH sockets, killed with SIGKILL once it has them. */
static void child_killed_holding_sockets(void)
{
	int fds[BATCH], ready[2];
	char c;

	for (int i = 0; i < BATCH; i++)
		if ((fds[i] = socket(AF_INET, SOCK_STREAM, 0)) < 0)
			die("socket");
	if (pipe(ready) < 0)
		die("pipe");
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	if (read(ready[0], &c, 1) != 1)
		die("child");
	for (int i = 0; i < BATCH; i++)
		close(fds[i]);
	close(ready[0]);
	close(ready[1]);
	kill(pid, SIGKILL);
	int status;
	if (waitpid(pid, &status, 0) != pid || !WIFSIGNALED(status))
		die("waitpid");
}

/* Nanoseconds per socket()+close(): the best of 25 batches of 200, so that
 * another process taking the CPU for a while does not count. */
static int64_t socket_close_cost(void)
{
	int64_t best = INT64_MAX;

	for (int b = 0; b < 25; b++) {
		int64_t start = now_ns();
		for (int i = 0; i < 200; i++) {
			int fd = socket(AF_INET, SOCK_STREAM, 0);
			if (fd < 0)
				die("socket");
			close(fd);
		}
		int64_t per = (now_ns() - start) / 200;
		best = per < best ? per : best;
	}
	return best;
}

int main(int argc, char **argv)
{
	if (argc != 2)
		usage(NULL);
	unsigned long rounds = parse_num(argv[1], 1, 10000000);
	struct sockaddr_in addr;
	int listener = listener_on_loopback(&addr), channel[2], client, conn;
	unsigned long given = 0, killed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, channel) < 0)
		die("socketpair");
	int64_t before = socket_close_cost();
	for (unsigned long r = 0; r < rounds; r++) {
		connect_pair(listener, &addr, &client, &conn);
		give_away(channel[0], channel[1], conn);
		given++;
		close(conn);
		close(client);
		if (r % 16 == 0) {
			child_killed_holding_sockets();
			killed++;
		}
	}
	int64_t after = socket_close_cost();
	fprintf(stderr, "socket()+close() cost, end / start: %.2f\n", (double)after / (double)before);
	printf("rounds: %lu\n", rounds);
	printf("connections given away over SCM_RIGHTS, then closed: %lu\n", given);
	printf("children killed holding %d sockets: %lu\n", BATCH, killed);
	printf("socket()+close() at the end costs %s as at the start\n",
	       after < 3 * before ? "the same" : "more than three times as much");

	/* The last connection: a reply, input it never read, then close(). */
	connect_pair(listener, &addr, &client, &conn);
	struct pollfd arrived = { .fd = conn, .events = POLLIN };
	if (write(conn, "reply", 5) != 5 || write(client, "unread", 6) != 6 ||
	    poll(&arrived, 1, 5000) != 1)
		die("last connection");
	printf("last close: %d\n", close(conn));
	close(client);
	return 0;
}
