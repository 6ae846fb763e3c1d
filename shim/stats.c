/* stats.c: owns the per-arm counters: one static table of 64-bit counters,
 * bumped with relaxed atomic additions (lock-free on every target the shim
 * builds for, so a signal handler's close may count while the interrupted
 * code counts too), and the linger-time histogram's arithmetic. */
#include "stats.h"

#include <stddef.h>

static struct sc_arm_counts arms[SC_ARMS];

#define BUMP(field, v) __atomic_add_fetch(&(field), (v), __ATOMIC_RELAXED)
#define READ(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

_Static_assert(__atomic_always_lock_free(sizeof(uint64_t), 0), "lock-free counters");

enum sc_close_class stats_classify(int unread, int output_waits)
{
	if (unread > 0)
		return SC_CLASS_ABORTIVE;
	return output_waits ? SC_CLASS_AT_RISK : SC_CLASS_CLEAN;
}

void stats_count_release(enum sc_arm arm, enum sc_close_class cls)
{
	struct sc_arm_counts *a = &arms[arm];

	BUMP(a->closes, 1);
	if (cls == SC_CLASS_ABORTIVE)
		BUMP(a->abortive, 1);
	else if (cls == SC_CLASS_AT_RISK)
		BUMP(a->at_risk, 1);
	else
		BUMP(a->clean, 1);
}

void stats_count_lingered(enum sc_arm arm)
{
	BUMP(arms[arm].lingered, 1);
}

void stats_count_fallback(enum sc_arm arm)
{
	BUMP(arms[arm].fallback, 1);
}

void stats_count_cut_short(enum sc_arm arm)
{
	BUMP(arms[arm].cut_short, 1);
}

static void raise_max(uint64_t *max, uint64_t v)
{
	uint64_t seen = READ(*max);

	while (v > seen && !__atomic_compare_exchange_n(max, &seen, v, true, __ATOMIC_RELAXED,
							__ATOMIC_RELAXED))
		;
}

void stats_count_linger_end(enum sc_arm arm, enum linger_end end, uint64_t ms,
			    uint64_t discarded)
{
	struct sc_arm_counts *a = &arms[arm];

	if (end == LINGER_PEER_DONE)
		BUMP(a->peer_finished, 1);
	else if (end == LINGER_IDLE)
		BUMP(a->idle_timeout, 1);
	else if (end == LINGER_TIMEOUT)
		BUMP(a->total_timeout, 1);
	else
		BUMP(a->cut_short, 1); /* the program needed the number, exit's bound, the
					* cap made room, or the discard budget */
	BUMP(a->bytes_discarded, discarded);
	BUMP(a->linger_hist[stats_bucket(ms)], 1);
	raise_max(&a->linger_max_ms, ms);
}

void stats_snapshot(enum sc_arm arm, struct sc_arm_counts *out)
{
	const uint64_t *from = (const uint64_t *)&arms[arm];
	uint64_t *to = (uint64_t *)out;

	for (size_t i = 0; i < sizeof *out / sizeof(uint64_t); i++)
		to[i] = READ(from[i]);
}

void stats_add(enum sc_arm arm, const struct sc_arm_counts *more)
{
	uint64_t *to = (uint64_t *)&arms[arm];
	const uint64_t *from = (const uint64_t *)more;
	size_t max_at = offsetof(struct sc_arm_counts, linger_max_ms) / sizeof(uint64_t);

	for (size_t i = 0; i < sizeof *more / sizeof(uint64_t); i++)
		if (i == max_at)
			raise_max(&to[i], from[i]);
		else
			BUMP(to[i], from[i]);
}

void stats_reset(void)
{
	uint64_t *all = (uint64_t *)arms;

	for (size_t i = 0; i < sizeof arms / (sizeof(uint64_t)); i++)
		__atomic_store_n(&all[i], 0, __ATOMIC_RELAXED);
}

const char *stats_arm_name(enum sc_arm arm)
{
	return arm == SC_ARM_LINGER ? "linger" : "control";
}

/* ---- the histogram ------------------------------------------------------ */

#define EXACT 8 /* 0..7 ms, one bucket each */

static unsigned log2_floor(uint64_t v)
{
	return 63u - (unsigned)__builtin_clzll(v);
}

unsigned stats_bucket(uint64_t ms)
{
	if (ms < EXACT)
		return (unsigned)ms;
	unsigned e = log2_floor(ms), sub = (unsigned)(ms >> (e - 2)) & 3;
	unsigned b = EXACT + (e - 3) * 4 + sub;
	return b < STATS_BUCKETS ? b : STATS_BUCKETS - 1;
}

uint64_t stats_bucket_upper(unsigned bucket)
{
	if (bucket < EXACT)
		return bucket;
	if (bucket >= STATS_BUCKETS - 1)
		return UINT64_MAX;
	unsigned e = (bucket - EXACT) / 4 + 3, sub = (bucket - EXACT) % 4;
	return ((uint64_t)(4 + sub + 1) << (e - 2)) - 1;
}

uint64_t stats_percentile(const uint64_t hist[STATS_BUCKETS], unsigned p, uint64_t max_ms)
{
	uint64_t total = 0, seen = 0;

	for (unsigned b = 0; b < STATS_BUCKETS; b++)
		total += hist[b];
	if (!total)
		return 0;
	/* The smallest time at or under which p % of the lingers ended. */
	uint64_t rank = (total * p + 99) / 100;
	for (unsigned b = 0; b < STATS_BUCKETS; b++) {
		seen += hist[b];
		if (seen >= rank && seen) {
			uint64_t upper = stats_bucket_upper(b);
			return upper < max_ms ? upper : max_ms;
		}
	}
	return max_ms;
}
