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
	bool connected; /* the connection still carries data one way or the other */
	bool peer_done; /* the peer has finished sending (its FIN came), or it is gone */
	bool output_waits;
	uint64_t bytes_acked; /* of our output, ever (Linux 4.2+; 0 before) */
};
bool probe_tcp(int fd, struct tcp_facts *facts);

/* Everything a release or a shutdown asks about one socket, in one visit:
 * TCP_INFO, then only for a connected TCP socket its identity, and what
 * `asks` adds. */
struct sock_facts {
	uint64_t cookie;     /* SO_COOKIE; 0 when not asked, or not an open socket */
	bool tcp;            /* a TCP socket: tcp_info holds what TCP_INFO said */
	struct tcp_facts tcp_info;
	int unread;          /* SIOCINQ; PROBE_NOT_ASKED unless asked */
	bool linger_chosen;  /* SO_LINGER with l_onoff; false unless asked */
	bool exposed;        /* a reset now would cost output of ours (probe.c) */
};
#define PROBE_NOT_ASKED (-1)
#define PROBE_UNREAD 1u         /* SIOCINQ */
/* SIOCINQ only once the peer has finished sending: whether anything is
 * still unread is then what TCP_INFO cannot tell. */
#define PROBE_UNREAD_IF_DONE 2u
#define PROBE_LINGER 4u         /* SO_LINGER */
/* The identity (and SO_LINGER) only when `exposed`: for a decision that
 * lets every other socket go as it is. */
#define PROBE_IDENTITY_IF_EXPOSED 8u
void probe_socket(int fd, unsigned asks, struct sock_facts *facts);

/* Bytes not yet read (SIOCINQ); 0 when the kernel will not say. */
int probe_unread(int fd);


#endif
