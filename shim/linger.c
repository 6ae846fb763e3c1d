/* linger.c: owns the lingering close itself: half-close, discard without
 * copying, stop on the peer's FIN or a bound, drain, release. Every syscall
 * here is async-signal-safe and errno is restored, because the in-place
 * driver runs inside close(); reads and shutdowns trap directly, past the
 * shim's own recv() and shutdown() wrappers. */
#include "linger.h"

#include <errno.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include "config.h"
#include "log.h"
#include "probe.h"
#include "rawsys.h"
#include "shim.h"
#include "stats.h"


/* Reads and throws away what is queued, without copying it (MSG_TRUNC on
 * TCP discards). One call takes the whole receive queue; when more arrives
 * the next wake-up comes for it. *eof is set when recv reported end of
 * stream: the peer's FIN, or a read side the application shut. *open is
 * set when it said "nothing yet" (EAGAIN): tcp_recvmsg says that only
 * while the read side is not shut (RCV_SHUTDOWN answers 0 first). */
static uint64_t discard_input(int fd, bool *eof, bool *open)
{
	ssize_t n;

	do
		n = raw_syscall(SYS_recvfrom, fd, NULL, INT_MAX, MSG_TRUNC | MSG_DONTWAIT, NULL, NULL);
	while (n < 0 && errno == EINTR);
	*eof = n == 0;
	*open = n < 0 && errno == EAGAIN;
	return n > 0 ? (uint64_t)n : 0;
}

void linger_resume(struct sc_linger *l, int fd, uint64_t linger_ms, uint64_t idle_ms,
		   uint64_t now_ms)
{
	*l = (struct sc_linger){
		.fd = fd,
		.end = LINGER_RUNNING,
		.start_ms = now_ms,
		.last_progress_ms = now_ms,
		.linger_ms = linger_ms,
		.idle_ms = idle_ms,
		.output_waits = true,
		.discard_max = (uint64_t)sc_cfg.discard_max,
	};
}

void linger_begin(struct sc_linger *l, int fd, uint64_t linger_ms, uint64_t idle_ms,
		  uint64_t now_ms)
{
	int saved_errno = errno;

	linger_resume(l, fd, linger_ms, idle_ms, now_ms);
	/* The FIN goes out after every queued byte. A no-op when the program
	 * already half-closed, or the peer is gone. */
	raw_syscall(SYS_shutdown, fd, SHUT_WR);
	errno = saved_errno;
}

/* The acknowledgement of our output raises no event: while some is
 * outstanding, look again often enough that the idle bound overshoots by a
 * tenth at most. A shut read side gives no event for the peer's FIN either. */
static int look_again_ms(const struct sc_linger *l)
{
	if (l->read_shut)
		return LINGER_TICK_MS;
	if (l->output_waits)
		return l->idle_ms / 10 > LINGER_TICK_MS ? (int)(l->idle_ms / 10) : LINGER_TICK_MS;
	return INT_MAX;
}

/* Time since `since`; 0 when `since` is later (a hand-off stamped by another
 * thread just after this step read the clock). */
