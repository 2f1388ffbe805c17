/*
 * Connection counts shared by all front processes: in all, and per client
 * address. Each worker owns one slot of counters in a shared anonymous
 * mapping made by the parent before fork; a check sums the slots, and the
 * parent clears the slot of a worker that died, so a crash never leaves
 * phantom connections that lock clients out.
 */
#ifndef TEGAMI_CONN_LIMIT_H
#define TEGAMI_CONN_LIMIT_H

#include <stdbool.h>
#include <sys/socket.h>

#define CONN_LIMIT_SLOTS 64		/* workers alive at once, at most */
#define CONN_LIMIT_BUCKETS 8192		/* per-address counters (hashed) */

/* Creates the shared table (parent, before fork). Fatal on failure. */
void conn_limit_init(void);
/* The parent: zero the counters of a slot whose worker has exited. */
void conn_limit_clear_slot(unsigned slot);
/* A worker: use this slot for its own counts. */
void conn_limit_set_slot(unsigned slot);

/*
 * Counts a new connection from addr unless that would exceed max_total in
 * all or max_per_ip from its address (IPv6 addresses count by /64).
 * Returns true when counted (call conn_limit_release later), false when
 * over a limit (nothing counted).
 */
bool conn_limit_acquire(const struct sockaddr *addr, unsigned max_total,
    unsigned max_per_ip);
void conn_limit_release(const struct sockaddr *addr);

#endif
