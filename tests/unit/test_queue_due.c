/*
 * The due-time heap (queue_due.c) against a plain scan: after every push,
 * remove and change of due time, the first of the heap is a message with
 * the smallest next_attempt, and every message knows its place.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue_due.h"
#include "queue/queue_private.h"
#include "unit.h"

#define N 500

static struct queue_msg msgs[N];
static bool in_heap[N];

/* A small, fixed generator: the same steps on every run. */
static uint32_t
next_rand(void)
{
	static uint32_t x = 2463534242u;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return x;
}

static bool
heap_consistent(const struct queue_due *h)
{
	uint64_t min = UINT64_MAX;
	size_t i, n = 0;

	for (i = 0; i < N; i++) {
		if (!in_heap[i]) {
			if (msgs[i].due_i != QUEUE_DUE_NONE)
				return false;
			continue;
		}
		n++;
		if (msgs[i].due_i >= h->n || h->v[msgs[i].due_i] != &msgs[i])
			return false;
		if (msgs[i].next_attempt < min)
			min = msgs[i].next_attempt;
	}
	if (n != h->n)
		return false;
	for (i = 1; i < h->n; i++)
		if (h->v[i]->next_attempt < h->v[(i - 1) / 2]->next_attempt)
			return false;
	return n == 0 ? queue_due_first(h) == NULL :
	    queue_due_first(h)->next_attempt == min;
}

static void
test_random_steps(void)
{
	struct queue_due h = { 0 };
	size_t i, step, bad = 0;

	for (i = 0; i < N; i++)
		msgs[i].due_i = QUEUE_DUE_NONE;
	for (step = 0; step < 20000; step++) {
		i = next_rand() % N;
		switch (next_rand() % 4) {
		case 0:
		case 1:
			if (!in_heap[i])
				msgs[i].next_attempt = next_rand() % 100;
			queue_due_push(&h, &msgs[i]);	/* twice: no-op */
			in_heap[i] = true;
			break;
		case 2:
			queue_due_remove(&h, &msgs[i]);
			in_heap[i] = false;
			break;
		case 3:
			msgs[i].next_attempt = next_rand() % 100;
			queue_due_update(&h, &msgs[i]);
			break;
		}
		if (!heap_consistent(&h))
			bad++;
	}
	CHECK(bad == 0);
	/* Taking the first each time gives the due times in order. */
	{
		uint64_t last = 0;

		while (queue_due_first(&h) != NULL) {
			struct queue_msg *m = queue_due_first(&h);

			CHECK(m->next_attempt >= last);
			last = m->next_attempt;
			queue_due_remove(&h, m);
			in_heap[m - msgs] = false;
		}
	}
	CHECK(heap_consistent(&h));
	queue_due_free(&h);
}

static void
test_free_forgets_places(void)
{
	struct queue_due h = { 0 };
	size_t i;

	for (i = 0; i < 10; i++) {
		msgs[i].due_i = QUEUE_DUE_NONE;
		msgs[i].next_attempt = 10 - i;
		queue_due_push(&h, &msgs[i]);
	}
	CHECK(queue_due_first(&h) == &msgs[9]);
	queue_due_free(&h);
	for (i = 0; i < 10; i++)
		CHECK(msgs[i].due_i == QUEUE_DUE_NONE);
	CHECK(queue_due_first(&h) == NULL);
}

int
main(void)
{
	UNIT_RUN(test_random_steps);
	UNIT_RUN(test_free_forgets_places);
	return unit_finish();
}