static uint64_t elapsed(uint64_t now_ms, uint64_t since)
{
	return now_ms > since ? now_ms - since : 0;
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* The peer has acknowledged all our output (its kernel has the reply) and
 * goes on sending past the budget: a flood, not a client waiting to read;
 * ending now costs it at most a reset of what it has not read yet. */
static bool over_discard_budget(const struct sc_linger *l)
{
	return l->discard_max && l->discarded >= l->discard_max && !l->output_waits;
}

/* Whether this step needs TCP_INFO. Not when recv says end of stream on a
 * read side an earlier step found open: nobody shuts it once the socket is
 * the shim's alone (the release cancels a real SHUT_RD still waiting, or
 * waits for one under way: readshut.c), so this is the peer's FIN (or the
 * connection's end), which the state would call done all the same
 * (CLOSING, TIME_WAIT, CLOSE...). The linger ends there, peer done, and
 * nothing else the probe tells (acknowledged bytes, output waiting) is
 * used after the end: output still unacknowledged is delivered by the
 * kernel after the close, since with nothing unread no RST is sent. */
static bool needs_probe(const struct sc_linger *l, bool eof)
{
	return !(eof && l->read_open);
}

bool linger_step(struct sc_linger *l, uint64_t now_ms, struct linger_wait *wait)
{
	int saved_errno = errno;
	bool eof, open;
	uint64_t got = discard_input(l->fd, &eof, &open);
	struct tcp_facts tcp;

	l->read_open |= open;
	bool known = needs_probe(l, eof) && probe_tcp(l->fd, &tcp);
	bool peer_done = !known || tcp.peer_done;
	bool progress = got > 0 || (known && tcp.bytes_acked > l->acked);

	/* End of stream while the peer has not finished: the program shut the
	 * read side, and recv says 0 whatever arrives. Only the state tells. */
	if (eof && !peer_done)
		l->read_shut = true;
	l->at_eof = eof;
	l->discarded += got;
	if (known) {
		l->acked = tcp.bytes_acked;
		l->output_waits = tcp.output_waits;
	}
	if (progress && now_ms > l->last_progress_ms)
		l->last_progress_ms = now_ms;
	if (peer_done)
		l->end = LINGER_PEER_DONE;
	else if (over_discard_budget(l))
		l->end = LINGER_DISCARDED;
	else if (elapsed(now_ms, l->start_ms) >= l->linger_ms)
		l->end = LINGER_TIMEOUT;
	else if (elapsed(now_ms, l->last_progress_ms) >= l->idle_ms)
		l->end = LINGER_IDLE;
	errno = saved_errno;
	if (l->end != LINGER_RUNNING)
		return false;

	uint64_t deadline = earliest(l->start_ms + l->linger_ms,
				     l->last_progress_ms + l->idle_ms);
	wait->readable = !l->read_shut;
	wait->timeout_ms = (int)(deadline - now_ms); /* > 0: both bounds checked above */
	if (wait->timeout_ms > look_again_ms(l))
		wait->timeout_ms = look_again_ms(l);
	return true;
}

/* Rounds of the final drain: one is almost always enough. */
#define FINISH_ROUNDS 8

void linger_finish(struct sc_linger *l)
{
	int saved_errno = errno;
	bool eof = l->at_eof && !l->read_shut, open; /* nothing follows the peer's FIN */
	uint64_t got;

	/* Until recv says end-of-file (after the peer's FIN nothing more can
	 * come) or the kernel says nothing is queued, as the very last thing
	 * before the close: a segment that came in while the last recv held
	 * the socket is queued only as that recv returns (the socket's
	 * backlog), after it said "nothing". */
	for (int round = 0; !eof && round < FINISH_ROUNDS; round++) {
		while ((got = discard_input(l->fd, &eof, &open)) > 0)
			l->discarded += got;
		if (probe_unread(l->fd) == 0)
			break;
	}
	errno = saved_errno;
}

void linger_release_now(int fd)
{
	struct sc_linger l;

	linger_begin(&l, fd, 0, 0, 0);
	linger_finish(&l);
}

void linger_account(const struct sc_linger *l, uint64_t now_ms)
{
	stats_count_linger_end((enum sc_arm)l->arm, l->end, elapsed(now_ms, l->start_ms),
			       l->discarded);
}

void linger_run_in_place(int fd, uint64_t linger_ms, uint64_t idle_ms, unsigned arm)
{
	int saved_errno = errno;
	struct sc_linger l;
	struct linger_wait wait;

	linger_begin(&l, fd, linger_ms, idle_ms, sc_now_ms());
	l.arm = (uint8_t)arm;
	while (linger_step(&l, sc_now_ms(), &wait)) {
		/* Without POLLIN to wait on, a socket shut both ways polls as hung
		 * up at once: sleep on no descriptor rather than spin. */
		struct pollfd p = { .fd = fd, .events = POLLIN };
		raw_poll(&p, wait.readable ? 1 : 0, wait.timeout_ms);
	}
	linger_finish(&l);
	linger_account(&l, sc_now_ms());
	SC_LOG(SC_LOG_DEBUG, "fd %d lingered %llu ms, discarded %llu bytes, end: %s", fd,
	       (unsigned long long)(sc_now_ms() - l.start_ms),
	       (unsigned long long)l.discarded, linger_end_name(l.end));
	errno = saved_errno;
}

const char *linger_end_name(enum linger_end end)
{
	switch (end) {
	case LINGER_PEER_DONE: return "peer finished";
	case LINGER_IDLE: return "idle bound";
	case LINGER_TIMEOUT: return "total bound";
	case LINGER_NO_ROOM: return "the program needed the number";
	case LINGER_MADE_ROOM: return "made room for a newer close";
	case LINGER_DISCARDED: return "discard budget";
	default: return "running";
	}
}
