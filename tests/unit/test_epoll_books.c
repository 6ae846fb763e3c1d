/* test_epoll_books.c: an epoll registration belongs to the open file, so a
 * socket kept alive under another descriptor keeps reporting events under the
 * closed number. The books must let the shim remove it from every set the
 * program added it to, and say so when they cannot be sure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <cmocka.h>

#include "epoll_books.h"
#include "loopback.h"

/* What the release path asks when it keeps fd's file alive. */
static bool let_go_kept_alive(int fd)
{
	return epb_let_go(fd, true);
}

static void add(int ep, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
	assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
	epb_added(ep, fd);
}

static int ready(int ep)
{
	struct epoll_event ev[4];
	return epoll_wait(ep, ev, 4, 0);
}

static void kept_alive_socket_is_silent_after_removal(void **state)
{
	(void)state;
	struct tcp_pair p;
	int ep1 = epoll_create1(0), ep2 = epoll_create1(0);

	assert_int_equal(tcp_pair_open(&p), 0);
	add(ep1, p.server);
	add(ep2, p.server);
	assert_int_equal(write(p.client, "x", 1), 1);
	assert_true(wait_input(p.server, 1));

	/* What the pitfall looks like without the books. */
	int keep = dup(p.server);
	assert_int_equal(ready(ep1), 1);

	assert_true(let_go_kept_alive(p.server));
	epb_forget(p.server);
	close(p.server);
	p.server = keep;
	assert_int_equal(ready(ep1), 0);
	assert_int_equal(ready(ep2), 0);
	close(ep1);
	close(ep2);
	tcp_pair_close(&p);
}

static void deleted_sets_are_not_touched_again(void **state)
{
	(void)state;
	int ep = epoll_create1(0), pipefd[2];

	assert_int_equal(pipe(pipefd), 0);
	add(ep, pipefd[0]);
	assert_int_equal(epoll_ctl(ep, EPOLL_CTL_DEL, pipefd[0], NULL), 0);
	epb_deleted(ep, pipefd[0]);
	add(ep, pipefd[0]);
	epb_added(ep + 1000, pipefd[0]); /* a set that is gone: DEL fails, harmlessly */
	errno = 77;
	assert_true(let_go_kept_alive(pipefd[0]));
	assert_int_equal(errno, 77);
	assert_int_equal(write(pipefd[1], "x", 1), 1);
	assert_int_equal(ready(ep), 0);
	close(ep);
	close(pipefd[0]);
	close(pipefd[1]);
}

static void too_many_sets_cannot_be_sure(void **state)
{
	(void)state;
	int fd = 900;

	for (int ep = 500; ep < 504; ep++)
		epb_added(ep, fd);
	assert_false(let_go_kept_alive(fd));
	epb_forget(fd); /* closed: a new file under that number starts clean */
	epb_added(600, fd);
	assert_true(let_go_kept_alive(fd));
}

static void registered_until_deleted_or_forgotten(void **state)
{
	(void)state;
	int fd = 910;

	assert_false(epb_registered(fd));
	epb_added(610, fd);
	assert_true(epb_registered(fd));
	epb_deleted(610, fd);
	assert_false(epb_registered(fd));
	for (int ep = 620; ep < 624; ep++) /* more sets than the books list */
		epb_added(ep, fd);
	for (int ep = 620; ep < 623; ep++)
		epb_deleted(ep, fd);
	assert_true(epb_registered(fd)); /* the one past the slots may still be there */
	epb_forget(fd);
	assert_false(epb_registered(fd));
}

/* What the heir keeps open so that a socket it lingers on can leave the
 * sets it is in: the books list them without a syscall. */
static void sets_of_lists_what_was_added(void **state)
{
	(void)state;
	int fd = 901, sets[EPB_SETS_MAX];

	assert_int_equal(epb_sets_of(fd, sets), 0);
	epb_added(700, fd);
	epb_added(701, fd);
	epb_deleted(700, fd);
	assert_int_equal(epb_sets_of(fd, sets), 1);
	assert_int_equal(sets[0], 701);
	epb_forget(fd);
	assert_int_equal(epb_sets_of(fd, sets), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(kept_alive_socket_is_silent_after_removal),
		cmocka_unit_test(deleted_sets_are_not_touched_again),
		cmocka_unit_test(too_many_sets_cannot_be_sure),
		cmocka_unit_test(registered_until_deleted_or_forgotten),
		cmocka_unit_test(sets_of_lists_what_was_added),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
