/* readshut.c: owns the read-side emulation, everything about a socket whose
 * read side the program shut while the shim keeps it open underneath:
 *
 * - the mark, per socket (in its ownership record, so every descriptor and
 *   every process of the family sees it, and it ends with the record when
 *   the last reference goes);
 * - every read entry point of the program on such a socket: what the kernel
 *   would still return (what is queued: after SHUT_RD, whatever arrives;
 *   after SHUT_RDWR, what was queued at the shutdown, since Linux resets
 *   anything later), never blocking, then end-of-file;
 * - the real SHUT_RD, deferred until our output is acknowledged (and a tick
 *   at least, for the close that mostly follows the shutdown), that wakes
 *   a thread blocked reading and gives poll/epoll their end-of-file. The
 *   socket is never taken out of the program's epoll sets meanwhile: the
 *   program still holds it. A duplicate of the shim's own keeps the file the
 *   shutdown is for, so a reused number is never shut by mistake;
 * - the one rule at release: once this process holds no descriptor of the
 *   socket, a real SHUT_RD still waiting is cancelled. A compare-and-swap on
 *   the waiting entry's state decides between the thread about to shut and
 *   the release: exactly one of them acts, and the other never touches the
 *   entry's descriptor again.
 *
 * The release side uses atomics, raw system calls and a bounded sleep only:
 * it runs inside close(), which a signal handler may call. */
#include "rawsys.h"
#include "readshut.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <time.h>

#include "config.h"
#include "linger.h"
#include "log.h"
#include "ownership.h"
#include "probe.h"
#include "reaper.h"
#include "selffd.h"
#include "waiters.h"
#include "shim.h"

/* Bytes the program may read after SHUT_RD: no bound, what arrives. */
#define READ_ANYTHING UINT32_MAX
/* Real SHUT_RDs waiting at once; beyond, the shutdown is done at once. */
#define WAITING_MAX 256
/* A read-shut recvmsg/readv bounded to what was queued: the iovecs kept. */
#define BOUNDED_IOV 64

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_ACQ_REL)

/* ---- the program's reads ------------------------------------------------ */

/* Is fd read-shut, and how much may the program still read of it? */
static bool marked(int fd, uint32_t *left)
{
	return sc_cfg.mode != SC_MODE_OFF && own_read_shut(fd, left);
}

/* The end of a non-blocking read on a read-shut socket: nothing queued is
 * end-of-file; what was read counts against what was queued at SHUT_RDWR. */
static ssize_t read_done(int fd, ssize_t n, int flags, uint32_t left, int saved_errno)
{
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		errno = saved_errno;
		return 0;
	}
	if (n > 0 && !(flags & MSG_PEEK) && left != READ_ANYTHING)
		own_read_after_shut(fd, (uint32_t)n);
	return n;
}

bool readshut_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
		       socklen_t *addrlen, ssize_t *result)
{
	uint32_t left;

	if (!marked(fd, &left))
		return false;
	int saved_errno = errno;
	if (!left || !len) {
		*result = 0;
		return true;
	}
	ssize_t n = raw_syscall(SYS_recvfrom, fd, buf, len < left ? len : left,
				flags | MSG_DONTWAIT, addr, addrlen);
	*result = read_done(fd, n, flags, left, saved_errno);
	return true;
}

/* msg's iovecs cut to `left` bytes in `out` (at most BOUNDED_IOV of them;
 * a shorter read is still a correct one). */
static void bound_iov(struct msghdr *msg, uint32_t left, struct iovec out[BOUNDED_IOV])
{
	size_t n = 0, room = left;

	for (size_t i = 0; i < msg->msg_iovlen && n < BOUNDED_IOV && room; i++) {
		out[n] = msg->msg_iov[i];
		if (out[n].iov_len > room)
			out[n].iov_len = room;
		room -= out[n++].iov_len;
	}
	msg->msg_iov = out;
	msg->msg_iovlen = n;
}

