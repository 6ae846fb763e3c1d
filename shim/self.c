/* self.c: owns the answer to "is this the process the shim keeps books
 * for?". The books describe one process's descriptors; a process made
 * without the shim's knowledge holds copies the books never counted, and a
 * vfork or CLONE_VM child even shares the parent's memory, where any write
 * (an entry dropped, a counter bumped, a thread started) would be the
 * parent's. The proof is the process id: the shim records the pid it
 * follows, and a process whose getpid() differs is not it.
 *
 * glibc 2.36 has no pid cache, so getpid() is a system call (about 130 ns
 * here, as much as a close() of a non-socket): the entry points ask only
 * where they are about to act on something the books know. */
#include "self.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <sys/types.h>

#include "ownership.h"
#include "rawsys.h"

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

static pid_t followed; /* 0: not yet known */
static __thread bool in_fork_wrapper __attribute__((tls_model("initial-exec")));

static pid_t raw_getpid(void)
{
	return (pid_t)raw_syscall(SYS_getpid);
}

bool sc_self(void)
{
	pid_t pid = raw_getpid(), none = 0;

	/* Before the constructor (another library's constructor making a
	 * socket): the first process to ask is the one that loaded us. */
	if (!LOAD(&followed))
		__atomic_compare_exchange_n(&followed, &none, pid, false, __ATOMIC_ACQ_REL,
					    __ATOMIC_ACQUIRE);
	return LOAD(&followed) == pid;
}

/* A fork glibc made without the wrapper (daemon(), forkpty(), a fork()
 * reached through an internal alias): the child is a process of the family,
 * but nothing it inherited was counted for it, so it holds none of it on the
 * books (its copies are left alone) and keeps books only of what it opens.
 * Forks from a process the shim does not follow stay unfollowed: the parent
 * was not the followed process when the followed pid is not its pid. */
static void after_fork_child(void)
{
	if (in_fork_wrapper || LOAD(&followed) != (pid_t)raw_syscall(SYS_getppid))
		return;
	own_fork_child_uncounted();
	STORE(&followed, raw_getpid());
}

void sc_self_init(void)
{
	STORE(&followed, raw_getpid());
	pthread_atfork(NULL, NULL, after_fork_child);
}

void sc_self_fork_begin(void)
{
	in_fork_wrapper = true;
}

void sc_self_fork_end(bool child)
{
	in_fork_wrapper = false;
	if (child)
		STORE(&followed, raw_getpid());
}
