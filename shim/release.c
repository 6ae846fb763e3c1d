/* release.c: owns the path every letting-go of a descriptor takes, whatever
 * the call that lets go (close, dup2 over it, close_range, fclose, exit, exec):
 * the ownership rule first (only the last reference may linger), then the
 * close decision, then the linger machine, in the background or in place.
 * Descriptors the shim does not account for leave after one table lookup,
 * without a syscall. tests/test_shape.py holds a release to that one line. */
#include "release.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <stdio.h>

#include "config.h"
#include "decide.h"
#include "epoll_books.h"
#include "heir.h"
#include "linger.h"
#include "log.h"
#include "ownership.h"
#include "probe.h"
#include "readshut.h"
#include "rawsys.h"
#include "real.h"
#include "reaper.h"
#include "selffd.h"
#include "shim.h"
#include "stats.h"
#include "statsfile.h"

/* How a letting-go may linger: until when at the latest (0: the usual
 * bounds); count_only: not at all, it is only classified and counted (the
 * kernel is about to let go of it where the settings leave it to the
 * kernel). */
struct release_how {
	uint64_t until_ms;
	bool count_only;
};

static const struct release_how on_close = { 0, false };

/* The one rule for a socket the shim keeps alive once the program has let
 * go of it (lingering in the background, or in place inside close()): it
 * has no epoll registration left in any set. A registration belongs to the
 * open file and dies only with it, so a file kept alive would go on
 * reporting events, with the program's old data, to a set the program still
 * waits on. Those made under fd itself are removed here (fd still names the
 * file). One made under a number the program closed earlier while the
 * socket lived on (a dup, another process: OWN_LAST_IN_EPOLL) no
 * EPOLL_CTL_DEL can reach any more; nor can the books list every set past a
 * few per descriptor. Such a socket is never kept alive: it takes the no-wait
 * fallback, and the close that follows frees it with its registrations.
 * fd leaves the epoll books either way; true when its file may live on. */
static bool let_go_of_epoll(int fd, bool to_keep_alive, enum own_verdict verdict)
{
	bool alive = to_keep_alive && verdict == OWN_LAST;

	return epb_let_go(fd, alive) && alive;
}

static void linger(int fd, uint64_t cookie, enum sc_arm arm, const struct release_how *how,
		   bool keep_alive, bool read_shut)
{
	uint64_t bound = (uint64_t)sc_cfg.linger_ms, now = sc_now_ms();

	if (!keep_alive) {
		SC_LOG(SC_LOG_DEBUG, "fd %d: an epoll set may still hold it; released without waiting", fd);
		stats_count_fallback(arm);
		linger_release_now(fd);
		return;
	}
	if (how->until_ms) {
		uint64_t left = how->until_ms > now ? how->until_ms - now : 0;
		bound = left < bound ? left : bound;
	}
	if (sc_cfg.where == SC_LINGER_SYNC) {
		stats_count_lingered(arm);
		linger_run_in_place(fd, bound, (uint64_t)sc_cfg.idle_ms, arm);
	} else if (reaper_hand_off(fd, cookie, arm, !read_shut)) {
		stats_count_lingered(arm);
	} else {
		stats_count_fallback(arm);
		linger_release_now(fd);
	}
}

/* fd leaves the books: whether it was the last reference, under which
 * cookie the books held it, and whether the program had shut its read
 * side. The one place where the program's letting go meets what it asked
 * for earlier: a real SHUT_RD still waiting is cancelled at once (nothing
 * is carried out for a program that let go), and a socket it shut for
 * reading lingers while the peer still sends, however idle it looks
 * (decide.c): the peer's next segment would draw the reset. The exit plan
 * and every close take this same step. */
static enum own_verdict off_the_books(int fd, struct own_released *books)
{
	enum own_verdict verdict = own_release(fd, epb_registered(fd), books);

	if (books->read_shut && !books->held_here)
		readshut_let_go(books->booked);
	return verdict;
}

/* A release, as one line: the heir hears a close is under way; the books
 * say whether this was the last reference; the decision probes the socket
 * once and says whether it lingers; the epoll books let go of it (out of
 * every set first if it is kept alive); the linger machine acts. */
static void release_tracked(int fd, const struct release_how *how)
{
	struct own_released books;
	enum sc_arm arm = SC_ARM_LINGER;

	heir_note_releasing(fd); /* an exec in another thread planned it */
	enum own_verdict verdict = off_the_books(fd, &books);
	bool last = verdict == OWN_LAST || verdict == OWN_LAST_IN_EPOLL;
	/* The heir would keep its copy alive: only when nothing forbids it. */
	heir_note_released(fd, verdict == OWN_LAST);
	bool lingers = last && decide_release(sc_cfg.mode, fd, books.booked, &arm) &&
		       !how->count_only;
	bool keep_alive = let_go_of_epoll(fd, lingers, verdict);

	if (lingers)
		linger(fd, books.booked, arm, how, keep_alive, books.read_shut);
	else if (verdict == OWN_SHARED)
		SC_LOG(SC_LOG_DEBUG, "fd %d: socket still held elsewhere, left alone", fd);
}

