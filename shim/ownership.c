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
 * Only atomics, no locks and no allocation after start-up: the release path
 * runs inside close(), which a signal handler may call. */
#include "rawsys.h"
#include "ownership.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fdspace.h"
#include "log.h"
#include "probe.h"

#define OWN_RECORDS (1u << 18)  /* live TCP sockets per process family */

struct own_record {
	uint64_t cookie; /* 0 = free */
	int32_t refs;
	uint32_t read_shut;   /* the program shut the read side (for every fd of it) */
	uint32_t shut_left;   /* bytes it may still read: what was queued at that shutdown */
	uint32_t unused;
};

struct own_shared {
	uint32_t next_hint;
	uint32_t unused;
	struct own_record records[OWN_RECORDS];
};

struct own_entry {
	uint64_t cookie;
	uint32_t rec;   /* record index + 1; 0 = not on the books */
	uint32_t epoch; /* the fork that last counted this entry */
};

static struct own_shared *shared;
static struct own_entry *entries;
static uint32_t entries_size;
static int max_fd = -1;
static uint32_t fork_epoch;

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

bool own_init(void)
{
	static int once;

	if (LOAD(&entries))
		return true;
	if (__atomic_exchange_n(&once, 1, __ATOMIC_ACQ_REL))
		return LOAD(&entries) != NULL; /* another thread is setting up */

	uint32_t size = fdspace_size();
	struct own_shared *s = fdspace_map(1, sizeof *s, MAP_SHARED);
	struct own_entry *e = fdspace_map(size, sizeof *e, MAP_PRIVATE);
	if (!s || !e) {
		sc_log_write(SC_LOG_ERROR, __func__,
			     "cannot map the ownership tables; leaving every socket alone");
		if (s)
			munmap(s, sizeof *s);
		if (e)
			munmap(e, (size_t)size * sizeof *e);
		return false;
	}
	shared = s;
	entries_size = size;
	STORE(&entries, e);
	return true;
}

static struct own_entry *entry_of(int fd)
{
	struct own_entry *e = LOAD(&entries);

	if (!e || fd < 0 || (uint32_t)fd >= entries_size)
		return NULL;
	return &e[fd];
}

static uint32_t record_alloc(uint64_t cookie)
{
	uint32_t start = __atomic_fetch_add(&shared->next_hint, 1, __ATOMIC_RELAXED);

	for (uint32_t i = 0; i < OWN_RECORDS; i++) {
		struct own_record *r = &shared->records[(start + i) % OWN_RECORDS];
		uint64_t expected = 0;

		if (__atomic_compare_exchange_n(&r->cookie, &expected, cookie, false,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			STORE(&r->read_shut, 0);
			STORE(&r->refs, 1);
			return (start + i) % OWN_RECORDS + 1;
		}
	}
	return 0;
}

static void record_get(uint32_t rec)
{
	__atomic_fetch_add(&shared->records[rec - 1].refs, 1, __ATOMIC_ACQ_REL);
}

/* Drops one reference; true when it was the last, and the record is free. */
static bool record_put(uint32_t rec, uint64_t cookie)
{
	struct own_record *r = &shared->records[rec - 1];

	if (LOAD(&r->cookie) != cookie)
		return false;
	if (__atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return false;
	STORE(&r->cookie, 0);
	return true;
}

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

	if (e && (rec = entry_take(e, &cookie)))
		record_put(rec, cookie);
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
	if (!rec) {
		SC_LOG(SC_LOG_INFO, "ownership records full; leaving fd %d alone", fd);
		return;
	}
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
	record_get(rec);
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

enum own_verdict own_release(int fd, uint64_t cookie)
{
	struct own_entry *e = entry_of(fd);
	uint64_t booked;
	uint32_t rec;

	if (!e || !(rec = entry_take(e, &booked)))
		return OWN_UNKNOWN;
	bool last = record_put(rec, booked);
	if (booked != cookie)
		return OWN_UNKNOWN; /* stale: the number now names another file */
	return last ? OWN_LAST : OWN_SHARED;
}

int own_max_fd(void)
{
	return LOAD(&max_fd);
}

void own_fork_prepare(void)
{
	uint32_t epoch = __atomic_add_fetch(&fork_epoch, 1, __ATOMIC_ACQ_REL);

	for (int fd = 0; fd <= own_max_fd(); fd++) {
		struct own_entry *e = entry_of(fd);
		uint32_t rec = e ? LOAD(&e->rec) : 0;

		if (rec) {
			record_get(rec);
			STORE(&e->epoch, epoch);
		}
	}
}

void own_fork_parent(bool failed)
{
	uint32_t epoch = LOAD(&fork_epoch);

	for (int fd = 0; failed && fd <= own_max_fd(); fd++) {
		struct own_entry *e = entry_of(fd);
		uint32_t rec = e ? LOAD(&e->rec) : 0;

		if (rec && LOAD(&e->epoch) == epoch)
			record_put(rec, LOAD(&e->cookie));
	}
}

void own_fork_child(void)
{
	uint32_t epoch = LOAD(&fork_epoch);

	for (int fd = 0; fd <= own_max_fd(); fd++) {
		struct own_entry *e = entry_of(fd);

		if (e && LOAD(&e->rec) && LOAD(&e->epoch) != epoch)
			STORE(&e->rec, 0);
	}
}


void own_give_away(int fd)
{
	struct own_entry *e = entry_of(fd);
	uint32_t rec = e ? LOAD(&e->rec) : 0;

	if (rec)
		record_get(rec);
}

void own_hold_inherited(void)
{
	int saved_errno = errno;

	for (int fd = 0; fd <= own_max_fd(); fd++) {
		struct own_entry *e = entry_of(fd);
		uint32_t rec = e ? LOAD(&e->rec) : 0;

		if (rec && !(raw_syscall(SYS_fcntl, fd, F_GETFD) & FD_CLOEXEC))
			record_get(rec);
	}
	errno = saved_errno;
}

/* The record fd holds, when it still names the socket it was booked for. */
static struct own_record *record_of(int fd)
{
	struct own_entry *e = entry_of(fd);
	uint32_t rec = e ? LOAD(&e->rec) : 0;
	struct own_record *r = rec ? &shared->records[rec - 1] : NULL;

	return r && LOAD(&r->cookie) == LOAD(&e->cookie) ? r : NULL;
}

void own_set_read_shut(int fd, uint32_t queued)
{
	struct own_record *r = record_of(fd);

	if (r) {
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
