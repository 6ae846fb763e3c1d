/* heir.c: owns the heir, the process that lingers on what a program lets go
 * of at exec and exit, and acts only once the kernel has shown that the
 * program was really replaced or is gone.
 *
 * The program keeps one end of a close-on-exec socket pair (a pipe would
 * raise SIGPIPE in the program if the heir were gone); the heir waits on
 * the other. End-of-file means that every copy of the program's end is
 * gone: the exec succeeded (the kernel dropped the close-on-exec
 * descriptors) or the process ended (every thread's last write is queued
 * before our FIN). A byte means the exec failed: the heir goes, touching
 * nothing. So a failed exec finds its connections as they were, and an exit
 * neither waits for lingers nor shuts a socket under a thread still writing.
 *
 * The heir is made with raw clone(): a copy of the address space (fork-like,
 * no CLONE_VM), exit signal 0, so the program's wait(), waitpid(-1) and
 * SIGCHLD handler never see it, and no atfork handler runs. An intermediate
 * child makes it and exits at once, so it is reparented away (to init or
 * the nearest subreaper, like any daemon) and never becomes a child of the
 * exec'd program; when this process is itself where orphans go (PID 1, a
 * subreaper) it is made directly and stays a clone child instead. No heir
 * is made at an exit that may end the whole pid namespace (PID 1, or a
 * child of a container init): the kernel would kill it (the caller lingers
 * in place, as before the heir existed). It is a copy of a possibly
 * multithreaded process: it runs only raw syscalls and the shim's
 * async-signal-safe machinery (the books' atomics, the probes, the linger
 * machine), with every signal blocked; no malloc, no locks, no stdio, no
 * log (descriptor 2 may be anything by then). It keeps only the sockets it
 * will linger on (and the epoll sets they are in): never a listener, pipe or
 * file of the program's, which would stay open behind the program's back. */
#include "rawsys.h"
#include "heir.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "config.h"
#include "decide.h"
#include "epoll_books.h"
#include "fdspace.h"
#include "linger.h"
#include "log.h"
#include "ownership.h"
#include "probe.h"
#include "readshut.h"
#include "real.h"
#include "selffd.h"
#include "shim.h"

enum role {
	ROLE_NONE,      /* closed in the heir at once */
	ROLE_PROGRAM,   /* the program's socket: lingered when it was the last */
	ROLE_PROGRAM_READ_SHUT, /* the same, at exit, its read side shut by the program */
	ROLE_RELEASE,   /* the program's, dies at the exec: off the books, not kept */
	ROLE_SHIM,      /* lingering in the shim's thread: lingered on */
	ROLE_EPOLL,     /* a set a program's socket is in: it leaves it first */
	/* A ROLE_PROGRAM socket the program itself let go of (another thread's
	 * close) while its exec was under way, noted by heir_note_release(): */
	ROLE_CLOSING,       /* being taken off the books (unknown outcome) */
	ROLE_CLOSED_LAST,   /* off the books, it was the last reference */
	ROLE_CLOSED_SHARED, /* off the books, someone else still holds it */
};

