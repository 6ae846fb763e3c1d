/* stats.h: what the shim saw, per arm of the A/B split: how each connected
 * TCP socket's last reference was released, and how each linger ended. */
#ifndef SAFECLOSE_STATS_H
#define SAFECLOSE_STATS_H

#include <stdint.h>

#include "linger.h"

/* `linger`: the shim acts as SAFECLOSE_MODE says; `control`: it only
 * observes (SAFECLOSE_AB picks the arm of each connection). */
enum sc_arm { SC_ARM_LINGER, SC_ARM_CONTROL, SC_ARMS };

/* How the kernel treats a plain close of the socket at its release:
 * abortive: input unread now, the kernel resets (TcpExtTCPAbortOnClose) and
 * drops what is still unsent; at_risk: nothing unread but output not yet
 * acknowledged, a reset if input arrives before the peer has it all;
 * clean: neither. */
enum sc_close_class { SC_CLASS_CLEAN, SC_CLASS_AT_RISK, SC_CLASS_ABORTIVE };

enum sc_close_class stats_classify(int unread, int output_waits);

/* The linger-time histogram: exact below 8 ms, then four buckets per power
 * of two (a bucket's upper edge is at most 25 % above any time in it), up
 * to 2^23 ms; longer times go to the last bucket. */
#define STATS_BUCKETS 88

struct sc_arm_counts {
	uint64_t closes, abortive, at_risk, clean;
	uint64_t lingered, fallback;
	uint64_t peer_finished, idle_timeout, total_timeout, cut_short;
	uint64_t bytes_discarded;
	uint64_t linger_max_ms;
	uint64_t linger_hist[STATS_BUCKETS];
};

/* The counting, from the release path and where lingers end. Lock-free
 * atomic additions: async-signal-safe, any thread. */
void stats_count_release(enum sc_arm arm, enum sc_close_class cls);
void stats_count_lingered(enum sc_arm arm);
void stats_count_fallback(enum sc_arm arm);
/* A linger that ended before it ran: its number was taken over by the
 * program, or the thread had no room for it (counted in cut_short, not in
 * the histogram). */
void stats_count_cut_short(enum sc_arm arm);
void stats_count_linger_end(enum sc_arm arm, enum linger_end end, uint64_t ms,
			    uint64_t discarded);

/* A copy of one arm's counters (each read atomically). */
void stats_snapshot(enum sc_arm arm, struct sc_arm_counts *out);

/* Adds counts carried over from this process's previous image (execve). */
void stats_add(enum sc_arm arm, const struct sc_arm_counts *more);

/* A forked child counts from zero: its own file, its own numbers. */
void stats_reset(void);

const char *stats_arm_name(enum sc_arm arm);

/* The histogram's arithmetic, for the writer and the unit tests. */
unsigned stats_bucket(uint64_t ms);
uint64_t stats_bucket_upper(unsigned bucket); /* the largest ms in it */
/* The p-th percentile (0 < p <= 100) as its bucket's upper edge, never above
 * max_ms; 0 when nothing was counted. */
uint64_t stats_percentile(const uint64_t hist[STATS_BUCKETS], unsigned p, uint64_t max_ms);

#endif
