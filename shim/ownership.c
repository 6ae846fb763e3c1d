/* ownership.c: owns the reference counts behind the ownership rule.
 *
 * A record per TCP socket, keyed by its SO_COOKIE, counts the descriptors
 * that refer to it in this process and in every process forked from it: the
 * records live in a MAP_SHARED mapping created before any fork, so a parent
 * and its children see one count. Each process also keeps, in private memory
 * indexed by descriptor number, which record each of its descriptors holds.
 * fork copies that private table to the child, which is exactly what the
 * child holds; the fork wrapper adds the child's references to the counts.
 *
 * The books are reclaimed, so a family that has served millions of
 * connections tracks as fast as a new one:
 * - "last" is decided on one count per record (refs); beside it, a record
 *   says which processes hold those references (a few pid/count words), so
 *   that the references of a member that died without closing (SIGKILL, or
 *   exec of a program without the shim) are taken back by own_collect()
 *   (only by a process in the books' own pid namespace, where those pids
 *   mean something);
 * - a socket held out of sight (sent over SCM_RIGHTS, inherited by a spawned
 *   program) is a sticky flag, not a reference that no one would release;
 * - a live count of records in use makes a full table an O(1) refusal,
 *   reported once; records are placed by a hash of the cookie, probed
 *   linearly, and the table is never let past 3/4 full, so allocation and
 *   lookup stay short.
 *
 * The books belong to processes with their maker's credentials: a program
 * exec'd with others is told they were withheld (join_books, own_exec_env),
 * and a process whose credentials change leaves them for books of its own,
 * taking along only what it can prove it alone holds (own_detach).
 *
 * Only atomics, no locks and no allocation after start-up: the release path
 * runs inside close(), which a signal handler may call. (fork() takes a lock
 * of its own between prepare and parent; it is not on that path.) */
#include "rawsys.h"
#include "ownership.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fdspace.h"
#include "log.h"
#include "ports.h"
#include "probe.h"
#include "real.h"
#include "self.h"
#include "selffd.h"

/* Records per process family: live TCP sockets. A build-time knob only, so
 * that a test can run the same code far past a smaller table
 * (libsafeclose-smallbooks.so); not a setting. */
#ifndef OWN_RECORDS_LOG2
#define OWN_RECORDS_LOG2 18
#endif
#define OWN_RECORDS (1u << OWN_RECORDS_LOG2)
#define RECORDS_MASK (OWN_RECORDS - 1)
#define RECORDS_ROOM (OWN_RECORDS / 4 * 3) /* keeps every probe short */
#define COLLECT_ABOVE (OWN_RECORDS / 2)    /* records in use before collecting pays */
#define COLLECT_CHUNK (OWN_RECORDS / 16)   /* records one collection step looks at */
#define COLLECT_EVERY (OWN_RECORDS / 256)  /* allocations asked for between two steps */
#define PROBE_MAX (OWN_RECORDS < 512 ? OWN_RECORDS : 512u)

/* Who holds a record's references: one 64-bit word per holder, updated by
 * CAS. Low 32 bits: the holder's pid, or with HOLDER_TICKET the ticket of a
 * fork whose child has not yet been put under its own pid; bits 32-62: how
 * many references. 0: an empty word. */
#define HOLDERS 4
#define HOLDER_TICKET (1ull << 63)
#define HOLDER_KEY_MASK (HOLDER_TICKET | 0xffffffffull)
#define HOLDER_ONE (1ull << 32)

/* Record flags, sticky until the record is freed. */
#define REC_UNATTRIBUTED 1u  /* some references have no holder word: never collected */
#define REC_COPYING 2u       /* own_detach(): set only in books being made, cleared there */

struct own_record {
	uint64_t cookie;       /* 0 = free */
	int32_t refs;          /* every reference of the family: "last" is decided on it */
	uint32_t flags;        /* REC_* */
	uint32_t read_shut;    /* the program shut the read side (for every fd of it) */
	uint32_t shut_left;    /* bytes it may still read: what was queued at that shutdown */
	uint32_t epoll_closed; /* descriptors let go of while registered in an epoll set */
	uint32_t out_of_sight; /* give-aways: processes the shim cannot follow hold it */
	uint64_t holders[HOLDERS];
};

_Static_assert(sizeof(struct own_record) == 64, "a record is one cache line");

/* The books of a process family: every process forked from the first one
 * that loaded the shim, and every program they exec (a memfd kept open
 * across exec, its number in SAFECLOSE_BOOKS, so that a child that is handed
 * a connection knows whether its parent still holds it). */
struct own_shared {
	uint64_t magic;
	uint32_t used;          /* records in use */
	uint32_t attempts;      /* allocations asked for, ever (wraps): paces collection */
	uint32_t collected_at;  /* `attempts` when the last collection step started */
	uint32_t next_ticket;   /* fork tickets */
	uint32_t full_reported; /* running out was reported (once per family) */
	uint32_t collect_cursor; /* where the next collection step starts */
	uint32_t owner[4];      /* uid, euid, gid, egid of the process that made them */
	uint32_t unused[2];
	uint64_t pidns;         /* the pid namespace that holder pids belong to (0: unknown) */
	struct own_record records[OWN_RECORDS];
};

#define BOOKS_MAGIC 0x326b6f6f626c6373ull /* "sclbook2" */
#define BOOKS_ENV SC_BOOKS_ENV
#define COUNTED_ENV SC_COUNTED_ENV

struct own_entry {
	uint64_t cookie;
	uint32_t rec;   /* record index + 1; 0 = not on the books */
	uint32_t epoch; /* the fork that last counted this entry */
};

static struct own_shared *shared;
static struct own_entry *entries; /* own_table's memory, once set up */
static struct fdspace_table own_table;
static int max_fd = -1;
static int books_fd = -1;
/* own_detach() could not make books of our own: nothing is put on any
 * books any more (a socket then is left alone). */
static int books_lost;
/* These books were made by own_detach(): they hold what we took along,
 * not the family's view, and are never passed across exec (a program we
 * exec is told SAFECLOSE_BOOKS=withheld:FDS instead, as one with other
 * credentials is). Inherited by our fork children, who share them. */
static int books_detached;

/* This process's pids mean what they mean to the books (same pid namespace):
 * only then may it name itself as a holder, or judge others' pids gone. A
 * process in another pid namespace (a fork child after unshare(CLONE_NEWPID))
 * holds its references unattributed: never collected, never a wrong "last". */
static bool pids_meaningful;
static uint32_t self_pid; /* this process: set at start-up and in fork children */
static bool children_pids_meaningful; /* the same, for the fork in progress */

/* The fork in progress in this process (serialised by fork_lock). A signal
 * handler that forks while its own thread is between prepare and parent
 * gets EDEADLK from the error-checking lock and goes on without it
 * (fork_nested): the two forks' epochs and tickets then mix, which can only
 * leave references counted that no one releases (left alone), never one
 * missing. */
static pthread_mutex_t fork_lock = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
static int fork_nested;
static uint32_t fork_epoch;
static uint32_t fork_ticket;

