/* spawned.h: which of our sockets a program started without a fork of ours
 * holds, so that no close of ours lingers on a connection it serves. */
#ifndef SAFECLOSE_SPAWNED_H
#define SAFECLOSE_SPAWNED_H

#include <spawn.h>

/* posix_spawn(actions) is about to run: every socket on the books that the
 * new program will hold (inherited, or put in place by a dup2 action,
 * close-on-exec or not) is marked held by it, one reference per descriptor
 * it will have, as its own books will count them. */
void spawn_hold_for_actions(const posix_spawn_file_actions_t *actions);

/* A process the shim does not follow (a vfork or clone child) is about to
 * exec: the sockets of ours its descriptors refer to, wherever its dup2
 * calls put them, are marked held by the new program, one reference per
 * descriptor. Only the family's shared counts are written. */
void spawn_hold_open_sockets(void);

#endif
