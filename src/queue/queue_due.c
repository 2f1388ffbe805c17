/*
 * The due-time heap: see queue_due.h.
 */
#include <stdbool.h>
#include <stdlib.h>

#include "core/util.h"
#include "queue/queue_due.h"
#include "queue/queue_private.h"

static bool
due_before(const struct queue_msg *a, const struct queue_msg *b)
{
	return a->next_attempt < b->next_attempt;
}

static void
due_set(struct queue_due *h, size_t i, struct queue_msg *m)
{
	h->v[i] = m;
	m->due_i = i;
}

static void
due_sift_up(struct queue_due *h, size_t i)
{
	struct queue_msg *m = h->v[i];

	while (i > 0 && due_before(m, h->v[(i - 1) / 2])) {
		due_set(h, i, h->v[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	due_set(h, i, m);
}

static void
due_sift_down(struct queue_due *h, size_t i)
{
	struct queue_msg *m = h->v[i];
	size_t c;

	while ((c = 2 * i + 1) < h->n) {
		if (c + 1 < h->n && due_before(h->v[c + 1], h->v[c]))
			c++;
		if (!due_before(h->v[c], m))
			break;
		due_set(h, i, h->v[c]);
		i = c;
	}
	due_set(h, i, m);
}

void
queue_due_push(struct queue_due *h, struct queue_msg *m)
{
	if (m->due_i != QUEUE_DUE_NONE)
		return;
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 64;
		h->v = xreallocarray(h->v, h->cap, sizeof(*h->v));
	}
	due_set(h, h->n++, m);
	due_sift_up(h, h->n - 1);
}

void
queue_due_remove(struct queue_due *h, struct queue_msg *m)
{
	size_t i = m->due_i;
	struct queue_msg *last;

	if (i == QUEUE_DUE_NONE)
		return;
	m->due_i = QUEUE_DUE_NONE;
	last = h->v[--h->n];
	if (i == h->n)
		return;
	due_set(h, i, last);
	queue_due_update(h, last);
}

void
queue_due_update(struct queue_due *h, struct queue_msg *m)
{
	size_t i = m->due_i;

	if (i == QUEUE_DUE_NONE)
		return;
	if (i > 0 && due_before(m, h->v[(i - 1) / 2]))
		due_sift_up(h, i);
	else
		due_sift_down(h, i);
}

struct queue_msg *
queue_due_first(const struct queue_due *h)
{
	return h->n > 0 ? h->v[0] : NULL;
}

void
queue_due_free(struct queue_due *h)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		h->v[i]->due_i = QUEUE_DUE_NONE;
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}
