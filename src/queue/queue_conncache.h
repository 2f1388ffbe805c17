/*
 * Idle outbound SMTP connections kept for the next message to the same
 * server, as Postfix's connection cache (scache) does: a flush of many
 * messages to one MX host or smarthost then pays for one TCP connection,
 * one TLS handshake and one AUTH per connection rather than per message.
 *
 * A connection is filed under a key that says everything it was opened
 * with (address, source, host name, TLS policy, AUTH user): only a
 * delivery that would open exactly the same connection takes it. An idle
 * connection is closed with QUIT after QUEUE_CONNCACHE_IDLE_SECS, and
 * none is used again after QUEUE_CONNCACHE_LIFE_SECS (RFC 5321 4.5.3.2
 * lets a server drop a client idle for 5 minutes; Postfix's defaults are
 * 2 s and 300 s). The number kept is bounded in all and per key.
 */
#ifndef TEGAMI_QUEUE_CONNCACHE_H
#define TEGAMI_QUEUE_CONNCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "smtp/smtp_client.h"

#define QUEUE_CONNCACHE_IDLE_SECS 2
#define QUEUE_CONNCACHE_LIFE_SECS 300
#define QUEUE_CONNCACHE_KEY_MAX 1400

struct event_base;
struct queue_conncache;

struct queue_conncache *queue_conncache_new(struct event_base *base,
    size_t max_idle, size_t max_idle_per_key);
/* Closes every connection at once (no QUIT) and frees the cache. */
void queue_conncache_free(struct queue_conncache **cache);

/* The key of the connection params would open. */
void queue_conncache_key(const struct smtp_client_params *p, char *key,
    size_t size);

/*
 * An idle connection filed under key, now the caller's (for
 * smtp_client_next), with the time it was opened in *born_r; NULL when
 * there is none.
 */
struct smtp_client *queue_conncache_take(struct queue_conncache *cache,
    const char *key, uint64_t *born_r);

/*
 * c has just reported a reusable result: it is kept under key, or closed
 * with QUIT when the cache is full or the connection, opened at born
 * (seconds, queue_now()), is too old.
 */
void queue_conncache_put(struct queue_conncache *cache, const char *key,
    struct smtp_client *c, uint64_t born, uint64_t now);

#endif
