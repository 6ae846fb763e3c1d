/* test_spawned.c: which of our sockets a posix_spawn'd program holds,
 * followed through its file actions: inherited when not close-on-exec, put
 * in place by dup2 (close-on-exec or not, through a chain of dup2s), not
 * held when an action closes it first, given back when the spawn failed;
 * and the books' descriptor, let go of
 * when the program's bulk close covers it. */
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>

#include "loopback.h"
#include "ownership.h"
#include "release_as.h"
#include "probe.h"
#include "selffd.h"
#include "spawned.h"

static int setup(void **state)
{
	(void)state;
	return own_init() ? 0 : -1;
}

/* A tracked socket, close-on-exec or not; the verdict of its close after
 * a spawn with the given actions (NULL: none). */
static enum own_verdict spawn_then_close(bool cloexec, bool failed,
					  void (*add)(posix_spawn_file_actions_t *, int fd))
{
	struct tcp_pair p;
	posix_spawn_file_actions_t fa;
	struct spawn_holds held;

	assert_int_equal(tcp_pair_open(&p), 0);
	fcntl(p.server, F_SETFD, cloexec ? FD_CLOEXEC : 0);
	own_track_socket(p.server);
	posix_spawn_file_actions_init(&fa);
	if (add)
		add(&fa, p.server);
	spawn_hold_for_actions(add ? &fa : NULL, 0, &held);
	posix_spawn_file_actions_destroy(&fa);
	if (failed)
		spawn_holds_undo(&held);
	enum own_verdict v = release_as(p.server, probe_cookie(p.server), false);
	tcp_pair_close(&p);
	return v;
}

static enum own_verdict close_after_spawn(bool cloexec,
					   void (*add)(posix_spawn_file_actions_t *, int fd))
{
	return spawn_then_close(cloexec, false, add);
}

static void onto_stdout(posix_spawn_file_actions_t *fa, int fd)
{
	posix_spawn_file_actions_adddup2(fa, fd, 1);
}

static void through_a_chain(posix_spawn_file_actions_t *fa, int fd)
{
	posix_spawn_file_actions_adddup2(fa, fd, 900);
	posix_spawn_file_actions_adddup2(fa, 900, 1);
	posix_spawn_file_actions_addclose(fa, 900);
}

static void closed_in_the_child(posix_spawn_file_actions_t *fa, int fd)
{
	posix_spawn_file_actions_addclose(fa, fd);
}

static void dup_then_closed(posix_spawn_file_actions_t *fa, int fd)
{
	posix_spawn_file_actions_adddup2(fa, fd, 901);
	posix_spawn_file_actions_addclosefrom_np(fa, 3);
}

static void onto_itself(posix_spawn_file_actions_t *fa, int fd)
{
	posix_spawn_file_actions_adddup2(fa, fd, fd); /* clears close-on-exec */
}

static void other_actions_only(posix_spawn_file_actions_t *fa, int fd)
{
	(void)fd;
	posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
}

static void inherited_unless_cloexec(void **state)
{
	(void)state;
	assert_int_equal(close_after_spawn(false, NULL), OWN_SHARED);
	assert_int_equal(close_after_spawn(true, NULL), OWN_LAST);
	assert_int_equal(close_after_spawn(false, other_actions_only), OWN_SHARED);
	assert_int_equal(close_after_spawn(true, other_actions_only), OWN_LAST);
}

static void dup2_hands_it_over_even_when_cloexec(void **state)
{
	(void)state;
	assert_int_equal(close_after_spawn(true, onto_stdout), OWN_SHARED);
	assert_int_equal(close_after_spawn(true, through_a_chain), OWN_SHARED);
	assert_int_equal(close_after_spawn(true, onto_itself), OWN_SHARED);
}

static void closed_by_an_action_is_not_held(void **state)
{
	(void)state;
	assert_int_equal(close_after_spawn(false, closed_in_the_child), OWN_LAST);
	assert_int_equal(close_after_spawn(true, dup_then_closed), OWN_LAST);
}

/* A spawn that failed started no program: nothing stays held. */
static void a_failed_spawn_gives_everything_back(void **state)
{
	(void)state;
	assert_int_equal(spawn_then_close(false, true, NULL), OWN_LAST);
	assert_int_equal(spawn_then_close(true, true, onto_stdout), OWN_LAST);
	assert_int_equal(spawn_then_close(true, true, through_a_chain), OWN_LAST);
}

static void bulk_close_lets_go_of_the_books(void **state)
{
	(void)state;
	struct tcp_pair p;

	assert_int_equal(tcp_pair_open(&p), 0);
	own_track_socket(p.server); /* the books exist from the first socket on */
	int books = own_books_fd();
	assert_true(books >= 0);
	assert_true(selffd_owns(books));
	assert_true(fcntl(books, F_GETFD) & FD_CLOEXEC);
	assert_false(own_let_go_of_books(0, (unsigned)books - 1));
	assert_true(own_let_go_of_books(3, ~0u));
	assert_int_equal(own_books_fd(), -1);
	assert_false(selffd_owns(books));
	close(books);
	own_forget(p.server);
	tcp_pair_close(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(inherited_unless_cloexec),
		cmocka_unit_test(dup2_hands_it_over_even_when_cloexec),
		cmocka_unit_test(closed_by_an_action_is_not_held),
		cmocka_unit_test(a_failed_spawn_gives_everything_back),
		cmocka_unit_test(bulk_close_lets_go_of_the_books),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
