/* test_ownership.c: the ownership rule's books: only the release of the last
 * reference is OWN_LAST, across dup and across fork (shared counts), a stale
 * entry (the number was closed elsewhere and reused) is never acted on, and a
 * fork child drops what was never counted for it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "loopback.h"
#include "ownership.h"
#include "probe.h"

static int setup(void **state)
{
	(void)state;
	return own_init() ? 0 : -1;
}

static void single_descriptor_is_last(void **state)
{
	(void)state;
	uint64_t cookie;

	own_track_new(100, 4242);
	assert_true(own_lookup(100, &cookie));
	assert_int_equal(cookie, 4242);
	assert_int_equal(own_release(100, 4242), OWN_LAST);
	assert_false(own_lookup(100, &cookie));
	assert_int_equal(own_release(100, 4242), OWN_UNKNOWN);
}

static void dup_keeps_the_socket_shared(void **state)
{
	(void)state;
	own_track_new(100, 5001);
	own_track_dup(100, 101);
	own_track_dup(101, 102);
	assert_int_equal(own_release(100, 5001), OWN_SHARED);
	assert_int_equal(own_release(102, 5001), OWN_SHARED);
	assert_int_equal(own_release(101, 5001), OWN_LAST);
}

static void untracked_and_out_of_range_are_unknown(void **state)
{
	(void)state;
	uint64_t cookie;

	assert_int_equal(own_release(103, 1), OWN_UNKNOWN);
	assert_int_equal(own_release(-1, 1), OWN_UNKNOWN);
	own_track_new(1 << 30, 77);
	assert_false(own_lookup(1 << 30, &cookie));
	own_track_dup(104, 105); /* from a descriptor not on the books */
	assert_false(own_lookup(105, &cookie));
}

static void stale_entry_is_never_acted_on(void **state)
{
	(void)state;
	own_track_new(106, 6001);
	/* fd 106 was closed by a path the shim did not see; the number now
	 * names another socket (cookie 6002) or no socket at all (0). */
	assert_int_equal(own_release(106, 6002), OWN_UNKNOWN);
	own_track_new(106, 6003);
	assert_int_equal(own_release(106, 0), OWN_UNKNOWN);
}

static void reused_number_replaces_the_old_entry(void **state)
{
	(void)state;
	own_track_new(107, 7001);
	own_track_dup(107, 108);
	own_track_new(107, 7002); /* 107 was closed elsewhere and reused */
	assert_int_equal(own_release(108, 7001), OWN_LAST);
	assert_int_equal(own_release(107, 7002), OWN_LAST);
}

static void dup_over_a_tracked_number_drops_it(void **state)
{
	(void)state;
	own_track_new(109, 9001);
	own_track_new(110, 9002);
	own_track_dup(109, 110); /* dup2(109, 110) */
	assert_int_equal(own_release(109, 9001), OWN_SHARED);
	assert_int_equal(own_release(110, 9001), OWN_LAST);
}

/* Runs `child` in a forked process; returns its exit status. */
static int in_child(int (*child)(int), int fd, int sync_fd)
{
	pid_t pid = fork();
	if (pid == 0) {
		own_fork_child();
		char go;
		if (sync_fd >= 0 && read(sync_fd, &go, 1) != 1)
			_exit(99);
		_exit(child(fd));
	}
	own_fork_parent(pid < 0);
	return pid;
}

static int child_releases_last(int fd)
{
	return own_release(fd, 8001) == OWN_LAST ? 0 : 1;
}

static int child_releases_shared(int fd)
{
	return own_release(fd, 8002) == OWN_SHARED ? 0 : 1;
}

