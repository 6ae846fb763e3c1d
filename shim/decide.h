/* decide.h: what the release of a socket this process owns is, and whether
 * it needs a lingering close. */
#ifndef SAFECLOSE_DECIDE_H
#define SAFECLOSE_DECIDE_H

#include <stdbool.h>
#include <stdint.h>

#include "stats.h"

/* The last reference to fd is being released; booked: the socket the books
 * hold under fd (a number that names another file now is left alone). For
 * a connected TCP socket,
 * picks its arm (SAFECLOSE_AB) and, when SAFECLOSE_STATS asks for counts,
 * classifies the release (stats.h: abortive, at_risk, clean) and counts it
 * there; then returns true when, in the linger
 * arm under `mode` (enum sc_mode), a plain close could make the kernel reset
 * the connection and the shim should linger instead: output on its way or,
 * once it has carried some of ours, unread input or a peer that has not
 * finished and may still send (pending), or any connected
 * TCP socket (always); never one whose application chose its close with
 * SO_LINGER {1, N} (blocking, or abortive for N = 0), never under observe
 * or in the control arm. *arm is the arm counted (when true is returned).
 * The socket is probed once (probe_socket): SO_COOKIE and TCP_INFO, SIOCINQ
 * when counting or when pending needs it, SO_LINGER once some socket may
 * carry it; the split's two address calls only when SAFECLOSE_AB is
 * strictly between 0 and 100. */
bool decide_release(long mode, int fd, uint64_t booked, enum sc_arm *arm);

/* A socket of this process may carry SO_LINGER: the program set the
 * option (on any socket), or a socket came from elsewhere (inherited,
 * received). Until then decide_release() does not ask the kernel for it.
 * Async-signal-safe. */
void decide_note_linger_possible(void);

/* Whether the shim acts on fd's connection at all (the read-side emulation
 * asks before it defers a SHUT_RD): not under observe, not in the control
 * arm. */
bool decide_acts_on(long mode, int fd);

#endif
