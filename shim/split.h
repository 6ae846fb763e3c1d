/* split.h: which arm of the A/B split a connection is in (SAFECLOSE_AB). */
#ifndef SAFECLOSE_SPLIT_H
#define SAFECLOSE_SPLIT_H

#include <stdint.h>
#include <sys/socket.h>

#include "stats.h"

/* The connection's identity as one number: a hash of its local and peer
 * address and port (an IPv4-mapped IPv6 address counts as the IPv4 one), the
 * same in every process and on every path that sees the connection. */
uint64_t split_hash(const struct sockaddr *local, const struct sockaddr *peer);

/* The arm of a connection whose hash is `hash`, when `percent` % linger. */
enum sc_arm split_arm_of(uint64_t hash, long percent);

/* The arm of connected socket fd under SAFECLOSE_AB = percent: no system
 * call at 0 or 100; otherwise getsockname and getpeername (a socket whose
 * addresses the kernel will not give is in the control arm). errno is
 * preserved; async-signal-safe. */
enum sc_arm split_arm(int fd, long percent);

#endif
