/* test_linger.c: the linger machine on real loopback connections: it
 * half-closes, discards what the peer still sends, ends on the peer's FIN
 * (told by the TCP state even when the application shut its read side), and
 * on the idle and total bounds; it leaves the receive queue empty. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"
#include "linger.h"
#include "loopback.h"
#include "shim.h"

/* Steps the machine to its end in this thread and reports how it ended. */
static enum linger_end run(int fd, uint64_t linger_ms, uint64_t idle_ms, struct sc_linger *out)
{
	struct linger_wait wait;

	linger_begin(out, fd, linger_ms, idle_ms, sc_now_ms());
	while (linger_step(out, sc_now_ms(), &wait)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		poll(&p, wait.readable ? 1 : 0, wait.timeout_ms);
	}
	linger_finish(out);
	return out->end;
}

struct peer {
	int fd;
	int sends;      /* requests to send after the server's FIN, one per 20 ms */
	int close_after_ms;
	ssize_t eof_read; /* what the last read returned: 0 = clean EOF */
	int read_errno;
};

/* A pipelining client: reads to EOF while still sending a few requests,
 * then closes (or keeps sending and never closes when close_after_ms < 0). */
static void *peer_main(void *arg)
{
	struct peer *p = arg;
	char buf[4096];

	for (int i = 0; i < p->sends; i++) {
		send(p->fd, "GET 99\n", 7, MSG_NOSIGNAL);
		poll(NULL, 0, 20);
	}
	do
		p->eof_read = recv(p->fd, buf, sizeof buf, 0);
	while (p->eof_read > 0);
	p->read_errno = p->eof_read < 0 ? errno : 0;
	if (p->close_after_ms > 0)
		poll(NULL, 0, p->close_after_ms);
	if (p->close_after_ms >= 0)
		close(p->fd);
	return NULL;
}

static void ends_on_peer_fin_with_input_discarded(void **state)
{
	(void)state;
	struct tcp_pair p;
	struct peer peer = { .sends = 3, .close_after_ms = 0 };
	pthread_t t;
	struct sc_linger l;

	assert_int_equal(tcp_pair_open(&p), 0);
	assert_int_equal(write(p.client, "GET 13\nGET 14\n", 14), 14);
	assert_true(wait_input(p.server, 14));
	assert_int_equal(write(p.server, "ERR 13 5\nerror", 14), 14);
	peer.fd = p.client;
	pthread_create(&t, NULL, peer_main, &peer);
	assert_int_equal(run(p.server, 10000, 5000, &l), LINGER_PEER_DONE);
	pthread_join(t, NULL);
	assert_int_equal(peer.eof_read, 0); /* a clean EOF, not ECONNRESET */
	assert_true(l.discarded >= 14);
	assert_int_equal(queued_input(p.server), 0);
	p.client = -1;
	tcp_pair_close(&p);
}

static void idle_bound_ends_a_silent_peer(void **state)
{
	(void)state;
	struct tcp_pair p;
	struct sc_linger l;

	assert_int_equal(tcp_pair_open(&p), 0);
	uint64_t start = sc_now_ms();
	assert_int_equal(run(p.server, 10000, 150, &l), LINGER_IDLE);
	assert_true(sc_now_ms() - start >= 150);
	tcp_pair_close(&p);
}

static void total_bound_ends_a_peer_that_sends_forever(void **state)
{
	(void)state;
	struct tcp_pair p;
	struct peer peer = { .sends = 40, .close_after_ms = -1 };
	pthread_t t;
	struct sc_linger l;

	assert_int_equal(tcp_pair_open(&p), 0);
	peer.fd = p.client;
	pthread_create(&t, NULL, peer_main, &peer);
	/* Every 20 ms a request arrives, so the 100 ms idle bound never fires. */
	assert_int_equal(run(p.server, 300, 100, &l), LINGER_TIMEOUT);
	assert_true(l.discarded > 0);
	pthread_join(t, NULL);
	tcp_pair_close(&p);
}

/* A peer that sends 64 KiB chunks for `ms` without reading anything. */
struct flood {
	int fd, ms;
};

static void *flood_main(void *arg)
{
	struct flood *f = arg;
	static char chunk[65536];
	uint64_t until = sc_now_ms() + (uint64_t)f->ms;

	while (sc_now_ms() < until) {
		ssize_t n = send(f->fd, chunk, sizeof chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN)
			break; /* the linger ended: reset */
		if (n < 0)
			poll(NULL, 0, 1);
	}
	return NULL;
}

static enum linger_end flooded(size_t reply, long budget, struct sc_linger *l)
{
	struct tcp_pair p;
	struct flood f = { .ms = 600 };
	pthread_t t;
	static char big[4 << 20];

	assert_int_equal(tcp_pair_open(&p), 0);
	fcntl(p.server, F_SETFL, O_NONBLOCK);
	assert_true(write(p.server, big, reply) > 0 || reply == 0);
	f.fd = p.client;
	pthread_create(&t, NULL, flood_main, &f);
	long saved = sc_cfg.discard_max;
	sc_cfg.discard_max = budget;
	enum linger_end end = run(p.server, 300, 5000, l);
	sc_cfg.discard_max = saved;
	pthread_join(t, NULL);
	tcp_pair_close(&p);
	return end;
}