static int wait_status(pid_t pid)
{
	int status;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void fork_shares_the_count(void **state)
{
	(void)state;
	int go[2];

	/* Parent lets go first (the fork-per-connection server): not last. */
	assert_int_equal(pipe(go), 0);
	own_track_new(111, 8001);
	own_fork_prepare();
	pid_t pid = in_child(child_releases_last, 111, go[0]);
	assert_int_equal(own_release(111, 8001), OWN_SHARED);
	assert_int_equal(write(go[1], "g", 1), 1);
	assert_int_equal(wait_status(pid), 0);

	/* Child lets go first: the parent's close is the last one. */
	own_track_new(112, 8002);
	own_fork_prepare();
	pid = in_child(child_releases_shared, 112, -1);
	assert_int_equal(wait_status(pid), 0);
	assert_int_equal(own_release(112, 8002), OWN_LAST);
	close(go[0]);
	close(go[1]);
}

static int child_does_not_have(int fd)
{
	uint64_t cookie;
	return own_lookup(fd, &cookie) ? 1 : 0;
}

static void fork_child_drops_what_was_not_counted(void **state)
{
	(void)state;
	own_fork_prepare();
	own_track_new(113, 8101); /* accepted between prepare and fork */
	pid_t pid = in_child(child_does_not_have, 113, -1);
	assert_int_equal(wait_status(pid), 0);
	assert_int_equal(own_release(113, 8101), OWN_LAST);
}

static void failed_fork_gives_the_references_back(void **state)
{
	(void)state;
	own_track_new(114, 8201);
	own_fork_prepare();
	own_fork_parent(true);
	assert_int_equal(own_release(114, 8201), OWN_LAST);
}

static void exec_env_carries_the_books_and_the_mark(void **state)
{
	(void)state;
	char *envp[] = { "A=1", "SAFECLOSE_BOOKS=9", "SAFECLOSE_COUNTED=1",
			 "LD_PRELOAD=/opt/lib/libsafeclose.so", NULL };
	char *out[8], bufs[2][48], books[48], mark[48];

	assert_true(own_books_fd() >= 0);
	assert_int_equal(own_exec_env(envp, out, 8, bufs), 4);
	snprintf(books, sizeof books, "SAFECLOSE_BOOKS=%d", own_books_fd());
	snprintf(mark, sizeof mark, "SAFECLOSE_COUNTED=%d", (int)getpid());
	assert_string_equal(out[0], "A=1");
	assert_string_equal(out[1], "LD_PRELOAD=/opt/lib/libsafeclose.so");
	assert_string_equal(out[2], books);
	assert_string_equal(out[3], mark);
	assert_null(out[4]);
}

/* Only a program that loads the shim reads them: an empty environment stays
 * empty, and one without the shim gets nothing (and loses our stale ones). */
static void exec_env_without_the_shim_gets_nothing(void **state)
{
	(void)state;
	char *empty[] = { NULL };
	char *other[] = { "LD_PRELOAD=libother.so", "SAFECLOSE_BOOKS=9", "B=2", NULL };
	char *out[8], bufs[2][48];

	assert_int_equal(own_exec_env(empty, out, 8, bufs), 0);
	assert_null(out[0]);
	assert_int_equal(own_exec_env(NULL, out, 8, bufs), 0);
	assert_null(out[0]);
	assert_int_equal(own_exec_env(other, out, 8, bufs), 2);
	assert_string_equal(out[0], "LD_PRELOAD=libother.so");
	assert_string_equal(out[1], "B=2");
	assert_null(out[2]);
}

static void read_shut_is_per_socket_and_never_for_a_reused_number(void **state)
{
	(void)state;
	struct tcp_pair p;
	uint32_t left;

	assert_int_equal(tcp_pair_open(&p), 0);
	own_track_socket(p.server);
	int copy = dup(p.server);
	own_track_dup(p.server, copy);
	assert_false(own_read_shut(p.server, &left));
	own_set_read_shut(p.server, 5);
	assert_true(own_read_shut(copy, &left)); /* every descriptor of the socket */
	assert_int_equal(left, 5);
	own_read_after_shut(copy, 3);
	assert_true(own_read_shut(p.server, &left));
	assert_int_equal(left, 2);
	own_read_after_shut(copy, 9);
	assert_true(own_read_shut(p.server, &left));
	assert_int_equal(left, 0);

	/* The number closed behind the shim's back and reused for a pipe: its
	 * reads must not be turned into end-of-file. */
	int pipefd[2];
	assert_int_equal(pipe(pipefd), 0);
	dup2(pipefd[0], copy);
	assert_false(own_read_shut(copy, &left));
	close(copy);
	close(pipefd[0]);
	close(pipefd[1]);
	assert_int_equal(own_release(p.server, probe_cookie(p.server)), OWN_LAST);
	tcp_pair_close(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(single_descriptor_is_last),
		cmocka_unit_test(dup_keeps_the_socket_shared),
		cmocka_unit_test(untracked_and_out_of_range_are_unknown),
		cmocka_unit_test(stale_entry_is_never_acted_on),
		cmocka_unit_test(reused_number_replaces_the_old_entry),
		cmocka_unit_test(dup_over_a_tracked_number_drops_it),
		cmocka_unit_test(fork_shares_the_count),
		cmocka_unit_test(fork_child_drops_what_was_not_counted),
		cmocka_unit_test(failed_fork_gives_the_references_back),
		cmocka_unit_test(exec_env_carries_the_books_and_the_mark),
		cmocka_unit_test(exec_env_without_the_shim_gets_nothing),
		cmocka_unit_test(read_shut_is_per_socket_and_never_for_a_reused_number),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
