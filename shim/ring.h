/* ring.h: a bounded lock-free queue of fixed-size records, any number of
 * producers and consumers (D. Vyukov's bounded queue: a sequence number per
 * cell), in memory the caller maps; the hand-off queue of reaper.c, which
 * holds its code (the release path's shape, tests/test_shape.py). No lock,
 * no allocation, no system call: async-signal-safe on both sides. A producer stopped (by a signal, or for
 * good) between claiming a cell and publishing it makes the consumers see
 * the queue empty from that cell on until it publishes. */
#ifndef SAFECLOSE_RING_H
#define SAFECLOSE_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RING_RECORD 32 /* bytes a record may take */

struct ring_cell {
	/* The cell's sequence number minus its index: zeroed memory is an
	 * empty queue whose cells are all free for the first lap, so a fresh
	 * anonymous mapping needs no initialising pass (pages are touched
	 * only as the queue reaches them). */
	uint64_t turn;
	unsigned char record[RING_RECORD];
};

struct ring {
	uint64_t head; /* the next position a producer claims */
	uint64_t tail; /* the next position a consumer takes */
	uint64_t mask; /* cells - 1; cells a power of two */
	struct ring_cell *cells;
};

/* The bytes to map for `cells` cells (a power of two). */
size_t ring_bytes(uint64_t cells);

/* r, empty, over zeroed memory of ring_bytes(cells). */
void ring_init(struct ring *r, struct ring_cell *zeroed, uint64_t cells);

/* Copies `size` (<= RING_RECORD) bytes in; false when the queue is full. */
bool ring_push(struct ring *r, const void *record, size_t size);

/* Takes the oldest published record out into `record` (`size` bytes);
 * false when there is none (empty, or the oldest cell claimed and not
 * yet published). */
bool ring_pop(struct ring *r, void *record, size_t size);

/* Whether ring_pop would find a record now (no change to the queue). */
bool ring_ready(const struct ring *r);

#endif
