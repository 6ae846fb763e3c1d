/* reaper.c: owns lingering in the background. One thread holds every socket
 * whose close was handed off under a descriptor of the shim's own (high,
 * close-on-exec), steps the linger machine on epoll events and on timers,
 * and closes each socket at the machine's end.
 *
 * The hand-off from close() is async-signal-safe: a duplicate descriptor,
 * the FIN, and a fixed-size record into a lock-free ring in memory of the
 * shim's own (ring.h, its code below; mapped with the wake-up pipe on
 * first use); no lock is taken, and no thread is ever started there. The
 * pipe wakes the thread: a hand-off writes to it only when the thread has
 * said it is going to sleep (`sleeping`), so a busy thread costs the
 * hand-off no system call at all. (A burst the ring has no room for goes
 * to the pipe as whole records, the way every hand-off went before the
 * ring.) Kept alive by its duplicate, a queued socket is not orphaned:
 * late input is queued by the kernel, not answered with a reset.
 * The thread is started only at safe points, calls no signal handler may
 * make (reaper_safe_point), once work is queued: a program that never
 * lingers has no thread. When the process ends with work queued and no
 * thread (_exit, often from a signal handler), the queued sockets linger in
 * place (drain_in_place). The thread also gives the read-side emulation
 * (readshut.c) its ticks while real SHUT_RDs wait.
 *
 * The thread's tables are touched only by the thread, under `lock`, which
 * exists so that fork() sees them consistent; the child keeps none of the
 * shim's descriptors and makes its own queue when it needs one. */
#include "rawsys.h"
#include "reaper.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "config.h"
#include "fdspace.h"
#include "linger.h"
#include "log.h"
#include "probe.h"
#include "ownership.h"
#include "readshut.h"
#include "real.h"
#include "ring.h"
#include "selffd.h"
#include "self.h"
#include "shim.h"
#include "stats.h"
#include "statsfile.h"

#define PIPE_TAG UINT64_MAX
#define BATCH 64
/* Ring cells: 40 KiB, charged in full when mapped (VmData, what
 * vm.overcommit_memory=2 and RLIMIT_DATA count: tests/test_memory_commit.py
 * bounds the shim's share). Many more than the thread leaves queued between
 * two rounds; a burst beyond (while no thread runs) goes to the pipe. */
#define RING_CELLS (1u << 10)

/* Lingers travel in the ring (in the pipe when the ring is full or could
 * not be mapped); wake-ups and a pause's quit in the pipe. */
enum handoff_kind { HAND_LINGER, HAND_WAKE, HAND_QUIT };

struct handoff {
	int32_t fd;
	uint16_t kind;
	uint16_t arm; /* enum sc_arm, for the linger's counters */
	uint64_t cookie;
	uint64_t start_ms;
	uint32_t replaces; /* `replaces` just before the duplicate was made */
	bool quiet;        /* no dup2/dup3 under way just after (`yielding` 0) */
	bool read_open;    /* the program never shut the read side (the books) */
};
_Static_assert(sizeof(struct handoff) <= RING_RECORD, "a hand-off fits a ring cell");

struct slot {
	struct sc_linger l;
	uint64_t cookie;     /* the socket's identity, to notice a number taken over */
	uint32_t yields;     /* numbers_yielded when the identity was last checked */
	uint64_t scheduled;  /* the wake-up pending on the heap, 0 = none */
	uint32_t gen;        /* bumped on reuse: stale events and timers are ignored */
	uint32_t next_free;  /* free list, index + 1 */
	bool used;
	bool watched;        /* registered for input in the thread's epoll set */
};

struct timer {
	uint64_t at;
	uint32_t slot, gen;
};

enum { STOPPED, STARTING, RUNNING, FAILED };
enum { QUEUE_NONE, QUEUE_MAKING, QUEUE_READY };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int state = STOPPED;
static int queue_state = QUEUE_NONE;
static int thread_wanted; /* work was queued while no thread ran */
static int queue_users;   /* hand-offs between their look at the queue and their write */
static int pipe_r = -1, pipe_w = -1, epfd = -1;
/* Cells mapped with the pipe, kept when it closes. */
static struct ring ring = { .mask = RING_CELLS - 1 };
/* Set by the thread just before it waits (and cleared when it wakes): a
 * hand-off that takes it back to 0 writes the wake-up. */
static int sleeping;
static pthread_t thread;
static int thread_tid;
static int lingering;
static uint64_t n_handed, n_released, n_fallbacks;
/* Bumped before the program takes one of the shim's numbers (dup2 onto it:
 * reaper_yield_number). Only then can a number the thread holds name
 * another file, so only then does the thread ask a socket for its cookie
 * again: once at adoption, not at every step. (A number taken over by a
 * path the shim does not see, io_uring or a raw system call instruction,
 * is not noticed after the adoption: such programs are out of the shim's
 * reach, README's limits.) */
static uint32_t numbers_yielded;
/* Why adoption may trust a hand-off without asking the socket its cookie.
 * Only a dup2/dup3 can put another file at the shim's number K (close()
 * of K says EBADF, bulk closes go around it). Every one the program makes
 * goes through replace_fd (interpose.c), which bumps `replaces` and
 * `yielding` before the real call and bumps `replaces` again, then lowers
 * `yielding`, after it (reaper_replace_begin/_end), whatever the number
 * and whatever else happens. The hand-off reads `replaces` (R) before its
 * fcntl makes K, and `yielding` (Y) after (seq_cst). Take a dup2 that
 * lands on K after that fcntl: it began before the real call, and
 * - began after R was read: `replaces` is past R at adoption;
 * - began before, still under way when Y was read: Y > 0 (not quiet);
 * - began before, ended before Y was read: its ending bump came after the
 *   real call, so after the fcntl, so after R was read: past R again.
 * So quiet and `replaces` still R at adoption mean that no dup2 landed on
 * K since the hand-off made it, and the cookie need not be asked. (A
 * dup2 that landed before the fcntl left K taken: the fcntl could not
 * have returned it.) Any other way onto K (io_uring, a raw system call
 * instruction) is beyond the shim, as for numbers_yielded. */
