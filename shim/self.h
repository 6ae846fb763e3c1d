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
 * writes nothing of its own memory. One getpid() system call: callers ask
 * only on the paths that would act. */
bool sc_self(void);

/* The constructor: follow this process, and the forks glibc makes behind the
 * fork wrapper's back. */
void sc_self_init(void);

/* The fork wrapper, around the real fork(): its child is followed, with the
 * books it counted. */
void sc_self_fork_begin(void);
void sc_self_fork_end(bool child);

#endif
