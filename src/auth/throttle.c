/*
 * The password-guessing throttle: failure counts per client network and per
 * account, and the known (network, account) pairs, in one hash table with
 * typed keys and a hard bound on its entries. A network is an IPv6 /64
 * (RFC 4291 2.5.4: one interface's prefix) or an IPv4 address, IPv4-mapped
 * addresses (2.5.5.2) included.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/accounts.h"
#include "auth/throttle.h"
#include "core/util.h"

_Static_assert(THROTTLE_ACCOUNT_MAX >= ACCOUNT_ADDRESS_MAX,
    "every account must have a key of its own");
_Static_assert(THROTTLE_KEY_MAX >= INET_ADDRSTRLEN &&
    THROTTLE_KEY_MAX >= INET6_ADDRSTRLEN + 3, "a /64 must fit a key");

#define BUCKETS_MIN 64
/* A kind byte, the network, a NUL between the two, the account. */
#define KEY_BYTES_MAX (1 + (THROTTLE_KEY_MAX - 1) + 1 + THROTTLE_ACCOUNT_MAX)
_Static_assert(KEY_BYTES_MAX <= UINT16_MAX, "keylen is 16 bits");

enum entry_kind {
	KIND_NETWORK = 'n',
	KIND_ACCOUNT = 'a',
	KIND_PAIR = 'p',
};

/* The age lists eviction takes from, each newest first. */
enum entry_list {
	LIST_COUNTING,		/* failure records below their limit */
	LIST_LOCKED,		/* failure records at their limit */
	LIST_PAIRS,		/* known pairs, by last success */
	LIST_COUNT
};

enum record_state {
	RECORD_EMPTY,		/* nothing within the window: forget it */
	RECORD_COUNTING,
	RECORD_LOCKED,
};

struct throttle_entry {
	struct throttle_entry	*hnext;		/* hash chain */
	struct throttle_entry	*newer, *older;	/* its age list */
	uint64_t		 hash;
	uint64_t		 first_ms;	/* window start; pair: success */
	uint64_t		 last_ms;	/* the latest failure */
	uint64_t		 lock_ms;	/* when the limit was reached */
	unsigned		 count;		/* failures in the window */
	bool			 locked;	/* lock_ms is set */
	unsigned char		 list;
	uint16_t		 keylen;
	unsigned char		 key[];		/* kind byte first */
};

struct age_list {
	struct throttle_entry	*newest, *oldest;
	size_t			 n;
};

struct throttle {
	struct throttle_config	  cfg;
	struct throttle_entry	**buckets;
	size_t			  nbuckets;	/* a power of 2 */
	size_t			  entries;
	struct age_list		  lists[LIST_COUNT];
	uint64_t		  seed[2];
	uint64_t		  now_ms;	/* the latest time seen */
};

struct key {
	unsigned char	b[KEY_BYTES_MAX];
	size_t		len;
	uint64_t	hash;
};

/*
 * SipHash-2-4 (Aumasson and Bernstein), keyed with random bits: account
 * names come from the client, and an unkeyed hash would let it pile them
 * into one chain. Written out here as Redis and Linux do, because OpenSSL's
 * EVP_MAC allocates a context for every call.
 */
#define ROTL64(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do {							\
	v0 += v1; v1 = ROTL64(v1, 13); v1 ^= v0; v0 = ROTL64(v0, 32);	\
	v2 += v3; v3 = ROTL64(v3, 16); v3 ^= v2;			\
	v0 += v3; v3 = ROTL64(v3, 21); v3 ^= v0;			\
	v2 += v1; v1 = ROTL64(v1, 17); v1 ^= v2; v2 = ROTL64(v2, 32);	\
} while (0)