static uint32_t replaces;
static int yielding;

/* The thread's own tables. */
static struct slot *slots;
static uint32_t nslots, free_head;
static uint32_t held, held_peak; /* slots in use, and the most after an adoption */
static bool under_load;          /* the idle bound is SAFECLOSE_IDLE_UNDER_LOAD_MS's */
static struct timer *heap;
static uint32_t nheap, heap_cap;

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_ACQ_REL)
#define RELAXED(p) __atomic_load_n((p), __ATOMIC_RELAXED)

/* ---- the ring (ring.h): the hand-off queue ------------------------------ */

/* Here rather than in a file of its own: the release path's files call one
 * another only through release.c (tests/test_shape.py), and the ring is
 * reaper.c's queue. Positions are 64-bit and never wrap in practice; a
 * cell at index i = pos & mask is free for the producer of position pos
 * when its sequence is pos, holds that position's record when it is
 * pos + 1, and is free for the next lap (pos + cells) once taken. The
 * sequence is stored minus i (`turn`), so that zeroed memory starts as
 * every cell free for lap 0. Acquire on the sequence before touching the
 * record, release after: the record's bytes are never read and written at
 * once. */

size_t ring_bytes(uint64_t cells)
{
	return (size_t)cells * sizeof(struct ring_cell);
}

void ring_init(struct ring *r, struct ring_cell *zeroed, uint64_t cells)
{
	STORE(&r->head, 0);
	STORE(&r->tail, 0);
	STORE(&r->mask, cells - 1);
	STORE(&r->cells, zeroed);
}

static uint64_t sequence(const struct ring *r, const struct ring_cell *c, uint64_t pos)
{
	return LOAD(&c->turn) + (pos & r->mask);
}

static void set_sequence(const struct ring *r, struct ring_cell *c, uint64_t pos, uint64_t seq)
{
	STORE(&c->turn, seq - (pos & r->mask));
}

bool ring_push(struct ring *r, const void *record, size_t size)
{
	uint64_t pos = RELAXED(&r->head);
	struct ring_cell *c;

	for (;;) {
		c = &r->cells[pos & r->mask];
		int64_t lag = (int64_t)(sequence(r, c, pos) - pos);
		if (lag == 0) {
			if (__atomic_compare_exchange_n(&r->head, &pos, pos + 1, true,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED))
				break;
		} else if (lag < 0) {
			return false; /* the cell still holds last lap's record: full */
		} else {
			pos = RELAXED(&r->head); /* another producer took pos */
		}
	}
	memcpy(c->record, record, size);
	set_sequence(r, c, pos, pos + 1);
	return true;
}

bool ring_pop(struct ring *r, void *record, size_t size)
{
	uint64_t pos = RELAXED(&r->tail);
	struct ring_cell *c;

	for (;;) {
		c = &r->cells[pos & r->mask];
		int64_t lag = (int64_t)(sequence(r, c, pos) - (pos + 1));
		if (lag == 0) {
			if (__atomic_compare_exchange_n(&r->tail, &pos, pos + 1, true,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED))
				break;
		} else if (lag < 0) {
			return false; /* not published yet: empty from here */
		} else {
			pos = RELAXED(&r->tail); /* another consumer took pos */
		}
	}
	memcpy(record, c->record, size);
	set_sequence(r, c, pos, pos + r->mask + 1);
	return true;
}

bool ring_ready(const struct ring *r)
{
	uint64_t pos = LOAD(&r->tail);

	return sequence(r, &r->cells[pos & r->mask], pos) == pos + 1;
}

void reaper_replace_begin(void)
{
	__atomic_add_fetch(&yielding, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&replaces, 1, __ATOMIC_SEQ_CST);
}

void reaper_replace_end(bool yielded, bool holding)
{
	/* A number given up is counted again now that it has changed hands:
	 * a slot whose check came between the count before and the dup2
	 * itself looks again. */
	if (yielded)
		ADD(&numbers_yielded, 1);
	__atomic_add_fetch(&replaces, 1, __ATOMIC_SEQ_CST);
	__atomic_sub_fetch(&yielding, 1, __ATOMIC_SEQ_CST);
	if (holding)
		pthread_mutex_unlock(&lock);
}

bool reaper_yield_number(int fd)
{
	int *mine[] = { &pipe_r, &pipe_w, &epfd };

	ADD(&numbers_yielded, 1);
	for (unsigned i = 0; i < sizeof mine / sizeof *mine; i++) {
		if (LOAD(mine[i]) == fd) {
			STORE(mine[i], selffd_relocate(fd, true));
			return false;
		}
	}
	if (LOAD(&state) != RUNNING)
		return false;
	/* A lingering socket: the thread must not step it while the number
	 * changes hands; afterwards its slot sees another file there. */
	pthread_mutex_lock(&lock);
	return true;
}

/* ---- timers: a binary heap of wake-ups ---------------------------------- */

static void heap_swap(uint32_t a, uint32_t b)
{
	struct timer t = heap[a];
	heap[a] = heap[b];
	heap[b] = t;
}

static bool heap_push(struct timer t)
{
	if (nheap == heap_cap) {
		uint32_t cap = heap_cap ? heap_cap * 2 : 64;
		struct timer *grown = realloc(heap, cap * sizeof *grown);
		if (!grown)
			return false;
		heap = grown;
		heap_cap = cap;
	}
	uint32_t i = nheap++;
	heap[i] = t;
	while (i && heap[(i - 1) / 2].at > heap[i].at) {
		heap_swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	return true;
}

static struct timer heap_pop(void)
{
	struct timer top = heap[0];
	uint32_t i = 0;

	heap[0] = heap[--nheap];
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, min = i;
		if (l < nheap && heap[l].at < heap[min].at)
			min = l;
		if (r < nheap && heap[r].at < heap[min].at)
			min = r;
		if (min == i)
			return top;
		heap_swap(i, min);
		i = min;
	}
}

