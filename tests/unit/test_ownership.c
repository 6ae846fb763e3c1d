/* test_ownership.c: the ownership rule's books: only the release of the last
 * reference is OWN_LAST, across dup and across fork (shared counts), a stale
 * entry (the number was closed elsewhere and reused) is never acted on, and a
 * fork child drops what was never counted for it. The books are reclaimed:
 * a give-away or a spawn marks a record instead of leaking a reference, the
 * references of a member killed without closing are collected (whether it
 * died before or after it took over its fork's references), and a full table
 * refuses at once, says so once, and recovers after a collection. An epoll
 * registration under a number closed while the socket lived on makes the
 * last release OWN_LAST_IN_EPOLL. A process in another pid namespace never
 * judges the family's pids. A release in another thread waits while a fork
 * is under way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "loopback.h"
#include "ownership.h"
#include "release_as.h"
#include "probe.h"
#include "self.h"

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
	assert_int_equal(release_as(100, 4242, false), OWN_LAST);
	assert_false(own_lookup(100, &cookie));
	assert_int_equal(release_as(100, 4242, false), OWN_UNKNOWN);
}

static void dup_keeps_the_socket_shared(void **state)
{
	(void)state;
	own_track_new(100, 5001);
	own_track_dup(100, 101);
	own_track_dup(101, 102);
	assert_int_equal(release_as(100, 5001, false), OWN_SHARED);
	assert_int_equal(release_as(102, 5001, false), OWN_SHARED);
	assert_int_equal(release_as(101, 5001, false), OWN_LAST);
}

static void untracked_and_out_of_range_are_unknown(void **state)
{
	(void)state;
	uint64_t cookie;

	assert_int_equal(release_as(103, 1, false), OWN_UNKNOWN);
	assert_int_equal(release_as(-1, 1, false), OWN_UNKNOWN);
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
	assert_int_equal(release_as(106, 6002, false), OWN_UNKNOWN);
	own_track_new(106, 6003);
	assert_int_equal(release_as(106, 0, false), OWN_UNKNOWN);
}

static void reused_number_replaces_the_old_entry(void **state)
{
	(void)state;
	own_track_new(107, 7001);
	own_track_dup(107, 108);
	own_track_new(107, 7002); /* 107 was closed elsewhere and reused */
	assert_int_equal(release_as(108, 7001, false), OWN_LAST);
	assert_int_equal(release_as(107, 7002, false), OWN_LAST);
}

static void dup_over_a_tracked_number_drops_it(void **state)
{
	(void)state;
	own_track_new(109, 9001);
	own_track_new(110, 9002);
	own_track_dup(109, 110); /* dup2(109, 110) */
	assert_int_equal(release_as(109, 9001, false), OWN_SHARED);
	assert_int_equal(release_as(110, 9001, false), OWN_LAST);
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
	own_fork_parent(pid);
	return pid;
}

static int child_releases_last(int fd)
{
	return release_as(fd, 8001, false) == OWN_LAST ? 0 : 1;
}

static int child_releases_shared(int fd)
{
	return release_as(fd, 8002, false) == OWN_SHARED ? 0 : 1;
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
	assert_int_equal(release_as(111, 8001, false), OWN_SHARED);
	assert_int_equal(write(go[1], "g", 1), 1);
	assert_int_equal(wait_status(pid), 0);

	/* Child lets go first: the parent's close is the last one. */
	own_track_new(112, 8002);
	own_fork_prepare();
	pid = in_child(child_releases_shared, 112, -1);
	assert_int_equal(wait_status(pid), 0);
	assert_int_equal(release_as(112, 8002, false), OWN_LAST);
	close(go[0]);
	close(go[1]);
}

/* A child that leaves the family's books (own_detach, after a change of
 * credentials): what only it held stays its own, what the parent held too
 * is left alone on both sides, and no mapping of the parent's books is left
 * in it. */
static int detach_sync = -1;

static bool maps_inode(ino_t ino)
{
	char line[512];
	bool found = false;
	FILE *maps = fopen("/proc/self/maps", "r");

	while (maps && fgets(line, sizeof line, maps)) {
		unsigned long long inode = 0;
		if (sscanf(line, "%*s %*s %*s %*s %llu", &inode) == 1 && inode == ino)
			found = true;
	}
	if (maps)
		fclose(maps);
	return found;
}