#define STAND_DOWN 'x'
#define TICKETS 4 /* heirs under way at once, per process */
#define CLOSE_LOOP_MAX (1ul << 20)

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* A slot per heir under way (an exec in two threads at once makes two):
 * its plan's roles, in memory shared with the heir (so that a close made
 * meanwhile can note there what it did, and the heir read it), kept for
 * the next plan rather than unmapped (a close may be writing there); our
 * end of its socket pair; whether closes note into it (an exec's plan). */
struct slot {
	int busy;
	int tell;       /* -1: no heir */
	int noting;
	int top_used;   /* roles set up to here, cleared by the next plan */
	uint8_t *roles;
	uint32_t size;
};

static struct slot slots[TICKETS] = {
	{ 0, -1, 0, -1, NULL, 0 }, { 0, -1, 0, -1, NULL, 0 },
	{ 0, -1, 0, -1, NULL, 0 }, { 0, -1, 0, -1, NULL, 0 },
};

static int claim_slot(void)
{
	for (int i = 0; i < TICKETS; i++) {
		int free_slot = 0;
		if (__atomic_compare_exchange_n(&slots[i].busy, &free_slot, 1, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return i;
	}
	return -1;
}

/* The slot's roles, cleared of the last plan; NULL when it has none. */
static uint8_t *fresh_roles(struct slot *sl)
{
	if (!sl->roles) {
		sl->size = fdspace_size();
		sl->roles = fdspace_map(sl->size, 1, MAP_SHARED);
		sl->top_used = -1;
	}
	if (sl->roles && sl->top_used >= 0)
		memset(sl->roles, 0, (size_t)sl->top_used + 1);
	sl->top_used = -1;
	return sl->roles;
}

static void free_slot(int i)
{
	STORE(&slots[i].noting, 0);
	STORE(&slots[i].busy, 0);
}

/* ---- the plan, made in the program ----------------------------------- */

static uint8_t role_of(const struct heir_plan *p, int fd)
{
	return __atomic_load_n(&p->roles[fd], __ATOMIC_ACQUIRE);
}

static void set_role(struct heir_plan *p, int fd, enum role role)
{
	if (fd < 0 || (uint32_t)fd >= p->size)
		return;
	__atomic_store_n(&p->roles[fd], (uint8_t)role, __ATOMIC_RELEASE); /* closes note there too */
	if (fd > p->top)
		p->top = fd;
}

/* A socket of the shim's that the program still holds under a booked number
 * (a read side shut for the program, to be shut for real later): the
 * program's descriptor decides for it, never the shim's copy. */
static bool booked_elsewhere(uint64_t cookie)
{
	uint64_t booked;

	for (int fd = 0; cookie && fd <= own_max_fd(); fd++)
		if (own_lookup(fd, &booked) && booked == cookie)
			return true;
	return false;
}

/* Every socket lingering in the shim's thread that the plan does not have. */
static void plan_shim_sockets(struct heir_plan *p)
{
	for (int fd = 0; fd <= selffd_max() && (uint32_t)fd < p->size; fd++) {
		if (role_of(p, fd) == ROLE_NONE && selffd_owns(fd) && fd != own_books_fd() &&
		    probe_is_tcp(fd) && !booked_elsewhere(probe_cookie(fd))) {
			set_role(p, fd, ROLE_SHIM);
			p->sockets++;
		}
	}
}

bool heir_plan_begin(struct heir_plan *p, enum heir_event event)
{
	int saved_errno = errno;

	*p = (struct heir_plan){ .event = event, .top = -1, .slot = claim_slot() };
	if (p->slot < 0)
		return false;
	struct slot *sl = &slots[p->slot];
	p->roles = fresh_roles(sl);
	p->size = sl->size;
	if (!p->roles) {
		free_slot(p->slot);
		errno = saved_errno;
		return false;
	}
	/* From now on a close of a planned socket says what it did. */
	STORE(&sl->noting, event == HEIR_AT_EXEC);
	plan_shim_sockets(p);
	errno = saved_errno;
	return true;
}

/* An epoll set (anonymous inode) rather than whatever the program opened at
 * a number the books name from earlier. */
static bool anon_inode(int fd)
{
	struct stat st;

	return raw_syscall(SYS_fstat, fd, &st) == 0 && (st.st_mode & S_IFMT) == 0;
}

void heir_plan_socket(struct heir_plan *p, int fd, bool read_shut)
{
	int sets[EPB_SETS_MAX];
	int n = epb_sets_of(fd, sets);

	set_role(p, fd, read_shut ? ROLE_PROGRAM_READ_SHUT : ROLE_PROGRAM);
	p->sockets++;
	for (int i = 0; i < n; i++)
		if ((uint32_t)sets[i] < p->size && role_of(p, sets[i]) == ROLE_NONE &&
		    anon_inode(sets[i]))
			set_role(p, sets[i], ROLE_EPOLL);
}

void heir_plan_release(struct heir_plan *p, int fd)
{
	set_role(p, fd, ROLE_RELEASE);
	p->releases++;
}

bool heir_plan_takes(const struct heir_plan *p, int fd, bool *read_shut)
{
	uint8_t role = fd >= 0 && fd <= p->top ? role_of(p, fd) : ROLE_NONE;

	*read_shut = role == ROLE_PROGRAM_READ_SHUT;
	return role == ROLE_PROGRAM || role == ROLE_PROGRAM_READ_SHUT;
}

void heir_plan_end(struct heir_plan *p)
{
	if (p->slot < 0)
		return;
	slots[p->slot].top_used = p->top;
	if (!p->started)
		free_slot(p->slot);
	p->roles = NULL;
	p->slot = -1;
}

/* ---- the heir --------------------------------------------------------- */

static __attribute__((noreturn)) void leave(int status)
{
	for (;;)
		raw_syscall(SYS_exit_group, status);
}

/* close_range(first, last), or one close at a time where the kernel or a
 * seccomp filter refuses it (up to the descriptor limit). */
static void close_between(unsigned first, unsigned last)
{
	struct rlimit rl;

	if (first > last || raw_syscall(SYS_close_range, first, last, 0) == 0)
		return;
	if (raw_syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl) < 0 ||
	    rl.rlim_cur > CLOSE_LOOP_MAX)
		rl.rlim_cur = CLOSE_LOOP_MAX;
	for (unsigned long fd = first; fd <= last && fd < rl.rlim_cur; fd++)
		raw_syscall(SYS_close, fd);
}

static bool kept(uint8_t role)
{
	return role != ROLE_NONE && role != ROLE_RELEASE;
}


static void keep_only_planned(const struct heir_plan *p, int listen_end)
{
	unsigned from = 0;
	int top = p->top > listen_end ? p->top : listen_end;

	for (int fd = 0; fd <= top; fd++) {
		if (fd != listen_end && (fd > p->top || !kept(role_of(p, fd))))
			continue;
		if ((unsigned)fd > from)
			close_between(from, (unsigned)fd - 1);
		from = (unsigned)fd + 1;
	}
	close_between(from, UINT_MAX);
}

/* True at end-of-file: the program is replaced or gone. False when it
 * stood the heir down, or did not end within SAFECLOSE_LINGER_MS (a copy
 * of our end kept somewhere the shim could not see): then it is not known
 * for sure, and the heir touches nothing. */
static bool program_gone(int listen_end)
{
	struct pollfd pfd = { .fd = listen_end, .events = POLLIN };
	struct timespec bound = { sc_cfg.linger_ms / 1000, sc_cfg.linger_ms % 1000 * 1000000 };
	char byte;

	if (raw_syscall(SYS_ppoll, &pfd, 1, &bound, NULL, 0) != 1)
		return false;
	return raw_syscall(SYS_read, listen_end, &byte, 1) == 0;
}

struct heir_linger {
	struct sc_linger l;
	uint64_t cookie;
	uint64_t due;
	bool done;
};

struct lingers {
	struct heir_linger *each;
	struct pollfd *pfd;
	int n, cap;
};

static bool lingering_already(const struct lingers *ls, uint64_t cookie)
{
	for (int i = 0; i < ls->n; i++)
		if (ls->each[i].cookie == cookie)
			return true;
	return false;
}

static void take_on(struct lingers *ls, int fd, uint64_t cookie, uint64_t now)
{
	if (ls->n == ls->cap || lingering_already(ls, cookie)) {
		raw_syscall(SYS_close, fd);
		return;
	}
	struct heir_linger *h = &ls->each[ls->n];
	/* The FIN goes out now, after every byte the program queued. */
	linger_begin(&h->l, fd, (uint64_t)sc_cfg.linger_ms, (uint64_t)sc_cfg.idle_ms, now);
	h->cookie = cookie;
	h->due = now;
	h->done = false;
	ls->pfd[ls->n] = (struct pollfd){ .fd = fd, .events = POLLIN };
	ls->n++;
}

/* The close decision, asked in the heir: a close there would lose
 * something (the counts it makes stay in the heir's own memory). */
static bool heir_decides(int fd, uint64_t cookie)
{
	enum sc_arm arm;

	return decide_release(sc_cfg.mode, fd, cookie, &arm);
}

/* The program's socket: at exec, off the books now that the exec took its
 * descriptor (a real SHUT_RD the program's thread still owed it died with
 * the thread); lingered when that was the last reference and a close would
 * lose something, closed otherwise. */
static void take_program_socket(const struct heir_plan *p, struct lingers *ls, int fd,
				uint64_t now)
{
	uint64_t cookie = probe_cookie(fd);
	struct own_released books = { cookie, false, false };
	enum own_verdict verdict = OWN_LAST;

	if (p->event == HEIR_AT_EXEC)
		verdict = own_release(fd, epb_registered(fd), &books);
	if (verdict == OWN_LAST && books.booked == cookie && heir_decides(fd, cookie) &&
	    epb_let_go(fd, true))
		take_on(ls, fd, cookie, now);
	else
		raw_syscall(SYS_close, fd);
}

/* A program's socket another thread let go of while the exec was under
 * way: the books are done with it. When that came after the heir was made
 * (its copy still on the heir's books), the heir's copy is that socket,
 * and the program's own hand-off died with the exec: lingered on when it
 * was the last reference. Before, the number may name anything: closed. */
static void take_closed_socket(struct lingers *ls, int fd, uint8_t role, uint64_t now)
{
	uint64_t booked, cookie = probe_cookie(fd);

	if (role == ROLE_CLOSED_LAST && own_lookup(fd, &booked) && booked == cookie &&
	    heir_decides(fd, cookie) && epb_let_go(fd, true))
		take_on(ls, fd, cookie, now);
	else
		raw_syscall(SYS_close, fd);
}

static void gather(const struct heir_plan *p, struct lingers *ls)
{
	uint64_t now = sc_now_ms();
	struct own_released books;

	for (int fd = 0; fd <= p->top; fd++) {
		uint8_t role = role_of(p, fd);
		if (role == ROLE_PROGRAM || role == ROLE_PROGRAM_READ_SHUT)
			take_program_socket(p, ls, fd, now);
		else if (role == ROLE_CLOSING || role == ROLE_CLOSED_LAST ||
			 role == ROLE_CLOSED_SHARED)
			take_closed_socket(ls, fd, role, now);
		else if (role == ROLE_RELEASE)
			own_release(fd, epb_registered(fd), &books);
	}
	for (int fd = 0; fd <= p->top; fd++)
		if (role_of(p, fd) == ROLE_SHIM)
			take_on(ls, fd, probe_cookie(fd), now);
	for (int fd = 0; fd <= p->top; fd++)
		if (role_of(p, fd) == ROLE_EPOLL)
			raw_syscall(SYS_close, fd);
}

/* Steps the sockets that have input or whose time has come; returns the
 * earliest next time (UINT64_MAX: every linger is over). */
static uint64_t step_due(struct lingers *ls, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	for (int i = 0; i < ls->n; i++) {
		struct heir_linger *h = &ls->each[i];
		struct linger_wait wait;

		if (h->done)
			continue;
		if (ls->pfd[i].revents || h->due <= now) {
			if (!linger_step(&h->l, now, &wait)) {
				linger_finish(&h->l);
				raw_syscall(SYS_close, h->l.fd);
				h->done = true;
				ls->pfd[i].fd = -1;
				continue;
			}
			h->due = now + (uint64_t)wait.timeout_ms;
			/* A read side shut for good polls readable for good: the
			 * timer alone then. */
			ls->pfd[i].fd = wait.readable ? h->l.fd : -1;
		}
		ls->pfd[i].revents = 0;
		if (h->due < next)
			next = h->due;
	}
	return next;
}

static void linger_all(struct lingers *ls)
{
	uint64_t now = sc_now_ms(), next;

	while ((next = step_due(ls, now)) != UINT64_MAX) {
		uint64_t wait_ms = next > now ? next - now : 0;
		struct timespec ts = { (time_t)(wait_ms / 1000), (long)(wait_ms % 1000) * 1000000 };
		raw_syscall(SYS_ppoll, ls->pfd, ls->n, &ts, NULL, 0);
		now = sc_now_ms();
	}
}

static __attribute__((noreturn)) void heir_main(const struct heir_plan *p, int listen_end)
{
	struct lingers ls = { .cap = p->sockets };

	sc_log_level = -1; /* descriptor 2 is not ours to write to any more */
	raw_syscall(SYS_chdir, "/");
	raw_syscall(SYS_prctl, PR_SET_NAME, "safeclose-heir", 0, 0, 0);
	keep_only_planned(p, listen_end);
	if (!program_gone(listen_end))
		leave(0);
	ls.each = fdspace_map((size_t)ls.cap + 1, sizeof *ls.each, MAP_PRIVATE);
	ls.pfd = fdspace_map((size_t)ls.cap + 1, sizeof *ls.pfd, MAP_PRIVATE);
	if (!ls.each || !ls.pfd)
		ls.cap = 0; /* closes what it holds, as the kernel would have */
	gather(p, &ls);
	linger_all(&ls);
	leave(0);
}

/* ---- making it -------------------------------------------------------- */

/* clone() without CLONE_VM and exit signal 0: 0 in the child, as fork. */
static long clone_process(void)
{
	return raw_syscall(SYS_clone, 0, 0, 0, 0, 0);
}

/* The intermediate child: makes the heir and exits at once (1: it could not). */
static __attribute__((noreturn)) void make_heir(const struct heir_plan *p, int listen_end)
{
	long pid = clone_process();

	if (pid == 0)
		heir_main(p, listen_end);
	leave(pid < 0 ? 1 : 0);
}

/* Where orphans of ours go: when it is this very process (PID 1 of a
 * namespace, or a child subreaper), a heir made through an intermediate
 * would come back to it as an ordinary child (SIGCHLD, seen by wait()); one
 * made directly stays a clone child that only __WALL waits see. */
static bool orphans_come_back(void)
{
	int subreaper = 0;

	return raw_syscall(SYS_getpid) == 1 ||
	       (raw_syscall(SYS_prctl, PR_GET_CHILD_SUBREAPER, &subreaper, 0, 0, 0) == 0 &&
		subreaper);
}

#define INIT_PID_NS_INODE 0xEFFFFFFCu /* PROC_PID_INIT_INO: the host's */

/* The kernel kills every process of a pid namespace when its init ends, a
 * heir too. That is this process's own exit when it is PID 1; and container
 * inits (tini, docker --init, dumb-init, catatonit, bubblewrap) end as soon
 * as their one child does, so a child of PID 1 outside the host's
 * namespace (or where /proc cannot say) is at the same risk. Those linger
 * in place at exit, as before the heir existed. */
static bool namespace_may_end_with_us(void)
{
	struct stat st;

	if (raw_syscall(SYS_getpid) == 1)
		return true;
	if (raw_syscall(SYS_getppid) != 1)
		return false;
	return raw_syscall(SYS_newfstatat, AT_FDCWD, "/proc/self/ns/pid", &st, 0) < 0 ||
	       st.st_ino != INIT_PID_NS_INODE;
}

/* Waits for the intermediate child. When another thread's waitpid(-1,
 * __WALL) took it first, the heir may well exist: it is then taken to (if
 * it does not, nothing lingers, as without the shim, which is the safe
 * side: a fallback beside a live heir could act twice). */
static bool intermediate_made_it(long pid)
{
	int status = 0;
	long waited;

	do
		waited = raw_syscall(SYS_wait4, pid, &status, __WCLONE, NULL);
	while (waited < 0 && errno == EINTR);
	if (waited < 0)
		return errno == ECHILD;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static bool spawn(const struct heir_plan *plan, int listen_end)
{
	/* Every signal blocked from before the clone: no handler of the
	 * program's ever runs in the copies. The heir keeps them blocked. */
	uint64_t all = ~0ull, old;
	bool direct = orphans_come_back(), made;

	raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof all);
	long pid = clone_process();
	if (pid == 0 && direct)
		heir_main(plan, listen_end);
	if (pid == 0)
		make_heir(plan, listen_end);
	made = pid > 0 && (direct || intermediate_made_it(pid));
	raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, sizeof old);
	return made;
}

int heir_start(struct heir_plan *p)
{
	int saved_errno = errno, ends[2];

	if (!p->roles || (p->event == HEIR_AT_EXIT && namespace_may_end_with_us()))
		return -1;
	/* Handed to the thread since the plan began (another thread closing):
	 * theirs too. */
	plan_shim_sockets(p);
	if (!p->sockets && !p->releases)
		return HEIR_NOTHING;
	if (raw_syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) < 0) {
		errno = saved_errno;
		return -1;
	}
	/* Our end among the shim's own numbers: the program's bulk closes go
	 * around it and a fork child drops it (reaper's atfork). */
	int tell = selffd_move_high(ends[1], true);
	STORE(&slots[p->slot].tell, tell);
	p->started = tell >= 0 && spawn(p, ends[0]);
	if (!p->started && tell >= 0) {
		STORE(&slots[p->slot].tell, -1);
		selffd_close(tell);
	}
	raw_syscall(SYS_close, ends[0]);
	errno = saved_errno;
	return p->started ? p->slot : -1;
}