/* ---- slots: one lingering socket each ----------------------------------- */

static uint32_t slot_alloc(void)
{
	if (!free_head) {
		uint32_t n = nslots ? nslots * 2 : 64;
		struct slot *grown = realloc(slots, n * sizeof *grown);
		if (!grown)
			return 0;
		slots = grown;
		for (uint32_t i = nslots; i < n; i++)
			slots[i] = (struct slot){ .next_free = i + 1 < n ? i + 2 : 0 };
		free_head = nslots + 1;
		nslots = n;
	}
	uint32_t i = free_head;
	struct slot *s = &slots[i - 1];
	free_head = s->next_free;
	s->used = true;
	s->scheduled = 0;
	held++;
	return i;
}

static uint64_t tag(uint32_t i)
{
	return (uint64_t)slots[i - 1].gen << 32 | i;
}

/* The linger is over: release the socket (unless its number was taken over
 * by the program, in which case the socket is already gone) and the slot.
 * The registration goes first: it belongs to the open file, which outlives
 * our descriptor when another process still holds the socket, and would go
 * on reporting its end-of-file to the set. */
static void slot_end(uint32_t i, bool close_it)
{
	struct slot *s = &slots[i - 1];

	if (close_it) {
		if (s->watched)
			raw_syscall(SYS_epoll_ctl, LOAD(&epfd), EPOLL_CTL_DEL, s->l.fd, NULL);
		linger_finish(&s->l);
		linger_account(&s->l, sc_now_ms());
		SC_LOG(SC_LOG_DEBUG, "fd %d lingered after %llu ms in the background, discarded %llu bytes, end: %s",
		       s->l.fd, (unsigned long long)(sc_now_ms() - s->l.start_ms),
		       (unsigned long long)s->l.discarded, linger_end_name(s->l.end));
		selffd_close(s->l.fd);
	} else {
		/* The number changed hands (dup2 onto it made way, and unmarked
		 * it); it may be the shim's again by now, for another socket. */
		stats_count_cut_short((enum sc_arm)s->l.arm);
	}
	s->used = false;
	s->gen++;
	s->next_free = free_head;
	free_head = i;
	held--;
	ADD(&n_released, 1);
	ADD(&lingering, -1);
}

static void schedule(uint32_t i, uint64_t at)
{
	struct slot *s = &slots[i - 1];

	if (s->scheduled && s->scheduled <= at)
		return; /* an earlier wake-up is pending: the step then reschedules */
	if (heap_push((struct timer){ at, i, s->gen }))
		s->scheduled = at;
}

/* SAFECLOSE_IDLE_MS, or the shorter bound while more than half of the cap
 * is in use. */
static uint64_t idle_bound_now(void)
{
	bool loaded = (uint64_t)held * 2 > (uint64_t)sc_cfg.max_linger;

	return (uint64_t)(loaded && sc_cfg.idle_under_load_ms < sc_cfg.idle_ms
				  ? sc_cfg.idle_under_load_ms : sc_cfg.idle_ms);
}

/* Whether fd, the shim's number, still names the socket `cookie`: asked of
 * the socket only when some number was yielded since *seen. */
static bool still_ours(int fd, uint64_t cookie, uint32_t *seen)
{
	uint32_t now = LOAD(&numbers_yielded);

	if (now == *seen)
		return true;
	if (probe_cookie(fd) != cookie)
		return false;
	*seen = now;
	return true;
}

static void slot_step(uint32_t i, uint64_t now)
{
	struct slot *s = &slots[i - 1];
	struct linger_wait wait;

	s->l.idle_ms = idle_bound_now();

	if (!still_ours(s->l.fd, s->cookie, &s->yields)) {
		slot_end(i, false); /* the program reused the number: not ours now */
		return;
	}
	if (!linger_step(&s->l, now, &wait)) {
		slot_end(i, true);
		return;
	}
	if (!wait.readable && s->watched) {
		/* A read side shut for real polls readable (and hung up) for
		 * good: watch it on the timer only. */
		raw_syscall(SYS_epoll_ctl, LOAD(&epfd), EPOLL_CTL_DEL, s->l.fd, NULL);
		s->watched = false;
	}
	schedule(i, now + (uint64_t)wait.timeout_ms);
}

/* ---- the cap: the worst linger makes room for a newer close ------------ */

/* Whether slot a is a better one to end than slot b. A peer that has all
 * our output acknowledged and still sends is the hostile kind (a flood, a
 * client that never stops): ending it costs it at most a reset after it
 * has its reply. Among those, the one that has discarded most; otherwise
 * (every peer still waits for output), the one lingering longest, as
 * nginx drops its oldest reusable connections under pressure. */
static bool worse(const struct slot *a, const struct slot *b)
{
	bool a_has_all = !a->l.output_waits, b_has_all = !b->l.output_waits;

	if (a_has_all != b_has_all)
		return a_has_all;
	if (a_has_all && a->l.discarded != b->l.discarded)
		return a->l.discarded > b->l.discarded;
	return a->l.start_ms < b->l.start_ms;
}

/* The slot to end first, other than `spare` (0: none may be spared); 0
 * when there is none. */
static uint32_t worst_slot(uint32_t spare)
{
	uint32_t best = 0;

	for (uint32_t i = 1; i <= nslots; i++) {
		const struct slot *s = &slots[i - 1];
		if (s->used && i != spare && (!best || worse(s, &slots[best - 1])))
			best = i;
	}
	return best;
}

/* Ends slot i with the no-wait fallback (its FIN is out; what arrived is
 * discarded), its end counted as `why` (cut_short). False when its number
 * had already changed hands (nothing of ours was closed). */
static bool end_early(uint32_t i, enum linger_end why)
{
	struct slot *s = &slots[i - 1];
	bool ours = still_ours(s->l.fd, s->cookie, &s->yields);

	s->l.end = why;
	slot_end(i, ours);
	return ours;
}

/* SAFECLOSE_MAX_LINGER is a soft cap: the hand-off from close() cannot take
 * the thread's lock, so it always queues (within the descriptor budget,
 * selffd_base()); here, having adopted slot i, the thread ends the worst
 * others until no more than the cap linger. */