static int child_detaches(int old_fd)
{
	struct stat st;
	char go;
	int bad = 0;

	if (read(detach_sync, &go, 1) != 1 || fstat(old_fd, &st) < 0)
		return 99;
	own_detach();
	bad |= maps_inode(st.st_ino) << 0;                          /* the parent's: unmapped */
	bad |= (fcntl(old_fd, F_GETFD) >= 0 && own_books_fd() == old_fd) << 1;
	bad |= (release_as(130, 9501, false) != OWN_LAST) << 2;    /* only ours: lingers */
	bad |= (release_as(131, 9502, false) != OWN_SHARED) << 3;  /* the parent's too */
	bad |= (release_as(132, 9503, false) != OWN_SHARED) << 4;
	bad |= (release_as(133, 9503, false) != OWN_SHARED) << 5;  /* never "last" */
	own_track_new(134, 9504);                                   /* its own books work */
	own_track_dup(134, 135);
	bad |= (release_as(134, 9504, false) != OWN_SHARED) << 6;
	bad |= (release_as(135, 9504, false) != OWN_LAST) << 7;
	/* Books of its own are never passed across exec. */
	char *envp[] = { "LD_PRELOAD=libsafeclose.so", NULL }, *out[4], bufs[2][SC_ENV_ROOM];
	size_t n = own_exec_env(envp, out, 4, bufs, 0, 0);
	bad |= (n != 2 || strncmp(out[1], "SAFECLOSE_BOOKS=withheld:", 25) != 0) << 8;
	own_exec_env_done();
	return bad ? 1 + __builtin_ctz((unsigned)bad) : 0; /* which check failed first */
}

static void detached_child_keeps_only_what_it_alone_held(void **state)
{
	(void)state;
	int go[2];

	own_collect();
	uint32_t before = own_records_in_use();
	assert_int_equal(pipe(go), 0);
	own_track_new(130, 9501);
	own_track_new(131, 9502);
	own_track_new(132, 9503);
	own_track_dup(132, 133);
	assert_true(own_books_fd() >= 0);
	detach_sync = go[0];
	own_fork_prepare();
	pid_t pid = in_child(child_detaches, own_books_fd(), -1);
	/* The fork-per-connection parent lets go of 130 before the child
	 * leaves; 131 and 132 it keeps. */
	assert_int_equal(release_as(130, 9501, false), OWN_SHARED);
	assert_int_equal(write(go[1], "g", 1), 1);
	assert_int_equal(wait_status(pid), 0);
	/* The child took its references along; the mark it left keeps them
	 * from ever reading as the parent's last. */
	assert_int_equal(release_as(131, 9502, false), OWN_SHARED);
	assert_int_equal(release_as(132, 9503, false), OWN_SHARED);
	assert_int_equal(release_as(133, 9503, false), OWN_SHARED);
	own_collect(); /* the child is gone: nothing of it stays on the books */
	assert_int_equal(own_records_in_use(), before);
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
	assert_int_equal(release_as(113, 8101, false), OWN_LAST);
}

static void failed_fork_gives_the_references_back(void **state)
{
	(void)state;
	own_track_new(114, 8201);
	own_fork_prepare();
	own_fork_parent(-1);
	assert_int_equal(release_as(114, 8201, false), OWN_LAST);
}

static void exec_env_carries_the_books_and_the_mark(void **state)
{
	(void)state;
	char *envp[] = { "A=1", "SAFECLOSE_BOOKS=9", "SAFECLOSE_COUNTED=1",
			 "LD_PRELOAD=/opt/lib/libsafeclose.so", NULL };
	char *out[8], bufs[2][SC_ENV_ROOM], books[48], mark[48];

	assert_true(own_books_fd() >= 0);
	assert_int_equal(own_exec_env(envp, out, 8, bufs, 0, 0), 4);
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
	char *out[8], bufs[2][SC_ENV_ROOM];

	assert_int_equal(own_exec_env(empty, out, 8, bufs, 0, 0), 0);
	assert_null(out[0]);
	assert_int_equal(own_exec_env(NULL, out, 8, bufs, 0, 0), 0);
	assert_null(out[0]);
	assert_int_equal(own_exec_env(other, out, 8, bufs, 0, 0), 2);
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
	assert_int_equal(release_as(p.server, probe_cookie(p.server), false), OWN_LAST);
	tcp_pair_close(&p);
}