static ssize_t read_msg(int fd, struct msghdr *msg, int flags, uint32_t left)
{
	int saved_errno = errno;
	struct iovec bounded[BOUNDED_IOV];
	struct msghdr m = *msg;

	if (!left)
		return 0;
	if (left != READ_ANYTHING)
		bound_iov(&m, left, bounded);
	ssize_t n = raw_syscall(SYS_recvmsg, fd, &m, flags | MSG_DONTWAIT);
	/* What the kernel wrote back, on the program's own header. */
	msg->msg_namelen = m.msg_namelen;
	msg->msg_controllen = m.msg_controllen;
	msg->msg_flags = m.msg_flags;
	return read_done(fd, n, flags, left, saved_errno);
}

bool readshut_recvmsg(int fd, struct msghdr *msg, int flags, ssize_t *result)
{
	uint32_t left;

	if (!marked(fd, &left))
		return false;
	*result = read_msg(fd, msg, flags, left);
	return true;
}

bool readshut_readv(int fd, const struct iovec *iov, int iovcnt, ssize_t *result)
{
	uint32_t left;

	if (!marked(fd, &left))
		return false;
	if (iovcnt < 0 || iovcnt > IOV_MAX) {
		errno = EINVAL; /* what readv itself says */
		*result = -1;
		return true;
	}
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
	*result = read_msg(fd, &m, 0, left);
	return true;
}

/* As the kernel's recvmmsg on a stream after its read side is shut: the
 * first message gets what is queued, every following one end-of-file. */
bool readshut_recvmmsg(int fd, struct mmsghdr *msgs, unsigned vlen, int flags, int *result)
{
	uint32_t left;
	unsigned i;

	if (!marked(fd, &left))
		return false;
	flags &= ~MSG_WAITFORONE;
	for (i = 0; i < vlen && i <= INT_MAX; i++) {
		ssize_t n = read_msg(fd, &msgs[i].msg_hdr, flags, left);
		if (n < 0)
			break;
		msgs[i].msg_len = (unsigned)n;
		if (!marked(fd, &left))
			left = 0;
	}
	*result = i == 0 && vlen ? -1 : (int)i;
	return true;
}

/* ---- the real SHUT_RD, deferred ----------------------------------------- */

/* An entry's state word: the state in the low byte, above it a generation
 * bumped at every claim, so a compare-and-swap made on what was read before
 * the entry was reused fails. */
enum { FREE, CLAIMED, WAITING, SHUTTING, CANCELLING };

struct waiting {
	uint32_t state;
	int32_t fd;       /* the shim's duplicate (-1: lost to a dup2 onto it) */
	uint64_t cookie;
	uint64_t since_ms;
};

static struct waiting table[WAITING_MAX];
static int n_waiting;

static uint32_t state_of(uint32_t word) { return word & 0xff; }
static uint32_t with_state(uint32_t word, uint32_t state) { return (word & ~0xffu) | state; }

static bool swap(struct waiting *w, uint32_t seen, uint32_t next)
{
	return __atomic_compare_exchange_n(&w->state, &seen, next, false, __ATOMIC_ACQ_REL,
					   __ATOMIC_ACQUIRE);
}

static struct waiting *claim(void)
{
	for (int i = 0; i < WAITING_MAX; i++) {
		uint32_t word = LOAD(&table[i].state);
		if (state_of(word) == FREE && swap(&table[i], word, (word & ~0xffu) + 0x100 + CLAIMED))
			return &table[i];
	}
	return NULL;
}

/* Whoever won the entry (the thread that shut, the release that cancelled,
 * the claimer that gave up) frees it. */
static void unclaim(struct waiting *w, uint32_t word, bool counted)
{
	STORE(&w->state, with_state(word, FREE));
	if (counted)
		ADD(&n_waiting, -1);
}

bool readshut_waiting(void)
{
	return LOAD(&n_waiting) > 0;
}

/* Our output (our FIN included) still on its way, the peer still sending,
 * and the bound not passed: the real SHUT_RD would make a reset. (`since_ms`
 * may be later than `now_ms`: a shutdown stamped by another thread just after
 * the caller read the clock.) */
