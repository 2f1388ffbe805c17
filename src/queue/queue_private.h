/*
 * What the parts of the queue process share: queue_server.c (the process,
 * finding messages, scheduling), queue_attempt.c (one delivery attempt of
 * one message: routes, DNS, SMTP client, outcomes) and queue_store.c
 * (local delivery, new messages such as bounces, removal).
 */
#ifndef TEGAMI_QUEUE_PRIVATE_H
#define TEGAMI_QUEUE_PRIVATE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <event2/util.h>
#include <openssl/ssl.h>

#include "queue/queue_due.h"
#include "queue/queue_envelope.h"
#include "queue/queue_routes.h"

struct event_base;
struct event;
struct tegami_config;
struct account_table;
struct dns_resolver;
struct queue_attempt;

/* A message in queue/, as the scheduler knows it. */
struct queue_msg {
	TAILQ_ENTRY(queue_msg) entry;
	char id[17];
	uint64_t next_attempt;		/* Unix seconds; 0: now */
	struct queue_attempt *attempt;	/* running, or NULL */
	bool gone;			/* files removed: free when idle */
	struct queue_msg *id_next;	/* in qs->by_id's chain */
	size_t due_i;			/* in qs->due (queue_due.h) while
					 * waiting; QUEUE_DUE_NONE while an
					 * attempt runs */
};

TAILQ_HEAD(queue_msg_list, queue_msg);

/* A domain job waiting for a connection slot. */
struct queue_wait {
	TAILQ_ENTRY(queue_wait) entry;
	void (*start)(void *arg);
	void *arg;
	char domain[256];
};

TAILQ_HEAD(queue_wait_list, queue_wait);

struct queue_server {
	struct event_base *base;
	const char *config_path;
	struct tegami_config *cfg;
	struct account_table *accounts;	/* from the auth process */
	char queue_dir[PATH_MAX];
	char incoming_dir[PATH_MAX];
	char mail_root[PATH_MAX];
	struct dns_resolver *dns;
	SSL_CTX *tls_ctx;		/* outbound, system trust store */
	/* The listen address when it is one address (not 0.0.0.0 or ::):
	 * outbound connections of its family come from it. */
	struct sockaddr_storage source;
	socklen_t source_len;		/* 0: none */
	char *relay_user, *relay_password;
	/* routes_file: never NULL once started (empty without a file);
	 * replaced whole when the file changes and parses. */
	struct queue_routes *routes;
	struct queue_routes *routes_start;	/* as read at start, as root:
						 * credentials that later reads
						 * cannot open (may be routes) */
	struct queue_routes_stamp routes_stamp;
	uid_t user_uid;			/* may own credential files */
	struct queue_msg_list msgs;
	size_t n_msgs;
	/* The same messages by id (chained hash, a power of two of
	 * chains) and the waiting ones by due time: a queue of 100,000
	 * must not cost a walk over all of them per lookup or per start. */
	struct queue_msg **by_id;
	size_t by_id_size;
	struct queue_due due;
	unsigned connections;		/* outbound sessions open */
	/* Attempts in flight, each holding its message file and envelope:
	 * at most QUEUE_ATTEMPTS_MAX, the other due messages wait their
	 * turn (a flush of thousands must not run out of descriptors). */
	unsigned attempts;
	bool attempts_capped;		/* some due message is waiting */
	struct event *kick;		/* starts due messages at once */
	struct queue_wait_list waiting;
	bool stopping;
	struct queue_pickup *pickup;	/* queue_pickup.c's state */
	struct queue_control *control;	/* queue_control.c's state */
	/* Idle outbound sessions; freed (NULL) only once every attempt is
	 * cancelled, so an attempt always finds it. */
	struct queue_conncache *conncache;
	/* Removals of finished messages share one fsync of queue/ within
	 * QUEUE_DIR_SYNC_MS (queue_store.c). */
	struct event *dir_sync;
};

/* queue_server.c */
uint64_t queue_now(void);
/* A connection slot for domain: start(arg) runs now or when one frees. */
void queue_slot_acquire(struct queue_server *qs, const char *domain,
    struct queue_wait *w, void (*start)(void *arg), void *arg);
