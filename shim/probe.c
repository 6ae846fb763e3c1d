/* probe.c: owns the questions the shim asks the kernel about a socket, each
 * one getsockopt or ioctl, async-signal-safe, errno left alone. */
#include "probe.h"

#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

uint64_t probe_cookie(int fd)
{
	int saved_errno = errno;
	uint64_t cookie = 0;
	socklen_t len = sizeof cookie;

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) < 0)
		cookie = 0;
	errno = saved_errno;
	return cookie;
}

bool probe_is_tcp(int fd)
{
	int saved_errno = errno;
	int proto = 0;
	socklen_t len = sizeof proto;
	bool tcp = getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) == 0 &&
		   proto == IPPROTO_TCP;

	errno = saved_errno;
	return tcp;
}

int probe_tcp_state(int fd)
{
	int saved_errno = errno;
	struct tcp_info info;
	socklen_t len = sizeof info;
	int state = -1;

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 && len > 0)
		state = info.tcpi_state;
	errno = saved_errno;
	return state;
}

static int ioctl_count(int fd, unsigned long request)
{
	int saved_errno = errno;
	int n = 0;

	if (ioctl(fd, request, &n) < 0 || n < 0)
		n = 0;
	errno = saved_errno;
	return n;
}

int probe_unread(int fd) { return ioctl_count(fd, SIOCINQ); }
int probe_unacked(int fd) { return ioctl_count(fd, SIOCOUTQ); }

bool probe_abortive_linger(int fd)
{
	int saved_errno = errno;
	struct linger lg = { 0, 0 };
	socklen_t len = sizeof lg;
	bool abortive = getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len) == 0 &&
			lg.l_onoff && lg.l_linger == 0;

	errno = saved_errno;
	return abortive;
}

bool probe_state_peer_done(int state)
{
	switch (state) {
	case TCP_CLOSE_WAIT:
	case TCP_LAST_ACK:
	case TCP_CLOSING:
	case TCP_TIME_WAIT:
	case TCP_CLOSE:
		return true;
	default:
		return false;
	}
}

bool probe_state_connected(int state)
{
	switch (state) {
	case TCP_ESTABLISHED:
	case TCP_CLOSE_WAIT:
	case TCP_FIN_WAIT1:
	case TCP_FIN_WAIT2:
	case TCP_CLOSING:
	case TCP_LAST_ACK:
		return true;
	default:
		return false;
	}
}