static void give_away_marks_the_record_and_leaks_nothing(void **state)
{
	(void)state;
	uint32_t before = own_records_in_use();

	own_track_new(120, 12001);
	own_track_dup(120, 121);
	own_give_away(120); /* sendmsg(SCM_RIGHTS): someone out of sight holds it */
	assert_int_equal(release_as(120, 12001, false), OWN_SHARED);
	assert_int_equal(release_as(121, 12001, false), OWN_SHARED); /* never lingered */
	assert_int_equal(own_records_in_use(), before);              /* and nothing leaked */
	own_track_new(121, 12002);
	assert_int_equal(release_as(121, 12002, false), OWN_LAST); /* a fresh record is clean */
}

static void spawn_marks_only_what_the_program_inherits(void **state)
{
	(void)state;
	int p[2];
	uint32_t before = own_records_in_use();

	assert_int_equal(pipe2(p, 0), 0);
	assert_int_equal(fcntl(p[1], F_SETFD, FD_CLOEXEC), 0);
	own_track_new(p[0], 12101); /* inherited by the spawned program */
	own_track_new(p[1], 12102); /* close-on-exec: not */
	own_hold_inherited();
	assert_int_equal(release_as(p[0], 12101, false), OWN_SHARED);
	assert_int_equal(release_as(p[1], 12102, false), OWN_LAST);
	assert_int_equal(own_records_in_use(), before);
	close(p[0]);
	close(p[1]);
}

/* A forked child that holds its copies until the parent says (or kills it). */
static pid_t holding_child(int go_fd, bool claims)
{
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (claims)
			own_fork_child();
		char go;
		_exit(read(go_fd, &go, 1) == 1 ? 0 : 99);
	}
	return pid;
}

/* The one record pid holds is kept while it lives and collected once it is
 * killed: the records in use are `before` again. */
static void assert_kept_while_alive_then_collected(pid_t pid, uint32_t before)
{
	own_collect();
	assert_int_equal(own_records_in_use(), before + 1); /* a live holder's are kept */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	assert_true(own_collect() >= 1);
	assert_int_equal(own_records_in_use(), before);
}

static void killed_child_references_are_collected(void **state)
{
	(void)state;
	int go[2];
	uint32_t before = own_records_in_use();

	assert_int_equal(pipe(go), 0);
	own_track_new(130, 13001);
	own_track_dup(130, 131);
	own_fork_prepare();
	pid_t pid = holding_child(go[0], true);
	own_fork_parent(pid);
	assert_int_equal(release_as(130, 13001, false), OWN_SHARED);
	assert_int_equal(release_as(131, 13001, false), OWN_SHARED); /* the child holds two */
	assert_kept_while_alive_then_collected(pid, before);
	close(go[0]);
	close(go[1]);
}

/* posix_spawn: the program's references are counted under a ticket, put
 * under its pid once the spawn returns it, and collected when it dies; a
 * spawn that fails gives them back at once. */
static void spawned_program_references_are_counted_then_collected(void **state)
{
	(void)state;
	int go[2];
	uint32_t before = own_records_in_use();

	assert_int_equal(pipe(go), 0);
	own_track_new(160, 16001);
	uint32_t ticket = own_spawn_ticket();
	assert_true(ticket != 0);
	own_hold_for_spawn(160, ticket);
	pid_t pid = holding_child(go[0], false); /* a program without the shim */
	own_spawn_started(160, ticket, pid);
	assert_int_equal(release_as(160, 16001, false), OWN_SHARED); /* the program holds it */
	assert_kept_while_alive_then_collected(pid, before);

	own_track_new(161, 16101);
	ticket = own_spawn_ticket();
	own_hold_for_spawn(161, ticket);
	own_spawn_failed(161, ticket); /* no program started */
	assert_int_equal(release_as(161, 16101, false), OWN_LAST);
	close(go[0]);
	close(go[1]);
}

static void child_killed_before_taking_over_is_collected(void **state)
{
	(void)state;
	int go[2];
	uint32_t before = own_records_in_use();

	/* The child dies before own_fork_child: the parent put the references
	 * under its pid. */
	assert_int_equal(pipe(go), 0);
	own_track_new(132, 13201);
	own_fork_prepare();
	pid_t pid = holding_child(go[0], false);
	own_fork_parent(pid);
	assert_int_equal(release_as(132, 13201, false), OWN_SHARED);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	own_collect();
	assert_int_equal(own_records_in_use(), before);
	close(go[0]);
	close(go[1]);
}

static int child_releases_then_reports(int fd)
{
	return release_as(fd, 13301, false) == OWN_LAST ? 0 : 1;
}