static uint64_t
siphash24(const uint64_t k[2], const unsigned char *in, size_t len)
{
	uint64_t	v0 = 0x736f6d6570736575ULL ^ k[0];
	uint64_t	v1 = 0x646f72616e646f6dULL ^ k[1];
	uint64_t	v2 = 0x6c7967656e657261ULL ^ k[0];
	uint64_t	v3 = 0x7465646279746573ULL ^ k[1];
	uint64_t	m, b = (uint64_t)len << 56;
	size_t		i, left = len & 7;
	const unsigned char *end = in + (len - left);

	for (; in != end; in += 8) {
		for (m = 0, i = 0; i < 8; i++)
			m |= (uint64_t)in[i] << (8 * i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (i = 0; i < left; i++)
		b |= (uint64_t)in[i] << (8 * i);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* Time since then; 0 if the caller's clock went backwards. */
static uint64_t
elapsed(uint64_t now_ms, uint64_t then_ms)
{
	return now_ms > then_ms ? now_ms - then_ms : 0;
}

static void
key_make(const struct throttle *t, struct key *k, int kind,
    const char *ip_key, const char *account)
{
	size_t n;

	if (ip_key == NULL)
		ip_key = "";
	if (account == NULL)
		account = "";
	k->len = 0;
	k->b[k->len++] = (unsigned char)kind;
	if (kind != KIND_ACCOUNT) {
		n = strnlen(ip_key, THROTTLE_KEY_MAX - 1);
		memcpy(k->b + k->len, ip_key, n);
		k->len += n;
	}
	if (kind == KIND_PAIR)
		k->b[k->len++] = '\0';	/* ip_key holds none */
	if (kind != KIND_NETWORK) {
		n = strnlen(account, THROTTLE_ACCOUNT_MAX);
		memcpy(k->b + k->len, account, n);
		k->len += n;
	}
	k->hash = siphash24(t->seed, k->b, k->len);
}

static void
list_unlink(struct throttle *t, struct throttle_entry *e)
{
	struct age_list *l = &t->lists[e->list];

	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		l->newest = e->older;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		l->oldest = e->newer;
	e->newer = e->older = NULL;
	l->n--;
}

static void
list_push(struct throttle *t, struct throttle_entry *e, enum entry_list list)
{
	struct age_list *l = &t->lists[list];

	e->list = (unsigned char)list;
	e->newer = NULL;
	e->older = l->newest;
	if (l->newest != NULL)
		l->newest->newer = e;
	else
		l->oldest = e;
	l->newest = e;
	l->n++;
}

/* Makes e the newest of list (which may be another list than its own). */
static void
entry_touch(struct throttle *t, struct throttle_entry *e, enum entry_list list)
{
	list_unlink(t, e);
	list_push(t, e, list);
}

static struct throttle_entry *
entry_find(const struct throttle *t, const struct key *k)
{
	struct throttle_entry *e;

	if (t->buckets == NULL)
		return NULL;
	for (e = t->buckets[k->hash & (t->nbuckets - 1)]; e != NULL;
	    e = e->hnext)
		if (e->hash == k->hash && e->keylen == k->len &&
		    memcmp(e->key, k->b, k->len) == 0)
			return e;
	return NULL;
}

static void
entry_free(struct throttle *t, struct throttle_entry *e)
{
	struct throttle_entry **pp;

	for (pp = &t->buckets[e->hash & (t->nbuckets - 1)]; *pp != e;
	    pp = &(*pp)->hnext)
		;
	*pp = e->hnext;
	list_unlink(t, e);
	t->entries--;
	free(e);
}

static unsigned
record_limit(const struct throttle *t, const struct throttle_entry *e)
{
	return e->key[0] == KIND_NETWORK ? t->cfg.ip_limit :
	    t->cfg.account_limit;
}

/*
 * Where a failure record stands at now under the limits in force. A limit
 * lowered past the count locks from the latest failure, so even then the
 * lock-out ends at most a window after a failure that caused it.
 */
static enum record_state
record_state(const struct throttle *t, const struct throttle_entry *e,
    uint64_t now_ms)
{
	unsigned	limit = record_limit(t, e);
	uint64_t	since;

	if (limit != 0 && e->count >= limit) {
		since = e->locked ? e->lock_ms : e->last_ms;
		return elapsed(now_ms, since) < t->cfg.window_ms ?
		    RECORD_LOCKED : RECORD_EMPTY;
	}
	return e->count > 0 && elapsed(now_ms, e->first_ms) <
	    t->cfg.window_ms ? RECORD_COUNTING : RECORD_EMPTY;
}

/* record_state, made to stick: the lock-out start, and the age list. */
static enum record_state
record_update(struct throttle *t, struct throttle_entry *e, uint64_t now_ms)
{
	enum record_state st = record_state(t, e, now_ms);

	switch (st) {
	case RECORD_LOCKED:
		if (!e->locked) {
			e->locked = true;
			e->lock_ms = e->last_ms;
		}
		entry_touch(t, e, LIST_LOCKED);
		break;
	case RECORD_COUNTING:
		e->locked = false;	/* a limit was raised */
		entry_touch(t, e, LIST_COUNTING);
		break;
	case RECORD_EMPTY:
		e->count = 0;
		e->locked = false;
		break;
	}
	return st;
}

static bool
entry_expired(const struct throttle *t, const struct throttle_entry *e,
    uint64_t now_ms)
{
	if (e->key[0] == KIND_PAIR)
		return elapsed(now_ms, e->first_ms) >= THROTTLE_KNOWN_PAIR_MS;
	return record_state(t, e, now_ms) == RECORD_EMPTY;
}

/* The oldest entry of a list other than keep. */
static struct throttle_entry *
list_oldest(const struct throttle *t, enum entry_list list,
    const struct throttle_entry *keep)
{
	struct throttle_entry *e = t->lists[list].oldest;

	return e != NULL && e == keep ? e->newer : e;
}

/*
 * Frees one entry to make room for one of the kind wanted: an expired one
 * if an age list ends in one, else the oldest of the class (failure
 * records or known pairs) that holds more than half the table counting
 * the newcomer. Returns false when only keep is left.
 */
static bool
entry_evict(struct throttle *t, const struct throttle_entry *keep,
    bool for_pair, uint64_t now_ms)
{
	struct throttle_entry	*oldest[LIST_COUNT], *victim = NULL;
	size_t			 pairs;
	int			 i;

	for (i = 0; i < LIST_COUNT; i++) {
		oldest[i] = list_oldest(t, i, keep);
		if (victim == NULL && oldest[i] != NULL &&
		    entry_expired(t, oldest[i], now_ms))
			victim = oldest[i];
	}
	pairs = t->lists[LIST_PAIRS].n + (for_pair ? 1 : 0);
	if (victim == NULL && pairs > t->cfg.max_entries / 2)
		victim = oldest[LIST_PAIRS];
	for (i = 0; victim == NULL && i < LIST_COUNT; i++)
		victim = oldest[i];
	if (victim == NULL)
		return false;
	entry_free(t, victim);
	return true;
}

static void
buckets_grow(struct throttle *t)
{
	struct throttle_entry	**nb, *e, *next;
	size_t			  n, i;

	n = t->nbuckets == 0 ? BUCKETS_MIN : t->nbuckets * 2;
	nb = xcalloc(n, sizeof(*nb));
	for (i = 0; i < t->nbuckets; i++)
		for (e = t->buckets[i]; e != NULL; e = next) {
			next = e->hnext;
			e->hnext = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	free(t->buckets);
	t->buckets = nb;
	t->nbuckets = n;
}

/* A new entry for k, newest of list; NULL when there is no room for it. */
static struct throttle_entry *
entry_new(struct throttle *t, const struct key *k, enum entry_list list,
    const struct throttle_entry *keep, uint64_t now_ms)
{
	struct throttle_entry *e, **b;

	while (t->entries >= t->cfg.max_entries)
		if (!entry_evict(t, keep, list == LIST_PAIRS, now_ms))
			return NULL;
	if (t->entries >= t->nbuckets)
		buckets_grow(t);
	e = xcalloc(1, sizeof(*e) + k->len);
	e->hash = k->hash;
	e->keylen = (uint16_t)k->len;
	memcpy(e->key, k->b, k->len);
	b = &t->buckets[k->hash & (t->nbuckets - 1)];
	e->hnext = *b;
	*b = e;
	list_push(t, e, list);
	t->entries++;
	return e;
}

/* Counts a failure in the record for k; returns it, or NULL if no room. */
static struct throttle_entry *
record_failure(struct throttle *t, const struct key *k,
    const struct throttle_entry *keep, uint64_t now_ms)
{
	struct throttle_entry	*e;
	unsigned		 limit;

	if ((e = entry_find(t, k)) == NULL) {
		if ((e = entry_new(t, k, LIST_COUNTING, keep, now_ms)) == NULL)
			return NULL;
	} else
		(void)record_update(t, e, now_ms);
	if (e->count == 0)
		e->first_ms = now_ms;
	if (e->count < UINT_MAX)
		e->count++;
	e->last_ms = now_ms;
	limit = record_limit(t, e);
	/* Failures during a lock-out (a known pair's) do not extend it. */
	if (!e->locked && limit != 0 && e->count >= limit) {
		e->locked = true;
		e->lock_ms = now_ms;
	}
	entry_touch(t, e, e->locked ? LIST_LOCKED : LIST_COUNTING);
	return e;
}

/*
 * The failure record for k as it stands at now: NULL when there is none
 * or it held nothing more (then it is freed).
 */
static struct throttle_entry *
record_current(struct throttle *t, const struct key *k, uint64_t now_ms)
{
	struct throttle_entry *e;

	if ((e = entry_find(t, k)) == NULL)
		return NULL;
	if (record_update(t, e, now_ms) == RECORD_EMPTY) {
		entry_free(t, e);
		return NULL;
	}
	return e;
}

static uint64_t
record_retry_after(const struct throttle *t, const struct throttle_entry *e,
    uint64_t now_ms)
{
	return t->cfg.window_ms - elapsed(now_ms, e->lock_ms);
}

/* For throttle_set_config, which is not told the time. */
static void
throttle_clock(struct throttle *t, uint64_t now_ms)
{
	if (now_ms > t->now_ms)
		t->now_ms = now_ms;
}

struct throttle *
throttle_new(const struct throttle_config *cfg)
{
	struct throttle *t;

	t = xcalloc(1, sizeof(*t));
	t->cfg = *cfg;
	random_bytes(t->seed, sizeof(t->seed));
	return t;
}

void
throttle_free(struct throttle **tp)
{
	struct throttle *t = *tp;
	int i;

	if (t == NULL)
		return;
	for (i = 0; i < LIST_COUNT; i++)
		while (t->lists[i].oldest != NULL)
			entry_free(t, t->lists[i].oldest);
	free(t->buckets);
	free(t);
	*tp = NULL;
}

void
throttle_set_config(struct throttle *t, const struct throttle_config *cfg)
{
	t->cfg = *cfg;
	/* A smaller table: shrink now, expired entries first. */
	while (t->entries > t->cfg.max_entries)
		if (!entry_evict(t, NULL, false, t->now_ms))
			break;
}

char *
throttle_ip_key(const char *ip, char *key, size_t keysize)
{
	struct in_addr	a4;
	struct in6_addr	a6;
	char		text[INET6_ADDRSTRLEN], host[INET6_ADDRSTRLEN];
	const char	*pct;
	size_t		n;

	if (keysize == 0)
		return key;
	if (ip == NULL)
		ip = "";
	/* A link-local address may carry its zone ("fe80::1%eth0"). */
	n = (pct = strchr(ip, '%')) != NULL ? (size_t)(pct - ip) : strlen(ip);
	if (n < sizeof(host)) {
		memcpy(host, ip, n);
		host[n] = '\0';
	} else
		host[0] = '\0';
	if (inet_pton(AF_INET, ip, &a4) == 1 &&
	    inet_ntop(AF_INET, &a4, text, sizeof(text)) != NULL) {
		snprintf(key, keysize, "%s", text);
	} else if (inet_pton(AF_INET6, host, &a6) == 1) {
		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			memcpy(&a4, &a6.s6_addr[12], sizeof(a4));
			if (inet_ntop(AF_INET, &a4, text, sizeof(text)) == NULL)
				text[0] = '\0';
			snprintf(key, keysize, "%s", text);
		} else {
			/* One /64 is one client: it gets 2^64 addresses. */
			memset(&a6.s6_addr[8], 0, 8);
			if (inet_ntop(AF_INET6, &a6, text, sizeof(text)) ==
			    NULL)
				text[0] = '\0';
			snprintf(key, keysize, "%s/64", text);
		}
	} else
		snprintf(key, keysize, "%s", ip);
	return key;
}

enum throttle_verdict
throttle_check(struct throttle *t, const char *ip_key, const char *account,
    uint64_t now_ms, uint64_t *retry_after_ms_r)
{
	struct throttle_entry	*net, *acct, *pair;
	struct key		 k;

	if (retry_after_ms_r != NULL)
		*retry_after_ms_r = 0;
	throttle_clock(t, now_ms);
	key_make(t, &k, KIND_NETWORK, ip_key, NULL);
	net = record_current(t, &k, now_ms);
	if (net != NULL && net->locked) {
		if (retry_after_ms_r != NULL)
			*retry_after_ms_r = record_retry_after(t, net, now_ms);
		return THROTTLE_REFUSE_IP;
	}
	key_make(t, &k, KIND_ACCOUNT, NULL, account);
	acct = record_current(t, &k, now_ms);
	if (acct == NULL || !acct->locked)
		return THROTTLE_ALLOW;
	key_make(t, &k, KIND_PAIR, ip_key, account);
	if ((pair = entry_find(t, &k)) != NULL) {
		if (!entry_expired(t, pair, now_ms))
			return THROTTLE_ALLOW;
		entry_free(t, pair);
	}
	if (retry_after_ms_r != NULL)
		*retry_after_ms_r = record_retry_after(t, acct, now_ms);
	return THROTTLE_REFUSE_ACCOUNT;
}

unsigned
throttle_failure(struct throttle *t, const char *ip_key, const char *account,
    uint64_t now_ms)
{
	struct throttle_entry	*net;
	struct key		 k;
	unsigned		 n;
	uint64_t		 delay;

	throttle_clock(t, now_ms);
	key_make(t, &k, KIND_NETWORK, ip_key, NULL);
	net = record_failure(t, &k, NULL, now_ms);
	key_make(t, &k, KIND_ACCOUNT, NULL, account);
	(void)record_failure(t, &k, net, now_ms);

	n = net != NULL ? net->count : 1;
	if (t->cfg.base_delay_ms == 0)
		delay = 0;
	else if (n - 1 >= 32)
		delay = t->cfg.max_delay_ms;
	else
		delay = (uint64_t)t->cfg.base_delay_ms << (n - 1);
	return delay < t->cfg.max_delay_ms ? (unsigned)delay :
	    t->cfg.max_delay_ms;
}

void
throttle_success(struct throttle *t, const char *ip_key, const char *account,
    uint64_t now_ms)
{
	struct throttle_entry	*e;
	struct key		 k;

	throttle_clock(t, now_ms);
	key_make(t, &k, KIND_NETWORK, ip_key, NULL);
	if ((e = entry_find(t, &k)) != NULL)
		entry_free(t, e);
	key_make(t, &k, KIND_PAIR, ip_key, account);
	if ((e = entry_find(t, &k)) != NULL)
		entry_touch(t, e, LIST_PAIRS);
	else if ((e = entry_new(t, &k, LIST_PAIRS, NULL, now_ms)) == NULL)
		return;
	e->first_ms = now_ms;
}

size_t
throttle_entries(const struct throttle *t)
{
	return t->entries;
}
