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
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fdspace.h"
#include "log.h"
#include "ports.h"
#include "probe.h"
#include "real.h"
#include "selffd.h"

#define OWN_RECORDS (1u << 18)  /* live TCP sockets per process family */

struct own_record {
	uint64_t cookie; /* 0 = free */
	int32_t refs;
	uint32_t read_shut;   /* the program shut the read side (for every fd of it) */
	uint32_t shut_left;   /* bytes it may still read: what was queued at that shutdown */
	uint32_t unused;
};

/* The books of a process family: every process forked from the first one
 * that loaded the shim, and every program they exec (a memfd kept open
 * across exec, its number in SAFECLOSE_BOOKS, so that a child that is handed
 * a connection knows whether its parent still holds it). */
struct own_shared {
	uint64_t magic;
	uint32_t next_hint;
	uint32_t unused;
	struct own_record records[OWN_RECORDS];
};

#define BOOKS_MAGIC 0x6b6f6f62736c6373ull /* "sclsbook" */
#define BOOKS_ENV SC_BOOKS_ENV
#define COUNTED_ENV SC_COUNTED_ENV

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
static int books_fd = -1;

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* The family's books, when this program was exec'd by one of its members:
 * SAFECLOSE_BOOKS names a descriptor that is a memfd of the right size
 * holding the right magic. NULL otherwise (and for a number reused since). */
static struct own_shared *join_books(void)
{
	const char *v = getenv(BOOKS_ENV);
	char *end;
	struct stat st;

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
	if (LOAD(&s->magic) != BOOKS_MAGIC || !selffd_mark((int)fd)) {
		munmap(s, sizeof *s);
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
	if (s)
		STORE(&s->magic, BOOKS_MAGIC);
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

	if (s || LOAD(&failed))
		return s;
	s = new_books(&fd);
	if (!s) {
		if (!__atomic_exchange_n(&failed, 1, __ATOMIC_ACQ_REL))
			sc_log_write(SC_LOG_ERROR, __func__,
				     "cannot map the ownership books; leaving every socket alone");
		return NULL;
	}
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

	uint32_t size = fdspace_size();
	struct own_entry *e = fdspace_map(size, sizeof *e, MAP_PRIVATE);
	if (!e) {
		sc_log_write(SC_LOG_ERROR, __func__,
			     "cannot map the ownership tables; leaving every socket alone");
		return false;
	}
	STORE(&shared, join_books());
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
	struct own_shared *s = books();

	if (!s)
		return 0;
	uint32_t start = __atomic_fetch_add(&s->next_hint, 1, __ATOMIC_RELAXED);

	for (uint32_t i = 0; i < OWN_RECORDS; i++) {
		struct own_record *r = &s->records[(start + i) % OWN_RECORDS];
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

void own_fork_child_uncounted(void)
{
	for (int fd = 0; fd <= own_max_fd(); fd++) {
		struct own_entry *e = entry_of(fd);

		if (e && LOAD(&e->rec))
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

void own_take_back(int fd)
{
	struct own_entry *e = entry_of(fd);
	uint32_t rec = e ? LOAD(&e->rec) : 0;

	/* This descriptor's own reference remains, so this is never the last. */
	if (rec)
		record_put(rec, LOAD(&e->cookie));
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

bool own_held_here(uint64_t cookie)
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

/* The record holding `cookie` in the family's books, found by a scan (only
 * at start-up, for inherited sockets); 0 when there is none. */
static uint32_t record_find(uint64_t cookie)
{
	for (uint32_t i = 0; shared && i < OWN_RECORDS; i++)
		if (LOAD(&shared->records[i].cookie) == cookie)
			return i + 1;
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

/* Whether the program that exec'd this one (same pid) or spawned it (the
 * parent) already counted our descriptors in the family's books. */
static bool counted_for_us(void)
{
	const char *v = getenv(COUNTED_ENV);
	long by = v ? strtol(v, NULL, 10) : 0;

	unsetenv(COUNTED_ENV); /* for us only, never for our own children */
	return by > 0 && (by == getpid() || by == getppid());
}

void own_adopt_inherited(bool guess)
{
	struct inherited found[ADOPT_MAX];
	bool counted = counted_for_us();
	int n = own_init() ? inherited_sockets(found) : 0;

	for (int i = 0; i < n; i++) {
		if (!found[i].cookie || own_lookup(found[i].fd, &(uint64_t){ 0 }))
			continue; /* not a socket any more, or done with its twin */
		uint32_t rec = record_find(found[i].cookie);
		bool known = rec != 0;
		if (!known && (!guess || !(rec = record_alloc(found[i].cookie))))
			continue;
		for (int j = i; j < n; j++) {
			if (found[j].cookie != found[i].cookie)
				continue;
			/* A fresh record starts with one reference: the first fd's. */
			if ((known && !counted) || (!known && j != i))
				record_get(rec);
			entry_set(found[j].fd, entry_of(found[j].fd), found[i].cookie, rec);
		}
		SC_LOG(SC_LOG_DEBUG, "inherited fd %d: %s", found[i].fd,
		       known ? "the family's books know it" : "no one else holds it here: ours");
	}
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

size_t own_exec_env(char *const envp[], char **out, size_t room, char bufs[2][48])
{
	size_t n = 0;
	int fd = env_preloads_shim(envp) ? own_books_fd() : -1;

	for (size_t i = 0; envp && envp[i] && n + 3 < room; i++)
		if (strncmp(envp[i], BOOKS_ENV "=", sizeof BOOKS_ENV) != 0 &&
		    strncmp(envp[i], COUNTED_ENV "=", sizeof COUNTED_ENV) != 0)
			out[n++] = envp[i];
	if (fd >= 0 && raw_syscall(SYS_fcntl, fd, F_SETFD, 0) == 0) {
		sc_format(bufs[0], 48, "%s=%d", BOOKS_ENV, fd);
		sc_format(bufs[1], 48, "%s=%d", COUNTED_ENV, (int)getpid());
		out[n++] = bufs[0];
		out[n++] = bufs[1];
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