/* The gate between a fork and the program's other threads' releases. A fork
 * counts the child's references in prepare, before the fork syscall; a
 * release in another thread between that count and the syscall would take
 * the reference the child then never gets (the descriptor is closed before
 * the child is made), and the count the child holds makes every later
 * release "shared": the last one resets (found by test-apps/storm.c: a
 * close storm while another thread forks, 1 reset in 30). So prepare shuts
 * the gate (fork_gate: the forking thread's id), waits for the releases
 * already in flight (releases_in_flight), and the parent and child
 * handlers open it again; a release in another thread waits at the gate,
 * for at most GATE_WAIT_MS (no hang, whatever the program's handlers do).
 * The forking thread itself (a signal handler's close) passes: it cannot
 * wait for itself; so does a process made with a raw clone() while the gate
 * was shut (the heir: fork_gate_pid is not its pid). Only atomics and raw
 * syscalls: async-signal-safe. */
#define GATE_WAIT_MS 2000
static int fork_gate;
static int fork_gate_pid;
static int releases_in_flight;

static int own_tid(void)
{
	return (int)raw_syscall(SYS_gettid);
}

static void release_enter(void)
{
	int tid = 0;

	for (long waited_us = 0;; waited_us += 50) {
		__atomic_add_fetch(&releases_in_flight, 1, __ATOMIC_SEQ_CST);
		int gate = __atomic_load_n(&fork_gate, __ATOMIC_SEQ_CST);
		if (!gate || gate == (tid ? tid : (tid = own_tid())) ||
		    __atomic_load_n(&fork_gate_pid, __ATOMIC_SEQ_CST) != (int)raw_syscall(SYS_getpid) ||
		    waited_us >= GATE_WAIT_MS * 1000L)
			return;
		__atomic_sub_fetch(&releases_in_flight, 1, __ATOMIC_SEQ_CST);
		struct timespec ts = { 0, 50 * 1000 };
		raw_syscall(SYS_nanosleep, &ts, NULL);
	}
}

static void release_leave(void)
{
	__atomic_sub_fetch(&releases_in_flight, 1, __ATOMIC_SEQ_CST);
}

/* Shuts the gate; the releases already past it finish first (bounded: one
 * of them may be this thread's own, interrupted by a handler that forks). */
static void gate_shut(void)
{
	__atomic_store_n(&fork_gate_pid, (int)raw_syscall(SYS_getpid), __ATOMIC_SEQ_CST);
	__atomic_store_n(&fork_gate, own_tid(), __ATOMIC_SEQ_CST);
	for (long waited_us = 0; __atomic_load_n(&releases_in_flight, __ATOMIC_SEQ_CST) > 0 &&
				 waited_us < GATE_WAIT_MS * 1000L; waited_us += 20) {
		struct timespec ts = { 0, 20 * 1000 };
		raw_syscall(SYS_nanosleep, &ts, NULL);
	}
}

static void gate_open(void)
{
	__atomic_store_n(&fork_gate, 0, __ATOMIC_SEQ_CST);
}

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_ACQ_REL)
#define SUB(p, v) __atomic_sub_fetch((p), (v), __ATOMIC_ACQ_REL)
#define CAS(p, expected, desired)                                                     \
	__atomic_compare_exchange_n((p), (expected), (desired), false, __ATOMIC_ACQ_REL, \
				    __ATOMIC_ACQUIRE)

/* The pid namespace a /proc/self/ns link names, 0 when unknown. */
static uint64_t pid_namespace(const char *link)
{
	struct stat st;
	int saved_errno = errno;
	uint64_t id = stat(link, &st) == 0 ? (uint64_t)st.st_dev << 32 ^ st.st_ino : 0;

	errno = saved_errno;
	return id;
}

static bool pids_are_the_books(const char *link)
{
	uint64_t mine = pid_namespace(link);

	return mine && mine == LOAD(&shared->pidns);
}

/* This process's credentials: real and effective user and group. */
static void credentials(uint32_t out[4])
{
	out[0] = (uint32_t)raw_syscall(SYS_getuid);
	out[1] = (uint32_t)raw_syscall(SYS_geteuid);
	out[2] = (uint32_t)raw_syscall(SYS_getgid);
	out[3] = (uint32_t)raw_syscall(SYS_getegid);
}

/* This process has the ids of the one that made the books. */
static bool same_owner(const struct own_shared *s)
{
	uint32_t mine[4];

	credentials(mine);
	return memcmp(mine, (const void *)s->owner, sizeof mine) == 0;
}

/* The books are shared, writable memory: only a process with the
 * credentials of the one that made them may hold them, so that a member
 * that changed user (a worker dropping to nobody, then exec'ing code it
 * does not trust) cannot hand them to a program that could corrupt them
 * (mark the parent's sockets read-shut, count a holder away) in a process
 * with other rights. Nor may a set-user-ID program (AT_SECURE) join them. */
static bool may_hold_books(const struct own_shared *s)
{
	return !getauxval(AT_SECURE) && same_owner(s);
}

/* SAFECLOSE_BOOKS=withheld:FD,...: the program that exec'd or spawned us
 * is of the family, but we may not hold its books (other credentials).
 * What we inherited is then ours only when listed (no one else of the
 * family held it as we started), never guessed: the family may use it. */
#define BOOKS_WITHHELD "withheld"
static bool books_withheld;
static const char *handed_over; /* after "withheld:": the numbers that are ours */

/* fd is in the list "FD,FD,..." the program that exec'd us left. */
static bool was_handed_over(int fd)
{
	for (const char *p = handed_over; p && *p;) {
		char *end;
		long n = strtol(p, &end, 10);
		if (end == p)
			return false;
		if (n == fd)
			return true;
		p = *end == ',' ? end + 1 : end;
	}
	return false;
}

/* The family's books, when this program was exec'd by one of its members:
 * SAFECLOSE_BOOKS names a descriptor that is a memfd of the right size
 * holding the right magic. NULL otherwise (and for a number reused since).
 * Books this process may not hold (may_hold_books) are closed: they came
 * only because of the shim, and the program starts a family of its own. */
static struct own_shared *join_books(void)
{
	const char *v = getenv(BOOKS_ENV);
	char *end;
	struct stat st;

	if (v && strncmp(v, BOOKS_WITHHELD ":", sizeof BOOKS_WITHHELD) == 0) {
		books_withheld = true;
		handed_over = v + sizeof BOOKS_WITHHELD;
	}
	if (!v || *v < '0' || *v > '9')
		return NULL;
	long fd = strtol(v, &end, 10);
	if (*end || fd > INT_MAX || fstat((int)fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size != (off_t)sizeof(struct own_shared))
		return NULL;
	struct own_shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED,
				    (int)fd, 0);
	if (s == MAP_FAILED)
		return NULL;
	if (LOAD(&s->magic) != BOOKS_MAGIC) {
		munmap(s, sizeof *s);
		return NULL;
	}
	if (!may_hold_books(s) || !selffd_mark((int)fd)) {
		munmap(s, sizeof *s);
		raw_syscall(SYS_close, (int)fd);
		books_withheld = true;
		return NULL;
	}
	/* Inheritable only for an exec that loads the shim again. */
	raw_syscall(SYS_fcntl, (int)fd, F_SETFD, FD_CLOEXEC);
	STORE(&books_fd, (int)fd);
	return s;
}