static void keep_under_cap(uint32_t i)
{
	uint32_t victim;

	while (held > (uint32_t)sc_cfg.max_linger && (victim = worst_slot(i)))
		end_early(victim, LINGER_MADE_ROOM);
	if (held > LOAD(&held_peak))
		STORE(&held_peak, held);
}

/* Over half of the cap is in use: the idle bound is the shorter one, and
 * every linger takes it up at once (a step now), not at its next wake-up,
 * which for a silent peer may be SAFECLOSE_IDLE_MS away. Once per
 * crossing; O(slots). */
static void shorten_idle_under_load(uint64_t now)
{
	bool loaded = idle_bound_now() < (uint64_t)sc_cfg.idle_ms;

	if (loaded && !under_load)
		for (uint32_t i = 1; i <= nslots; i++)
			if (slots[i - 1].used)
				schedule(i, now);
	under_load = loaded;
}

/* Whether h's number still names its socket: provably so without asking
 * when no dup2/dup3 came near it since the hand-off (see `replaces`);
 * otherwise the socket is asked its cookie. A dup2 onto the very number
 * the hand-off's dup was taking, before it was marked the shim's, counts
 * in no yield: the count of yields alone cannot say. */
static bool handoff_ours(const struct handoff *h)
{
	if (h->quiet && __atomic_load_n(&replaces, __ATOMIC_SEQ_CST) == h->replaces)
		return true;
	return probe_cookie(h->fd) == h->cookie;
}

static void adopt(const struct handoff *h, uint64_t now)
{
	/* Read before the check: a yield after it is then seen by the slot. */
	uint32_t yields = LOAD(&numbers_yielded);

	if (!handoff_ours(h)) {
		/* The program took the number over (dup2) before the thread got
		 * here: the socket went with it, and the file there is not ours. */
		stats_count_cut_short((enum sc_arm)h->arm);
		ADD(&n_released, 1);
		ADD(&lingering, -1);
		return;
	}
	uint32_t i = slot_alloc();

	if (!i) {
		linger_release_now(h->fd);
		selffd_close(h->fd);
		stats_count_cut_short((enum sc_arm)h->arm); /* counted lingered at the hand-off */
		ADD(&n_fallbacks, 1);
		ADD(&n_released, 1);
		ADD(&lingering, -1);
		return;
	}
	struct slot *s = &slots[i - 1];
	s->cookie = h->cookie;
	s->yields = yields;
	s->watched = false;
	linger_resume(&s->l, h->fd, (uint64_t)sc_cfg.linger_ms, idle_bound_now(),
		      h->start_ms); /* hand_off() sent the FIN */
	s->l.arm = (uint8_t)h->arm;
	s->l.read_open = h->read_open;
	/* A first step at once: often the peer has already finished (it read
	 * the reply and closed), and the socket is released without ever being
	 * watched. Otherwise input and the peer's FIN wake the slot. */
	struct linger_wait wait;
	if (!linger_step(&s->l, now, &wait)) {
		slot_end(i, true);
		return;
	}
	/* Edge-triggered: a step discards everything queued, and a readiness
	 * that lasts (the peer's FIN, a read side shut) wakes the thread once,
	 * never in a loop. */
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.u64 = tag(i) };
	s->watched = wait.readable &&
		     raw_syscall(SYS_epoll_ctl, LOAD(&epfd), EPOLL_CTL_ADD, h->fd, &ev) == 0;
	schedule(i, now + (uint64_t)wait.timeout_ms);
	keep_under_cap(i);
	shorten_idle_under_load(now);
}

/* The pipe's records: wake-ups (nothing to do: the ring and readshut_step()
 * come next), lingers the ring had no room for, and a pause's quit. True
 * when a quit came (reaper_pause): the thread leaves its loop after this
 * batch; what follows in the pipe and the ring waits for the restart.
 * Every record is written whole (less than PIPE_BUF), so a short read has
 * emptied the pipe: no further read to be told EAGAIN. (Level-triggered:
 * what a write adds later wakes the thread again.) */
static bool take_pipe(uint64_t now)
{
	struct handoff batch[BATCH];
	ssize_t n;
	bool quit = false;

	do {
		n = raw_syscall(SYS_read, LOAD(&pipe_r), batch, sizeof batch);
		for (ssize_t k = 0; k < n / (ssize_t)sizeof *batch; k++) {
			if (batch[k].kind == HAND_QUIT)
				quit = true;
			else if (batch[k].kind == HAND_LINGER)
				adopt(&batch[k], now);
		}
	} while (!quit && n == (ssize_t)sizeof batch);
	return quit;
}

/* Hand-offs adopted per wake-up at most: a flood of closes does not keep
 * the thread from its timers; the rest are taken the next round, at once
 * (sleep_timeout() sees them). */
#define RING_BATCH (4 * BATCH)

/* The hand-offs published in the ring, adopted; how many. */
static int take_ring(uint64_t now)
{
	struct handoff h;
	int n = 0;

	while (n < RING_BATCH && ring_pop(&ring, &h, sizeof h)) {
		adopt(&h, now);
		n++;
	}
	return n;
}

static void run_due_timers(uint64_t now)
{
	while (nheap && heap[0].at <= now) {
		struct timer t = heap_pop();
		struct slot *s = &slots[t.slot - 1];

		if (!s->used || s->gen != t.gen || s->scheduled != t.at)
			continue; /* superseded */
		s->scheduled = 0;
		slot_step(t.slot, now);
	}
}

static int next_timeout(void)
{
	int tick = readshut_waiting() ? LINGER_TICK_MS : -1;

	if (!nheap)
		return tick;
	uint64_t now = sc_now_ms();
	if (heap[0].at <= now)
		return 0;
	int due = heap[0].at - now > INT_MAX ? INT_MAX : (int)(heap[0].at - now);
	return tick >= 0 && tick < due ? tick : due;
}

