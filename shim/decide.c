/* decide.c: owns the close decision, one place for every close path. It only
 * asks; it changes nothing on the socket. */
#include "decide.h"

#include "config.h"
#include "probe.h"

bool decide_should_linger(long mode, int fd)
{
	if (mode == SC_MODE_OFF)
		return false;
	if (!probe_state_connected(probe_tcp_state(fd)))
		return false;
	if (probe_abortive_linger(fd))
		return false;
	if (mode == SC_MODE_ALWAYS)
		return true;
	return probe_unread(fd) > 0 || probe_unacked(fd) > 0;
}