/* New books for a new family: a memfd, so they can cross exec (its
 * descriptor sits at a high number, close-on-exec but for an exec that loads
 * the shim: own_exec_env), or plain shared memory when there is no memfd.
 * *fd is the memfd's descriptor, -1 for plain memory. */
static struct own_shared *new_books(int *fd_out)
{
	int fd = (int)raw_syscall(SYS_memfd_create, "safeclose-books", MFD_CLOEXEC);
	struct own_shared *s = NULL;

	*fd_out = -1;
	if (fd >= 0 && ftruncate(fd, sizeof *s) == 0 && (fd = selffd_move_high(fd, true)) >= 0) {
		s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (s == MAP_FAILED) {
			selffd_close(fd);
			s = NULL;
		} else {
			*fd_out = fd;
		}
	} else if (fd >= 0) {
		real.close(fd);
	}
	if (!s)
		s = fdspace_map(1, sizeof *s, MAP_SHARED);
	if (s) {
		STORE(&s->pidns, pid_namespace("/proc/self/ns/pid"));
		credentials(s->owner);
		STORE(&s->magic, BOOKS_MAGIC);
	}
	return s;
}

/* The family's books, made when first needed (the first TCP socket put on
 * them), not at start-up: a program that never tracks one has no descriptor
 * of the shim's at all, so a child started with close_fds lists exactly what
 * it was given. NULL when they cannot be made (reported once). */
static struct own_shared *books(void)
{
	static int failed;
	struct own_shared *s = LOAD(&shared), *none = NULL;
	int fd;

	if (LOAD(&books_lost))
		return NULL;
	if (s || LOAD(&failed))
		return s;
	s = new_books(&fd);
	if (!s) {
		if (!__atomic_exchange_n(&failed, 1, __ATOMIC_ACQ_REL))
			sc_log_write(SC_LOG_ERROR, __func__,
				     "cannot map the ownership books; leaving every socket alone");
		return NULL;
	}
	/* Before the books are seen: a thread that finds them (an acquire of
	 * `shared`, as every reader here does) finds this too. Whoever loses
	 * the race below stored the same. */
	uint64_t mine = pid_namespace("/proc/self/ns/pid");
	STORE(&pids_meaningful, mine && mine == LOAD(&s->pidns));
	if (!__atomic_compare_exchange_n(&shared, &none, s, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE)) {
		munmap(s, sizeof *s); /* another thread made them first */
		if (fd >= 0)
			selffd_close(fd);
		return LOAD(&shared);
	}
	if (fd >= 0)
		STORE(&books_fd, fd);
	return s;
}

bool own_init(void)
{
	static int once;

	if (LOAD(&entries))
		return true;
	if (__atomic_exchange_n(&once, 1, __ATOMIC_ACQ_REL))
		return LOAD(&entries) != NULL; /* another thread is setting up */

	if (!fdspace_table_map(&own_table, fdspace_size(), sizeof(struct own_entry))) {
		sc_log_write(SC_LOG_ERROR, __func__,
			     "cannot map the ownership tables; leaving every socket alone");
		return false;
	}
	self_pid = (uint32_t)raw_syscall(SYS_getpid);
	STORE(&shared, join_books());
	if (LOAD(&shared))
		STORE(&pids_meaningful, pids_are_the_books("/proc/self/ns/pid"));
	STORE(&entries, (struct own_entry *)own_table.base);
	return true;
}

static struct own_entry *entry_of(int fd)
{
	if (!LOAD(&entries) || fd < 0)
		return NULL;
	return fdspace_entry(&own_table, (uint32_t)fd);
}

/* ---- holders: which process holds how many of a record's references ----- */

/* No holder: the references are counted in refs only (UNATTRIBUTED). */
#define HOLDER_NONE 0ull

/* This process, as a holder. The pid is kept from start-up and from each
 * fork child's own_fork_child*(), not asked of the kernel on every close: a
 * clone() or vfork child, which shares or copies this memory but not the
 * pid, is a process the shim does not follow (self.h), which acts on
 * nothing of the books. */
static uint64_t self_key(void)
{
	return LOAD(&pids_meaningful) ? self_pid : HOLDER_NONE;
}

static uint64_t ticket_key(uint32_t ticket)
{
	return HOLDER_TICKET | ticket;
}

static uint32_t holder_count(uint64_t word)
{
	return (uint32_t)((word & ~HOLDER_TICKET) >> 32);
}

/* n more references for `key`: its word, or an empty one. With no word
 * left, the references stay counted in refs but belong to no one, and the
 * record is marked never to be collected (conservative: left alone). */
static void holder_add(struct own_record *r, uint64_t key, uint32_t n)
{
	while (key != HOLDER_NONE) {
		uint64_t *empty = NULL, zero = 0;
		bool raced = false;

		for (int i = 0; i < HOLDERS && !raced; i++) {
			uint64_t w = LOAD(&r->holders[i]);
			if (w && (w & HOLDER_KEY_MASK) == key) {
				if (CAS(&r->holders[i], &w, w + n * HOLDER_ONE))
					return;
				raced = true;
			} else if (!w && !empty) {
				empty = &r->holders[i];
			}
		}
		if (raced)
			continue;
		if (!empty) {
			__atomic_fetch_or(&r->flags, REC_UNATTRIBUTED, __ATOMIC_ACQ_REL);
			return;
		}
		if (CAS(empty, &zero, key | (uint64_t)n * HOLDER_ONE))
			return;
	}
	__atomic_fetch_or(&r->flags, REC_UNATTRIBUTED, __ATOMIC_ACQ_REL);
}

/* One reference of `key` fewer; its word empties at 0. Nothing when `key`
 * has no word (its references were unattributed). */
static void holder_sub(struct own_record *r, uint64_t key)
{
	for (int i = 0; i < HOLDERS && key != HOLDER_NONE; i++) {
		uint64_t w = LOAD(&r->holders[i]);
		while (w && (w & HOLDER_KEY_MASK) == key && holder_count(w)) {
			uint64_t next = holder_count(w) == 1 ? 0 : w - HOLDER_ONE;
			if (CAS(&r->holders[i], &w, next))
				return;
		}
	}
}

/* The references of `from` now belong to `to` (a fork ticket to the
 * child's pid), in one CAS, so that of the parent and the child whoever
 * comes second finds nothing left to do. */
static void holder_rekey(struct own_record *r, uint64_t from, uint64_t to)
{
	for (int i = 0; i < HOLDERS; i++) {
		uint64_t w = LOAD(&r->holders[i]);
		while (w && (w & HOLDER_KEY_MASK) == from)
			if (CAS(&r->holders[i], &w, (w & ~HOLDER_KEY_MASK) | to))
				return;
	}
}

/* ---- records --------------------------------------------------------------- */

static struct own_record *record_at(uint32_t rec)
{
	return &shared->records[rec - 1];
}

