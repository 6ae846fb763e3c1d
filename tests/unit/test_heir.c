/* test_heir.c: the heir acts only once the process that made it is gone
 * (then it half-closes, after the queued reply, and drains what arrives),
 * and when it is stood down it goes touching nothing: the socket keeps
 * working and its books are as they were. The test process is a child
 * subreaper, so that each heir, reparented, comes back to it to be waited
 * for: every check is made after the heir has really ended. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "heir.h"
#include "loopback.h"
#include "ownership.h"
#include "release_as.h"
#include "probe.h"

static int setup(void **state)
{
	(void)state;
	return own_init() && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 ? 0 : -1;
}

/* A connection the test holds, on the books, with a reply queued and
 * input the server never read (a plain close would reset it). */
static void open_pair(struct tcp_pair *p)
{
	assert_int_equal(tcp_pair_open(p), 0);
	own_track_socket(p->server);
	assert_int_equal(write(p->client, "late", 4), 4);
	assert_true(wait_input(p->server, 4));
	assert_int_equal(write(p->server, "reply", 5), 5);
}

/* A child that plans p->server for an exec, makes the heir, stands it down
 * or not, and ends: its end is what the heir waits for. */
static void child_makes_heir(struct tcp_pair *p, bool stand_down)
{
	pid_t child = fork();
	int status;

	assert_true(child >= 0);
	if (child == 0) {
		struct heir_plan plan;
		if (!heir_plan_begin(&plan, HEIR_AT_EXEC))
			_exit(2);
		heir_plan_socket(&plan, p->server, false);
		int ticket = heir_start(&plan);
		heir_plan_end(&plan);
		if (ticket < 0)
			_exit(1);
		if (stand_down)
			heir_stand_down(ticket);
		_exit(0);
	}
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void heir_has_ended(void)
{
	int status;

	assert_true(waitpid(-1, &status, __WALL) > 0);
	assert_true(WIFEXITED(status));
}

/* Everything the client reads until the end of the stream (bounded). */
static size_t read_to_end(int fd, char *buf, size_t size)
{
	size_t got = 0;

	for (int i = 0; i < 500; i++) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, 10) == 1) {
			ssize_t n = read(fd, buf + got, size - got);
			if (n <= 0)
				return got;
			got += (size_t)n;
		}
	}
	fail_msg("no end of stream");
	return got;
}

static void heir_lingers_once_the_process_is_gone(void **state)
{
	(void)state;
	struct tcp_pair p;
	char buf[64];

	open_pair(&p);
	child_makes_heir(&p, false);
	/* The reply, then our FIN: the heir half-closed (the test still holds
	 * the socket, but only the child's reference was on the books). */
	assert_int_equal(read_to_end(p.client, buf, sizeof buf), 5);
	assert_memory_equal(buf, "reply", 5);
	/* What arrives now is drained, not reset; the heir ends at our FIN. */
	assert_int_equal(write(p.client, "more", 4), 4);
	shutdown(p.client, SHUT_WR);
	heir_has_ended();
	assert_int_equal(queued_input(p.server), 0);
	tcp_pair_close(&p);
}

static void stood_down_heir_touches_nothing(void **state)
{
	(void)state;
	struct tcp_pair p;
	uint64_t cookie;
	char buf[16];

	open_pair(&p);
	child_makes_heir(&p, true);
	heir_has_ended();
	/* The reply, and no end of stream; input still unread; both ways work. */
	assert_int_equal(read(p.client, buf, sizeof buf), 5);
	struct pollfd pfd = { .fd = p.client, .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 0), 0);
	assert_int_equal(queued_input(p.server), 4);
	assert_int_equal(write(p.server, "again", 5), 5);
	assert_true(wait_input(p.client, 5));
	/* The books are as they were: this reference is still the last. */
	assert_true(own_lookup(p.server, &cookie));
	assert_int_equal(release_as(p.server, probe_cookie(p.server), false), OWN_LAST);
	tcp_pair_close(&p);
}

static void nothing_to_hand_over_makes_no_heir(void **state)
{
	(void)state;
	struct heir_plan plan;

	assert_true(heir_plan_begin(&plan, HEIR_AT_EXEC));
	assert_int_equal(heir_start(&plan), HEIR_NOTHING);
	heir_plan_end(&plan);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(heir_lingers_once_the_process_is_gone),
		cmocka_unit_test(stood_down_heir_touches_nothing),
		cmocka_unit_test(nothing_to_hand_over_makes_no_heir),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
