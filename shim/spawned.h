/* spawned.h: which of our sockets a program started without a fork of ours
 * holds, so that no close of ours lingers on a connection it serves. */
#ifndef SAFECLOSE_SPAWNED_H
#define SAFECLOSE_SPAWNED_H

#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The references marked held for a program about to start, each as the
 * descriptor of ours it was counted through, to give back if the program
 * never starts. Beyond SPAWN_HOLDS_MAX they stay held (left alone). Small
 * enough for the stack of a vfork child. */
#define SPAWN_HOLDS_MAX 128
struct spawn_holds {
	uint32_t ticket; /* own_spawn_ticket(); 0: marks, not references */
	uint32_t pid;    /* or counted under this pid: an exec of a child the shim
			  * does not follow (own_exec_child_pid()) */
	int n;
	int fd[SPAWN_HOLDS_MAX];
};

/* posix_spawn(actions) is about to run (actions NULL: none, as for the
 * shells of popen and system): every socket on the books that the new
 * program will hold (inherited, or put in place by a dup2 action,
 * close-on-exec or not) is held by it, one reference per descriptor it will
 * have, as its own books will count them: counted under `ticket` (0: only
 * marked held, for a child whose pid the shim never learns: popen, system). */
void spawn_hold_for_actions(const posix_spawn_file_actions_t *actions, uint32_t ticket,
			    struct spawn_holds *h);

/* A process the shim does not follow (a vfork or clone child) is about to
 * exec: the sockets of ours its descriptors refer to, wherever its dup2
 * calls put them, are held by the new program, one reference per
 * descriptor, counted under the child's pid when envp runs the new program
 * under the shim with the books (h->pid; marked otherwise). Only the
 * family's shared counts are written. */
void spawn_hold_open_sockets(struct spawn_holds *h, char *const envp[]);

/* The spawn or exec failed: no program holds what h marked. */
void spawn_holds_undo(struct spawn_holds *h);

/* posix_spawn() started the program as pid: what h counted under its
 * ticket is the child's (ownership.h: own_spawn_started). */
void spawn_holds_started(struct spawn_holds *h, pid_t pid);

#endif