static void tell_stand_down(int tell)
{
	raw_syscall(SYS_sendto, tell, &(char){ STAND_DOWN }, 1, MSG_NOSIGNAL | MSG_DONTWAIT,
		    NULL, 0);
}

void heir_stand_down(int ticket)
{
	int saved_errno = errno;

	if (ticket < 0 || ticket >= TICKETS)
		return;
	STORE(&slots[ticket].noting, 0);
	int tell = __atomic_exchange_n(&slots[ticket].tell, -1, __ATOMIC_ACQ_REL);
	if (tell >= 0) {
		tell_stand_down(tell);
		selffd_close(tell);
	}
	free_slot(ticket);
	errno = saved_errno;
}

/* Turns fd's role from `from` into `to` in every plan closes note into. A
 * note that reaches a slot being reused is still true: it is about this
 * very descriptor being let go of now. */
static void note(int fd, uint8_t from, uint8_t to)
{
	for (int i = 0; fd >= 0 && i < TICKETS; i++) {
		uint8_t *roles = LOAD(&slots[i].roles), expected = from;
		if (LOAD(&slots[i].noting) && roles && (uint32_t)fd < slots[i].size)
			__atomic_compare_exchange_n(&roles[fd], &expected, to, false,
						    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
	}
}

void heir_note_releasing(int fd)
{
	note(fd, ROLE_PROGRAM, ROLE_CLOSING);
}

void heir_note_released(int fd, bool last)
{
	note(fd, ROLE_CLOSING, last ? ROLE_CLOSED_LAST : ROLE_CLOSED_SHARED);
}

void heir_yield_number(int fd)
{
	int saved_errno = errno;

	for (int i = 0; fd >= 0 && i < TICKETS; i++) {
		if (LOAD(&slots[i].tell) != fd)
			continue;
		int moved = selffd_relocate(fd, true);
		if (moved < 0)
			tell_stand_down(fd); /* losing it must not read as our end */
		STORE(&slots[i].tell, moved);
	}
	errno = saved_errno;
}

void heir_after_fork_child(void)
{
	for (int i = 0; i < TICKETS; i++) {
		/* The parent's: shared with it and its heirs, so this process
		 * maps its own when it needs one, and ends no heir of theirs. */
		if (slots[i].roles)
			munmap(slots[i].roles, slots[i].size);
		int tell = slots[i].tell;
		if (tell >= 0 && selffd_owns(tell))
			selffd_close(tell);
		slots[i] = (struct slot){ .tell = -1, .top_used = -1 };
	}
}
