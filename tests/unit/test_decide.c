/* test_decide.c: the close decision on real descriptors: only connected TCP
 * sockets with something a plain close would reset (pending) or any connected
 * TCP socket (always), never files, pipes, UDP, Unix sockets, listeners,
 * unconnected or closed descriptors, nor one whose program set SO_LINGER {1, N}. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"
#include "decide.h"
#include "probe.h"
#include "loopback.h"

/* The decision alone (decide_release also counts the release). */
static bool decide_should_linger(long mode, int fd)
{
	enum sc_arm arm;

	return decide_release(mode, fd, probe_cookie(fd), &arm);
}

static void assert_never(int fd)
{
	assert_false(decide_should_linger(SC_MODE_PENDING, fd));
	assert_false(decide_should_linger(SC_MODE_ALWAYS, fd));
	assert_false(decide_should_linger(SC_MODE_OFF, fd));
}

static void other_descriptors_never_linger(void **state)
{
	(void)state;
	int file = open("/dev/null", O_RDONLY), pipefd[2], unixfd[2];
	int udp = socket(AF_INET, SOCK_DGRAM, 0), tcp = socket(AF_INET6, SOCK_STREAM, 0);
	int listener = tcp_listener();

	assert_int_equal(pipe(pipefd), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, unixfd), 0);
	assert_int_equal(write(unixfd[0], "x", 1), 1);
	int fds[] = { file, pipefd[0], pipefd[1], unixfd[1], udp, tcp, listener, -1, 4000 };
	for (unsigned i = 0; i < sizeof fds / sizeof *fds; i++)
		assert_never(fds[i]);
	int all[] = { file, pipefd[0], pipefd[1], unixfd[0], unixfd[1], udp, tcp, listener };
	for (unsigned i = 0; i < sizeof all / sizeof *all; i++)
		close(all[i]);
}

static void idle_connection_lingers_only_when_always(void **state)
{
	(void)state;
	struct tcp_pair p;

	assert_int_equal(tcp_pair_open(&p), 0);
	assert_false(decide_should_linger(SC_MODE_PENDING, p.server));
	assert_true(decide_should_linger(SC_MODE_ALWAYS, p.server));
	assert_false(decide_should_linger(SC_MODE_OFF, p.server));
	tcp_pair_close(&p);
}

/* The server has replied (the peer's kernel holds the reply, acknowledged),
 * and input is unread: a reset now would make the peer drop that reply. */
static void replied(struct tcp_pair *p)
{
	assert_int_equal(write(p->server, "OK 13\n", 6), 6);
	assert_true(wait_acknowledged(p->server));
}

/* The server has replied (acknowledged), read everything and half-closed:
 * idle as the socket looks, the peer has not finished, and its next
 * segment (a pipelined request, the rest of an upload, a request crossing
 * our FIN) would draw the reset, until the peer has finished. */
static void a_reply_lingers_while_the_peer_may_send(void **state)
{
	(void)state;
	struct tcp_pair p;

	assert_int_equal(tcp_pair_open(&p), 0);
	replied(&p);
	assert_true(decide_should_linger(SC_MODE_PENDING, p.server)); /* ESTABLISHED */
	shutdown(p.server, SHUT_WR);
	assert_true(wait_acknowledged(p.server));
	assert_true(decide_should_linger(SC_MODE_PENDING, p.server)); /* FIN_WAIT2 */
	shutdown(p.client, SHUT_WR);
	assert_true(wait_state(p.server, TCP_CLOSE)); /* FIN_WAIT2, then the peer's FIN */
	assert_false(decide_should_linger(SC_MODE_PENDING, p.server));
	tcp_pair_close(&p);
}

static void unread_input_lingers(void **state)
{
	(void)state;
	struct tcp_pair p;

	assert_int_equal(tcp_pair_open(&p), 0);
	replied(&p);
	assert_int_equal(write(p.client, "GET 14\n", 7), 7);
	assert_true(wait_input(p.server, 7));
	assert_true(decide_should_linger(SC_MODE_PENDING, p.server));
	assert_false(decide_should_linger(SC_MODE_OFF, p.server));
	tcp_pair_close(&p);
}

/* Nothing of the server's ever went out: closing with input unread is an
 * abort (an upload refused), and the reset is how the sender learns it. */
static void unread_input_without_a_reply_is_an_abort(void **state)
{
	(void)state;
	struct tcp_pair p;

	assert_int_equal(tcp_pair_open(&p), 0);
	assert_int_equal(write(p.client, "PUT 1\n", 6), 6);
	assert_true(wait_input(p.server, 6));
	assert_false(decide_should_linger(SC_MODE_PENDING, p.server));
	assert_true(decide_should_linger(SC_MODE_ALWAYS, p.server));
	tcp_pair_close(&p);
}

static void unacknowledged_output_lingers(void **state)
{
	(void)state;
	struct tcp_pair p;
	char block[65536] = { 0 };

	assert_int_equal(tcp_pair_open(&p), 0);
	/* The client never reads: once its window is full, output waits here. */
	fcntl(p.server, F_SETFL, O_NONBLOCK);
	while (write(p.server, block, sizeof block) > 0)
		;
	assert_true(decide_should_linger(SC_MODE_PENDING, p.server));
	tcp_pair_close(&p);
}

