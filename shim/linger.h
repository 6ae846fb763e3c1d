/* linger.h: the lingering close of one socket, as a state machine that any
 * driver can step: close() in place today, a background thread later. */
#ifndef SAFECLOSE_LINGER_H
#define SAFECLOSE_LINGER_H

#include <stdbool.h>
#include <stdint.h>

/* The shortest wait between two looks when no event can tell. */
#define LINGER_TICK_MS 25

enum linger_end {
	LINGER_RUNNING,
	LINGER_PEER_DONE, /* the peer sent its FIN (or the connection is gone) */
	LINGER_IDLE,      /* nothing moved for idle_ms */
	LINGER_TIMEOUT,   /* linger_ms passed in all */
	LINGER_NO_ROOM,   /* the program needed the descriptor number (EMFILE) */
	LINGER_MADE_ROOM, /* ended so that a newer close could linger (SAFECLOSE_MAX_LINGER) */
	LINGER_DISCARDED, /* the peer has all our output and sent SAFECLOSE_DISCARD_MAX bytes */
};

struct sc_linger {
	int fd;
	bool read_shut;       /* the application shut the read side: no POLLIN to wait on */
	bool at_eof;          /* the last read found the end of the stream */
	bool read_open;       /* a read said EAGAIN: the read side is not shut */
	enum linger_end end;
	uint64_t start_ms, last_progress_ms;
	uint64_t linger_ms, idle_ms;
	bool output_waits;    /* some of our output was not acknowledged at the last step */
	uint64_t acked;       /* bytes of our output acknowledged, at the last step */
	uint64_t discarded;   /* bytes read and thrown away */
	uint64_t discard_max; /* SAFECLOSE_DISCARD_MAX at the start; 0: no bound */
	uint8_t arm;          /* enum sc_arm: where its end is counted */
};

/* What the driver waits for before the next step. */
struct linger_wait {
	bool readable;   /* wake when the socket has input (or the peer's FIN) */
	int timeout_ms;  /* wake at the latest after this long */
};

/* Half-closes the sending side (unless the application already did) so the
 * FIN follows every queued byte, and starts the clock. The discard budget
 * is SAFECLOSE_DISCARD_MAX's. */
void linger_begin(struct sc_linger *l, int fd, uint64_t linger_ms, uint64_t idle_ms,
		  uint64_t now_ms);

/* The same for a socket already half-closed (the hand-off from close() sent
 * the FIN): only starts the clock. */
void linger_resume(struct sc_linger *l, int fd, uint64_t linger_ms, uint64_t idle_ms,
		   uint64_t now_ms);

/* Discards what has arrived and checks the bounds. Returns false when the
 * linger is over (l->end says why); otherwise fills *wait. */
bool linger_step(struct sc_linger *l, uint64_t now_ms, struct linger_wait *wait);

/* Discards what is still queued, so the close that follows finds an empty
 * receive queue and the kernel has nothing to answer with a RST. */
void linger_finish(struct sc_linger *l);

/* What is still safe without waiting: half-close so the FIN follows the
 * queued output, discard what has arrived, and let the caller close. Late
 * input can still draw a RST; used only when no one can linger. */
void linger_release_now(int fd);

/* Drives the machine to its end in the calling thread (poll between steps),
 * and counts its end in `arm` (enum sc_arm). */
void linger_run_in_place(int fd, uint64_t linger_ms, uint64_t idle_ms, unsigned arm);

/* A linger is over (after linger_finish): its end, time and discarded bytes
 * go to its arm's counters. */
void linger_account(const struct sc_linger *l, uint64_t now_ms);

const char *linger_end_name(enum linger_end end);

#endif