static bool output_waits(int fd, uint64_t since_ms, uint64_t now_ms)
{
	struct tcp_facts tcp;

	return probe_tcp(fd, &tcp) && tcp.output_waits && !tcp.peer_done &&
	       now_ms < since_ms + (uint64_t)sc_cfg.linger_ms;
}

/* A program that shuts both ways mostly closes the very next moment
 * (cheroot, php -S, socat's children): the thread that its shutdown woke
 * must not get there first when the output is already acknowledged, or the
 * real SHUT_RD resets the peer's next segment all the same, with the
 * program about to let go. So it waits one tick before it shuts; a program
 * still holding the socket then gets its end-of-file a tick later. */
static bool program_may_let_go(uint64_t since_ms, uint64_t now_ms)
{
	return now_ms < since_ms + LINGER_TICK_MS;
}

/* Without a thread (SAFECLOSE_LINGER=sync): the wait, in place. */
static void shut_read_in_place(int fd)
{
	uint64_t start = sc_now_ms();

	while (output_waits(fd, start, sc_now_ms()))
		raw_sleep_ms(LINGER_TICK_MS); /* no cancellation point */
	raw_syscall(SYS_shutdown, fd, SHUT_RD);
}

/* The thread will shut fd's read side once our output is acknowledged. */
static void shut_read_later(int fd, uint64_t cookie)
{
	struct waiting *w = sc_cfg.where == SC_LINGER_ASYNC ? claim() : NULL;
	int quota, keep = -1;

	if (w)
		keep = (int)raw_syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, selffd_base(&quota));
	if (keep >= 0 && !selffd_mark(keep)) {
		raw_syscall(SYS_close, keep);
		keep = -1;
	}
	if (keep < 0) {
		if (w)
			unclaim(w, LOAD(&w->state), false);
		if (sc_cfg.where == SC_LINGER_SYNC)
			shut_read_in_place(fd);
		else /* no room to wait: a blocked reader must still wake */
			raw_syscall(SYS_shutdown, fd, SHUT_RD);
		return;
	}
	/* Atomic stores: the thread may still be reading these fields of the
	 * entry's previous use (its compare-and-swap on the old generation then
	 * fails, but the reads must not race with plain writes). */
	STORE(&w->fd, keep);
	STORE(&w->cookie, cookie);
	STORE(&w->since_ms, sc_now_ms());
	uint32_t word = LOAD(&w->state);
	ADD(&n_waiting, 1);
	STORE(&w->state, with_state(word, WAITING));
	if (reaper_wake())
		return;
	if (swap(w, with_state(word, WAITING), with_state(word, CANCELLING))) {
		selffd_close(keep);
		unclaim(w, word, true);
		raw_syscall(SYS_shutdown, fd, SHUT_RD);
	}
}

static bool waits_for(uint64_t cookie)
{
	for (int i = 0; i < WAITING_MAX; i++) {
		uint32_t s = state_of(LOAD(&table[i].state));
		if ((s == WAITING || s == SHUTTING) && LOAD(&table[i].cookie) == cookie)
			return true;
	}
	return false;
}

int readshut_shutdown(int fd, uint64_t booked, int how)
{
	struct sock_facts f;

	if (how != SHUT_RD && how != SHUT_RDWR)
		return (int)raw_syscall(SYS_shutdown, fd, how); /* EINVAL, as the kernel says */
	probe_socket(fd, PROBE_UNREAD, &f);
	/* A socket not connected gets the kernel's own error; once the peer
	 * has finished sending, a real SHUT_RD cannot draw a reset; and a
	 * number reused out of the shim's sight is not the booked socket. */
	if (f.cookie != booked || !f.tcp || !f.tcp_info.connected || f.tcp_info.peer_done)
		return (int)raw_syscall(SYS_shutdown, fd, how);
	if (how == SHUT_RDWR && raw_syscall(SYS_shutdown, fd, SHUT_WR) < 0)
		return -1;
	int saved_errno = errno;
	/* On a connection open both ways Linux still queues, and hands to the
	 * program, what arrives after SHUT_RD; once our side is shut too it
	 * resets it instead, and the program reads only what was queued. */
	own_set_read_shut(fd, how == SHUT_RD && f.tcp_info.state == TCP_ESTABLISHED
			  ? READ_ANYTHING : (uint32_t)f.unread);
	if (!waits_for(f.cookie))
		shut_read_later(fd, f.cookie);
	errno = saved_errno;
	return 0;
}

