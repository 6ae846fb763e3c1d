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
#include "linger.h"
#include "log.h"
#include "ownership.h"
#include "probe.h"

void release_before_close(int fd)
{
	int saved_errno = errno;
	uint64_t booked;

	if (!own_lookup(fd, &booked))
		return;
	enum own_verdict verdict = own_release(fd, probe_cookie(fd));
	if (verdict == OWN_LAST && decide_should_linger(sc_cfg.mode, fd))
		linger_run_in_place(fd, (uint64_t)sc_cfg.linger_ms, (uint64_t)sc_cfg.idle_ms);
	else if (verdict == OWN_SHARED)
		SC_LOG(SC_LOG_DEBUG, "fd %d: socket still held elsewhere, left alone", fd);
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
