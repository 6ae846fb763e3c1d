/* release.c: owns the path every letting-go of a descriptor takes: the
 * ownership rule first (only the last reference may linger), then the close
 * decision, then the linger machine. Descriptors the shim does not account
 * for leave after one table lookup, without a syscall. */
#include "release.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "config.h"
#include "decide.h"
#include "epoll_books.h"
#include "linger.h"
#include "log.h"
#include "ownership.h"
#include "probe.h"
#include "reaper.h"

/* In place, or handed to the background thread; when neither can be done,
 * what is still safe without waiting. */
static void linger(int fd, uint64_t cookie)
{
	if (sc_cfg.where == SC_LINGER_SYNC)
		linger_run_in_place(fd, (uint64_t)sc_cfg.linger_ms, (uint64_t)sc_cfg.idle_ms);
	else if (!reaper_hand_off(fd, cookie))
		linger_release_now(fd);
}

static void release_tracked(int fd)
{
	uint64_t cookie = probe_cookie(fd);
	enum own_verdict verdict = own_release(fd, cookie);

	if (verdict == OWN_LAST && decide_should_linger(sc_cfg.mode, fd))
		linger(fd, cookie);
	else if (verdict == OWN_SHARED)
		SC_LOG(SC_LOG_DEBUG, "fd %d: socket still held elsewhere, left alone", fd);
}

void release_before_close(int fd)
{
	int saved_errno = errno;
	uint64_t booked;

	if (own_lookup(fd, &booked))
		release_tracked(fd);
	epb_forget(fd);
	errno = saved_errno;
}

void release_before_replace(int oldfd, int newfd)
{
	int saved_errno = errno;
	uint64_t booked;

	if (oldfd != newfd && own_lookup(newfd, &booked) &&
	    syscall(SYS_fcntl, oldfd, F_GETFD) >= 0)
		release_before_close(newfd);
	errno = saved_errno;
}
