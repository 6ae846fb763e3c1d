/* release.c: owns the path every letting-go of a descriptor takes, whatever
 * the call that lets go (close, dup2 over it, close_range, fclose, exit, exec):
 * the ownership rule first (only the last reference may linger), then the
 * close decision, then the linger machine, in the background or in place.
 * Descriptors the shim does not account for leave after one table lookup,
 * without a syscall. */
#include "release.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <stdio.h>

#include "config.h"
#include "decide.h"
#include "epoll_books.h"
#include "linger.h"
#include "log.h"
#include "ownership.h"
#include "probe.h"
#include "readshut.h"
#include "rawsys.h"
#include "reaper.h"
#include "selffd.h"
#include "shim.h"

/* How a letting-go may linger: until when at the latest (0: the usual
 * bounds), and whether it may start the background thread (not from
 * _exit(), which signal handlers call). */
struct release_how {
	uint64_t until_ms;
	bool may_start_thread;
};

static const struct release_how on_close = { 0, true };

static void linger(int fd, uint64_t cookie, const struct release_how *how)
{
	uint64_t bound = (uint64_t)sc_cfg.linger_ms, now = sc_now_ms();

	if (how->until_ms) {
		uint64_t left = how->until_ms > now ? how->until_ms - now : 0;
		bound = left < bound ? left : bound;
	}
	bool in_place = sc_cfg.where == SC_LINGER_SYNC ||
			(!reaper_running() && !how->may_start_thread);
	if (in_place)
		linger_run_in_place(fd, bound, (uint64_t)sc_cfg.idle_ms);
	else if (!reaper_hand_off(fd, cookie))
		linger_release_now(fd);
}

/* The one place where the program's letting go meets what it asked for
 * earlier: a real SHUT_RD still waiting is cancelled before anything else
 * (nothing is carried out for a program that let go), and a socket it shut
 * for reading lingers while the peer still sends, however idle it looks
 * (decide.c): the peer's next segment would draw the reset. */
static void release_tracked(int fd, const struct release_how *how)
{
	uint64_t cookie = probe_cookie(fd);
	bool read_shut = readshut_marked(fd);
	enum own_verdict verdict = own_release(fd, cookie);

	if (read_shut)
		readshut_let_go(cookie);
	if (verdict == OWN_LAST && decide_should_linger(sc_cfg.mode, fd, read_shut))
		linger(fd, cookie, how);
	else if (verdict == OWN_SHARED)
		SC_LOG(SC_LOG_DEBUG, "fd %d: socket still held elsewhere, left alone", fd);
}

static void release_with(int fd, const struct release_how *how)
{
	int saved_errno = errno;
	uint64_t booked;

	if (own_lookup(fd, &booked))
		release_tracked(fd, how);
	epb_forget(fd);
	errno = saved_errno;
}

void release_before_close(int fd)
{
	release_with(fd, &on_close);
}

void release_before_replace(int oldfd, int newfd)
{
	int saved_errno = errno;
	uint64_t booked;

	if (oldfd != newfd && own_lookup(newfd, &booked) &&
	    raw_syscall(SYS_fcntl, oldfd, F_GETFD) >= 0)
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

/* Every socket still on the books, as if closed; then wait for the
 * background lingers, all within SAFECLOSE_EXIT_WAIT_MS. */
static void release_everything(bool only_cloexec, bool may_start_thread)
{
	int saved_errno = errno;
	struct release_how how = { sc_now_ms() + (uint64_t)sc_cfg.exit_wait_ms,
				   may_start_thread };
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

void release_at_exit(bool from_exit)
{
	if (sc_cfg.mode == SC_MODE_OFF)
		return;
	if (sc_cfg.at_exit == SC_LINGER_OFF) {
		reaper_wait_at_exit(); /* what was closed before still finishes */
	} else {
		/* exit() runs destructors before stdio's own flush: the bytes a
		 * FILE still buffers for a socket must go out before its FIN. */
		if (from_exit)
			fflush(NULL);
		release_everything(false, from_exit);
	}
	reaper_log_stats();
}

void release_before_exec(void)
{
	if (sc_cfg.mode == SC_MODE_OFF)
		return;
	if (sc_cfg.at_exec == SC_LINGER_ON)
		release_everything(true, true);
	else
		reaper_wait_at_exit(); /* the shim's own descriptors are close-on-exec */
}
