/* decide.c: owns the close decision, one place for every close path, and the
 * classification counted with it. It only asks; it changes nothing on the
 * socket. */
#include "decide.h"

#include <stddef.h>

#include "config.h"
#include "probe.h"
#include "split.h"

#define UNREAD_NOT_ASKED (-1)

/* Under `pending`, a reset costs the program something only when it has sent
 * the peer something: output still on its way, or earlier output the peer's
 * kernel holds but its application may not have read yet (a RST makes the
 * peer's kernel drop that, and the peer sees ECONNRESET, not our FIN). Such
 * output is exposed by input unread at the close, and by input still to
 * come: a peer that has not finished may send again at any moment (the next
 * pipelined request, the rest of an upload a server refused, the request
 * that crosses our FIN), and the kernel answers it with a RST once the
 * socket is closed. An empty receive queue at the close proves nothing. A
 * connection that never carried a byte of ours and is closed with input
 * unread is an abort (an upload refused without a word, a peer cut off): the
 * reset is what tells the sender to stop. A read side the program shut
 * changes nothing here: the peer sends or it has finished, as for any
 * socket. */
static bool something_to_protect(int fd, const struct tcp_facts *facts, int unread)
{
	if (facts->output_waits)
		return true;
	if (facts->bytes_acked == 0)
		return false;
	return !probe_state_peer_done(facts->state) ||
	       (unread == UNREAD_NOT_ASKED ? probe_unread(fd) : unread) > 0;
}

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

static bool linger_chosen(int fd)
{
	return __atomic_load_n(&linger_possible, __ATOMIC_RELAXED) && probe_linger_chosen(fd);
}

static enum sc_arm arm_of(long mode, int fd)
{
	return mode == SC_MODE_OBSERVE ? SC_ARM_CONTROL : split_arm(fd, sc_cfg.ab_percent);
}

bool decide_release(long mode, int fd, enum sc_arm *arm)
{
	struct tcp_facts facts;

	if (mode == SC_MODE_OFF || !probe_tcp(fd, &facts) || !probe_state_connected(facts.state))
		return false;
	/* Counted only when someone reads the counts (SAFECLOSE_STATS): then
	 * one SIOCINQ more where the decision would not have asked. The
	 * kernel's tcp_close() resets when anything is unread (SIOCINQ leaves
	 * the peer's FIN out, as it does). */
	bool counting = sc_cfg.stats_path != NULL;
	int unread = counting ? probe_unread(fd) : UNREAD_NOT_ASKED;
	*arm = arm_of(mode, fd);
	if (counting)
		stats_count_release(*arm, stats_classify(unread, facts.output_waits));
	if (*arm == SC_ARM_CONTROL)
		return false;
	if (mode == SC_MODE_PENDING && !something_to_protect(fd, &facts, unread))
		return false;
	/* SO_LINGER {1, N}: the kernel's close blocks as the program asked (a
	 * hand-off would return at once, and the shim's own final close would
	 * block instead); {1, 0}: an abortive close on purpose. */
	return !linger_chosen(fd);
}

bool decide_acts_on(long mode, int fd)
{
	return mode != SC_MODE_OFF && arm_of(mode, fd) == SC_ARM_LINGER;
}
