/* self.h: which process the shim keeps books for. */
#ifndef SAFECLOSE_SELF_H
#define SAFECLOSE_SELF_H

#include <stdbool.h>

/* True in the process the shim follows: the one that loaded it, or a fork
 * child the books counted (the fork wrapper) or at least saw being made
 * (glibc's own forks: daemon(), forkpty()). False in every child the shim
 * did not see being made: a vfork child (which shares the parent's memory),
 * a clone() child, a raw syscall(SYS_fork) child, a child of _Fork(). In
 * such a process the shim acts on nothing: it releases, lingers, waits and
 * writes nothing of its own memory. No system call once the pid is known,
 * except while a child may share this memory (then one getpid()). */
bool sc_self(void);

/* The pid is cached only where vfork can be interposed (vfork.c): a vfork
 * child the shim did not count would take its parent's cached pid. */
#if defined(__x86_64__)
#define SC_PID_CACHE 1
#endif

/* Processes that may share this memory (a vfork child not yet gone; every
 * CLONE_VM child ever made by clone()): while nonzero, sc_self() asks the
 * kernel. Written by vfork.c's assembly, hence not static. */
extern int sc_memory_shared;

/* Before a clone() or raw clone/vfork with CLONE_VM: a child may share this
 * memory from now on, for as long as it lives. After such a call with
 * CLONE_VFORK returns in the parent (the child has exec'd or ended), or
 * fails, the _end undoes it; a child without CLONE_VFORK may share the
 * memory to the end, so that count is never taken back. */
void sc_self_memory_shared(void);
void sc_self_memory_shared_end(void);

/* The constructor: follow this process, and the forks glibc makes behind the
 * fork wrapper's back. */
void sc_self_init(void);

/* The fork wrapper, around the real fork(): its child is followed, with the
 * books it counted. */
void sc_self_fork_begin(void);
void sc_self_fork_end(bool child);

#endif
