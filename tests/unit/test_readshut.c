/* test_readshut.c: the read-side emulation on real loopback connections,
 * without any preload: after the program's shutdown(SHUT_RDWR) its reads get
 * what was queued and then end-of-file while the read side stays open; the
 * real SHUT_RD follows once our output is acknowledged, but never once the
 * process has let go of the socket; and what the kernel refuses (a bad
 * `how`) is the kernel's error, with nothing done. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cmocka.h>

#include "loopback.h"
#include "ownership.h"
#include "release_as.h"
#include "probe.h"
#include "readshut.h"

static int setup(void **state)
{
	(void)state;
	return own_init() ? 0 : -1;
}

/* What the release path does as fd leaves the books (release.c's
 * off_the_books): the books' verdict, then the read-side emulation let go
 * of the socket when this process holds no other descriptor of it. */
static enum own_verdict let_go(int fd, uint64_t cookie)
{
	struct own_released books;
	enum own_verdict verdict = own_release(fd, false, &books);

	assert_true(books.booked == cookie);
	if (books.read_shut && !books.held_here)
		readshut_let_go(books.booked);
	return verdict;
}

/* The books' read-shut mark on fd's socket. */
static bool marked(int fd)
{
	uint32_t left;

	return own_read_shut(fd, &left);
}

static void open_tracked(struct tcp_pair *p)
{
	assert_int_equal(tcp_pair_open(p), 0);
	own_track_socket(p->server);
}

/* Our output kept unacknowledged: the client reads nothing. */
static void fill_send_queue(int fd)
{
	static char chunk[65536];

	while (send(fd, chunk, sizeof chunk, MSG_DONTWAIT) > 0)
		;
}

static void drain(int fd)
{
	static char sink[65536];

	for (int i = 0; i < 400; i++) {
		if (recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0)
			continue;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 20) == 0)
			return;
	}
}

/* The read side as the kernel sees it: "shut" (recv says 0 at once with
 * nothing queued) or "open" (EAGAIN). */
static bool really_read_shut(int fd)
{
	char c;

	return recv(fd, &c, 1, MSG_DONTWAIT) == 0;
}

static bool becomes_read_shut(int fd)
{
	for (int i = 0; i < 200; i++) {
		if (really_read_shut(fd))
			return true;
		poll(NULL, 0, 10);
	}
	return false;
}

static void reads_get_what_was_queued_then_end_of_file(void **state)
{
	(void)state;
	struct tcp_pair p;
	char buf[16];
	ssize_t n;

	open_tracked(&p);
	fill_send_queue(p.server); /* so the real SHUT_RD stays deferred */
	assert_int_equal(write(p.client, "hello", 5), 5);
	assert_true(wait_input(p.server, 5));
	assert_int_equal(readshut_shutdown(p.server, probe_cookie(p.server), SHUT_RDWR), 0);
	assert_true(readshut_recvfrom(p.server, buf, sizeof buf, 0, NULL, NULL, &n));
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "hello", 5);
	assert_true(readshut_recvfrom(p.server, buf, sizeof buf, 0, NULL, NULL, &n));
	assert_int_equal(n, 0);
	/* What arrives after a SHUT_RDWR is not the program's to read. */
	assert_int_equal(write(p.client, "late", 4), 4);
	assert_true(wait_input(p.server, 4));
	assert_true(readshut_recvfrom(p.server, buf, sizeof buf, 0, NULL, NULL, &n));
	assert_int_equal(n, 0);
	let_go(p.server, probe_cookie(p.server));
	tcp_pair_close(&p);
}

static void after_shut_rd_what_arrives_is_still_read(void **state)
{
	(void)state;
	struct tcp_pair p;
	char buf[16];
	ssize_t n;

	open_tracked(&p);
	fill_send_queue(p.server); /* so the real SHUT_RD stays deferred */
	assert_int_equal(readshut_shutdown(p.server, probe_cookie(p.server), SHUT_RD), 0);
	assert_int_equal(write(p.client, "later", 5), 5);
	assert_true(wait_input(p.server, 5));
	assert_true(readshut_recvfrom(p.server, buf, sizeof buf, 0, NULL, NULL, &n));
	assert_int_equal(n, 5); /* as Linux does after SHUT_RD on an open connection */
	assert_true(readshut_recvfrom(p.server, buf, sizeof buf, 0, NULL, NULL, &n));
	assert_int_equal(n, 0);
	let_go(p.server, probe_cookie(p.server));
	tcp_pair_close(&p);
}

/* A thread of the program blocked reading the socket, as the thread its
 * shutdown was meant to wake: a raw recvfrom, past the emulation. */
struct reader {
	int fd;
	int tid;
};

static void *blocked_reader(void *arg)
{
	struct reader *r = arg;
	char b;

	__atomic_store_n(&r->tid, (int)syscall(SYS_gettid), __ATOMIC_RELEASE);
	return (void *)(intptr_t)syscall(SYS_recvfrom, r->fd, &b, 1, 0, NULL, NULL);
}

/* Until the reader is blocked in its recvfrom, as the kernel shows it. */
static void wait_blocked(struct reader *r)
{
	char path[64], line[32];

	for (int i = 0; i < 400; i++) {
		int tid = __atomic_load_n(&r->tid, __ATOMIC_ACQUIRE);
		snprintf(path, sizeof path, "/proc/self/task/%d/syscall", tid);
		FILE *f = tid ? fopen(path, "r") : NULL;
		bool in_recv = f && fgets(line, sizeof line, f) &&
			       atoi(line) == SYS_recvfrom && line[0] != 'r';
		if (f)
			fclose(f);
		if (in_recv)
			return;
		poll(NULL, 0, 5);
	}
	fail_msg("the reader never blocked");
}

