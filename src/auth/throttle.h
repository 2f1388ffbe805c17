/*
 * Password-guessing throttle of the auth process: failed logins counted
 * per client network (an IPv4 address, an IPv6 /64) and per account within
 * a window. Each failure costs the client a growing delay; past a limit
 * the client or the account is refused for a while without a password
 * check at all. Pure bookkeeping: the caller passes the time, and memory
 * is bounded by max_entries whatever the attacker does.
 */
#ifndef TEGAMI_THROTTLE_H
#define TEGAMI_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct throttle_config {
	uint64_t window_ms;	/* failures older than this are forgotten */
	unsigned ip_limit;	/* failures per client network in a window */
	unsigned account_limit;	/* failures per account in a window */
	unsigned base_delay_ms;	/* the delay after a first failure */
	unsigned max_delay_ms;	/* the delay never grows beyond this */
	size_t max_entries;	/* networks + accounts + known pairs kept */
};
/*
 * A limit of 0 means no limit of that kind; max_entries 0 keeps nothing
 * (no throttling at all). When the table is full, expired entries go
 * first, then the least recently used: failure records below their limit
 * before lock-outs, and known pairs only beyond half the table while
 * failure records want room (or the other way round), so that neither a
 * flood of networks nor one of logins pushes the other out entirely.
 */

/* How long a (network, account) pair that logged in stays known. */
#define THROTTLE_KNOWN_PAIR_MS ((uint64_t)30 * 24 * 60 * 60 * 1000)
/*
 * Bytes of an account name that count (ACCOUNT_ADDRESS_MAX): a longer
 * name, which cannot be an account, counts as its first
 * THROTTLE_ACCOUNT_MAX bytes, and an ip_key as its first
 * THROTTLE_KEY_MAX - 1, so that every entry's size is bounded.
 */
#define THROTTLE_ACCOUNT_MAX 320

struct throttle;

struct throttle *throttle_new(const struct throttle_config *cfg);
void throttle_free(struct throttle **tp);
/* New limits (on reload); the counts so far are kept. */
void throttle_set_config(struct throttle *t, const struct throttle_config *cfg);

/*
 * The key that counts for a client address given as text: an IPv4 address
 * itself, an IPv6 address's /64 ("2001:db8:1:2::/64"), an IPv4-mapped IPv6
 * address as IPv4. Unparsable text is used as it is. Writes at most
 * keysize bytes with the NUL; returns key.
 */
#define THROTTLE_KEY_MAX 64
char *throttle_ip_key(const char *ip, char *key, size_t keysize);

enum throttle_verdict {
	THROTTLE_ALLOW = 0,
	THROTTLE_REFUSE_IP,	/* this network failed ip_limit times */
	THROTTLE_REFUSE_ACCOUNT,	/* this account failed account_limit times */
};

/*
 * Before a password is checked: may this network try this account now?
 * Refused attempts are not failures and do not extend any refusal, so
 * that an account's lock-out ends at most window_ms after it began
 * however long the guessing goes on. A network that logged in to the
 * account successfully before (a known pair, remembered for a long
 * time) is never refused for the account's failures, only for its own:
 * the real user is not locked out by a stranger's guessing. account may be
 * any string the client sent (lowercased by the caller). On refusal,
 * *retry_after_ms_r says when the refusal ends.
 */
enum throttle_verdict throttle_check(struct throttle *t, const char *ip_key,
    const char *account, uint64_t now_ms, uint64_t *retry_after_ms_r);

/*
 * A failed check: counts it for the network and the account and returns
 * the delay in milliseconds the failure reply must be held back:
 * base_delay_ms doubled for each earlier failure of this network within
 * the window, at most max_delay_ms (0 when base_delay_ms is 0).
 */
unsigned throttle_failure(struct throttle *t, const char *ip_key,
    const char *account, uint64_t now_ms);

/* A successful login: the network's failures are forgotten, and the pair
 * becomes known. The account's failures from elsewhere are kept. */
void throttle_success(struct throttle *t, const char *ip_key,
    const char *account, uint64_t now_ms);

/* Entries held now (for tests of the memory bound). */
size_t throttle_entries(const struct throttle *t);

#endif