static void discard_budget_ends_a_flood_that_has_the_reply(void **state)
{
	(void)state;
	struct sc_linger l;

	assert_int_equal(flooded(0, 256 * 1024, &l), LINGER_DISCARDED);
	assert_true(l.discarded >= 256 * 1024);
}

static void discard_budget_waits_while_the_reply_is_unacknowledged(void **state)
{
	(void)state;
	struct sc_linger l;

	/* The client never reads: most of 4 MiB stays unacknowledged. */
	assert_int_equal(flooded(sizeof(char[4 << 20]), 256 * 1024, &l), LINGER_TIMEOUT);
	assert_true(l.discarded >= 256 * 1024);
}

static void read_side_shut_waits_for_the_fin_by_state(void **state)
{
	(void)state;
	struct tcp_pair p;
	struct peer peer = { .sends = 0, .close_after_ms = 200 };
	pthread_t t;
	struct sc_linger l;

	assert_int_equal(tcp_pair_open(&p), 0);
	shutdown(p.server, SHUT_RD); /* recv now returns 0 at once */
	peer.fd = p.client;
	pthread_create(&t, NULL, peer_main, &peer);
	uint64_t start = sc_now_ms();
	assert_int_equal(run(p.server, 10000, 5000, &l), LINGER_PEER_DONE);
	assert_true(l.read_shut);
	assert_true(sc_now_ms() - start >= 150); /* not fooled by recv's 0 */
	pthread_join(t, NULL);
	p.client = -1;
	tcp_pair_close(&p);
}

static void close_wait_only_drains(void **state)
{
	(void)state;
	struct tcp_pair p;
	struct sc_linger l;

	assert_int_equal(tcp_pair_open(&p), 0);
	assert_int_equal(write(p.client, "GET 14\n", 7), 7);
	shutdown(p.client, SHUT_WR);
	assert_true(wait_state(p.server, TCP_CLOSE_WAIT));
	uint64_t start = sc_now_ms();
	assert_int_equal(run(p.server, 10000, 5000, &l), LINGER_PEER_DONE);
	assert_true(sc_now_ms() - start < 1000);
	assert_int_equal(l.discarded, 7);
	assert_int_equal(queued_input(p.server), 0);
	tcp_pair_close(&p);
}

static void a_step_stamped_before_the_start_is_no_timeout(void **state)
{
	(void)state;
	struct tcp_pair p;
	struct sc_linger l;
	struct linger_wait wait;

	/* A hand-off stamped by the closing thread a moment after the background
	 * thread read its clock: the elapsed time is 0, not a wrapped huge one. */
	assert_int_equal(tcp_pair_open(&p), 0);
	uint64_t now = sc_now_ms();
	linger_begin(&l, p.server, 10000, 5000, now + 5);
	assert_true(linger_step(&l, now, &wait));
	assert_int_equal(l.end, LINGER_RUNNING);
	assert_true(wait.timeout_ms > 0 && wait.timeout_ms <= 5005);
	tcp_pair_close(&p);
}

static void final_drain_leaves_nothing_queued(void **state)
{
	(void)state;
	struct tcp_pair p;
	struct sc_linger l;
	struct linger_wait wait;
	static char chunk[8192];

	/* Input that arrives after the last step, in several segments: the
	 * close that follows the final drain must find an empty queue. */
	assert_int_equal(tcp_pair_open(&p), 0);
	linger_begin(&l, p.server, 10000, 5000, sc_now_ms());
	assert_true(linger_step(&l, sc_now_ms(), &wait));
	for (int i = 0; i < 4; i++)
		assert_int_equal(write(p.client, chunk, sizeof chunk), (ssize_t)sizeof chunk);
	assert_true(wait_input(p.server, 4 * (int)sizeof chunk));
	linger_finish(&l);
	assert_int_equal(queued_input(p.server), 0);
	assert_int_equal(l.discarded, 4 * sizeof chunk);
	tcp_pair_close(&p);
}

static void in_place_driver_keeps_errno(void **state)
{
	(void)state;
	struct tcp_pair p;

	assert_int_equal(tcp_pair_open(&p), 0);
	shutdown(p.client, SHUT_WR);
	assert_true(wait_state(p.server, TCP_CLOSE_WAIT));
	errno = 4321;
	linger_run_in_place(p.server, 1000, 500, 0);
	assert_int_equal(errno, 4321);
	tcp_pair_close(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ends_on_peer_fin_with_input_discarded),
		cmocka_unit_test(idle_bound_ends_a_silent_peer),
		cmocka_unit_test(total_bound_ends_a_peer_that_sends_forever),
		cmocka_unit_test(discard_budget_ends_a_flood_that_has_the_reply),
		cmocka_unit_test(discard_budget_waits_while_the_reply_is_unacknowledged),
		cmocka_unit_test(read_side_shut_waits_for_the_fin_by_state),
		cmocka_unit_test(close_wait_only_drains),
		cmocka_unit_test(a_step_stamped_before_the_start_is_no_timeout),
		cmocka_unit_test(final_drain_leaves_nothing_queued),
		cmocka_unit_test(in_place_driver_keeps_errno),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
