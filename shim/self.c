/* self.c: owns the answer to "is this the process the shim keeps books
 * for?". The books describe one process's descriptors; a process made
 * without the shim's knowledge holds copies the books never counted, and a
 * vfork or CLONE_VM child even shares the parent's memory, where any write
 * (an entry dropped, a counter bumped, a thread started) would be the
 * parent's. The proof is the process id: the shim records the pid it
 * follows, and a process whose pid differs is not it.
 *
 * glibc 2.36 has no pid cache, so getpid() is a system call, asked on every
 * accept, epoll_ctl and close of a socket on the books. The pid is kept
 * instead in a page of its own marked MADV_WIPEONFORK: in any child with
 * memory of its own (fork, a raw fork or clone without CLONE_VM) the page
 * reads zero and the first question asks the kernel. A child that shares
 * this memory would read its parent's pid there, so while one may exist the
 * page is not read: the vfork wrapper (vfork.c) counts its child in and out
 * of `memory_shared`, and a clone() with CLONE_VM counts one in for good. */
#include "self.h"

#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>

#include "ownership.h"
#include "rawsys.h"

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

static pid_t followed; /* 0: not yet known */
static __thread bool in_fork_wrapper __attribute__((tls_model("initial-exec")));
static pid_t *pid_page; /* NULL: no cache (not yet made, or not available) */
int sc_memory_shared;   /* vfork.c's counter: processes that may share this memory */

static pid_t raw_getpid(void)
{
	return (pid_t)raw_syscall(SYS_getpid);
}

/* Made by the constructor. Until then, and for good on kernels without
 * MADV_WIPEONFORK (before 4.14), the page is NULL and every question asks
 * the kernel. */
static void make_pid_page(void)
{
#ifdef SC_PID_CACHE
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return;
	if (madvise(p, 4096, MADV_WIPEONFORK) != 0) {
		munmap(p, 4096);
		return;
	}
	STORE(&pid_page, (pid_t *)p);
#endif
}

/* The vfork child increments the counter before its syscall, in the thread
 * that becomes the child, so the child always sees it; a stale zero read by
 * another thread is that thread's, in the parent, whose pid the page holds. */
static pid_t current_pid(void)
{
	pid_t *page = LOAD(&pid_page);

	if (!page || __atomic_load_n(&sc_memory_shared, __ATOMIC_SEQ_CST))
		return raw_getpid();
	pid_t pid = LOAD(page);
	if (!pid) {
		pid = raw_getpid();
		STORE(page, pid);
	}
	return pid;
}

void sc_self_memory_shared(void)
{
	__atomic_add_fetch(&sc_memory_shared, 1, __ATOMIC_SEQ_CST);
}

void sc_self_memory_shared_end(void)
{
	__atomic_sub_fetch(&sc_memory_shared, 1, __ATOMIC_SEQ_CST);
}

/* A fork child's memory is its own: no vfork or CLONE_VM child of its
 * parent's shares it. */
static void memory_own(void)
{
	__atomic_store_n(&sc_memory_shared, 0, __ATOMIC_SEQ_CST);
}

bool sc_self(void)
{
	pid_t pid = current_pid(), none = 0;

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
	memory_own();
	STORE(&followed, raw_getpid());
}

void sc_self_init(void)
{
	STORE(&followed, raw_getpid());
	make_pid_page();
	pthread_atfork(NULL, NULL, after_fork_child);
}

void sc_self_fork_begin(void)
{
	in_fork_wrapper = true;
}

void sc_self_fork_end(bool child)
{
	in_fork_wrapper = false;
	if (child) {
		memory_own();
		STORE(&followed, raw_getpid());
	}
}