/* The wait before the next round: the thread raises the flag, then looks
 * at the ring once more. A hand-off publishes its record, then takes the
 * flag down (wake_thread()). Every change of `sleeping` is an exchange, so
 * they are totally ordered, each reading the one before: if the hand-off's
 * comes first, the thread's exchange synchronizes with it and this look
 * sees the record; if the thread's comes first, the hand-off's reads 1 (or
 * a later exchange already took it down, and that one wrote) and writes
 * the wake-up. No wake-up is lost, and none is written while the thread is
 * busy. (Exchanges, not fences: TSan does not take fences.) 0 when there
 * is work at once. */
static int sleep_timeout(void)
{
	int timeout = next_timeout();

	if (timeout == 0)
		return 0;
	__atomic_exchange_n(&sleeping, 1, __ATOMIC_SEQ_CST);
	if (ring_ready(&ring)) {
		__atomic_exchange_n(&sleeping, 0, __ATOMIC_SEQ_CST);
		return 0;
	}
	return timeout;
}

/* The wait that gathers (see reaper_main): at most GATHER_MS, the flag
 * down, so that hand-offs meanwhile write nothing. */
#define GATHER_MS 1

static int gather_timeout(void)
{
	int timeout = next_timeout();

	return timeout >= 0 && timeout < GATHER_MS ? timeout : GATHER_MS;
}

static void *reaper_main(void *unused)
{
	struct epoll_event events[BATCH];
	bool quit = false, gather = false;

	(void)unused;
	STORE(&thread_tid, (int)raw_syscall(SYS_gettid));
	while (!quit) {
		int n = epoll_wait(LOAD(&epfd), events, BATCH,
				   gather ? gather_timeout() : sleep_timeout());
		/* Awake: hand-offs from now on need not write. (One that took the
		 * flag meanwhile wrote a wake-up: read at the next round.) */
		__atomic_exchange_n(&sleeping, 0, __ATOMIC_SEQ_CST);
		pthread_mutex_lock(&lock);
		uint64_t now = sc_now_ms();
		int stepped = 0;
		for (int k = 0; k < n; k++) {
			uint64_t data = events[k].data.u64;
			uint32_t i = (uint32_t)data;

			if (data == PIPE_TAG) {
				quit |= take_pipe(now);
			} else if (i && i <= nslots && slots[i - 1].used &&
				   slots[i - 1].gen == (uint32_t)(data >> 32)) {
				slot_step(i, now);
				stepped++;
			}
		}
		int took = take_ring(now);
		run_due_timers(now);
		readshut_step(now);
		pthread_mutex_unlock(&lock);
		statsfile_due();
		/* Gather what comes in the next moment into one round: the flag
		 * is down meanwhile, so those hand-offs write nothing, and a peer
		 * that closes within it is released at its first step, never
		 * watched (no epoll ADD/DEL). After lingering sockets' events, a
		 * sleep, so that their events are gathered too (at most a round
		 * a moment); after hand-offs alone, the next wait itself is the
		 * gathering one (bounded to the moment, not to be woken by a
		 * hand-off): one system call a round, not a sleep and a wait. */
		gather = false;
		if (quit)
			break;
		if (took == RING_BATCH)
			continue; /* more in the ring: at once */
		if (stepped > 0)
			raw_sleep_ms(GATHER_MS);
		else if (n > 0 || took > 0)
			gather = true;
	}
	return NULL;
}

/* ---- no thread: the queue drained in place ------------------------------ */

#define DRAIN_BATCH 16

/* One queued record, taken up in place: a linger to run (true), or done
 * with at once (false): a number the program took over, or a wake-up. */
static bool drain_take(const struct handoff *h, struct sc_linger *l)
{
	if (h->kind != HAND_LINGER)
		return false; /* a wake-up (or a pause's quit): nothing held */
	bool ours = handoff_ours(h);

	if (ours) {
		linger_resume(l, h->fd, (uint64_t)sc_cfg.linger_ms, (uint64_t)sc_cfg.idle_ms,
			      h->start_ms);
		l->arm = (uint8_t)h->arm;
		l->read_open = h->read_open;
		return true;
	}
	stats_count_cut_short((enum sc_arm)h->arm);
	ADD(&n_released, 1); /* the program took the number over: not ours */
	ADD(&lingering, -1);
	return false;
}

static void drain_end(struct sc_linger *l)
{
	linger_finish(l);
	linger_account(l, sc_now_ms());
	SC_LOG(SC_LOG_DEBUG, "fd %d lingered %llu ms in place (no thread), discarded %llu bytes, end: %s",
	       l->fd, (unsigned long long)(sc_now_ms() - l->start_ms),
	       (unsigned long long)l->discarded, linger_end_name(l->end));
	selffd_close(l->fd);
	ADD(&n_released, 1);
	ADD(&lingering, -1);
}

/* Steps a batch of lingers together until each ends or until_ms passes. */
static void drain_batch(struct sc_linger *ls, int live, uint64_t until_ms)
{
	while (live) {
		struct pollfd p[DRAIN_BATCH];
		uint64_t now = sc_now_ms();
		int timeout = until_ms > now ? (int)(until_ms - now) : 0;

		for (int i = 0; i < live; i++) {
			struct linger_wait wait;
			if (now >= until_ms || !linger_step(&ls[i], now, &wait)) {
				drain_end(&ls[i]);
				ls[i--] = ls[--live];
				continue;
			}
			/* A socket without POLLIN to wait on (read side shut)
			 * polls hung up at once: on the timer only. */
			p[i] = (struct pollfd){ .fd = wait.readable ? ls[i].fd : -1, .events = POLLIN };
			if (wait.timeout_ms < timeout)
				timeout = wait.timeout_ms;
		}
		if (live)
			raw_poll(p, (unsigned long)live, timeout);
	}
}

/* The ring's part of drain_in_place(). A hand-off this very thread was
 * interrupted in, between its claim of a cell and its publish, hides what
 * follows it in the ring: those sockets are closed with the process, as a
 * hand-off not yet queued would be. */
