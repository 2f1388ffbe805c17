/*
 * The outbound connection cache: see queue_conncache.h.
 */
#include <sys/queue.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "queue/queue_conncache.h"
#include "core/log.h"
#include "core/util.h"

struct conn_entry {
	TAILQ_ENTRY(conn_entry) entry;
	struct queue_conncache *cache;
	struct smtp_client *client;
	struct event *idle_timer;
	char *key;
	uint64_t born;
	bool quitting;			/* QUIT sent: not to be taken */
};

TAILQ_HEAD(conn_list, conn_entry);

struct queue_conncache {
	struct event_base *base;
	struct conn_list conns;		/* the most recently kept last */
	size_t max_idle, max_idle_per_key;
};

struct queue_conncache *
queue_conncache_new(struct event_base *base, size_t max_idle,
    size_t max_idle_per_key)
{
	struct queue_conncache *cache = xcalloc(1, sizeof(*cache));

	cache->base = base;
	TAILQ_INIT(&cache->conns);
	cache->max_idle = max_idle;
	cache->max_idle_per_key = max_idle_per_key;
	return cache;
}

static void
entry_free(struct conn_entry *e)
{
	TAILQ_REMOVE(&e->cache->conns, e, entry);
	event_free(e->idle_timer);
	free(e->key);
	free(e);
}

void
queue_conncache_free(struct queue_conncache **cachep)
{
	struct queue_conncache *cache = *cachep;
	struct conn_entry *e;

	if (cache == NULL)
		return;
	while ((e = TAILQ_FIRST(&cache->conns)) != NULL) {
		smtp_client_cancel(e->client);
		entry_free(e);
	}
	free(cache);
	*cachep = NULL;
}

/* A string field of the key: its length first, so that no value can pass
 * for two fields. */
static void
key_add(char *key, size_t size, size_t *len, const char *s)
{
	int n;

	if (s == NULL)
		s = "";
	n = snprintf(key + *len, size - *len, "%zu:%s;", strlen(s), s);
	if (n < 0 || (size_t)n >= size - *len)
		*len = size - 1;
	else
		*len += (size_t)n;
}

void
queue_conncache_key(const struct smtp_client_params *p, char *key,
    size_t size)
{
	char policy[32], addr[SOCKADDR_TEXT_MAX];
	size_t len = 0;

	key[0] = '\0';
	key_add(key, size, &len, sockaddr_text(p->addr, addr, sizeof(addr)));
	key_add(key, size, &len, sockaddr_text(p->source, addr,
	    sizeof(addr)));
	key_add(key, size, &len, p->peer_name);
	key_add(key, size, &len, p->helo_name);
	snprintf(policy, sizeof(policy), "tls=%d/%d/%zu", (int)p->tls,
	    p->implicit_tls ? 1 : 0, p->n_tlsa);
	key_add(key, size, &len, policy);
	key_add(key, size, &len, p->auth_user);
}

struct smtp_client *
queue_conncache_take(struct queue_conncache *cache, const char *key,
    uint64_t *born_r)
{
	struct conn_entry *e;
	struct smtp_client *c;

	TAILQ_FOREACH_REVERSE(e, &cache->conns, conn_list, entry) {
		if (e->quitting || strcmp(e->key, key) != 0)
			continue;
		c = e->client;
		*born_r = e->born;
		entry_free(e);
		return c;
	}
	return NULL;
}

static void
entry_closed_cb(void *arg)
{
	struct conn_entry *e = arg;

	/* The client frees itself when this returns. */
	entry_free(e);
}

static void
entry_quit(struct conn_entry *e)
{
	e->quitting = true;
	evtimer_del(e->idle_timer);
	smtp_client_quit(e->client);
}

static void
entry_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	entry_quit(arg);
}

void
queue_conncache_put(struct queue_conncache *cache, const char *key,
    struct smtp_client *c, uint64_t born, uint64_t now)
{
	struct conn_entry *e = xcalloc(1, sizeof(*e)), *o;
	struct timeval tv = { .tv_sec = QUEUE_CONNCACHE_IDLE_SECS };
	size_t idle = 0, idle_key = 0;

	TAILQ_FOREACH(o, &cache->conns, entry) {
		if (o->quitting)
			continue;
		idle++;
		if (strcmp(o->key, key) == 0)
			idle_key++;
	}
	e->cache = cache;
	e->client = c;
	e->key = xstrdup(key);
	e->born = born;
	e->idle_timer = evtimer_new(cache->base, entry_idle_cb, e);
	if (e->idle_timer == NULL)
		fatalx("evtimer_new failed");
	TAILQ_INSERT_TAIL(&cache->conns, e, entry);
	smtp_client_park(c, entry_closed_cb, e);
	if (idle >= cache->max_idle || idle_key >= cache->max_idle_per_key ||
	    now >= born + QUEUE_CONNCACHE_LIFE_SECS) {
		entry_quit(e);
		return;
	}
	evtimer_add(e->idle_timer, &tv);
}
