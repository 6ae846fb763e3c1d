/* decide.c: owns the close decision, one place for every close path. It only
 * asks; it changes nothing on the socket. */
#include "decide.h"

#include "config.h"
#include "probe.h"

bool decide_should_linger(long mode, int fd)
{
	struct tcp_facts facts;

	if (mode == SC_MODE_OFF || !probe_tcp(fd, &facts) || !probe_state_connected(facts.state))
		return false;
	if (mode == SC_MODE_PENDING && !facts.output_waits && probe_unread(fd) == 0)
		return false;
	/* SO_LINGER {1, N}: the kernel's close blocks as the program asked (a
	 * hand-off would return at once, and the shim's own final close would
	 * block instead); {1, 0}: an abortive close on purpose. */
	return !probe_linger_chosen(fd);
}