static void parent_gone_before_handing_over_the_child_takes_over(void **state)
{
	(void)state;
	int go[2];
	uint32_t before = own_records_in_use();

	/* As if the parent were killed right after fork: it never put the
	 * references under the child's pid (0: unknown); the child did. */
	assert_int_equal(pipe(go), 0);
	own_track_new(133, 13301);
	own_fork_prepare();
	pid_t pid = fork();
	if (pid == 0) {
		own_fork_child();
		char c;
		_exit(read(go[0], &c, 1) == 1 ? child_releases_then_reports(133) : 99);
	}
	own_fork_parent(0);
	assert_int_equal(release_as(133, 13301, false), OWN_SHARED);
	assert_int_equal(write(go[1], "g", 1), 1);
	assert_int_equal(wait_status(pid), 0);
	assert_int_equal(own_records_in_use(), before);
	close(go[0]);
	close(go[1]);
}

/* In a child: n records on fake descriptors from `first`, never released;
 * it says so on `ready`, then waits to be killed holding them. */
static pid_t leaking_child(int first, int n, uint64_t cookie_base, int ready, int go_fd)
{
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		own_fork_child();
		for (int i = 0; i < n; i++)
			own_track_new(first + i, cookie_base + (uint64_t)i);
		char c = 'r';
		if (write(ready, &c, 1) != 1 || read(go_fd, &c, 1) != 1)
			_exit(99);
		_exit(0);
	}
	return pid;
}

/* What own_track_new wrote on stderr, for a few refused tracks. */
static void refused_tracks_logged(char *out, size_t size)
{
	int p[2], saved = dup(2);
	uint64_t cookie;

	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	dup2(p[1], 2);
	for (int i = 0; i < 3; i++) {
		own_track_new(140, 14000 + (uint64_t)i);
		assert_false(own_lookup(140, &cookie)); /* left alone */
	}
	dup2(saved, 2);
	close(saved);
	ssize_t n = read(p[0], out, size - 1);
	out[n > 0 ? n : 0] = '\0';
	close(p[0]);
	close(p[1]);
}