void queue_slot_release(struct queue_server *qs, const char *domain);
/* Starts the due messages now rather than at the next tick (a new
 * message, a flush, a free place among the attempts). */
void queue_kick(struct queue_server *qs);
/* Drops a waiting job (its attempt is being freed). */
void queue_slot_cancel(struct queue_server *qs, struct queue_wait *w);
/* The scheduler learns a message (new file, bounce, scan). */
void queue_msg_add(struct queue_server *qs, const char *id,
    uint64_t next_attempt);

/* The message with this id, or NULL. */
struct queue_msg *queue_msg_lookup(struct queue_server *qs, const char *id);
/* Forgets m (its files are gone or being removed); m must be idle. */
void queue_msg_forget(struct queue_server *qs, struct queue_msg *m);
/* m is due now (a flush); a running attempt is not disturbed. */
void queue_msg_due_now(struct queue_server *qs, struct queue_msg *m);
/* `queue flush` and SIGUSR1: every message due now, queue/ scanned for
 * any not known yet, and the due ones started. */
void queue_flush_all(struct queue_server *qs);

/*
 * queue_pickup.c: the local submission socket of `tegami sendmail`
 * (STATE/run/pickup): messages handed over there are made durable in
 * queue/ like any other, then delivered. Started once the process runs
 * as its user; -1 with err when it cannot be.
 */
int queue_pickup_start(struct queue_server *qs, char *err, size_t errsize);
void queue_pickup_stop(struct queue_server *qs);

/*
 * queue_control.c: the control socket of `tegami queue flush|delete|
 * bounce` (STATE/run/queue-control, root and user only).
 */
int queue_control_start(struct queue_server *qs, char *err, size_t errsize);
void queue_control_stop(struct queue_server *qs);

/* queue_attempt.c */
/* Starts delivering m; calls queue_attempt_finished when done. */
void queue_attempt_start(struct queue_server *qs, struct queue_msg *m);
void queue_attempt_cancel(struct queue_attempt *a);
void queue_attempt_finished(struct queue_server *qs, struct queue_msg *m,
    uint64_t next_attempt, bool gone);

/* queue_store.c */
/*
 * Delivers the content of queue/ID.msg to a local address (resolved
 * through users, aliases and +tags). Remote targets an alias names are
 * returned in *remote_r (malloc'd array of malloc'd strings). Returns
 * 0, or -1 with a permanent (5.x.x) or temporary reason in *status_r and
 * diag.
 */
int queue_deliver_local(struct queue_server *qs, const char *id,
    const char *address, char ***remote_r, size_t *n_remote_r,
    char status_r[16], char *diag, size_t diagsize);

/*
 * Queues a new message: content (with its trace headers already), the
 * envelope env (queue_id made here unless it holds a valid one), all
 * made durable before it
 * returns 0. -1 with errno on failure.
 */
int queue_inject(struct queue_server *qs, const char *content, size_t len,
    struct queue_envelope *env);

/*
 * Removes ID.env and ID.msg. sync_now: queue/ is fsync'd before this
 * returns (`queue delete` replies after it). Otherwise the fsync comes
 * within QUEUE_DIR_SYNC_MS, shared with the other removals of that time:
 * a removal lost in a crash only repeats a delivery (docs/queue.md, the
 * duplicate window), and a flush of thousands of messages does not pay
 * one fsync each.
 */
#define QUEUE_DIR_SYNC_MS 10
void queue_remove(struct queue_server *qs, const char *id, bool sync_now);
/* The fsync a removal asked for, now if it is still to come (at exit). */
void queue_dir_sync_flush(struct queue_server *qs);
/* dir_sync's callback. */
void queue_dir_sync_cb(evutil_socket_t fd, short what, void *arg);

/* The size of ID.msg, and the offset where content for another MTA
 * starts (after our own Return-Path: line). -1 if unreadable. */
int queue_msg_open(struct queue_server *qs, const char *id, uint64_t *size_r,
    uint64_t *offset_r);

#endif