static void release_with(int fd, const struct release_how *how)
{
	int saved_errno = errno;
	uint64_t booked;

	if (own_lookup(fd, &booked))
		release_tracked(fd, how);
	else
		epb_forget(fd);
	errno = saved_errno;
}

void release_before_close(int fd)
{
	release_with(fd, &on_close);
}

void release_known_before_close(int fd)
{
	int saved_errno = errno;

	release_tracked(fd, &on_close);
	errno = saved_errno;
}

/* What dup2/dup3 check before they drop newfd (fs/file.c): oldfd open and
 * not newfd itself, newfd under the soft RLIMIT_NOFILE. */
static bool replace_will_succeed(int oldfd, int newfd)
{
	struct rlimit rl;

	return oldfd != newfd && raw_syscall(SYS_fcntl, oldfd, F_GETFD) >= 0 &&
	       (raw_syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl) < 0 ||
		(rlim_t)newfd < rl.rlim_cur);
}

void release_before_replace(int oldfd, int newfd)
{
	int saved_errno = errno;
	uint64_t booked;

	if (own_lookup(newfd, &booked) && replace_will_succeed(oldfd, newfd))
		release_before_close(newfd);
	errno = saved_errno;
}

void release_range(unsigned first, unsigned last)
{
	int top = own_max_fd();

	for (long fd = first; fd <= (long)last && fd <= top; fd++)
		if (!selffd_owns((int)fd))
			release_before_close((int)fd);
}

/* One descriptor closed by the shim on the program's behalf, as its close()
 * would (never one of the shim's own). */
static void close_for_program(int fd)
{
	if (selffd_owns(fd))
		return;
	release_before_close(fd);
	raw_syscall(SYS_close, fd); /* as glibc's fallback: no cancellation point */
}

