/* decide.c: owns the close decision, one place for every close path, and the
 * classification counted with it. It only asks; it changes nothing on the
 * socket. */
#include "decide.h"

#include <stddef.h>

#include "config.h"
#include "probe.h"
#include "split.h"

/* Whether any socket of this process may carry an SO_LINGER with l_onoff:
 * set by the program (setsockopt, through the shim's wrapper), or brought
 * in from elsewhere (inherited at start, received over SCM_RIGHTS), where
 * anyone may have set it, on the socket or on the listener it was accepted
 * from. A socket accepted from a listener this process made, and never
 * given SO_LINGER, has none: then the close path need not ask the kernel
 * (one getsockopt less per close). Never cleared: an option set once may
 * still be on. */
static bool linger_possible;

void decide_note_linger_possible(void)
{
	__atomic_store_n(&linger_possible, true, __ATOMIC_RELAXED);
}

/* What the decision asks the kernel: SIOCINQ when counting (the
 * classification) or when `pending` may need it, SO_LINGER once some socket
 * of this process may carry it. Uncounted, `pending` lets a socket whose
 * output a reset would not cost go without asking its identity. */
static unsigned asks(long mode)
{
	unsigned what = 0;

	if (sc_cfg.stats_path)
		what |= PROBE_UNREAD;
	else if (mode == SC_MODE_PENDING)
		what |= PROBE_UNREAD_IF_DONE | PROBE_IDENTITY_IF_EXPOSED;
	if (__atomic_load_n(&linger_possible, __ATOMIC_RELAXED))
		what |= PROBE_LINGER;
	return what;
}

static enum sc_arm arm_of(long mode, int fd)
{
	return mode == SC_MODE_OBSERVE ? SC_ARM_CONTROL : split_arm(fd, sc_cfg.ab_percent);
}

bool decide_release(long mode, int fd, uint64_t booked, enum sc_arm *arm)
{
	struct sock_facts f;

	if (mode == SC_MODE_OFF)
		return false;
	probe_socket(fd, asks(mode), &f);
	/* A number that names another file now (reused out of the shim's
	 * sight) is not the socket the books know: left alone; so is one the
	 * probe did not ask (not connected, or nothing to protect). */
	if (!f.tcp || !f.tcp_info.connected || f.cookie != booked)
		return false;
	*arm = arm_of(mode, fd);
	/* Counted only when someone reads the counts (SAFECLOSE_STATS): the
	 * probe asked SIOCINQ then. The kernel's tcp_close() resets when
	 * anything is unread (SIOCINQ leaves the peer's FIN out, as it does). */
	if (sc_cfg.stats_path)
		stats_count_release(*arm, stats_classify(f.unread, f.tcp_info.output_waits));
	if (*arm == SC_ARM_CONTROL)
		return false;
	/* `pending`: only where a reset would cost output of ours (probe.c). */
	if (mode == SC_MODE_PENDING && !f.exposed)
		return false;
	/* SO_LINGER {1, N}: the kernel's close blocks as the program asked (a
	 * hand-off would return at once, and the shim's own final close would
	 * block instead); {1, 0}: an abortive close on purpose. */
	return !f.linger_chosen;
}

bool decide_acts_on(long mode, int fd)
{
	return mode != SC_MODE_OFF && arm_of(mode, fd) == SC_ARM_LINGER;
}
