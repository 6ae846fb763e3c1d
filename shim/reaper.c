/* reaper.c: owns lingering in the background. One thread, started lazily,
 * holds every socket whose close was handed off under a descriptor of the
 * shim's own (high, close-on-exec), steps the linger machine on epoll events
 * and on timers, and closes each socket at the machine's end. It also gives
 * the read-side emulation (readshut.c) its ticks while real SHUT_RDs wait.
 *
 * The hand-off from close() is async-signal-safe: a duplicate descriptor and
 * one write of a fixed-size record to a non-blocking pipe; no lock is taken.
 * The thread's tables are touched only by the thread, under `lock`, which
 * exists so that fork() sees them consistent; the child keeps none of the
 * shim's descriptors and starts its own thread when it needs one. */
#include "rawsys.h"
#include "reaper.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "config.h"
#include "epoll_books.h"
#include "fdspace.h"
#include "linger.h"
#include "log.h"
#include "probe.h"
#include "ownership.h"
#include "readshut.h"
#include "real.h"
#include "selffd.h"
#include "shim.h"

#define PIPE_TAG UINT64_MAX
#define BATCH 64

enum handoff_kind { HAND_LINGER, HAND_WAKE };

struct handoff {
	int32_t fd;
	uint32_t kind;
	uint64_t cookie;
	uint64_t start_ms;
};

struct slot {
	struct sc_linger l;
	uint64_t cookie;     /* the socket's identity, to notice a number taken over */
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

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int state = STOPPED;
static int pipe_r = -1, pipe_w = -1, epfd = -1;
static int lingering;
static uint64_t n_handed, n_released, n_fallbacks;

/* The thread's own tables. */
static struct slot *slots;
static uint32_t nslots, free_head;
static struct timer *heap;
static uint32_t nheap, heap_cap;

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_ACQ_REL)