/* Where a cookie's record is placed first. Cookies come from one counter of
 * the kernel's: runs of 64 consecutive cookies share a page of records (64
 * records of 64 bytes), so the sockets a process opens one after the other
 * are booked close together (the close path touches few cache lines and
 * pages, as with a sequential hint), while the pages themselves are spread
 * by Fibonacci hashing, so that a long run of long-lived sockets never
 * stands in the way of the cookies that come a table's length later. A
 * record is found again from its cookie in a few probes: no scan. */
#define HOME_RUN_LOG2 6
static uint32_t record_home(uint64_t cookie)
{
	uint64_t run = (cookie >> HOME_RUN_LOG2) * 0x9e3779b97f4a7c15ull;
	uint32_t page = (uint32_t)(run >> (64 - (OWN_RECORDS_LOG2 - HOME_RUN_LOG2)));

	return page << HOME_RUN_LOG2 | (uint32_t)(cookie & ((1u << HOME_RUN_LOG2) - 1));
}

static void report_full(uint32_t used)
{
	if (!__atomic_exchange_n(&shared->full_reported, 1, __ATOMIC_ACQ_REL))
		sc_log_write(SC_LOG_ERROR, __func__,
			     "ownership books full (%u of %u records in use): new sockets are left alone, closed as without the shim, until records free up",
			     used, OWN_RECORDS);
}

static uint32_t collect_range(uint32_t first, uint32_t count);

/* A collection step when the books are past half full and enough
 * allocations were asked for since the last one (counted whether they
 * succeeded or not, so a full table is looked at again): the next 1/16 of
 * the table, so that no one socket() pays for a whole pass (a 2^18-record
 * pass takes milliseconds; a step, a fraction of one). One caller wins the
 * CAS. */
static void collect_if_due(void)
{
	uint32_t attempts = ADD(&shared->attempts, 1);
	uint32_t last = LOAD(&shared->collected_at);

	if (LOAD(&shared->used) < COLLECT_ABOVE || attempts - last < COLLECT_EVERY)
		return;
	if (CAS(&shared->collected_at, &last, attempts))
		collect_range(__atomic_fetch_add(&shared->collect_cursor, COLLECT_CHUNK,
						 __ATOMIC_ACQ_REL),
			      COLLECT_CHUNK);
}

/* A record for a new socket, with one reference of this process; 0 when
 * there is no room (the socket is then left alone). O(1): the count of
 * records in use says "full", and below 3/4 a probe ends quickly. */
static uint32_t record_alloc(uint64_t cookie)
{
	if (!books())
		return 0;
	collect_if_due();
	uint32_t used = LOAD(&shared->used);
	if (used >= RECORDS_ROOM) {
		report_full(used);
		return 0;
	}
	uint32_t home = record_home(cookie);
	for (uint32_t i = 0; i < PROBE_MAX; i++) {
		uint32_t idx = (home + i) & RECORDS_MASK;
		struct own_record *r = &shared->records[idx];
		uint64_t expected = 0;

		if (LOAD(&r->cookie) == 0 && CAS(&r->cookie, &expected, cookie)) {
			ADD(&shared->used, 1);
			STORE(&r->refs, 1);
			holder_add(r, self_key(), 1);
			return idx + 1;
		}
	}
	SC_LOG(SC_LOG_DEBUG, "no free record near %u; leaving the socket alone", home);
	return 0;
}

/* A record's references are all gone: clean it, then give it back (the
 * cookie last, so that whoever claims it next finds it clean). */
static void record_free(struct own_record *r)
{
	STORE(&r->flags, 0);
	STORE(&r->read_shut, 0);
	STORE(&r->shut_left, 0);
	STORE(&r->epoll_closed, 0);
	STORE(&r->out_of_sight, 0);
	for (int i = 0; i < HOLDERS; i++)
		STORE(&r->holders[i], 0);
	STORE(&r->cookie, 0);
	SUB(&shared->used, 1);
}

/* One more reference, held by `key`. The count first: while the two
 * disagree the record only looks more held than it is. */
static void record_get(uint32_t rec, uint64_t key)
{
	struct own_record *r = record_at(rec);

	ADD(&r->refs, 1);
	holder_add(r, key, 1);
}

/* What a record said when its last reference went. */
struct record_end {
	uint32_t out_of_sight;
	uint32_t epoll_closed;
};

/* Drops one reference of `key`; true when it was the last, and the record
 * is free (*end: what it said then). The holder word first, the count
 * second, for the same reason as in record_get. */
static bool record_put(uint32_t rec, uint64_t cookie, uint64_t key, struct record_end *end)
{
	struct own_record *r = record_at(rec);

	if (LOAD(&r->cookie) != cookie)
		return false;
	holder_sub(r, key);
	if (SUB(&r->refs, 1) != 0)
		return false;
	if (end)
		*end = (struct record_end){ LOAD(&r->out_of_sight), LOAD(&r->epoll_closed) };
	record_free(r);
	return true;
}

/* ---- reclaiming the references of members that are gone ----------------- */

/* A pid that no longer exists (kill(pid, 0): ESRCH). A zombie still
 * exists: its references are reclaimed once it is reaped. A pid reused by
 * an unrelated process keeps its old references alive: a leak, never a
 * wrong "last". Answers are kept for the pass in a small direct-mapped cache. */
struct pid_cache {
	uint32_t pid[64];
	bool gone[64];
};

static bool pid_gone(struct pid_cache *c, uint32_t pid)
{
	unsigned slot = pid % 64;

	if (c->pid[slot] != pid) {
		c->pid[slot] = pid;
		c->gone[slot] = raw_syscall(SYS_kill, pid, 0) < 0 && errno == ESRCH;
	}
	return c->gone[slot];
}

/* The references of dead holders of one record; true when that freed it.
 * A dead process no longer changes its word, so the CAS on the value read
 * takes exactly its count (a pid reused meanwhile by a member adds to the
 * word, the CAS then fails and the word stays). Fork tickets are left:
 * theirs is converted by the parent or the child. */
static bool collect_record(struct own_record *r, struct pid_cache *cache, uint32_t self)
{
	for (int i = 0; i < HOLDERS; i++) {
		uint64_t w = LOAD(&r->holders[i]);
		uint32_t pid = (uint32_t)w;

		if (!w || (w & HOLDER_TICKET) || pid == self || !pid_gone(cache, pid))
			continue;
		if (CAS(&r->holders[i], &w, 0) && SUB(&r->refs, (int32_t)holder_count(w)) == 0) {
			record_free(r);
			return true;
		}
	}
	return false;
}

/* count records from `first` (wrapping), one pid cache for them all. */
static uint32_t collect_range(uint32_t first, uint32_t count)
{
	struct pid_cache cache = { { 0 }, { false } };
	uint32_t self = (uint32_t)self_key(), freed = 0;
	int saved_errno = errno;

	if (!LOAD(&shared) || !LOAD(&pids_meaningful))
		return 0;
	for (uint32_t i = 0; i < count; i++) {
		struct own_record *r = &shared->records[(first + i) & RECORDS_MASK];
		if (LOAD(&r->cookie) && collect_record(r, &cache, self))
			freed++;
	}
	errno = saved_errno;
	SC_LOG(SC_LOG_DEBUG, "books: %u records freed, %u in use", freed, LOAD(&shared->used));
	return freed;
}