static void drain_ring(uint64_t until_ms)
{
	struct sc_linger ls[DRAIN_BATCH];
	struct handoff h;

	if (!LOAD(&ring.cells))
		return;
	for (;;) {
		int live = 0, taken = 0;
		while (taken < DRAIN_BATCH && ring_pop(&ring, &h, sizeof h)) {
			taken++;
			live += drain_take(&h, &ls[live]);
		}
		if (!taken)
			return;
		drain_batch(ls, live, until_ms);
	}
}

/* The pipe's part: the lingers the ring had no room for. */
static void drain_pipe(uint64_t until_ms)
{
	struct handoff queued[DRAIN_BATCH];
	struct sc_linger ls[DRAIN_BATCH];
	long n;

	if (LOAD(&queue_state) != QUEUE_READY)
		return;
	while ((n = raw_syscall(SYS_read, LOAD(&pipe_r), queued, sizeof queued)) > 0) {
		int live = 0;
		for (long k = 0; k < n / (long)sizeof *queued; k++)
			live += drain_take(&queued[k], &ls[live]);
		drain_batch(ls, live, until_ms);
	}
}

/* No thread runs: every queued socket lingers here, a batch at a time, until
 * it ends or until_ms. Async-signal-safe (the batch is on the stack; the
 * ring takes no lock, and several callers at once each take their own
 * records, as they do of the pipe). */
static void drain_in_place(uint64_t until_ms)
{
	drain_ring(until_ms);
	drain_pipe(until_ms);
}

/* ---- descriptor pressure: numbers given back to the program ------------- */

/* Ends one linger, the worst first (worse()), with the no-wait fallback.
 * Under `lock`. 1: a number was freed; 0: a linger ended
 * whose number the program had already taken over; -1: none left. */
static int end_one_linger(void)
{
	uint32_t i = worst_slot(0);
	struct handoff h;
	struct sc_linger l;

	if (i)
		return end_early(i, LINGER_NO_ROOM);
	/* Queued and not yet taken up (the thread takes the queue under
	 * `lock`, which is held here): the ring first, then the pipe, whose
	 * quit message (a pause's) goes back. */
	if (!LOAD(&ring.cells) || !ring_pop(&ring, &h, sizeof h)) {
		if (LOAD(&queue_state) != QUEUE_READY ||
		    raw_syscall(SYS_read, LOAD(&pipe_r), &h, sizeof h) != (long)sizeof h)
			return -1;
		if (h.kind == HAND_QUIT) {
			raw_syscall(SYS_write, LOAD(&pipe_w), &h, sizeof h);
			return -1;
		}
	}
	bool ours = drain_take(&h, &l); /* true: ours, and to end now */
	if (ours) {
		l.end = LINGER_NO_ROOM;
		drain_end(&l);
	}
	return ours;
}

/* pthread_mutex_trylock, a few times: a signal handler may have interrupted
 * this very thread while it held the lock (fork, dup2 making way). */
static bool lock_briefly(void)
{
	for (int i = 0; i < 20; i++) {
		if (pthread_mutex_trylock(&lock) == 0)
			return true;
		raw_sleep_ms(1);
	}
	return false;
}

