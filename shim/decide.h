/* decide.h: whether closing a socket this process owns needs a lingering close. */
#ifndef SAFECLOSE_DECIDE_H
#define SAFECLOSE_DECIDE_H

#include <stdbool.h>

/* True when, under `mode` (enum sc_mode), a plain close of fd could make the
 * kernel reset the connection and the shim should linger instead: a
 * connected TCP socket with output on its way or, once it has carried some
 * of ours, with unread input or a peer that has not finished and may still
 * send (pending), or any connected TCP socket (always); never one whose application chose its close with SO_LINGER
 * {1, N} (blocking, or abortive for N = 0). Cheapest question first. */
bool decide_should_linger(long mode, int fd);

#endif
