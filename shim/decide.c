/* decide.c: owns the close decision, one place for every close path. It only
 * asks; it changes nothing on the socket. */
#include "decide.h"

#include "config.h"
#include "probe.h"

bool decide_should_linger(long mode, int fd, bool read_shut)
{
	struct tcp_facts facts;

	if (mode == SC_MODE_OFF || !probe_tcp(fd, &facts) || !probe_state_connected(facts.state))
		return false;
	/* A read side the program shut while the peer still sends: the next
	 * segment would draw a reset, however idle the socket looks now. */
	bool peer_sends = read_shut && !probe_state_peer_done(facts.state);
	if (mode == SC_MODE_PENDING && !peer_sends && !facts.output_waits && probe_unread(fd) == 0)
		return false;
	return !probe_abortive_linger(fd);
}
