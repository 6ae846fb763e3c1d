/* decide.c: owns the close decision, one place for every close path. It only
 * asks; it changes nothing on the socket. */
#include "decide.h"

#include "config.h"
#include "probe.h"

/* Under `pending`, a reset costs the program something only when it has sent
 * the peer something: output still on its way, or earlier output the peer's
 * kernel holds but its application may not have read yet (a RST makes the
 * peer's kernel drop that), input unread at the close or, when the program
 * shut its read side (read_shut) while the peer still sends, input to come.
 * A connection that never carried a byte of ours and is closed with input
 * unread is an abort (an upload refused without a word, a peer cut off): the
 * reset is what tells the sender to stop. */
static bool something_to_protect(int fd, const struct tcp_facts *facts, bool read_shut)
{
	if (facts->output_waits)
		return true;
	if (facts->bytes_acked == 0)
		return false;
	return (read_shut && !probe_state_peer_done(facts->state)) || probe_unread(fd) > 0;
}

bool decide_should_linger(long mode, int fd, bool read_shut)
{
	struct tcp_facts facts;

	if (mode == SC_MODE_OFF || !probe_tcp(fd, &facts) || !probe_state_connected(facts.state))
		return false;
	if (mode == SC_MODE_PENDING && !something_to_protect(fd, &facts, read_shut))
		return false;
	/* SO_LINGER {1, N}: the kernel's close blocks as the program asked (a
	 * hand-off would return at once, and the shim's own final close would
	 * block instead); {1, 0}: an abortive close on purpose. */
	return !probe_linger_chosen(fd);
}