static void full_books_refuse_at_once_report_once_and_recover(void **state)
{
	(void)state;
	uint32_t before = own_records_in_use(), room = own_records_room();
	int per_child = 60000, children = (int)((room - before) / (uint32_t)per_child) + 1;
	int last_child = (int)((room - before) % (uint32_t)per_child); /* exactly full */
	pid_t pids[16];
	char log[4096];

	assert_true(children <= 16);
	int ready[2], go[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	for (int c = 0; c < children; c++) {
		char r;
		own_fork_prepare();
		pids[c] = leaking_child(1000, c == children - 1 ? last_child : per_child,
					1000000 * (uint64_t)(c + 1), ready[1], go[0]);
		own_fork_parent(pids[c]);
		assert_int_equal(read(ready[0], &r, 1), 1);
	}
	assert_int_equal(own_records_in_use(), room);
	refused_tracks_logged(log, sizeof log);
	char *first = strstr(log, "ownership books full");
	assert_non_null(first);
	assert_null(strstr(first + 1, "ownership books full"));

	for (int c = 0; c < children; c++) {
		kill(pids[c], SIGKILL);
		waitpid(pids[c], NULL, 0);
	}
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
	assert_true(own_collect() >= room - before);
	assert_int_equal(own_records_in_use(), before);
	own_track_new(141, 14101);
	assert_int_equal(release_as(141, 14101, false), OWN_LAST);
}

static void epoll_registration_under_a_closed_number_is_told(void **state)
{
	(void)state;

	/* dup, close the registered original, close the copy. */
	own_track_new(150, 15001);
	own_track_dup(150, 151);
	assert_int_equal(release_as(150, 15001, true), OWN_SHARED);
	assert_int_equal(release_as(151, 15001, false), OWN_LAST_IN_EPOLL);

	/* Registered under the last number only: the caller can remove it. */
	own_track_new(152, 15201);
	own_track_dup(152, 153);
	assert_int_equal(release_as(152, 15201, false), OWN_SHARED);
	assert_int_equal(release_as(153, 15201, true), OWN_LAST);

	/* The flag goes with the record: a new socket starts clean. */
	own_track_new(150, 15002);
	assert_int_equal(release_as(150, 15002, false), OWN_LAST);
}

static int child_last_release(int fd)
{
	return release_as(fd, 15301, false) == OWN_LAST_IN_EPOLL ? 0 : 1;
}

static void epoll_registration_in_another_process_is_told(void **state)
{
	(void)state;
	int go[2];

	assert_int_equal(pipe(go), 0);
	own_track_new(154, 15301);
	own_fork_prepare();
	pid_t pid = in_child(child_last_release, 154, go[0]);
	assert_int_equal(release_as(154, 15301, true), OWN_SHARED);
	assert_int_equal(write(go[1], "g", 1), 1);
	assert_int_equal(wait_status(pid), 0);
	close(go[0]);
	close(go[1]);
}

/* In a grandchild that is pid 1 of a new pid namespace: the pids of the
 * family mean nothing there (kill says ESRCH for every one of them), so it
 * must neither collect them nor name itself as a holder. */
static int grandchild_in_new_pid_namespace(int fd)
{
	if (getpid() != 1 || own_collect() != 0)
		return 1;
	if (release_as(fd, 16001, false) != OWN_SHARED)
		return 2;
	return release_as(fd + 1, 16001, false) == OWN_SHARED ? 0 : 3;
}

static int helper_that_unshares(int fd)
{
	if (unshare(CLONE_NEWPID) != 0)
		return 10;
	own_fork_prepare();
	pid_t pid = fork();
	if (pid == 0) {
		own_fork_child();
		_exit(grandchild_in_new_pid_namespace(fd));
	}
	own_fork_parent(pid);
	int status = wait_status(pid);
	if (status != 0)
		return 20 + status;
	if (release_as(fd, 16001, false) != OWN_SHARED)
		return 30;
	return release_as(fd + 1, 16001, false) == OWN_LAST ? 0 : 31;
}

static void another_pid_namespace_never_collects_the_family(void **state)
{
	(void)state;
	int go[2];

	/* The family's first process lets go first; the helper, its grandchild
	 * in the new namespace, then the helper again. */
	assert_int_equal(pipe(go), 0);
	own_track_new(160, 16001);
	own_track_dup(160, 161);
	own_fork_prepare();
	pid_t pid = in_child(helper_that_unshares, 160, go[0]);
	assert_int_equal(release_as(160, 16001, false), OWN_SHARED);
	assert_int_equal(release_as(161, 16001, false), OWN_SHARED);
	assert_int_equal(write(go[1], "g", 1), 1);
	assert_int_equal(wait_status(pid), 0);
	close(go[0]);
	close(go[1]);
}

static void fork_inside_prepare_does_not_deadlock(void **state)
{
	(void)state;

	/* A signal handler forking while its thread is between prepare and
	 * parent: the same thread asks for the lock again. */
	own_track_new(170, 17001);
	own_fork_prepare();
	own_fork_prepare();
	own_fork_parent(-1);
	own_fork_parent(-1);
	assert_int_equal(release_as(170, 17001, false), OWN_LAST); /* both given back */

	own_track_new(171, 17101); /* and the lock works as before */
	own_fork_prepare();
	own_fork_parent(-1);
	assert_int_equal(release_as(171, 17101, false), OWN_LAST);
}

/* A release in another thread while a fork is between its prepare (which
 * counted the child's references) and its syscall: had it gone on, it would
 * have taken a reference the child never gets, and the socket's last
 * release would have been "shared" (a reset; test-apps/storm.c, fork way).
 * It waits at the gate until the fork is over. */
struct gated {
	int fd;
	uint64_t cookie;
	int done;
	enum own_verdict verdict;
};

static void *release_in_another_thread(void *arg)
{
	struct gated *g = arg;

	g->verdict = release_as(g->fd, g->cookie, false);
	__atomic_store_n(&g->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void release_waits_for_a_fork_in_another_thread(void **state)
{
	(void)state;
	struct gated g = { .fd = 172, .cookie = 17201 };
	pthread_t t;

	own_track_new(g.fd, g.cookie);
	own_fork_prepare();
	assert_int_equal(pthread_create(&t, NULL, release_in_another_thread, &g), 0);
	usleep(100 * 1000);
	assert_int_equal(__atomic_load_n(&g.done, __ATOMIC_ACQUIRE), 0);
	/* The fork failed: its references go back; the release then is the last. */
	own_fork_parent(-1);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(g.verdict, OWN_LAST);

	/* The forking thread itself (a signal handler's close) passes the gate. */
	own_track_new(173, 17301);
	own_fork_prepare();
	assert_int_equal(release_as(173, 17301, false), OWN_SHARED);
	own_fork_parent(-1);
}

/* In a child made behind the fork wrapper's back (vfork, clone): the books
 * go to the exec'd program, but not the mark that our references are its
 * own (they were only marked as given away). */
static void exec_from_an_unfollowed_child_is_not_counted(void **state)
{
	(void)state;
	char *envp[] = { "LD_PRELOAD=/x/libsafeclose.so", NULL };

	assert_true(sc_self()); /* this process is followed */
	pid_t pid = fork();      /* libc's: the shim did not see it */
	if (pid == 0) {
		char *out[8], bufs[2][SC_ENV_ROOM];
		size_t n = own_exec_env(envp, out, 8, bufs, 0, 0);
		bool counted = false;
		for (size_t i = 0; i < n; i++)
			counted |= strncmp(out[i], "SAFECLOSE_COUNTED=", 18) == 0;
		_exit(!sc_self() && n == 2 && !counted ? 0 : 1);
	}
	assert_int_equal(wait_status(pid), 0);
	own_exec_env_done();
}

/* The same child, exec'ing a program that runs the shim (a shell's vfork
 * child): the references that program will hold are counted under the
 * child's pid, the program is told they are its own, and they are
 * collected once it is gone; a failed exec gives them back. A program
 * without the shim gets a mark instead (its own forks would be unseen). */
static void exec_from_an_unfollowed_child_counts_under_its_pid(void **state)
{
	(void)state;
	char *shimmed[] = { "LD_PRELOAD=/x/libsafeclose.so", NULL };
	char *plain[] = { "PATH=/bin", NULL };
	uint32_t before = own_records_in_use();
	int go[2], told[2];

	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(told), 0);
	own_track_new(174, 17401);
	pid_t pid = fork(); /* libc's: the shim did not see it */
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		uint32_t me = own_exec_child_pid(shimmed);
		char *out[8], bufs[2][SC_ENV_ROOM], want[40], go_byte;
		snprintf(want, sizeof want, "SAFECLOSE_COUNTED=%u", me);
		size_t n = own_exec_env(shimmed, out, 8, bufs, 0, me);
		bool counted = false;
		for (size_t i = 0; i < n; i++)
			counted |= strcmp(out[i], want) == 0;
		own_exec_env_done();
		/* a failed exec first, then the one that "succeeds" */
		own_hold_for_exec_child(174, me);
		own_exec_child_failed(174, me);
		own_hold_for_exec_child(174, me);
		char ok = !sc_self() && me == (uint32_t)getpid() && counted &&
			  own_exec_child_pid(plain) == 0;
		if (write(told[1], &ok, 1) != 1)
			_exit(98);
		_exit(read(go[0], &go_byte, 1) == 1 ? 0 : 99);
	}
	char ok = 0;
	assert_int_equal(read(told[0], &ok, 1), 1);
	assert_true(ok);
	assert_int_equal(release_as(174, 17401, false), OWN_SHARED); /* the program holds it */
	assert_kept_while_alive_then_collected(pid, before);

	own_track_new(175, 17501);
	own_hold_for_exec_child(175, (uint32_t)getpid() + 1);
	own_exec_child_failed(175, (uint32_t)getpid() + 1);
	assert_int_equal(release_as(175, 17501, false), OWN_LAST);
	close(go[0]);
	close(go[1]);
	close(told[0]);
	close(told[1]);
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
		cmocka_unit_test(detached_child_keeps_only_what_it_alone_held),
		cmocka_unit_test(failed_fork_gives_the_references_back),
		cmocka_unit_test(exec_env_carries_the_books_and_the_mark),
		cmocka_unit_test(exec_env_without_the_shim_gets_nothing),
		cmocka_unit_test(read_shut_is_per_socket_and_never_for_a_reused_number),
		cmocka_unit_test(give_away_marks_the_record_and_leaks_nothing),
		cmocka_unit_test(spawn_marks_only_what_the_program_inherits),
		cmocka_unit_test(killed_child_references_are_collected),
		cmocka_unit_test(spawned_program_references_are_counted_then_collected),
		cmocka_unit_test(child_killed_before_taking_over_is_collected),
		cmocka_unit_test(parent_gone_before_handing_over_the_child_takes_over),
		cmocka_unit_test(full_books_refuse_at_once_report_once_and_recover),
		cmocka_unit_test(epoll_registration_under_a_closed_number_is_told),
		cmocka_unit_test(epoll_registration_in_another_process_is_told),
		cmocka_unit_test(another_pid_namespace_never_collects_the_family),
		cmocka_unit_test(fork_inside_prepare_does_not_deadlock),
		cmocka_unit_test(release_waits_for_a_fork_in_another_thread),
		cmocka_unit_test(exec_from_an_unfollowed_child_is_not_counted),
		cmocka_unit_test(exec_from_an_unfollowed_child_counts_under_its_pid),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