static void application_half_closed_still_lingers(void **state)
{
	(void)state;
	struct tcp_pair p;

	assert_int_equal(tcp_pair_open(&p), 0);
	assert_int_equal(write(p.client, "GET 14\n", 7), 7);
	assert_true(wait_input(p.server, 7));
	shutdown(p.server, SHUT_WR); /* as Python's socketserver does before close */
	assert_true(wait_state(p.server, TCP_FIN_WAIT2));
	assert_true(decide_should_linger(SC_MODE_PENDING, p.server));
	tcp_pair_close(&p);
}

static void peer_finished_with_unread_input_lingers(void **state)
{
	(void)state;
	struct tcp_pair p;

	assert_int_equal(tcp_pair_open(&p), 0);
	replied(&p);
	assert_int_equal(write(p.client, "GET 14\n", 7), 7);
	shutdown(p.client, SHUT_WR);
	assert_true(wait_state(p.server, TCP_CLOSE_WAIT));
	assert_true(decide_should_linger(SC_MODE_PENDING, p.server));
	tcp_pair_close(&p);
}

/* The probe asks the identity only where the decision may act: under
 * pending, not for a peer that has finished with nothing unread (an idle
 * keep-alive connection the client ended), nor for a connection that never
 * carried a byte of ours; always asks it of every connected socket. */
static void identity_only_where_a_reset_would_cost(void **state)
{
	(void)state;
	struct tcp_pair p;
	struct sock_facts f;
	unsigned pending = PROBE_UNREAD_IF_DONE | PROBE_IDENTITY_IF_EXPOSED;

	assert_int_equal(tcp_pair_open(&p), 0);
	probe_socket(p.server, pending, &f);
	assert_true(f.tcp && !f.exposed && f.cookie == 0); /* nothing of ours sent */
	replied(&p);
	probe_socket(p.server, pending, &f);
	assert_true(f.exposed && f.cookie == probe_cookie(p.server)); /* the peer may send */
	shutdown(p.client, SHUT_WR);
	assert_true(wait_state(p.server, TCP_CLOSE_WAIT));
	probe_socket(p.server, pending, &f);
	assert_true(f.unread == 0 && !f.exposed && f.cookie == 0);
	assert_false(decide_should_linger(SC_MODE_PENDING, p.server));
	probe_socket(p.server, 0, &f);
	assert_true(f.cookie == probe_cookie(p.server));
	assert_true(decide_should_linger(SC_MODE_ALWAYS, p.server));
	tcp_pair_close(&p);
}

static void abortive_so_linger_is_respected(void **state)
{
	(void)state;
	struct tcp_pair p;
	struct linger abort_close = { 1, 0 };

	assert_int_equal(tcp_pair_open(&p), 0);
	assert_int_equal(write(p.client, "GET 14\n", 7), 7);
	assert_true(wait_input(p.server, 7));
	setsockopt(p.server, SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close);
	decide_note_linger_possible(); /* what the setsockopt() wrapper does */
	assert_false(decide_should_linger(SC_MODE_PENDING, p.server));
	assert_false(decide_should_linger(SC_MODE_ALWAYS, p.server));
	tcp_pair_close(&p);
}

static void blocking_so_linger_is_respected(void **state)
{
	(void)state;
	struct tcp_pair p;
	struct linger blocking_close = { 1, 2 };

	assert_int_equal(tcp_pair_open(&p), 0);
	assert_int_equal(write(p.client, "GET 14\n", 7), 7);
	assert_true(wait_input(p.server, 7));
	setsockopt(p.server, SOL_SOCKET, SO_LINGER, &blocking_close, sizeof blocking_close);
	decide_note_linger_possible(); /* what the setsockopt() wrapper does */
	assert_false(decide_should_linger(SC_MODE_PENDING, p.server));
	assert_false(decide_should_linger(SC_MODE_ALWAYS, p.server));
	tcp_pair_close(&p);
}

static void decision_keeps_errno(void **state)
{
	(void)state;
	errno = 1234;
	decide_should_linger(SC_MODE_PENDING, 4000);
	assert_int_equal(errno, 1234);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(other_descriptors_never_linger),
		cmocka_unit_test(idle_connection_lingers_only_when_always),
		cmocka_unit_test(a_reply_lingers_while_the_peer_may_send),
		cmocka_unit_test(unread_input_lingers),
		cmocka_unit_test(unread_input_without_a_reply_is_an_abort),
		cmocka_unit_test(unacknowledged_output_lingers),
		cmocka_unit_test(application_half_closed_still_lingers),
		cmocka_unit_test(peer_finished_with_unread_input_lingers),
		cmocka_unit_test(identity_only_where_a_reset_would_cost),
		cmocka_unit_test(abortive_so_linger_is_respected),
		cmocka_unit_test(blocking_so_linger_is_respected),
		cmocka_unit_test(decision_keeps_errno),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