/* The real SHUT_RD exists to wake a thread blocked waiting for the
 * socket's input (in a read, or in poll, select or epoll_wait), which the
 * program's own shutdown would have woken; with no such thread, the
 * program's reads already see end-of-file, and the call would only make the
 * kernel reset what the peer sends next. So it waits for one (looked at
 * every tick, one look at the threads for every entry then due), or for the
 * program to let go. */
void readshut_step(uint64_t now_ms)
{
	static struct waiter blocked[WAITERS_MAX];
	int n_blocked = 0;
	bool looked = false;

	for (int i = 0; i < WAITING_MAX && readshut_waiting(); i++) {
		struct waiting *w = &table[i];
		uint32_t word = LOAD(&w->state);
		if (state_of(word) != WAITING)
			continue;
		int fd = LOAD(&w->fd);
		uint64_t since_ms = LOAD(&w->since_ms);
		if (program_may_let_go(since_ms, now_ms) ||
		    (fd >= 0 && output_waits(fd, since_ms, now_ms)))
			continue;
		if (!looked) {
			n_blocked = waiters_snapshot(blocked, WAITERS_MAX);
			looked = true;
		}
		if (!waiters_wait_on(blocked, n_blocked, LOAD(&w->cookie)))
			continue;
		if (!swap(w, word, with_state(word, SHUTTING)))
			continue; /* the program let go meanwhile: cancelled */
		fd = LOAD(&w->fd);
		if (fd >= 0 && probe_cookie(fd) == LOAD(&w->cookie)) {
			raw_syscall(SYS_shutdown, fd, SHUT_RD);
			selffd_close(fd);
		}
		unclaim(w, word, true);
	}
}

/* A real SHUT_RD being carried out right now: it was decided while the
 * program still held the socket. Let it finish, so that the duplicate is
 * gone before the program's own close (the kernel then drops the socket's
 * epoll registrations). Bounded: it is two system calls of another thread. */
static void wait_until_shut(struct waiting *w, uint32_t word)
{
	for (int i = 0; i < 100 && LOAD(&w->state) == word; i++)
		raw_sleep_ms(1); /* no cancellation point */
}

void readshut_let_go(uint64_t cookie)
{
	if (!readshut_waiting() || !waits_for(cookie))
		return;
	for (int i = 0; i < WAITING_MAX; i++) {
		struct waiting *w = &table[i];
		uint32_t word = LOAD(&w->state);
		if (LOAD(&w->cookie) != cookie)
			continue;
		if (state_of(word) == SHUTTING) {
			wait_until_shut(w, word);
		} else if (state_of(word) == WAITING &&
			   swap(w, word, with_state(word, CANCELLING))) {
			int fd = LOAD(&w->fd);
			if (fd >= 0)
				selffd_close(fd);
			unclaim(w, word, true);
		}
	}
}

void readshut_yield_number(int fd)
{
	for (int i = 0; fd >= 0 && i < WAITING_MAX && readshut_waiting(); i++)
		if (state_of(LOAD(&table[i].state)) == WAITING && LOAD(&table[i].fd) == fd)
			STORE(&table[i].fd, selffd_relocate(fd, true));
}

/* The child has no thread, and its copies of the duplicates are closed with
 * the shim's other descriptors: it carries out nothing of the parent's. */
static void after_fork_child(void)
{
	for (int i = 0; i < WAITING_MAX; i++)
		table[i] = (struct waiting){ 0 };
	STORE(&n_waiting, 0);
}

void readshut_init(void)
{
	pthread_atfork(NULL, NULL, after_fork_child);
}