static int open_fd_dir(void)
{
	return (int)raw_syscall(SYS_openat, AT_FDCWD, "/proc/self/fd",
				O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Closes the numbers listed in one getdents64 batch; true when it closed any
 * (the listing then starts again: closing shifts the directory's offsets). */
static bool close_listed(const char *batch, long size, int from, int dir)
{
	bool closed = false;

	for (long at = 0; at < size;) {
		const struct dirent64 *e = (const void *)(batch + at);
		int fd = 0;

		at += e->d_reclen;
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		for (const char *c = e->d_name; *c >= '0' && *c <= '9'; c++)
			fd = fd * 10 + (*c - '0');
		if (fd == dir || fd < from || selffd_owns(fd))
			continue;
		close_for_program(fd);
		closed = true;
	}
	return closed;
}

bool release_close_from(int lowfd)
{
	int saved_errno = errno, dir = open_fd_dir();
	char batch[1024] __attribute__((aligned(8)));
	long n;

	if (dir < 0 && errno == EMFILE) {
		close_for_program(lowfd++); /* glibc too makes room this way */
		dir = open_fd_dir();
	}
	if (dir < 0)
		return false;
	while ((n = raw_syscall(SYS_getdents64, dir, batch, sizeof batch)) > 0)
		if (close_listed(batch, n, lowfd, dir) &&
		    raw_syscall(SYS_lseek, dir, 0, SEEK_SET) != 0)
			break;
	raw_syscall(SYS_close, dir);
	errno = saved_errno;
	return n == 0;
}

/* Every socket still on the books, as if closed (or only counted); then
 * wait for the background lingers, all within SAFECLOSE_EXIT_WAIT_MS. What
 * exit and exec do when no heir can take over, or none is wanted (observe:
 * nothing lingers, every release is only counted). */
static void release_everything(bool only_cloexec, bool count_only)
{
	int saved_errno = errno;
	struct release_how how = { sc_now_ms() + (uint64_t)sc_cfg.exit_wait_ms, count_only };
	uint64_t booked;

	for (int fd = 0; fd <= own_max_fd(); fd++) {
		if (!own_lookup(fd, &booked))
			continue;
		if (only_cloexec && !(raw_syscall(SYS_fcntl, fd, F_GETFD) & FD_CLOEXEC))
			continue;
		release_with(fd, &how);
	}
	reaper_wait(how.until_ms);
	errno = saved_errno;
}

static bool dies_at_exec(int fd)
{
	long flags = raw_syscall(SYS_fcntl, fd, F_GETFD);

	return flags >= 0 && (flags & FD_CLOEXEC);
}

static bool connected_tcp(int fd)
{
	struct tcp_facts tcp;

	return probe_tcp(fd, &tcp) && tcp.connected;
}

/* At exec nothing changes before the exec has succeeded: the heir takes the
 * close-on-exec sockets off the books then, and lingers on the connected
 * ones that were the last reference. */
static void plan_exec(struct heir_plan *plan)
{
	uint64_t booked;

	for (int fd = 0; fd <= own_max_fd(); fd++) {
		if (!own_lookup(fd, &booked) || !dies_at_exec(fd))
			continue;
		if (connected_tcp(fd))
			heir_plan_socket(plan, fd, false); /* the heir asks */
		else
			heir_plan_release(plan, fd);
	}
}

/* At exit every socket on the books is let go of now (the process cannot
 * take it back); the heir lingers, once the process is gone, on the
 * connected ones that were the last reference. */
static void plan_exit(struct heir_plan *plan)
{
	uint64_t booked;

	for (int fd = 0; fd <= own_max_fd(); fd++) {
		if (!own_lookup(fd, &booked))
			continue;
		struct own_released books;
		enum own_verdict verdict = off_the_books(fd, &books);
		enum sc_arm arm;
		/* Decided (and counted) now: the process cannot take it back. */
		if (verdict == OWN_LAST && decide_release(sc_cfg.mode, fd, books.booked, &arm))
			heir_plan_socket(plan, fd, books.read_shut);
	}
}

/* No heir at exit after all: what the plan took off the books lingers here,
 * and the process waits for it (today's SAFECLOSE_EXIT_WAIT_MS). */
static void linger_plan_here(const struct heir_plan *plan, bool from_exit)
{
	struct release_how how = { sc_now_ms() + (uint64_t)sc_cfg.exit_wait_ms, false };

	if (from_exit) {
		reaper_safe_point(); /* not _exit(): signal handlers call that one */
		fflush(NULL); /* destructors run before stdio's own flush */
	}
	for (int fd = 0; fd <= plan->top; fd++) {
		bool read_shut;
		if (heir_plan_takes(plan, fd, &read_shut)) /* decided by plan_exit */
			linger(fd, probe_cookie(fd), SC_ARM_LINGER, &how,
			       let_go_of_epoll(fd, true, OWN_LAST), read_shut);
	}
	reaper_wait(how.until_ms);
}

static void exit_without_heir(bool from_exit)
{
	if (from_exit)
		reaper_safe_point(); /* not _exit(): signal handlers call that one */
	if (sc_cfg.at_exit == SC_LINGER_OFF) {
		/* Left to the kernel, but the kernel's reset is still counted. */
		if (sc_cfg.stats_path)
			release_everything(false, true);
		reaper_wait_at_exit(); /* what was closed before still finishes */
		return;
	}
	if (from_exit && sc_may_linger())
		fflush(NULL);
	release_everything(false, !sc_may_linger());
}

void release_at_exit(bool from_exit)
{
	struct heir_plan plan;

	if (sc_cfg.mode == SC_MODE_OFF)
		return;
	int saved_errno = errno;
	/* Nothing can linger (observe, SAFECLOSE_AB=0): no heir, only counts. */
	if (!sc_may_linger() || !heir_plan_begin(&plan, HEIR_AT_EXIT)) {
		exit_without_heir(from_exit);
	} else {
		if (sc_cfg.at_exit == SC_LINGER_ON)
			plan_exit(&plan);
		int ticket = heir_start(&plan);
		if (ticket >= 0)
			SC_LOG(SC_LOG_DEBUG, "exit: the heir takes over %d sockets", plan.sockets);
		else if (ticket != HEIR_NOTHING)
			linger_plan_here(&plan, from_exit);
		heir_plan_end(&plan);
	}
	reaper_log_stats();
	statsfile_write();
	errno = saved_errno;
}

int release_before_exec(void)
{
	struct heir_plan plan;
	int ticket = -1;
	bool program = sc_cfg.at_exec == SC_LINGER_ON;

	if (sc_cfg.mode == SC_MODE_OFF)
		return -1;
	int saved_errno = errno;
	if (!sc_may_linger()) {
		/* Nothing lingers: the close-on-exec sockets are only counted,
		 * and the exec changes nothing else (a failed one, nothing). */
		if (sc_cfg.stats_path)
			release_everything(true, true);
		statsfile_write();
		errno = saved_errno;
		return -1;
	}
	if (heir_plan_begin(&plan, HEIR_AT_EXEC)) {
		if (program)
			plan_exec(&plan);
		ticket = heir_start(&plan);
		heir_plan_end(&plan);
	}
	/* No heir could be made: released here, as a close, as before. */
	if (ticket >= 0)
		SC_LOG(SC_LOG_DEBUG, "exec: the heir takes over %d sockets if it succeeds",
		       plan.sockets);
	else if (ticket != HEIR_NOTHING && (program || sc_cfg.stats_path))
		release_everything(true, !program);
	else if (ticket != HEIR_NOTHING)
		reaper_wait_at_exit(); /* the shim's own descriptors are close-on-exec */
	statsfile_write();
	errno = saved_errno;
	return ticket;
}

void release_after_failed_exec(int ticket)
{
	heir_stand_down(ticket);
	statsfile_resume();
}