uint32_t own_collect(void)
{
	return collect_range(0, OWN_RECORDS);
}

uint32_t own_records_in_use(void)
{
	struct own_shared *s = LOAD(&shared);

	return s ? LOAD(&s->used) : 0;
}

uint32_t own_records_room(void)
{
	return RECORDS_ROOM;
}

/* ---- descriptors ------------------------------------------------------------ */

static void entry_set(int fd, struct own_entry *e, uint64_t cookie, uint32_t rec)
{
	STORE(&e->rec, 0);
	STORE(&e->cookie, cookie);
	STORE(&e->epoch, 0);
	STORE(&e->rec, rec);
	int seen = LOAD(&max_fd);
	while (fd > seen && !__atomic_compare_exchange_n(&max_fd, &seen, fd, false,
							 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
}

/* Takes fd off the books; returns the record it held (0 = none). */
static uint32_t entry_take(struct own_entry *e, uint64_t *cookie)
{
	uint32_t rec = __atomic_exchange_n(&e->rec, 0, __ATOMIC_ACQ_REL);

	*cookie = LOAD(&e->cookie);
	return rec;
}

void own_forget(int fd)
{
	struct own_entry *e = entry_of(fd);
	uint64_t cookie;
	uint32_t rec;

	if (!e)
		return;
	release_enter();
	if ((rec = entry_take(e, &cookie)))
		record_put(rec, cookie, self_key(), NULL);
	release_leave();
}

void own_track_new(int fd, uint64_t cookie)
{
	if (!cookie || !own_init())
		return;
	struct own_entry *e = entry_of(fd);
	if (!e)
		return;
	own_forget(fd);
	uint32_t rec = record_alloc(cookie);
	if (rec)
		entry_set(fd, e, cookie, rec);
}

void own_track_socket(int fd)
{
	own_track_new(fd, probe_cookie(fd));
}

void own_track_dup(int oldfd, int newfd)
{
	struct own_entry *from = entry_of(oldfd), *to = entry_of(newfd);

	if (oldfd == newfd || !to)
		return;
	own_forget(newfd);
	uint32_t rec = from ? LOAD(&from->rec) : 0;
	if (!rec)
		return;
	record_get(rec, self_key());
	entry_set(newfd, to, LOAD(&from->cookie), rec);
}

bool own_lookup(int fd, uint64_t *cookie)
{
	struct own_entry *e = entry_of(fd);

	if (!e || !LOAD(&e->rec))
		return false;
	*cookie = LOAD(&e->cookie);
	return true;
}

static bool held_here(uint64_t cookie);

static enum own_verdict release_gated(int fd, bool in_epoll, struct own_released *out)
{
	struct own_entry *e = entry_of(fd);
	struct record_end end;
	uint32_t rec;

	if (!e || !(rec = entry_take(e, &out->booked)))
		return OWN_UNKNOWN;
	struct own_record *r = record_at(rec);
	bool ours = LOAD(&r->cookie) == out->booked;
	/* Read before the reference goes: the record may be reused after. */
	out->read_shut = ours && LOAD(&r->read_shut);
	/* Counted before the reference goes, so that whoever lets go of the
	 * last one sees it: a registration under this number outlives it when
	 * the socket does (another descriptor, another process). */
	if (in_epoll && ours)
		ADD(&r->epoll_closed, 1);
	bool last = record_put(rec, out->booked, self_key(), &end);
	if (out->read_shut && !last)
		out->held_here = held_here(out->booked);
	if (!last || end.out_of_sight)
		return OWN_SHARED;
	/* Our own registration (under fd, which still names the socket) the
	 * caller can remove; one under a number closed earlier it cannot. */
	if (end.epoll_closed > (in_epoll ? 1u : 0u))
		return OWN_LAST_IN_EPOLL;
	return OWN_LAST;
}

enum own_verdict own_release(int fd, bool in_epoll, struct own_released *out)
{
	*out = (struct own_released){ 0, false, false };
	if (!entry_of(fd))
		return OWN_UNKNOWN;
	release_enter();
	enum own_verdict verdict = release_gated(fd, in_epoll, out);
	release_leave();
	return verdict;
}

int own_max_fd(void)
{
	return LOAD(&max_fd);
}

/* ---- fork ------------------------------------------------------------------- */

void own_fork_prepare(void)
{
	if (pthread_mutex_lock(&fork_lock) == EDEADLK)
		fork_nested++;
	gate_shut();
	uint32_t epoch = ++fork_epoch;
	uint32_t ticket = 0;
	/* Another thread may be making the books this very moment (their
	 * first socket): read once, as it publishes them. */
	struct own_shared *s = LOAD(&shared);

	while (s && !ticket)
		ticket = __atomic_add_fetch(&s->next_ticket, 1, __ATOMIC_ACQ_REL);
	fork_ticket = ticket;
	children_pids_meaningful = s && LOAD(&pids_meaningful) &&
				   pids_are_the_books("/proc/self/ns/pid_for_children");
	uint64_t key = children_pids_meaningful ? ticket_key(ticket) : HOLDER_NONE;
	for (int fd = 0; fd <= own_max_fd(); fd++) {
		struct own_entry *e = entry_of(fd);
		uint32_t rec = e ? LOAD(&e->rec) : 0;

		if (rec) {
			record_get(rec, key);
			STORE(&e->epoch, epoch);
		}
	}
}

/* Every record this fork counted, given to fn (each once per descriptor). */
static void each_counted(void (*fn)(struct own_entry *e, uint32_t rec, uint64_t arg),
			 uint64_t arg)
{
	for (int fd = 0; fd <= own_max_fd(); fd++) {
		struct own_entry *e = entry_of(fd);
		uint32_t rec = e ? LOAD(&e->rec) : 0;

		if (rec && LOAD(&e->epoch) == fork_epoch)
			fn(e, rec, arg);
	}
}

static void give_back(struct own_entry *e, uint32_t rec, uint64_t ticket)
{
	record_put(rec, LOAD(&e->cookie), ticket, NULL);
}

static void put_under(struct own_entry *e, uint32_t rec, uint64_t pid)
{
	if (LOAD(&record_at(rec)->cookie) == LOAD(&e->cookie))
		holder_rekey(record_at(rec), ticket_key(fork_ticket), pid);
}

void own_fork_parent(pid_t pid)
{
	if (pid < 0)
		each_counted(give_back, children_pids_meaningful ? ticket_key(fork_ticket)
								 : HOLDER_NONE);
	else if (pid > 0 && children_pids_meaningful)
		each_counted(put_under, (uint64_t)(uint32_t)pid);
	if (fork_nested) {
		fork_nested--;
	} else {
		gate_open();
		pthread_mutex_unlock(&fork_lock);
	}
}

void own_fork_child(void)
{
	/* The parent's thread holds the lock in the parent; the child's copy is
	 * the child's alone. */
	pthread_mutex_t fresh = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
	fork_lock = fresh;
	fork_nested = 0;
	gate_open(); /* the releases in flight were the parent's threads' */
	__atomic_store_n(&releases_in_flight, 0, __ATOMIC_SEQ_CST);
	self_pid = (uint32_t)raw_syscall(SYS_getpid);
	STORE(&pids_meaningful, children_pids_meaningful);
	for (int fd = 0; fd <= own_max_fd(); fd++) {
		struct own_entry *e = entry_of(fd);

		if (e && LOAD(&e->rec) && LOAD(&e->epoch) != fork_epoch)
			STORE(&e->rec, 0);
	}
	if (LOAD(&pids_meaningful))
		each_counted(put_under, self_key());
}

void own_fork_child_uncounted(void)
{
	self_pid = (uint32_t)raw_syscall(SYS_getpid);
	STORE(&pids_meaningful, LOAD(&shared) && pids_are_the_books("/proc/self/ns/pid"));
	for (int fd = 0; fd <= own_max_fd(); fd++) {
		struct own_entry *e = entry_of(fd);

		if (e && LOAD(&e->rec))
			STORE(&e->rec, 0);
	}
}

/* ---- held out of sight --------------------------------------------------- */

/* The record fd holds, when it still names the socket it was booked for. */
static struct own_record *record_of(int fd)
{
	struct own_entry *e = entry_of(fd);
	uint32_t rec = e ? LOAD(&e->rec) : 0;
	struct own_record *r = rec ? &shared->records[rec - 1] : NULL;

	return r && LOAD(&r->cookie) == LOAD(&e->cookie) ? r : NULL;
}

static void mark_out_of_sight(int fd)
{
	struct own_record *r = record_of(fd);

	if (r)
		ADD(&r->out_of_sight, 1);
}

void own_give_away(int fd)
{
	mark_out_of_sight(fd);
}

void own_take_back(int fd)
{
	struct own_record *r = record_of(fd);
	uint32_t n = r ? LOAD(&r->out_of_sight) : 0;

	while (n && !CAS(&r->out_of_sight, &n, n - 1))
		;
}

/* ---- programs spawned: references under a ticket, then the child's pid --- */

uint32_t own_spawn_ticket(void)
{
	uint32_t ticket = 0;

	if (!LOAD(&shared) || !LOAD(&pids_meaningful) ||
	    !pids_are_the_books("/proc/self/ns/pid_for_children"))
		return 0;
	while (!ticket)
		ticket = __atomic_add_fetch(&shared->next_ticket, 1, __ATOMIC_ACQ_REL);
	return ticket;
}

/* One reference of fd's socket counted for a program about to start, under
 * `key` (a spawn's ticket, an exec'ing child's pid); hold_back() gives it
 * back when that program never started. */
static void hold_under(int fd, uint64_t key)
{
	struct own_entry *e = entry_of(fd);
	uint32_t rec = e ? LOAD(&e->rec) : 0;

	if (rec && record_of(fd))
		record_get(rec, key);
}

static void hold_back(int fd, uint64_t key)
{
	struct own_entry *e = entry_of(fd);
	uint32_t rec = e ? LOAD(&e->rec) : 0;

	if (rec)
		record_put(rec, LOAD(&e->cookie), key, NULL);
}

void own_hold_for_spawn(int fd, uint32_t ticket)
{
	if (!ticket)
		mark_out_of_sight(fd);
	else
		hold_under(fd, ticket_key(ticket));
}

void own_spawn_started(int fd, uint32_t ticket, pid_t pid)
{
	struct own_record *r = record_of(fd);

	if (ticket && r && pid > 0)
		holder_rekey(r, ticket_key(ticket), (uint64_t)(uint32_t)pid);
}

void own_spawn_failed(int fd, uint32_t ticket)
{
	if (!ticket)
		own_take_back(fd);
	else
		hold_back(fd, ticket_key(ticket));
}

static bool env_preloads_shim(char *const envp[]);

uint32_t own_exec_child_pid(char *const envp[])
{
	/* Its own pid namespace (a clone child with CLONE_NEWPID) names no
	 * holder of the books; books withheld or not passed on (own_exec_env)
	 * leave the new program's forks uncounted. */
	if (!LOAD(&shared) || !LOAD(&pids_meaningful) || LOAD(&books_fd) < 0 ||
	    !env_preloads_shim(envp) || !may_hold_books(LOAD(&shared)) ||
	    !pids_are_the_books("/proc/self/ns/pid"))
		return 0;
	return (uint32_t)raw_syscall(SYS_getpid);
}

void own_hold_for_exec_child(int fd, uint32_t pid)
{
	hold_under(fd, (uint64_t)pid);
}

void own_exec_child_failed(int fd, uint32_t pid)
{
	hold_back(fd, (uint64_t)pid);
}

void own_hold_inherited(void)
{
	int saved_errno = errno;

	for (int fd = 0; fd <= own_max_fd(); fd++)
		if (own_lookup(fd, &(uint64_t){ 0 }) &&
		    !(raw_syscall(SYS_fcntl, fd, F_GETFD) & FD_CLOEXEC))
			mark_out_of_sight(fd);
	errno = saved_errno;
}

/* ---- the read side the program shut ------------------------------------- */

void own_set_read_shut(int fd, uint32_t queued)
{
	struct own_record *r = record_of(fd);

	/* A second shutdown only narrows: SHUT_RDWR after SHUT_RD bounds the
	 * reads to what is queued; a SHUT_RD after either changes nothing. */
	if (r && (!LOAD(&r->read_shut) ||
		  (LOAD(&r->shut_left) == UINT32_MAX && queued != UINT32_MAX))) {
		STORE(&r->shut_left, queued);
		STORE(&r->read_shut, 1);
	}
}

bool own_read_shut(int fd, uint32_t *left)
{
	struct own_record *r = record_of(fd);

	if (!r || !LOAD(&r->read_shut))
		return false;
	/* Rare enough to afford a syscall: a number closed by a path the shim
	 * did not see and reused for a file must read that file. */
	if (probe_cookie(fd) != LOAD(&r->cookie)) {
		own_forget(fd);
		return false;
	}
	*left = LOAD(&r->shut_left);
	return true;
}

void own_read_after_shut(int fd, uint32_t bytes)
{
	struct own_record *r = record_of(fd);
	uint32_t left = r ? LOAD(&r->shut_left) : 0;

	while (r && !__atomic_compare_exchange_n(&r->shut_left, &left,
						 left > bytes ? left - bytes : 0, false,
						 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
}

/* Does a descriptor of this process still refer to the socket? (A scan of
 * this process's entries; async-signal-safe.) */
static bool held_here(uint64_t cookie)
{
	for (int fd = 0; cookie && fd <= own_max_fd(); fd++) {
		struct own_entry *e = entry_of(fd);
		if (e && LOAD(&e->rec) && LOAD(&e->cookie) == cookie)
			return true;
	}
	return false;
}

int own_books_fd(void)
{
	return LOAD(&books_fd);
}

/* The record holding `cookie` in the family's books (only at start-up, for
 * inherited sockets): where record_alloc() would have placed it. 0 when
 * there is none. */
static uint32_t record_find(uint64_t cookie)
{
	uint32_t home = record_home(cookie);
	struct own_shared *s = LOAD(&shared);

	for (uint32_t i = 0; s && i < PROBE_MAX; i++) {
		uint32_t idx = (home + i) & RECORDS_MASK;
		if (LOAD(&s->records[idx].cookie) == cookie)
			return idx + 1;
	}
	return 0;
}

#define ADOPT_MAX 512

struct inherited {
	int fd;
	uint64_t cookie;
};

/* The TCP sockets open at start-up, from /proc/self/fd read with getdents64
 * into a fixed buffer; at most ADOPT_MAX of them. */
static int inherited_sockets(struct inherited *out)
{
	int dir = (int)raw_syscall(SYS_openat, AT_FDCWD, "/proc/self/fd",
				   O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char buf[4096];
	long n;
	int count = 0;

	if (dir < 0)
		return 0;
	while ((n = raw_syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
		for (long off = 0; off < n;) {
			struct { uint64_t ino; int64_t off; uint16_t reclen; uint8_t type; char name[]; }
				*d = (void *)(buf + off);
			int fd = atoi(d->name);
			off += d->reclen;
			if (d->name[0] < '0' || d->name[0] > '9' || fd == dir || selffd_owns(fd) ||
			    count == ADOPT_MAX || !probe_is_tcp(fd) || !sc_ports_admit(fd))
				continue;
			out[count++] = (struct inherited){ fd, probe_cookie(fd) };
		}
	}
	real.close(dir);
	return count;
}

/* Whether the program that exec'd this one (same pid) already counted our
 * descriptors in the family's books: under this pid (exec), or under the
 * ticket its spawner gave (posix_spawn: SAFECLOSE_COUNTED=PID:TICKET),
 * which it then takes over. A program started otherwise by a member (popen,
 * system, a vfork child's exec) counts its own, under its own pid; the
 * member only marked those sockets as held out of sight. */
static uint32_t spawn_ticket; /* counted_for_us(): our spawner's ticket, 0: none */

static bool counted_for_us(void)
{
	const char *v = getenv(COUNTED_ENV);
	char *rest = NULL;
	long by = v ? strtol(v, &rest, 10) : 0;

	/* "PID:TICKET": a program spawned by PID, whose references it counted
	 * under TICKET; they become ours. */
	spawn_ticket = by > 0 && rest && *rest == ':' ? (uint32_t)strtoul(rest + 1, NULL, 10) : 0;
	unsetenv(COUNTED_ENV); /* for us only, never for our own children */
	return by > 0 && (by == getpid() || spawn_ticket);
}

int own_adopt_inherited(bool guess)
{
	struct inherited found[ADOPT_MAX];
	bool counted = counted_for_us();
	int n = own_init() ? inherited_sockets(found) : 0;

	for (int i = 0; i < n; i++) {
		if (!found[i].cookie || own_lookup(found[i].fd, &(uint64_t){ 0 }))
			continue; /* not a socket any more, or done with its twin */
		uint32_t rec = record_find(found[i].cookie);
		bool known = rec != 0;
		/* Books withheld (own_init() learnt it): ours only as handed over. */
		bool ours = books_withheld ? was_handed_over(found[i].fd) : guess;
		if (!known && (!ours || !(rec = record_alloc(found[i].cookie))))
			continue;
		for (int j = i; j < n; j++) {
			if (found[j].cookie != found[i].cookie)
				continue;
			/* A fresh record starts with one reference: the first fd's. */
			if ((known && !counted) || (!known && j != i))
				record_get(rec, self_key());
			entry_set(found[j].fd, entry_of(found[j].fd), found[i].cookie, rec);
		}
		if (known && spawn_ticket && LOAD(&pids_meaningful))
			holder_rekey(record_at(rec), ticket_key(spawn_ticket), self_key());
		SC_LOG(SC_LOG_DEBUG, "inherited fd %d: %s", found[i].fd,
		       known ? "the family's books know it" : "no one else holds it here: ours");
	}
	return n;
}

void own_publish_books(void)
{
	char value[16];
	int fd = own_books_fd();

	if (fd >= 0) {
		sc_format(value, sizeof value, "%d", fd);
		setenv(BOOKS_ENV, value, 1);
	}
}

/* Whether envp loads the shim into the new program. */
static bool env_preloads_shim(char *const envp[])
{
	static const char preload[] = "LD_PRELOAD=";

	for (size_t i = 0; envp && envp[i]; i++)
		if (strncmp(envp[i], preload, sizeof preload - 1) == 0 &&
		    strstr(envp[i] + sizeof preload - 1, "libsafeclose"))
			return true;
	return false;
}

/* fd's socket is held by this process alone: every reference of the
 * family is one of ours (none out of sight, none unattributed). */
static bool held_only_here(int fd)
{
	struct own_record *r = record_of(fd);
	uint64_t key = self_key();

	if (!r || key == HOLDER_NONE || LOAD(&r->out_of_sight))
		return false;
	for (int i = 0; i < HOLDERS; i++) {
		uint64_t w = LOAD(&r->holders[i]);
		if (w && (w & HOLDER_KEY_MASK) == key)
			return holder_count(w) == (uint32_t)LOAD(&r->refs);
	}
	return false;
}

/* "SAFECLOSE_BOOKS=withheld:FD,FD...": the books withheld, and the
 * inherited sockets the new program may take as its own (no one else of
 * the family holds them as it starts; those that do not fit are left
 * alone, as is every socket in a child the shim does not follow). */
static void withheld_value(char buf[SC_ENV_ROOM])
{
	int len = sc_format(buf, SC_ENV_ROOM, "%s=%s:", BOOKS_ENV, BOOKS_WITHHELD);
	uint64_t booked;

	for (int fd = 0; sc_self() && fd <= own_max_fd() && len + 12 < SC_ENV_ROOM; fd++)
		if (own_lookup(fd, &booked) && !(raw_syscall(SYS_fcntl, fd, F_GETFD) & FD_CLOEXEC) &&
		    held_only_here(fd))
			len += sc_format(buf + len, (size_t)(SC_ENV_ROOM - len), "%d,", fd);
}

size_t own_exec_env(char *const envp[], char **out, size_t room, char bufs[2][SC_ENV_ROOM],
		    uint32_t ticket, uint32_t child)
{
	size_t n = 0;
	/* Never to a program with other credentials than the books' maker's,
	 * nor books a change of credentials made (books_detached): it is told
	 * they were withheld instead. */
	bool preloads = env_preloads_shim(envp);
	bool withhold = preloads && LOAD(&books_fd) >= 0 &&
			(LOAD(&books_detached) || !may_hold_books(LOAD(&shared)));
	int fd = preloads && !withhold ? own_books_fd() : -1;

	for (size_t i = 0; envp && envp[i] && n + 3 < room; i++)
		if (strncmp(envp[i], BOOKS_ENV "=", sizeof BOOKS_ENV) != 0 &&
		    strncmp(envp[i], COUNTED_ENV "=", sizeof COUNTED_ENV) != 0)
			out[n++] = envp[i];
	if (withhold) {
		withheld_value(bufs[0]);
		out[n++] = bufs[0];
	}
	if (fd >= 0 && raw_syscall(SYS_fcntl, fd, F_SETFD, 0) == 0) {
		sc_format(bufs[0], SC_ENV_ROOM, "%s=%d", BOOKS_ENV, fd);
		out[n++] = bufs[0];
		/* Counted: our references, under this pid, become the new
		 * program's; in a child the shim does not follow (vfork,
		 * clone), those it counted under its own pid. Where it could
		 * only mark them as given away, the new program counts its
		 * own. */
		if (sc_self() || (child && child == (uint32_t)getpid())) {
			int len = sc_format(bufs[1], SC_ENV_ROOM, "%s=%d", COUNTED_ENV, (int)getpid());
			if (ticket) /* a spawn: counted under its ticket */
				sc_format(bufs[1] + len, (size_t)(SC_ENV_ROOM - len), ":%u", ticket);
			out[n++] = bufs[1];
		}
	}
	out[n] = NULL;
	return n;
}

void own_exec_env_done(void)
{
	int fd = LOAD(&books_fd), saved_errno = errno;

	if (fd >= 0)
		raw_syscall(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
	errno = saved_errno;
}

bool own_give_back_books(void)
{
	int fd = __atomic_exchange_n(&books_fd, -1, __ATOMIC_ACQ_REL);

	if (fd < 0)
		return false;
	selffd_close(fd);
	return true;
}

void own_yield_number(int fd)
{
	if (fd < 0 || LOAD(&books_fd) != fd)
		return;
	STORE(&books_fd, selffd_relocate(fd, true));
	own_publish_books();
}

bool own_let_go_of_books(unsigned first, unsigned last)
{
	int fd = LOAD(&books_fd);

	if (fd < 0 || (unsigned)fd < first || (unsigned)fd > last ||
	    !__atomic_compare_exchange_n(&books_fd, &fd, -1, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return false;
	selffd_unmark(fd);
	return true;
}

/* ---- leaving the family's books: a change of credentials ------------------ */

/* One record of ours, copied from the family's books `from` into `to` at
 * the same index (so every entry of ours stays valid): what the program
 * did to the socket (read side shut, epoll registrations under closed
 * numbers, give-aways), and one reference per descriptor of ours. */
static void copy_record(const struct own_record *from, struct own_record *to, uint64_t cookie,
			uint32_t *used)
{
	if (!to->cookie) {
		to->cookie = cookie;
		to->flags = REC_COPYING;
		to->read_shut = LOAD(&from->read_shut);
		to->shut_left = LOAD(&from->shut_left);
		to->epoll_closed = LOAD(&from->epoll_closed);
		to->out_of_sight = LOAD(&from->out_of_sight);
		++*used;
	}
	to->refs++;
}

/* The copy of a record is complete (every descriptor of ours counted):
 * when the family held more references than ours, someone we no longer
 * see holds the socket, in either books. Ours keep a mark (a close of ours
 * never lingers on it); the family's keep our references (collected once
 * we are gone) and gain the same mark, since whatever we fork from now on
 * holds it out of their sight. When only we held it, the family's books
 * let go of it: no one else of theirs can hold it any more. */
static void finish_record(struct own_record *from, struct own_record *to, uint64_t key)
{
	int32_t ours = to->refs;

	to->flags = 0;
	if (key != HOLDER_NONE)
		to->holders[0] = key | (uint64_t)(uint32_t)ours * HOLDER_ONE;
	else
		to->flags = REC_UNATTRIBUTED;
	if (LOAD(&from->refs) != ours || LOAD(&from->out_of_sight)) {
		to->out_of_sight++;
		ADD(&from->out_of_sight, 1);
		return;
	}
	for (int32_t i = 0; i < ours; i++)
		record_put((uint32_t)(from - shared->records) + 1, to->cookie, key, NULL);
}

/* Fresh books holding a copy of the records our descriptors hold in the
 * family's (fresh->used: how many). */
static void copy_ours(struct own_shared *fresh)
{
	uint64_t key = self_key();
	uint32_t used = 0;

	for (int pass = 0; pass < 2; pass++) {
		for (int fd = 0; fd <= own_max_fd(); fd++) {
			struct own_entry *e = entry_of(fd);
			uint32_t rec = e ? LOAD(&e->rec) : 0;
			struct own_record *from = rec ? record_at(rec) : NULL, *to;

			if (!from)
				continue;
			to = &fresh->records[rec - 1];
			if (pass == 0 && LOAD(&from->cookie) != LOAD(&e->cookie))
				STORE(&e->rec, 0); /* stale: off the books */
			else if (pass == 0)
				copy_record(from, to, LOAD(&e->cookie), &used);
			else if (to->flags & REC_COPYING)
				finish_record(from, to, key);
		}
	}
	fresh->used = used;
}

/* Nothing of ours on any books any more: the family's mapping becomes
 * private zeros, every entry is dropped, nothing more is tracked. */
static void lose_books(struct own_shared *old)
{
	__atomic_store_n(&books_lost, 1, __ATOMIC_SEQ_CST);
	for (int fd = 0; fd <= own_max_fd(); fd++) {
		struct own_entry *e = entry_of(fd);
		if (e)
			STORE(&e->rec, 0);
	}
	if (mmap(old, sizeof *old, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		munmap(old, sizeof *old);
	sc_log_write(SC_LOG_ERROR, __func__,
		     "cannot make ownership books of our own; leaving every socket alone");
}

bool own_must_detach(void)
{
	struct own_shared *s = LOAD(&shared);

	return s && !LOAD(&books_lost) && sc_self() && !same_owner(s);
}

void own_detach(void)
{
	struct own_shared *old = LOAD(&shared);
	int saved_errno = errno, fd, old_fd;
	bool nested;

	/* A vfork or clone child shares this memory with its parent: replacing
	 * the mapping there would take the parent's books away. */
	if (!old || LOAD(&books_lost) || !sc_self())
		return;
	nested = pthread_mutex_lock(&fork_lock) == EDEADLK;
	gate_shut(); /* no release of another thread of ours in between */
	struct own_shared *fresh = new_books(&fd);
	if (fresh) {
		STORE(&fresh->pidns, LOAD(&old->pidns)); /* our pids mean what they meant */
		copy_ours(fresh);
	}
	/* The family's mapping is replaced in place (one mremap: no moment
	 * where the address maps nothing, for a thread of ours reading it),
	 * so every pointer and record index of ours stays valid. */
	if (!fresh || mremap(fresh, sizeof *fresh, sizeof *fresh, MREMAP_MAYMOVE | MREMAP_FIXED,
			     old) == MAP_FAILED) {
		if (fresh)
			munmap(fresh, sizeof *fresh);
		if (fd >= 0)
			selffd_close(fd);
		lose_books(old);
		fd = -1;
	}
	STORE(&books_detached, 1);
	old_fd = __atomic_exchange_n(&books_fd, fd, __ATOMIC_ACQ_REL);
	if (old_fd >= 0)
		selffd_close(old_fd);
	if (fd >= 0 && getenv(BOOKS_ENV))
		own_publish_books();
	gate_open();
	if (!nested)
		pthread_mutex_unlock(&fork_lock);
	SC_LOG(SC_LOG_DEBUG, "credentials changed: the family's books left, %u records our own",
	       own_records_in_use());
	errno = saved_errno;
}
