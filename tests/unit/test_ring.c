/* test_ring.c: the hand-off ring (ring.h, in reaper.c): records come out in the order
 * they went in across many laps of a small ring, a full ring refuses and
 * takes again once one is taken, zeroed memory is an empty ring, a claimed
 * cell not yet published hides what follows it until published, and with
 * several producers and consumers at once every record comes out exactly
 * once, each producer's in its own order. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ring.h"

struct rec {
	uint32_t producer;
	uint32_t seq;
	uint64_t check; /* a function of the two: a torn record shows */
};

static uint64_t check_of(uint32_t producer, uint32_t seq)
{
	return ((uint64_t)producer << 32 | seq) * 0x9e3779b97f4a7c15ull;
}

static struct ring_cell *cells_for(uint64_t n)
{
	struct ring_cell *c = calloc(1, ring_bytes(n));

	assert_non_null(c);
	return c;
}

static void wraps_around_in_order(void **state)
{
	(void)state;
	struct ring r;
	struct ring_cell *c = cells_for(8);
	uint32_t in = 0, out = 0;

	ring_init(&r, c, 8);
	assert_false(ring_ready(&r));
	/* Uneven bursts (at most 6 on at most 2 left), so that head and tail
	 * cross the end at every phase. */
	for (int round = 0; round < 1000; round++) {
		for (int k = 0; k < 1 + round % 6; k++, in++) {
			struct rec x = { 0, in, check_of(0, in) };
			assert_true(ring_push(&r, &x, sizeof x));
		}
		while (out < in - round % 3) {
			struct rec y;
			assert_true(ring_ready(&r));
			assert_true(ring_pop(&r, &y, sizeof y));
			assert_int_equal(y.seq, out);
			assert_true(y.check == check_of(0, out));
			out++;
		}
	}
	struct rec y;
	while (ring_pop(&r, &y, sizeof y))
		assert_int_equal(y.seq, out++);
	assert_int_equal(out, in);
	assert_false(ring_ready(&r));
	free(c);
}

static void a_full_ring_refuses(void **state)
{
	(void)state;
	struct ring r;
	struct ring_cell *c = cells_for(4);
	struct rec x = { 0 }, y;

	ring_init(&r, c, 4);
	for (uint32_t i = 0; i < 4; i++) {
		x.seq = i;
		assert_true(ring_push(&r, &x, sizeof x));
	}
	x.seq = 4;
	assert_false(ring_push(&r, &x, sizeof x));
	assert_true(ring_pop(&r, &y, sizeof y));
	assert_int_equal(y.seq, 0);
	assert_true(ring_push(&r, &x, sizeof x));
	assert_false(ring_push(&r, &x, sizeof x));
	for (uint32_t i = 1; i <= 4; i++) {
		assert_true(ring_pop(&r, &y, sizeof y));
		assert_int_equal(y.seq, i);
	}
	assert_false(ring_pop(&r, &y, sizeof y));
	free(c);
}

/* A producer stopped between its claim and its publish (a signal handler
 * ran): the consumer sees nothing from that cell on, then everything once
 * the cell is published. Done by hand: claim position 0 as ring_push
 * would, publish later. */
static void an_unpublished_cell_hides_what_follows(void **state)
{
	(void)state;
	struct ring r;
	struct ring_cell *c = cells_for(4);
	struct rec x = { 0, 7, 0 }, y;

	ring_init(&r, c, 4);
	r.head = 1; /* position 0 claimed, not published */
	x.seq = 1;
	assert_true(ring_push(&r, &x, sizeof x));
	assert_false(ring_ready(&r));
	assert_false(ring_pop(&r, &y, sizeof y));
	x.seq = 0;
	memcpy(c[0].record, &x, sizeof x);
	__atomic_store_n(&c[0].turn, 1, __ATOMIC_RELEASE); /* sequence 1 at index 0 */
	assert_true(ring_ready(&r));
	assert_true(ring_pop(&r, &y, sizeof y));
	assert_int_equal(y.seq, 0);
	assert_true(ring_pop(&r, &y, sizeof y));
	assert_int_equal(y.seq, 1);
	free(c);
}

#define PRODUCERS 4
#define CONSUMERS 2
#define PER_PRODUCER 50000

static struct ring shared;
static uint64_t taken; /* records taken by all consumers */

struct consumed {
	uint32_t next[PRODUCERS]; /* the next seq expected of each producer */
	uint64_t total;
	int bad;
};

static void *produce(void *arg)
{
	uint32_t p = (uint32_t)(uintptr_t)arg;

	for (uint32_t i = 0; i < PER_PRODUCER; i++) {
		struct rec x = { p, i, check_of(p, i) };
		while (!ring_push(&shared, &x, sizeof x))
			sched_yield(); /* full: the consumers catch up */
	}
	return NULL;
}

/* Each consumer sees any one producer's records in increasing order (a
 * later one is published and taken after an earlier one is taken). */
static void *consume(void *arg)
{
	struct consumed *seen = arg;
	struct rec y;

	while (__atomic_load_n(&taken, __ATOMIC_ACQUIRE) < (uint64_t)PRODUCERS * PER_PRODUCER) {
		if (!ring_pop(&shared, &y, sizeof y)) {
			sched_yield();
			continue;
		}
		if (y.producer >= PRODUCERS || y.check != check_of(y.producer, y.seq) ||
		    y.seq < seen->next[y.producer])
			seen->bad++;
		else
			seen->next[y.producer] = y.seq + 1;
		seen->total++;
		__atomic_add_fetch(&taken, 1, __ATOMIC_ACQ_REL);
	}
	return NULL;
}

static void several_producers_and_consumers(void **state)
{
	(void)state;
	struct ring_cell *c = cells_for(64); /* small: full often, many laps */
	pthread_t prod[PRODUCERS], cons[CONSUMERS];
	struct consumed seen[CONSUMERS];

	memset(seen, 0, sizeof seen);
	ring_init(&shared, c, 64);
	for (int k = 0; k < CONSUMERS; k++)
		assert_int_equal(pthread_create(&cons[k], NULL, consume, &seen[k]), 0);
	for (uintptr_t p = 0; p < PRODUCERS; p++)
		assert_int_equal(pthread_create(&prod[p], NULL, produce, (void *)p), 0);
	for (int p = 0; p < PRODUCERS; p++)
		pthread_join(prod[p], NULL);
	uint64_t total = 0;
	for (int k = 0; k < CONSUMERS; k++) {
		pthread_join(cons[k], NULL);
		assert_int_equal(seen[k].bad, 0);
		total += seen[k].total;
	}
	assert_int_equal(total, (uint64_t)PRODUCERS * PER_PRODUCER);
	assert_false(ring_ready(&shared));
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(wraps_around_in_order),
		cmocka_unit_test(a_full_ring_refuses),
		cmocka_unit_test(an_unpublished_cell_hides_what_follows),
		cmocka_unit_test(several_producers_and_consumers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
