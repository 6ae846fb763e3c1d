/* ring.c: owns the bounded lock-free queue (ring.h). Positions are 64-bit
 * and never wrap in practice; a cell at index i = pos & mask is free for
 * the producer of position pos when its sequence is pos, holds that
 * position's record when it is pos + 1, and is free for the next lap
 * (pos + cells) once taken. The sequence is stored minus i (`turn`), so
 * that zeroed memory starts as every cell free for lap 0. Acquire on the
 * sequence before touching the record, release after: the record's bytes
 * are never read and written at once. */
#include "ring.h"

#include <string.h>

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define RELAXED(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

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