static void real_shut_read_wakes_a_blocked_reader(void **state)
{
	(void)state;
	struct tcp_pair p;
	pthread_t reader;
	void *got;

	open_tracked(&p);
	struct reader r = { p.server, 0 };
	assert_int_equal(pthread_create(&reader, NULL, blocked_reader, &r), 0);
	wait_blocked(&r);
	fill_send_queue(p.server);
	assert_int_equal(readshut_shutdown(p.server, probe_cookie(p.server), SHUT_RDWR), 0);
	assert_true(readshut_waiting());
	assert_false(really_read_shut(p.server));
	drain(p.client); /* our output is acknowledged: the thread shuts */
	assert_true(becomes_read_shut(p.server));
	assert_false(readshut_waiting());
	pthread_join(reader, &got);
	assert_int_equal((intptr_t)got, 0); /* woken, with end-of-file */
	release_as(p.server, probe_cookie(p.server), false);
	tcp_pair_close(&p);
}

/* No thread waits for the socket's input: the program's reads already see
 * end-of-file, and the real SHUT_RD, which would make the kernel reset what
 * the peer sends next, is never made; letting go ends the wait. */
static void no_real_shut_read_without_a_waiter(void **state)
{
	(void)state;
	struct tcp_pair p;

	open_tracked(&p);
	uint64_t cookie = probe_cookie(p.server);
	fill_send_queue(p.server);
	assert_int_equal(readshut_shutdown(p.server, probe_cookie(p.server), SHUT_RDWR), 0);
	drain(p.client);
	poll(NULL, 0, 200); /* eight of the thread's ticks */
	assert_false(really_read_shut(p.server));
	assert_true(readshut_waiting());
	assert_int_equal(let_go(p.server, cookie), OWN_LAST);
	assert_false(readshut_waiting());
	tcp_pair_close(&p);
}

static void letting_go_cancels_the_real_shut_read(void **state)
{
	(void)state;
	struct tcp_pair p;

	open_tracked(&p);
	uint64_t cookie = probe_cookie(p.server);
	int copy = dup(p.server);
	own_track_dup(p.server, copy);
	fill_send_queue(p.server);
	assert_int_equal(readshut_shutdown(p.server, probe_cookie(p.server), SHUT_RDWR), 0);
	assert_true(marked(copy));

	/* One descriptor let go, the other still held: still waiting. */
	assert_int_equal(let_go(p.server, cookie), OWN_SHARED);
	assert_true(readshut_waiting());
	/* The last one: cancelled, and never carried out afterwards. */
	assert_int_equal(let_go(copy, cookie), OWN_LAST);
	assert_false(readshut_waiting());
	drain(p.client);
	readshut_step(UINT64_MAX / 2);
	poll(NULL, 0, 100); /* the thread's ticks too */
	assert_false(really_read_shut(copy));
	assert_false(marked(copy)); /* the mark ended with the books' record */
	close(copy);
	tcp_pair_close(&p);
}

/* The thread about to carry out the real SHUT_RD and the program letting go
 * at the same moment: exactly one of them acts. Once readshut_let_go() has
 * returned, the read side is as it will stay: shut by the thread before the
 * release, or open for good. */
static void release_racing_the_thread_is_decided_once(void **state)
{
	(void)state;

	for (int i = 0; i < 60; i++) {
		struct tcp_pair p;
		pthread_t reader;
		open_tracked(&p);
		uint64_t cookie = probe_cookie(p.server);
		/* Someone to wake, so that the thread does shut. */
		struct reader r = { p.server, 0 };
		assert_int_equal(pthread_create(&reader, NULL, blocked_reader, &r), 0);
		wait_blocked(&r);
		assert_int_equal(readshut_shutdown(p.server, probe_cookie(p.server), SHUT_RDWR), 0);
		/* The thread looks again every LINGER_TICK_MS (25): let go around
		 * the moment it finds the output acknowledged and shuts. */
		struct timespec jitter = { 0, (22000 + (i % 10) * 600) * 1000L };
		nanosleep(&jitter, NULL);
		assert_int_equal(let_go(p.server, cookie), OWN_LAST);
		bool shut_at_release = really_read_shut(p.server);
		assert_false(readshut_waiting());
		poll(NULL, 0, 10);
		assert_int_equal(really_read_shut(p.server), shut_at_release);
		shutdown(p.server, SHUT_RD); /* the reader goes, whichever it was */
		pthread_join(reader, NULL);
		tcp_pair_close(&p);
	}
}

static void refused_shutdown_is_the_kernels_error_and_does_nothing(void **state)
{
	(void)state;
	struct tcp_pair p;

	open_tracked(&p);
	errno = 0;
	assert_int_equal(readshut_shutdown(p.server, probe_cookie(p.server), 7), -1);
	assert_int_equal(errno, EINVAL);
	assert_false(marked(p.server));
	assert_false(readshut_waiting());
	assert_int_equal(write(p.server, "x", 1), 1); /* the write side is open */
	release_as(p.server, probe_cookie(p.server), false);
	tcp_pair_close(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reads_get_what_was_queued_then_end_of_file),
		cmocka_unit_test(after_shut_rd_what_arrives_is_still_read),
		cmocka_unit_test(real_shut_read_wakes_a_blocked_reader),
		cmocka_unit_test(no_real_shut_read_without_a_waiter),
		cmocka_unit_test(letting_go_cancels_the_real_shut_read),
		cmocka_unit_test(release_racing_the_thread_is_decided_once),
		cmocka_unit_test(refused_shutdown_is_the_kernels_error_and_does_nothing),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