/* The queue and the epoll set, closed; the caller holds the state. */
static int close_fixed(void)
{
	int expected = QUEUE_READY, freed = 0;

	if (__atomic_compare_exchange_n(&queue_state, &expected, QUEUE_MAKING, false,
					__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
		/* Hand-offs already past their look finish their write first. */
		for (int i = 0; i < 100 && __atomic_load_n(&queue_users, __ATOMIC_SEQ_CST); i++)
			raw_sleep_ms(1);
		if (__atomic_load_n(&queue_users, __ATOMIC_SEQ_CST) || LOAD(&lingering)) {
			STORE(&queue_state, QUEUE_READY);
			return 0;
		}
		selffd_close(LOAD(&pipe_r));
		selffd_close(LOAD(&pipe_w));
		STORE(&pipe_r, -1);
		STORE(&pipe_w, -1);
		STORE(&queue_state, QUEUE_NONE);
		freed += 2;
	}
	if (epfd >= 0) {
		selffd_close(epfd);
		epfd = -1;
		freed++;
	}
	return freed;
}

/* No linger left: the thread's own descriptors (queue and epoll set) go
 * back too; the thread is paused for good, and queue, set and thread are
 * made again when a close next hands off. Returns the numbers freed. */
static int give_back_fixed(void)
{
	int before = STOPPED;

	if (LOAD(&lingering) != 0 || (LOAD(&state) == RUNNING && !reaper_pause()))
		return 0;
	/* Held in STARTING meanwhile, so that no safe point starts the thread
	 * on the descriptors being closed. */
	if (!__atomic_compare_exchange_n(&state, &before, STARTING, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE) &&
	    (before != FAILED ||
	     !__atomic_compare_exchange_n(&state, &before, STARTING, false, __ATOMIC_ACQ_REL,
					  __ATOMIC_ACQUIRE)))
		return 0;
	int freed = close_fixed();
	STORE(&state, before);
	return freed;
}

int reaper_make_room(int need)
{
	int freed = 0, saved_errno = errno;

	if (!lock_briefly())
		return 0;
	for (int ended; freed < need && (ended = end_one_linger()) >= 0;)
		freed += ended;
	pthread_mutex_unlock(&lock);
	if (freed < need)
		freed += give_back_fixed();
	errno = saved_errno;
	return freed;
}

/* ---- starting, handing off, fork, exit ---------------------------------- */

/* The ring's cells: zeroed anonymous memory (an empty ring), mapped once
 * and kept while the process lives (a child maps its own). Without them
 * (RLIMIT_DATA), every linger goes through the pipe. */
static void ring_mapped(void)
{
	if (LOAD(&ring.cells))
		return;
	struct ring_cell *cells = fdspace_map(RING_CELLS, sizeof *cells, MAP_PRIVATE);

	if (cells)
		STORE(&ring.cells, cells);
}

/* The hand-off queue: the ring, and the wake-up pipe (non-blocking, at two
 * numbers of the shim's), made on first use, from close() itself (mmap,
 * pipe2 and fcntl are async-signal-safe). False when it is not there (it
 * could not be made, or another thread is making it right now: that
 * hand-off falls back). */
static bool queue_ready(void)
{
	int expected = QUEUE_NONE, p[2];

	if (LOAD(&queue_state) == QUEUE_READY)
		return true;
	if (!__atomic_compare_exchange_n(&queue_state, &expected, QUEUE_MAKING, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return false;
	ring_mapped();
	bool made = raw_syscall(SYS_pipe2, p, O_CLOEXEC | O_NONBLOCK) == 0;
	if (made) {
		/* Room for a burst of hand-offs beyond the ring (64 KiB holds
		 * only 2730 records); the kernel caps this at fs.pipe-max-size,
		 * and a full pipe means fallback. */
		raw_syscall(SYS_fcntl, p[1], F_SETPIPE_SZ, 1 << 20);
		STORE(&pipe_r, selffd_move_high(p[0], true));
		STORE(&pipe_w, selffd_move_high(p[1], true));
		made = LOAD(&pipe_r) >= 0 && LOAD(&pipe_w) >= 0;
		if (!made) {
			if (LOAD(&pipe_r) >= 0)
				selffd_close(LOAD(&pipe_r));
			if (LOAD(&pipe_w) >= 0)
				selffd_close(LOAD(&pipe_w));
			STORE(&pipe_r, -1);
			STORE(&pipe_w, -1);
		}
	}
	STORE(&queue_state, made ? QUEUE_READY : QUEUE_NONE);
	return made;
}

/* The thread's epoll set, watching the queue; made once, and kept while
 * the thread is paused (it holds the lingering sockets' registrations). */
static bool epoll_ready(void)
{
	if (epfd >= 0)
		return true;
	epfd = selffd_move_high((int)raw_syscall(SYS_epoll_create1, EPOLL_CLOEXEC), true);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = PIPE_TAG };
	if (epfd >= 0 && raw_syscall(SYS_epoll_ctl, epfd, EPOLL_CTL_ADD, pipe_r, &ev) == 0)
		return true;
	if (epfd >= 0)
		selffd_close(epfd);
	epfd = -1;
	return false;
}

/* 1: started; 0: no descriptor for the queue or the epoll set (try again
 * at a later safe point); -1: no thread can be made. */
static int start_thread(void)
{
	if (!queue_ready() || !epoll_ready())
		return 0;

	/* The thread takes none of the program's signals. Joinable, so that
	 * reaper_pause() can know it is gone. */
	sigset_t all, old;
	pthread_attr_t attr;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	int rc = pthread_create(&thread, &attr, reaper_main, NULL);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc == 0 ? 1 : -1;
}

static void start(void)
{
	int expected = STOPPED;

	if (LOAD(&state) != STOPPED ||
	    !__atomic_compare_exchange_n(&state, &expected, STARTING, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return;
	int saved_errno = errno;
	STORE(&thread_wanted, 0); /* what is queued from now on, the thread reads */
	int started = start_thread();
	if (started < 0)
		sc_log_write(SC_LOG_ERROR, __func__,
			     "cannot start the background thread; lingering closes will only half-close and drain");
	if (started <= 0)
		drain_in_place(sc_now_ms()); /* what was queued: released now */
	STORE(&state, started > 0 ? RUNNING : started == 0 ? STOPPED : FAILED);
	errno = saved_errno;
}

void reaper_safe_point(void)
{
	/* A vfork or clone child must not start a thread in its parent's
	 * memory: only the followed process does (one getpid, and only when
	 * work is queued). */
	if (LOAD(&thread_wanted) && sc_self())
		start();
	statsfile_due();
}

/* pthread_join returns once the thread's tid is cleared, a moment before
 * the kernel takes it out of the thread group: wait for that (bounded). */
static void wait_task_gone(int tid)
{
	int pid = (int)raw_syscall(SYS_getpid);

	for (int i = 0; i < 1000 && raw_syscall(SYS_tgkill, pid, tid, 0) == 0; i++)
		raw_sleep_ms(1);
}

bool reaper_pause(void)
{
	int expected = RUNNING;

	if (!__atomic_compare_exchange_n(&state, &expected, STARTING, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return false;
	int saved_errno = errno, cancel;
	struct handoff quit = { .fd = -1, .kind = HAND_QUIT };
	bool sent = raw_syscall(SYS_write, LOAD(&pipe_w), &quit, sizeof quit) == (long)sizeof quit;
	if (sent) {
		/* pthread_join is a cancellation point: not in the shim's steps. */
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
		pthread_join(thread, NULL);
		pthread_setcancelstate(cancel, NULL);
		wait_task_gone(LOAD(&thread_tid));
	}
	STORE(&state, sent ? STOPPED : RUNNING);
	errno = saved_errno;
	return sent;
}

void reaper_resume(void)
{
	start();
}

/* Inside a signal handler, the handler's own signal is blocked (unless it
 * was installed with SA_NODEFER and an empty mask): a thread whose mask is
 * empty is not running one, and may start the background thread itself,
 * as a safe point would. One system call, only when no thread runs. */
static bool surely_not_in_a_handler(void)
{
	uint64_t blocked = ~0ull;

	return raw_syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &blocked, sizeof blocked) == 0 &&
	       blocked == 0;
}

/* Work was queued while no thread runs: start it where that is safe, or
 * leave it to the next safe point. */
static void want_thread(void)
{
	if (LOAD(&state) == RUNNING)
		return;
	STORE(&thread_wanted, 1);
	if (surely_not_in_a_handler())
		reaper_safe_point();
}

/* One record into the pipe (made on first use); false when it cannot. */
static bool queue_write(const struct handoff *h)
{
	bool written = false;

	/* Counted before the look at the queue, so that give_back_fixed()
	 * never closes it under a write (seq_cst both sides). */
	__atomic_add_fetch(&queue_users, 1, __ATOMIC_SEQ_CST);
	if (LOAD(&state) != FAILED && queue_ready())
		written = raw_syscall(SYS_write, LOAD(&pipe_w), h, sizeof *h) == (long)sizeof *h;
	__atomic_sub_fetch(&queue_users, 1, __ATOMIC_SEQ_CST);
	return written;
}

/* After a publish: the thread is woken only if it said it would sleep
 * (sleep_timeout() has the argument). Taking the flag down makes this the
 * one hand-off that writes. A full pipe means unread wake-ups: the thread
 * wakes anyway. */
static void wake_thread(void)
{
	struct handoff wake = { .fd = -1, .kind = HAND_WAKE };

	if (__atomic_exchange_n(&sleeping, 0, __ATOMIC_SEQ_CST))
		raw_syscall(SYS_write, LOAD(&pipe_w), &wake, sizeof wake);
}

/* A linger into the queue (made on first use); false when it cannot. The
 * ring; when it is full (RING_CELLS queued that no thread has taken up: a
 * burst while none runs) or unmapped, the pipe record path as before the
 * ring, which wakes the thread by itself; and when that is full too, the
 * caller's fallback (no linger, counted in n_fallbacks). */
static bool queue_linger(const struct handoff *h)
{
	bool queued = false;

	/* Counted as queue_write() does: the wake-up's write is under it. */
	__atomic_add_fetch(&queue_users, 1, __ATOMIC_SEQ_CST);
	if (LOAD(&state) != FAILED && queue_ready()) {
		if (LOAD(&ring.cells) && ring_push(&ring, h, sizeof *h)) {
			queued = true;
			wake_thread();
		} else {
			queued = raw_syscall(SYS_write, LOAD(&pipe_w), h, sizeof *h) ==
				 (long)sizeof *h;
		}
	}
	__atomic_sub_fetch(&queue_users, 1, __ATOMIC_SEQ_CST);
	return queued;
}

bool reaper_hand_off(int fd, uint64_t cookie, unsigned arm, bool read_open)
{
	int saved_errno = errno, quota;
	bool handed = false;
	int base = selffd_base(&quota);

	/* `lingering` counts what is queued as well as what lingers: the
	 * descriptor budget is a hard bound. The cap (SAFECLOSE_MAX_LINGER)
	 * is the thread's to keep (keep_under_cap); 0 means none lingers. */
	/* The caller (release.c) has already taken fd out of every epoll set:
	 * the rule for a socket kept alive lives there. */
	if (sc_cfg.max_linger > 0 && ADD(&lingering, 1) <= quota) {
		/* R before the duplicate is made, Y after: `replaces` says why. */
		uint32_t before = __atomic_load_n(&replaces, __ATOMIC_SEQ_CST);
		int keep = (int)raw_syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, base);
		if (keep >= 0) {
			bool quiet = __atomic_load_n(&yielding, __ATOMIC_SEQ_CST) == 0;
			struct handoff h = { keep, HAND_LINGER, (uint16_t)arm, cookie,
					     sc_now_ms(), before, quiet, read_open };
			/* The FIN goes out now, as the kernel's own close would send
			 * it, not when the thread next wakes. */
			raw_syscall(SYS_shutdown, keep, SHUT_WR);
			selffd_mark(keep);
			handed = queue_linger(&h);
			if (!handed)
				selffd_close(keep);
		}
	}
	if (handed) {
		ADD(&n_handed, 1);
		want_thread();
	} else {
		ADD(&n_fallbacks, 1);
		if (sc_cfg.max_linger > 0)
			ADD(&lingering, -1);
	}
	errno = saved_errno;
	return handed;
}

bool reaper_wake(void)
{
	struct handoff h = { .fd = -1, .kind = HAND_WAKE };
	int saved_errno = errno;
	bool woken = queue_write(&h);

	if (woken)
		want_thread();
	errno = saved_errno;
	return woken && LOAD(&state) == RUNNING;
}

void reaper_wait_at_exit(void)
{
	reaper_wait(sc_now_ms() + (uint64_t)sc_cfg.exit_wait_ms);
}

void reaper_log_stats(void)
{
	SC_LOG(SC_LOG_DEBUG, "exit: %llu handed off, %llu released, %llu fallbacks, %d lingering, %u at most at once",
	       (unsigned long long)LOAD(&n_handed), (unsigned long long)LOAD(&n_released),
	       (unsigned long long)LOAD(&n_fallbacks), LOAD(&lingering), LOAD(&held_peak));
}

void reaper_wait(uint64_t until_ms)
{
	if (LOAD(&state) != RUNNING)
		drain_in_place(until_ms);
	/* Polls the count in short sleeps rather than waiting on a condition
	 * variable, so that _exit() may call it from a signal handler. */
	while (LOAD(&state) == RUNNING && LOAD(&lingering) > 0 && sc_now_ms() < until_ms) {
		raw_sleep_ms(5);
	}
}

static void before_fork(void)
{
	pthread_mutex_lock(&lock);
}

static void after_fork_parent(void)
{
	pthread_mutex_unlock(&lock);
}

/* The child has no thread: it lets go of every descriptor of the shim's (the
 * parent still holds and finishes those connections) and starts afresh. */
static void after_fork_child(void)
{
	for (int fd = 0; fd <= selffd_max(); fd++)
		if (selffd_owns(fd) && fd != own_books_fd())
			selffd_close(fd);
	free(slots);
	free(heap);
	slots = NULL;
	heap = NULL;
	nslots = free_head = nheap = heap_cap = held = held_peak = 0;
	under_load = false;
	pipe_r = pipe_w = epfd = -1;
	/* The parent's records, copied with its memory, name its sockets. */
	if (ring.cells)
		munmap(ring.cells, ring_bytes(RING_CELLS));
	ring = (struct ring){ .mask = RING_CELLS - 1 };
	sleeping = 0;
	STORE(&lingering, 0);
	STORE(&thread_wanted, 0);
	STORE(&queue_state, QUEUE_NONE);
	STORE(&state, STOPPED);
	pthread_mutex_unlock(&lock);
}

void reaper_init(void)
{
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}
