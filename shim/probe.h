/* probe.h: what the kernel says about one socket descriptor. */
#ifndef SAFECLOSE_PROBE_H
#define SAFECLOSE_PROBE_H

#include <stdbool.h>
#include <stdint.h>

/* The socket's identity across descriptors and processes (SO_COOKIE);
 * 0 when fd is not an open socket. */
uint64_t probe_cookie(int fd);

/* True when fd is a TCP socket (SO_PROTOCOL; covers IPv4 and IPv6). */
bool probe_is_tcp(int fd);

/* What one TCP_INFO read tells: the state, and whether output still waits
 * for the peer (sent and unacknowledged, our FIN included, or not yet
 * sent). False when fd is not a TCP socket. */
struct tcp_facts {
	int state;
	bool output_waits;
	uint64_t bytes_acked; /* of our output, ever (Linux 4.2+; 0 before) */
};
bool probe_tcp(int fd, struct tcp_facts *facts);

/* Bytes not yet read (SIOCINQ); 0 when the kernel will not say. */
int probe_unread(int fd);

/* The application set SO_LINGER with l_onoff: it chose how its close ends,
 * abortive ({1, 0}) or blocking until the output is acknowledged ({1, N}). */
bool probe_linger_chosen(int fd);

/* The peer has finished sending (its FIN arrived), or the connection is gone. */
bool probe_state_peer_done(int state);

/* A state in which the connection still carries data one way or the other. */
bool probe_state_connected(int state);

#endif
