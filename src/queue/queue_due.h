/*
 * The queue's waiting messages in order of their next attempt: a binary
 * min-heap on queue_msg.next_attempt, each message knowing its place
 * (due_i), so that finding the due ones costs O(log n) per message
 * started rather than a walk over every message in the queue, which
 * matters when a destination has been down for days and 100,000
 * messages wait while new mail keeps coming.
 */
#ifndef TEGAMI_QUEUE_DUE_H
#define TEGAMI_QUEUE_DUE_H

#include <stddef.h>
#include <stdint.h>

struct queue_msg;

#define QUEUE_DUE_NONE ((size_t)-1)	/* due_i of a message not in it */

struct queue_due {
	struct queue_msg **v;
	size_t n, cap;
};

/* Adds m (not in the heap) at its next_attempt. */
void queue_due_push(struct queue_due *h, struct queue_msg *m);
/* Takes m out, if it is in. */
void queue_due_remove(struct queue_due *h, struct queue_msg *m);
/* m->next_attempt changed: m moves to its new place (if it is in). */
void queue_due_update(struct queue_due *h, struct queue_msg *m);
/* The message due first, or NULL. */
struct queue_msg *queue_due_first(const struct queue_due *h);
void queue_due_free(struct queue_due *h);

#endif