bool reaper_yield_number(int fd)
{
	int *mine[] = { &pipe_r, &pipe_w, &epfd };

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

void reaper_number_yielded(void)
{
	pthread_mutex_unlock(&lock);
}

bool reaper_running(void)
{
	return LOAD(&state) == RUNNING;
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
		SC_LOG(SC_LOG_DEBUG, "fd %d lingered after %llu ms in the background, discarded %llu bytes, end: %s",
		       s->l.fd, (unsigned long long)(sc_now_ms() - s->l.start_ms),
		       (unsigned long long)s->l.discarded, linger_end_name(s->l.end));
		selffd_close(s->l.fd);
	}
	/* Otherwise the number changed hands (dup2 onto it made way, and
	 * unmarked it); it may be the shim's again by now, for another socket. */
	s->used = false;
	s->gen++;
	s->next_free = free_head;
	free_head = i;
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

static void slot_step(uint32_t i, uint64_t now)
{
	struct slot *s = &slots[i - 1];
	struct linger_wait wait;

	if (probe_cookie(s->l.fd) != s->cookie) {
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

static void adopt(const struct handoff *h, uint64_t now)
{
	if (h->kind == HAND_WAKE)
		return; /* only to wake the thread: readshut_step() comes next */
	if (probe_cookie(h->fd) != h->cookie) {
		/* The program took the number over (dup2) before the thread got
		 * here: the socket went with it, and the file there is not ours. */
		ADD(&n_released, 1);
		ADD(&lingering, -1);
		return;
	}
	uint32_t i = slot_alloc();

	if (!i) {
		linger_release_now(h->fd);
		selffd_close(h->fd);
		ADD(&n_fallbacks, 1);
		ADD(&n_released, 1);
		ADD(&lingering, -1);
		return;
	}
	struct slot *s = &slots[i - 1];
	s->cookie = h->cookie;
	s->watched = false;
	linger_resume(&s->l, h->fd, (uint64_t)sc_cfg.linger_ms, (uint64_t)sc_cfg.idle_ms,
		      h->start_ms); /* hand_off() sent the FIN */
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
}

static void take_handoffs(uint64_t now)
{
	struct handoff batch[BATCH];
	ssize_t n;

	while ((n = real.read(LOAD(&pipe_r), batch, sizeof batch)) > 0)
		for (ssize_t k = 0; k < n / (ssize_t)sizeof *batch; k++)
			adopt(&batch[k], now);
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

static void *reaper_main(void *unused)
{
	struct epoll_event events[BATCH];

	(void)unused;
	for (;;) {
		int n = epoll_wait(LOAD(&epfd), events, BATCH, next_timeout());
		pthread_mutex_lock(&lock);
		uint64_t now = sc_now_ms();
		for (int k = 0; k < n; k++) {
			uint64_t data = events[k].data.u64;
			uint32_t i = (uint32_t)data;

			if (data == PIPE_TAG)
				take_handoffs(now);
			else if (i && i <= nslots && slots[i - 1].used &&
				 slots[i - 1].gen == (uint32_t)(data >> 32))
				slot_step(i, now);
		}
		run_due_timers(now);
		readshut_step(now);
		pthread_mutex_unlock(&lock);
		if (n > 0) {
			/* Gather what comes in the next moment into one wake-up. */
			struct timespec gather = { 0, 1000 * 1000 };
			nanosleep(&gather, NULL);
		}
	}
	return NULL;
}

/* ---- starting, handing off, fork, exit ---------------------------------- */

static bool start_thread(void)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return false;
	/* Room for a burst of hand-offs (64 KiB holds only 2730 of them); the
	 * kernel caps this at fs.pipe-max-size, and a full pipe means fallback. */
	real.fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	pipe_r = selffd_move_high(p[0], true);
	pipe_w = selffd_move_high(p[1], true);
	epfd = selffd_move_high(epoll_create1(EPOLL_CLOEXEC), true);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = PIPE_TAG };
	if (pipe_r < 0 || pipe_w < 0 || epfd < 0 ||
	    raw_syscall(SYS_epoll_ctl, epfd, EPOLL_CTL_ADD, pipe_r, &ev) < 0)
		goto fail;

	/* The thread takes none of the program's signals. */
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t thread;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	int rc = pthread_create(&thread, &attr, reaper_main, NULL);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		return true;
fail:
	if (pipe_r >= 0)
		selffd_close(pipe_r);
	if (pipe_w >= 0)
		selffd_close(pipe_w);
	if (epfd >= 0)
		selffd_close(epfd);
	pipe_r = pipe_w = epfd = -1;
	return false;
}

void reaper_start(void)
{
	int expected = STOPPED;

	if (sc_cfg.where != SC_LINGER_ASYNC || LOAD(&state) != STOPPED ||
	    !__atomic_compare_exchange_n(&state, &expected, STARTING, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return;
	int saved_errno = errno;
	bool ok = start_thread();
	if (!ok)
		sc_log_write(SC_LOG_ERROR, __func__,
			     "cannot start the background thread; lingering closes will only half-close and drain");
	STORE(&state, ok ? RUNNING : FAILED);
	errno = saved_errno;
}

bool reaper_wake(void)
{
	struct handoff h = { -1, HAND_WAKE, 0, 0 };
	int saved_errno = errno;

	if (LOAD(&state) == STOPPED)
		reaper_start();
	bool woken = LOAD(&state) == RUNNING &&
		     write(LOAD(&pipe_w), &h, sizeof h) == (ssize_t)sizeof h;
	errno = saved_errno;
	return woken;
}

bool reaper_hand_off(int fd, uint64_t cookie)
{
	int saved_errno = errno, quota;
	bool handed = false;

	if (LOAD(&state) == STOPPED)
		reaper_start();
	if (LOAD(&state) != RUNNING) {
		ADD(&n_fallbacks, 1);
		return false;
	}
	int base = selffd_base(&quota);
	if (ADD(&lingering, 1) <= quota && epb_remove_everywhere(fd)) {
		int keep = real.fcntl(fd, F_DUPFD_CLOEXEC, base);
		if (keep >= 0) {
			struct handoff h = { keep, HAND_LINGER, cookie, sc_now_ms() };
			/* The FIN goes out now, as the kernel's own close would send
			 * it, not when the thread next wakes. */
			raw_syscall(SYS_shutdown, keep, SHUT_WR);
			selffd_mark(keep);
			handed = write(LOAD(&pipe_w), &h, sizeof h) == (ssize_t)sizeof h;
			if (!handed)
				selffd_close(keep);
		}
	}
	if (handed) {
		ADD(&n_handed, 1);
	} else {
		ADD(&n_fallbacks, 1);
		ADD(&lingering, -1);
	}
	errno = saved_errno;
	return handed;
}



void reaper_wait_at_exit(void)
{
	reaper_wait(sc_now_ms() + (uint64_t)sc_cfg.exit_wait_ms);
}

void reaper_log_stats(void)
{
	SC_LOG(SC_LOG_DEBUG, "exit: %llu handed off, %llu released, %llu fallbacks, %d lingering",
	       (unsigned long long)LOAD(&n_handed), (unsigned long long)LOAD(&n_released),
	       (unsigned long long)LOAD(&n_fallbacks), LOAD(&lingering));
}

void reaper_wait(uint64_t until_ms)
{
	/* Polls the count in short sleeps rather than waiting on a condition
	 * variable, so that _exit() may call it from a signal handler. */
	while (LOAD(&state) == RUNNING && LOAD(&lingering) > 0 && sc_now_ms() < until_ms) {
		struct timespec slice = { 0, 5 * 1000 * 1000 };
		nanosleep(&slice, NULL);
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
	nslots = free_head = nheap = heap_cap = 0;
	pipe_r = pipe_w = epfd = -1;
	STORE(&lingering, 0);
	STORE(&state, STOPPED);
	pthread_mutex_unlock(&lock);
}

void reaper_init(void)
{
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}
