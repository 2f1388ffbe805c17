/*
 * Shared connection counters; see conn_limit.h for the slot scheme.
 * Addresses are hashed into buckets: two addresses that share a bucket
 * share a limit, which errs on the side of refusing, never of allowing.
 */
#include "net/conn_limit.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "core/log.h"

struct conn_limit_slot {
	atomic_uint total;
	atomic_uint per_bucket[CONN_LIMIT_BUCKETS];
};

static struct conn_limit_slot *conn_slots;
static unsigned conn_my_slot;

void
conn_limit_init(void)
{
	conn_slots = mmap(NULL, sizeof(*conn_slots) * CONN_LIMIT_SLOTS,
	    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (conn_slots == MAP_FAILED)
		fatal("mmap connection counters");
}

void
conn_limit_clear_slot(unsigned slot)
{
	if (conn_slots != NULL && slot < CONN_LIMIT_SLOTS)
		memset(&conn_slots[slot], 0, sizeof(conn_slots[slot]));
}

void
conn_limit_set_slot(unsigned slot)
{
	conn_my_slot = slot < CONN_LIMIT_SLOTS ? slot : 0;
}

static unsigned
conn_bucket(const struct sockaddr *addr)
{
	const unsigned char *p;
	size_t n, i;
	uint32_t h = 2166136261u;	/* FNV-1a */

	if (addr->sa_family == AF_INET) {
		p = (const unsigned char *)
		    &((const struct sockaddr_in *)addr)->sin_addr;
		n = 4;
	} else if (addr->sa_family == AF_INET6) {
		p = (const unsigned char *)
		    &((const struct sockaddr_in6 *)addr)->sin6_addr;
		n = 8;	/* one /64 is one client */
	} else
		return 0;
	for (i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h % CONN_LIMIT_BUCKETS;
}

bool
conn_limit_acquire(const struct sockaddr *addr, unsigned max_total,
    unsigned max_per_ip)
{
	unsigned b = conn_bucket(addr), total = 0, ip = 0, i;
	struct conn_limit_slot *mine;

	if (conn_slots == NULL)
		return true;
	for (i = 0; i < CONN_LIMIT_SLOTS; i++) {
		total += atomic_load(&conn_slots[i].total);
		ip += atomic_load(&conn_slots[i].per_bucket[b]);
	}
	if (total >= max_total || ip >= max_per_ip)
		return false;
	mine = &conn_slots[conn_my_slot];
	atomic_fetch_add(&mine->total, 1);
	atomic_fetch_add(&mine->per_bucket[b], 1);
	return true;
}

void
conn_limit_release(const struct sockaddr *addr)
{
	struct conn_limit_slot *mine;
	unsigned b = conn_bucket(addr);

	if (conn_slots == NULL)
		return;
	mine = &conn_slots[conn_my_slot];
	if (atomic_load(&mine->total) > 0)
		atomic_fetch_sub(&mine->total, 1);
	if (atomic_load(&mine->per_bucket[b]) > 0)
		atomic_fetch_sub(&mine->per_bucket[b], 1);
}
