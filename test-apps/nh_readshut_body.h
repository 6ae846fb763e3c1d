/*
 * nh_readshut_body.h -- the body of nh_readshut_reads and its fortified twin
 * nh_readshut_fortified: after shutdown(SHUT_RD), each way of reading a
 * socket (read, readv, recv, recvfrom, recvmsg, recvmmsg) returns what was
 * queued and then end-of-file, at once. The server's own output is kept
 * unacknowledged the whole time (its send queue full), as it is on a slow
 * link. Each read is watched: one that would block says "blocked".
 */
#ifndef TEST_APPS_NH_READSHUT_BODY_H
#define TEST_APPS_NH_READSHUT_BODY_H

#include <sys/uio.h>

#include "nh_readside.h"

/* Not a constant, so that a fortified build checks it at run time
 * (__read_chk, __recv_chk, __recvfrom_chk). */
static volatile size_t want = 64;

/* Where every read lands: its size is known where it is read into. */
static char buf[64];

static ssize_t by_read(int fd)
{
	return read(fd, buf, want);
}

static ssize_t by_recv(int fd)
{
	return recv(fd, buf, want, 0);
}

static ssize_t by_recvfrom(int fd)
{
	struct sockaddr_storage from;
	socklen_t len = sizeof from;

	return recvfrom(fd, buf, want, 0, (struct sockaddr *)&from, &len);
}

/* Two small pieces, so the bytes are scattered: "hel" and "lo". */
static ssize_t by_readv(int fd)
{
	struct iovec iov[2] = { { buf, 3 }, { buf + 3, sizeof buf - 3 } };

	return readv(fd, iov, 2);
}

static ssize_t by_recvmsg(int fd)
{
	struct iovec iov[2] = { { buf, 3 }, { buf + 3, sizeof buf - 3 } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };

	return recvmsg(fd, &m, 0);
}

/* Two messages at once: what each got, and the count. */
static ssize_t by_recvmmsg(int fd)
{
	static char second[64];
	struct iovec iov[2] = { { buf, sizeof buf }, { second, sizeof second } };
	struct mmsghdr m[2] = { { .msg_hdr = { .msg_iov = &iov[0], .msg_iovlen = 1 } },
				{ .msg_hdr = { .msg_iov = &iov[1], .msg_iovlen = 1 } } };
	int n = recvmmsg(fd, m, 2, 0, NULL);

	if (n >= 0)
		printf("recvmmsg returned %d: lengths %u %u\n", n, m[0].msg_len,
		       n > 1 ? m[1].msg_len : 0);
	return n < 0 ? -1 : (ssize_t)m[0].msg_len;
}

static const struct {
	const char *name;
	ssize_t (*fn)(int);
} readers[] = {
	{ "read", by_read },       { "readv", by_readv },     { "recv", by_recv },
	{ "recvfrom", by_recvfrom }, { "recvmsg", by_recvmsg }, { "recvmmsg", by_recvmmsg },
};

static void one_reader(const char *name, ssize_t (*fn)(int))
{
	struct pair p = nh_pair();
	char what[64];

	if (send(p.client, "hello", 5, 0) != 5)
		nh_die("send");
	nh_wait_readable(p.server);
	nh_fill_send_queue(p.server);
	printf("%s: shutdown(SHUT_RD) = %d\n", name, shutdown(p.server, SHUT_RD));
	for (int i = 1; i <= 2; i++) {
		nh_arm_watchdog();
		int64_t start = nh_now_ms();
		ssize_t n = fn(p.server);
		int64_t took = nh_now_ms() - start;
		nh_disarm_watchdog();
		snprintf(what, sizeof what, "%s, call %d", name, i);
		nh_print_read(what, n, buf, took);
	}
	close(p.server);
	close(p.client);
}

static int run_readers(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < sizeof readers / sizeof *readers; i++)
		one_reader(readers[i].name, readers[i].fn);
	return 0;
}

#endif
