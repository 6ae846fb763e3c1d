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
 * peer's kernel drop that), input unread at the close or, when the program
 * shut its read side (read_shut) while the peer still sends, input to come.
 * A connection that never carried a byte of ours and is closed with input
 * unread is an abort (an upload refused without a word, a peer cut off): the
 * reset is what tells the sender to stop. */
static bool something_to_protect(int fd, const struct tcp_facts *facts, int unread,
				 bool read_shut)
{
	if (facts->output_waits)
		return true;
	if (facts->bytes_acked == 0)
		return false;
	return (read_shut && !probe_state_peer_done(facts->state)) ||
	       (unread == UNREAD_NOT_ASKED ? probe_unread(fd) : unread) > 0;
}

static enum sc_arm arm_of(long mode, int fd)
{
	return mode == SC_MODE_OBSERVE ? SC_ARM_CONTROL : split_arm(fd, sc_cfg.ab_percent);
}

bool decide_release(long mode, int fd, bool read_shut, enum sc_arm *arm)
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
	if (mode == SC_MODE_PENDING && !something_to_protect(fd, &facts, unread, read_shut))
		return false;
	/* SO_LINGER {1, N}: the kernel's close blocks as the program asked (a
	 * hand-off would return at once, and the shim's own final close would
	 * block instead); {1, 0}: an abortive close on purpose. */
	return !probe_linger_chosen(fd);
}

bool decide_acts_on(long mode, int fd)
{
	return mode != SC_MODE_OFF && arm_of(mode, fd) == SC_ARM_LINGER;
}
