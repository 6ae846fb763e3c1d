/* probe.c: owns the questions the shim asks the kernel about a socket, each
 * one getsockopt or ioctl, and the one visit that asks a release's or a
 * shutdown's questions together (probe_socket); async-signal-safe, errno
 * left alone. */
#include "probe.h"

#include <errno.h>
#include <stddef.h>
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
/* Bytes not yet acknowledged by the peer, our FIN included (SIOCOUTQ). */
static int probe_unacked(int fd) { return ioctl_count(fd, SIOCOUTQ); }

/* glibc's struct tcp_info stops at tcpi_total_retrans; the kernel's goes on
 * (a stable ABI, Linux 4.6+ for tcpi_notsent_bytes). */
struct tcp_info_more {
	struct tcp_info base;
	uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
	uint32_t segs_out, segs_in, notsent_bytes;
};
_Static_assert(offsetof(struct tcp_info_more, pacing_rate) == 104, "kernel tcp_info layout");

static bool state_peer_done(int state)
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

static bool state_connected(int state)
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

bool probe_tcp(int fd, struct tcp_facts *facts)
{
	int saved_errno = errno;
	struct tcp_info_more info;
	socklen_t len = sizeof info;
	bool tcp = getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 && len > 0;

	if (tcp) {
		facts->state = info.base.tcpi_state;
		facts->connected = state_connected(facts->state);
		facts->peer_done = state_peer_done(facts->state);
		/* Older kernels return less: then ask SIOCOUTQ. */
		bool notsent_known = len >= offsetof(struct tcp_info_more, notsent_bytes) +
						    sizeof info.notsent_bytes;
		facts->output_waits = notsent_known
			? info.base.tcpi_unacked > 0 || info.notsent_bytes > 0
			: probe_unacked(fd) > 0;
		facts->bytes_acked = len >= offsetof(struct tcp_info_more, bytes_received)
			? info.bytes_acked : 0;
	}
	errno = saved_errno;
	return tcp;
}


/* The application set SO_LINGER with l_onoff: it chose how its close ends,
 * abortive ({1, 0}) or blocking until the output is acknowledged ({1, N}). */
static bool linger_chosen(int fd)
{
	int saved_errno = errno;
	struct linger lg = { 0, 0 };
	socklen_t len = sizeof lg;
	bool chosen = getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len) == 0 && lg.l_onoff;

	errno = saved_errno;
	return chosen;
}

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
 * socket. (Unread is asked where TCP_INFO leaves it open: a peer that has
 * finished; not asked, it counts as nothing unread.) */
static bool output_exposed(const struct sock_facts *f)
{
	if (f->tcp_info.output_waits)
		return true;
	if (f->tcp_info.bytes_acked == 0)
		return false;
	return !f->tcp_info.peer_done || f->unread > 0;
}

/* TCP_INFO first: it also says whether fd is a TCP socket at all. A socket
 * that is not connected needs no identity, since nothing will be done to
 * it; nor, under PROBE_IDENTITY_IF_EXPOSED, one whose output a reset would
 * not cost (the ordinary close, and a peer that has finished with nothing
 * unread: an idle keep-alive connection the client ended). */
void probe_socket(int fd, unsigned asks, struct sock_facts *facts)
{
	const struct tcp_facts *tcp = &facts->tcp_info;

	facts->cookie = 0;
	facts->tcp = probe_tcp(fd, &facts->tcp_info);
	facts->unread = PROBE_NOT_ASKED;
	facts->linger_chosen = false;
	facts->exposed = false;
	if (!facts->tcp || !tcp->connected)
		return;
	if ((asks & PROBE_UNREAD) || ((asks & PROBE_UNREAD_IF_DONE) && tcp->peer_done))
		facts->unread = probe_unread(fd);
	facts->exposed = output_exposed(facts);
	if (!(asks & PROBE_IDENTITY_IF_EXPOSED) || facts->exposed)
		facts->cookie = probe_cookie(fd);
	if (facts->cookie && (asks & PROBE_LINGER))
		facts->linger_chosen = linger_chosen(fd);
}
