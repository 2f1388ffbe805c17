/*
 * Tests of src/auth/throttle.c: network keys (IPv4, IPv6 /64, mapped
 * addresses, junk), delays and their cap, windows and lock-outs driven by
 * an explicit clock, known pairs, reconfiguration and the memory bound.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/throttle.h"
#include "unit.h"

#define FLOOD_KEYS 1000000

static struct throttle_config
config(uint64_t window_ms, unsigned ip_limit, unsigned account_limit,
    size_t max_entries)
{
	struct throttle_config c = {
		.window_ms = window_ms,
		.ip_limit = ip_limit,
		.account_limit = account_limit,
		.base_delay_ms = 0,
		.max_delay_ms = 0,
		.max_entries = max_entries,
	};

	return c;
}

static struct throttle *
new_throttle(uint64_t window_ms, unsigned ip_limit, unsigned account_limit,
    size_t max_entries)
{
	struct throttle_config c = config(window_ms, ip_limit, account_limit,
	    max_entries);

	return throttle_new(&c);
}

/* A distinct network key for each i: an IPv4 address. */
static const char *
net_n(char *buf, size_t size, uint32_t i)
{
	snprintf(buf, size, "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255,
	    i & 255);
	if (i >= (1u << 24))
		snprintf(buf, size, "net-%u", i);
	return buf;
}

static void
test_ip_key(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "192.0.2.1", "192.0.2.1" },
		{ "0.0.0.0", "0.0.0.0" },
		{ "255.255.255.255", "255.255.255.255" },
		{ "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64" },
		{ "2001:0DB8:0001:0002:ffff::1", "2001:db8:1:2::/64" },
		{ "2001:db8:1:2::", "2001:db8:1:2::/64" },
		{ "2001:db8::1", "2001:db8::/64" },
		{ "2001:db8::1:2:3:4:5", "2001:db8:0:1::/64" },
		{ "::1", "::/64" },
		{ "::", "::/64" },
		{ "fe80::1%eth0", "fe80::/64" },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		    "ffff:ffff:ffff:ffff::/64" },
		{ "::ffff:1.2.3.4", "1.2.3.4" },
		{ "::FFFF:102:304", "1.2.3.4" },
		{ "::ffff:0.0.0.0", "0.0.0.0" },
		/* IPv4-compatible (deprecated) is plain IPv6. */
		{ "::1.2.3.4", "::/64" },
		{ "localhost", "localhost" },
		{ "", "" },
		{ "1.2.3", "1.2.3" },
		{ "1.2.3.4.5", "1.2.3.4.5" },
		{ "01.2.3.4", "01.2.3.4" },
		{ "256.1.1.1", "256.1.1.1" },
		{ "[::1]", "[::1]" },
		{ "1.2.3.4%eth0", "1.2.3.4%eth0" },
		{ "2001:db8::g", "2001:db8::g" },
	};
	char	key[THROTTLE_KEY_MAX + 1], junk[200];
	size_t	i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(key, 'X', sizeof(key));
		CHECK(throttle_ip_key(cases[i].in, key, THROTTLE_KEY_MAX) ==
		    key);
		CHECK_STR(key, cases[i].out);
		CHECK(strlen(key) < THROTTLE_KEY_MAX);
	}

	/* Small buffers: truncated, always terminated, never overrun. */
	memset(key, 'X', sizeof(key));
	CHECK(throttle_ip_key("192.0.2.1", key, 0) == key);
	CHECK(key[0] == 'X');
	CHECK_STR(throttle_ip_key("192.0.2.1", key, 1), "");
	CHECK(key[1] == 'X');
	memset(key, 'X', sizeof(key));
	CHECK_STR(throttle_ip_key("192.0.2.1", key, 4), "192");
	CHECK(key[4] == 'X');
	memset(key, 'X', sizeof(key));
	CHECK_STR(throttle_ip_key("2001:db8:1:2::5", key, 10), "2001:db8:");
	CHECK(key[10] == 'X');
	/* Exactly fitting, and one byte short. */
	CHECK_STR(throttle_ip_key("2001:db8:1:2::5", key, 18),
	    "2001:db8:1:2::/64");
	CHECK_STR(throttle_ip_key("2001:db8:1:2::5", key, 17),
	    "2001:db8:1:2::/6");
	CHECK_STR(throttle_ip_key("::ffff:10.0.0.1", key, 9), "10.0.0.1");
	CHECK_STR(throttle_ip_key("::ffff:10.0.0.1", key, 8), "10.0.0.");

	/* Junk longer than a key. */
	memset(junk, 'j', sizeof(junk) - 1);
	junk[sizeof(junk) - 1] = '\0';
	memset(key, 'X', sizeof(key));
	throttle_ip_key(junk, key, THROTTLE_KEY_MAX);
	CHECK(strlen(key) == THROTTLE_KEY_MAX - 1);
	CHECK(strspn(key, "j") == THROTTLE_KEY_MAX - 1);
	CHECK(key[THROTTLE_KEY_MAX] == 'X');
	/* However long the zone, the address before it counts. */
	memcpy(junk, "fe80::1%", 8);
	CHECK_STR(throttle_ip_key(junk, key, THROTTLE_KEY_MAX), "fe80::/64");
	/* An address too long to be one is junk. */
	memset(junk, 'j', sizeof(junk) - 1);
	memcpy(junk, "fe80:", 5);
	junk[60] = '%';
	throttle_ip_key(junk, key, THROTTLE_KEY_MAX);
	CHECK(strncmp(key, "fe80:jjj", 8) == 0);
	CHECK(strlen(key) == THROTTLE_KEY_MAX - 1);
}

static void
test_delay_doubling(void)
{
	struct throttle_config	c = config(10000, 0, 0, 100);
	struct throttle		*t;
	static const unsigned	want[] = { 100, 200, 400, 800, 1000, 1000 };
	unsigned		i, d = 0;
	bool			capped = true;

	c.base_delay_ms = 100;
	c.max_delay_ms = 1000;
	t = throttle_new(&c);
	for (i = 0; i < 6; i++)
		CHECK(throttle_failure(t, "192.0.2.1", "a", 1000 + i) ==
		    want[i]);
	for (i = 0; i < 1000; i++)
		if (throttle_failure(t, "192.0.2.1", "a", 2000) != 1000)
			capped = false;
	CHECK(capped);
	/* Counted per network: another one starts again at the base. */
	CHECK(throttle_failure(t, "192.0.2.2", "a", 2000) == 100);
	CHECK(throttle_failure(t, "192.0.2.2", "b", 2001) == 200);
	/* Other accounts of the same network double it as well. */
	CHECK(throttle_failure(t, "192.0.2.2", "c", 2002) == 400);
	/* The window began at 1000: the last moment in it, then past it. */
	CHECK(throttle_failure(t, "192.0.2.1", "a", 10999) == 1000);
	CHECK(throttle_failure(t, "192.0.2.1", "a", 11000) == 100);
	CHECK(throttle_failure(t, "192.0.2.1", "a", 11001) == 200);
	/* A check does not count. */
	CHECK(throttle_check(t, "192.0.2.1", "a", 11002, NULL) ==
	    THROTTLE_ALLOW);
	d = throttle_failure(t, "192.0.2.1", "a", 11003);
	CHECK(d == 400);
	throttle_free(&t);
	CHECK(t == NULL);
	throttle_free(&t);
}

static unsigned
nth_delay(unsigned base, unsigned max, unsigned n)
{
	struct throttle_config	c = config(10000, 0, 0, 100);
	struct throttle		*t;
	unsigned		i, d = 0;

	c.base_delay_ms = base;
	c.max_delay_ms = max;
	t = throttle_new(&c);
	for (i = 0; i < n; i++)
		d = throttle_failure(t, "192.0.2.1", "a", 5);
	throttle_free(&t);
	return d;
}

static void
test_delay_limits(void)
{
	CHECK(nth_delay(0, 1000, 1) == 0);
	CHECK(nth_delay(0, 1000, 50) == 0);
	CHECK(nth_delay(0, 0, 3) == 0);
	CHECK(nth_delay(100, 0, 1) == 0);
	CHECK(nth_delay(5000, 1000, 1) == 1000);
	CHECK(nth_delay(1000, 1000, 1) == 1000);
	CHECK(nth_delay(1000, 1999, 2) == 1999);
	CHECK(nth_delay(1000, 2000, 2) == 2000);
	CHECK(nth_delay(1000, 2001, 2) == 2000);
	/* At the edges of 32 bits: no overflow, the cap holds. */
	CHECK(nth_delay(UINT_MAX, UINT_MAX, 1) == UINT_MAX);
	CHECK(nth_delay(UINT_MAX, UINT_MAX, 2) == UINT_MAX);
	CHECK(nth_delay(1, UINT_MAX, 32) == 2147483648u);
	CHECK(nth_delay(1, UINT_MAX, 33) == UINT_MAX);
	CHECK(nth_delay(1, UINT_MAX, 34) == UINT_MAX);
	CHECK(nth_delay(3, UINT_MAX, 31) == 3221225472u);
	CHECK(nth_delay(3, UINT_MAX, 32) == UINT_MAX);
	CHECK(nth_delay(2000, 15000, 4) == 15000);
	CHECK(nth_delay(2000, 15000, 3) == 8000);
	CHECK(nth_delay(2000, 15000, 100000) == 15000);
}

static void
test_ip_limit(void)
{
	struct throttle	*t = new_throttle(1000, 3, 0, 100);
	uint64_t	 retry = 7, now;
	bool		 all = true;

	CHECK(throttle_check(t, "192.0.2.1", "a", 0, &retry) ==
	    THROTTLE_ALLOW);
	CHECK(retry == 0);
	throttle_failure(t, "192.0.2.1", "a", 100);
	throttle_failure(t, "192.0.2.1", "b", 200);
	/* One below the limit. */
	CHECK(throttle_check(t, "192.0.2.1", "c", 250, &retry) ==
	    THROTTLE_ALLOW);
	throttle_failure(t, "192.0.2.1", "c", 300);
	/* At the limit: refused for any account, for the window. */
	CHECK(throttle_check(t, "192.0.2.1", "z", 300, &retry) ==
	    THROTTLE_REFUSE_IP);
	CHECK(retry == 1000);
	CHECK(throttle_check(t, "192.0.2.2", "a", 300, &retry) ==
	    THROTTLE_ALLOW);
	/* Refused attempts all along do not extend it. */
	for (now = 301; now < 1300; now += 3) {
		if (throttle_check(t, "192.0.2.1", "a", now, &retry) !=
		    THROTTLE_REFUSE_IP || retry != 1300 - now)
			all = false;
	}
	CHECK(all);
	CHECK(throttle_check(t, "192.0.2.1", "a", 1299, &retry) ==
	    THROTTLE_REFUSE_IP);
	CHECK(retry == 1);
	CHECK(throttle_entries(t) == 4);
	CHECK(throttle_check(t, "192.0.2.1", "a", 1300, &retry) ==
	    THROTTLE_ALLOW);
	CHECK(retry == 0);
	/* The network's record is gone; the accounts' ones expire lazily. */
	CHECK(throttle_entries(t) == 2);
	CHECK(throttle_check(t, "192.0.2.1", "b", 1300, NULL) ==
	    THROTTLE_ALLOW);
	CHECK(throttle_entries(t) == 1);
	/* Counting starts afresh. */
	throttle_failure(t, "192.0.2.1", "a", 1301);
	throttle_failure(t, "192.0.2.1", "a", 1302);
	CHECK(throttle_check(t, "192.0.2.1", "a", 1303, NULL) ==
	    THROTTLE_ALLOW);
	throttle_failure(t, "192.0.2.1", "a", 1304);
	CHECK(throttle_check(t, "192.0.2.1", "a", 1305, NULL) ==
	    THROTTLE_REFUSE_IP);
	throttle_free(&t);
}

static void
test_window_expiry(void)
{
	struct throttle_config	c = config(1000, 3, 0, 100);
	struct throttle		*t;
	uint64_t		 retry;

	c.base_delay_ms = 10;
	c.max_delay_ms = 1000;
	t = throttle_new(&c);
	/* Three failures within the window that began at 0. */
	CHECK(throttle_failure(t, "n1", "a", 0) == 10);
	CHECK(throttle_failure(t, "n1", "a", 500) == 20);
	CHECK(throttle_failure(t, "n1", "a", 999) == 40);
	CHECK(throttle_check(t, "n1", "a", 999, &retry) ==
	    THROTTLE_REFUSE_IP);
	CHECK(retry == 1000);
	/* The third comes as the window ends: counting starts again. */
	CHECK(throttle_failure(t, "n2", "a", 0) == 10);
	CHECK(throttle_failure(t, "n2", "a", 500) == 20);
	CHECK(throttle_failure(t, "n2", "a", 1000) == 10);
	CHECK(throttle_check(t, "n2", "a", 1000, NULL) == THROTTLE_ALLOW);
	CHECK(throttle_failure(t, "n2", "a", 1001) == 20);
	CHECK(throttle_check(t, "n2", "a", 1001, NULL) == THROTTLE_ALLOW);
	CHECK(throttle_failure(t, "n2", "a", 1999) == 40);
	CHECK(throttle_check(t, "n2", "a", 1999, NULL) ==
	    THROTTLE_REFUSE_IP);
	throttle_free(&t);

	/* The same for an account. */
	t = new_throttle(1000, 0, 2, 100);
	throttle_failure(t, "n1", "x", 0);
	throttle_failure(t, "n2", "x", 1000);
	CHECK(throttle_check(t, "n3", "x", 1000, NULL) == THROTTLE_ALLOW);
	throttle_failure(t, "n3", "x", 1999);
	CHECK(throttle_check(t, "n4", "x", 1999, &retry) ==
	    THROTTLE_REFUSE_ACCOUNT);
	CHECK(retry == 1000);
	CHECK(throttle_check(t, "n4", "x", 2998, &retry) ==
	    THROTTLE_REFUSE_ACCOUNT);
	CHECK(retry == 1);
	CHECK(throttle_check(t, "n4", "x", 2999, &retry) ==
	    THROTTLE_ALLOW);
	CHECK(retry == 0);
	/* Expired records are dropped when looked at. */
	CHECK(throttle_entries(t) == 3);
	CHECK(throttle_check(t, "n1", "y", 2999, NULL) == THROTTLE_ALLOW);
	CHECK(throttle_entries(t) == 2);
	throttle_free(&t);
}

static void
test_account_lockout_bound(void)
{
	struct throttle	*t = new_throttle(10000, 100, 5, 1000);
	char		 net[THROTTLE_KEY_MAX];
	uint64_t	 now, retry;
	bool		 refused = true, exact = true;
	uint32_t	 i;

	throttle_success(t, "198.51.100.7", "victim", 0);
	for (i = 0; i < 5; i++)
		throttle_failure(t, net_n(net, sizeof(net), i), "victim", i);
	/* Locked at 4; guessing goes on from ever new networks. */
	for (now = 5, i = 100; now < 10004; now++, i++) {
		if (throttle_check(t, net_n(net, sizeof(net), i), "victim",
		    now, &retry) != THROTTLE_REFUSE_ACCOUNT)
			refused = false;
		else if (retry != 10004 - now)
			exact = false;
		/* The real user fails now and then: no extension either. */
		if (now % 1000 == 0)
			throttle_failure(t, "198.51.100.7", "victim", now);
	}
	CHECK(refused);
	CHECK(exact);
	CHECK(throttle_check(t, "192.0.2.99", "victim", 10003, &retry) ==
	    THROTTLE_REFUSE_ACCOUNT);
	CHECK(retry == 1);
	CHECK(throttle_check(t, "192.0.2.99", "victim", 10004, &retry) ==
	    THROTTLE_ALLOW);
	/* The next lock-out needs five new failures. */
	for (i = 0; i < 4; i++)
		throttle_failure(t, "192.0.2.99", "victim", 10005 + i);
	CHECK(throttle_check(t, "192.0.2.98", "victim", 10010, NULL) ==
	    THROTTLE_ALLOW);
	throttle_failure(t, "192.0.2.99", "victim", 10011);
	CHECK(throttle_check(t, "192.0.2.98", "victim", 10011, &retry) ==
	    THROTTLE_REFUSE_ACCOUNT);
	CHECK(retry == 10000);
	throttle_free(&t);
}

static void
test_known_pair(void)
{
	struct throttle	*t = new_throttle(10000, 5, 3, 1000);
	char		 home[THROTTLE_KEY_MAX], home2[THROTTLE_KEY_MAX];
	uint64_t	 retry;
	unsigned	 i;

	/* The user logs in from home; its whole /64 is home. */
	throttle_ip_key("2001:db8:5:6::1", home, sizeof(home));
	throttle_ip_key("2001:db8:5:6:ffff::99", home2, sizeof(home2));
	CHECK_STR(home, home2);
	throttle_success(t, home, "alice", 0);
	CHECK(throttle_entries(t) == 1);
	throttle_failure(t, "203.0.113.1", "alice", 100);
	throttle_failure(t, "203.0.113.2", "alice", 101);
	throttle_failure(t, "203.0.113.3", "alice", 102);
	CHECK(throttle_check(t, "203.0.113.4", "alice", 200, &retry) ==
	    THROTTLE_REFUSE_ACCOUNT);
	CHECK(retry == 9902);
	CHECK(throttle_check(t, home2, "alice", 200, &retry) ==
	    THROTTLE_ALLOW);
	CHECK(retry == 0);
	/* The real user elsewhere is locked out for the window at most. */
	CHECK(throttle_check(t, "192.0.2.77", "alice", 10101, &retry) ==
	    THROTTLE_REFUSE_ACCOUNT);
	CHECK(retry == 1);
	CHECK(throttle_check(t, "192.0.2.77", "alice", 10102, &retry) ==
	    THROTTLE_ALLOW);

	/* A known pair is no use for another account. */
	throttle_failure(t, "203.0.113.1", "bob", 20000);
	throttle_failure(t, "203.0.113.2", "bob", 20001);
	throttle_failure(t, "203.0.113.3", "bob", 20002);
	CHECK(throttle_check(t, home, "bob", 20003, NULL) ==
	    THROTTLE_REFUSE_ACCOUNT);
	CHECK(throttle_check(t, "203.0.113.3", "bob", 20003, NULL) ==
	    THROTTLE_REFUSE_ACCOUNT);

	/* Nor against its own network's failures. */
	for (i = 0; i < 4; i++)
		throttle_failure(t, home, "alice", 30000 + i);
	CHECK(throttle_check(t, home, "alice", 30010, NULL) ==
	    THROTTLE_ALLOW);
	throttle_failure(t, home, "alice", 30011);
	CHECK(throttle_check(t, home, "alice", 30012, &retry) ==
	    THROTTLE_REFUSE_IP);
	CHECK(retry == 9999);
	throttle_free(&t);

	/* Known pairs are forgotten after THROTTLE_KNOWN_PAIR_MS. */
	t = new_throttle(10000, 5, 3, 1000);
	throttle_success(t, "198.51.100.7", "carol", 0);
	throttle_success(t, "198.51.100.8", "carol", 0);
	/* A later login renews it. */
	throttle_success(t, "198.51.100.8", "carol",
	    THROTTLE_KNOWN_PAIR_MS / 2);
	throttle_failure(t, "n1", "carol", THROTTLE_KNOWN_PAIR_MS - 100);
	throttle_failure(t, "n2", "carol", THROTTLE_KNOWN_PAIR_MS - 100);
	throttle_failure(t, "n3", "carol", THROTTLE_KNOWN_PAIR_MS - 100);
	CHECK(throttle_check(t, "198.51.100.7", "carol",
	    THROTTLE_KNOWN_PAIR_MS - 1, NULL) == THROTTLE_ALLOW);
	CHECK(throttle_entries(t) == 6);
	CHECK(throttle_check(t, "198.51.100.7", "carol",
	    THROTTLE_KNOWN_PAIR_MS, NULL) == THROTTLE_REFUSE_ACCOUNT);
	CHECK(throttle_entries(t) == 5);
	CHECK(throttle_check(t, "198.51.100.8", "carol",
	    THROTTLE_KNOWN_PAIR_MS, NULL) == THROTTLE_ALLOW);
	throttle_free(&t);
}

static void
test_success(void)
{
	struct throttle_config	c = config(10000, 3, 3, 100);
	struct throttle		*t;

	c.base_delay_ms = 100;
	c.max_delay_ms = 10000;
	t = throttle_new(&c);
	CHECK(throttle_failure(t, "A", "bob", 0) == 100);
	CHECK(throttle_failure(t, "A", "bob", 1) == 200);
	CHECK(throttle_entries(t) == 2);
	throttle_success(t, "A", "bob", 2);
	/* The network record went, the pair came. */
	CHECK(throttle_entries(t) == 2);
	/* bob's two failures were kept: this third one locks him. */
	CHECK(throttle_failure(t, "B", "bob", 3) == 100);
	CHECK(throttle_check(t, "B", "bob", 3, NULL) ==
	    THROTTLE_REFUSE_ACCOUNT);
	CHECK(throttle_check(t, "C", "bob", 3, NULL) ==
	    THROTTLE_REFUSE_ACCOUNT);
	CHECK(throttle_check(t, "A", "bob", 3, NULL) == THROTTLE_ALLOW);
	/* A's own failures were forgotten. */
	CHECK(throttle_failure(t, "A", "bob", 4) == 100);
	CHECK(throttle_failure(t, "A", "bob", 5) == 200);
	CHECK(throttle_check(t, "A", "bob", 5, NULL) == THROTTLE_ALLOW);
	CHECK(throttle_failure(t, "A", "bob", 6) == 400);
	CHECK(throttle_check(t, "A", "bob", 6, NULL) == THROTTLE_REFUSE_IP);
	/* A success from a network without failures just records it. */
	throttle_success(t, "D", "dave", 7);
	throttle_success(t, "D", "dave", 8);
	CHECK(throttle_entries(t) == 5);
	throttle_free(&t);
}

static void
test_set_config(void)
{
	struct throttle_config	c = config(10000, 5, 0, 100);
	struct throttle		*t;
	uint64_t		 retry;
	char			 net[THROTTLE_KEY_MAX];
	uint32_t		 i;

	c.base_delay_ms = 100;
	c.max_delay_ms = 10000;
	t = throttle_new(&c);
	throttle_failure(t, "A", "a", 0);
	throttle_failure(t, "A", "a", 1);
	throttle_failure(t, "A", "a", 2);
	CHECK(throttle_check(t, "A", "a", 10, NULL) == THROTTLE_ALLOW);
	/* Lowered below the count: locked, from the latest failure. */
	c.ip_limit = 3;
	throttle_set_config(t, &c);
	CHECK(throttle_check(t, "A", "a", 10, &retry) == THROTTLE_REFUSE_IP);
	CHECK(retry == 9992);
	/* Raised again: the counts were kept. */
	c.ip_limit = 10;
	throttle_set_config(t, &c);
	CHECK(throttle_check(t, "A", "a", 20, NULL) == THROTTLE_ALLOW);
	CHECK(throttle_failure(t, "A", "a", 21) == 800);
	/* New delays. */
	c.base_delay_ms = 1;
	c.max_delay_ms = 5;
	throttle_set_config(t, &c);
	CHECK(throttle_failure(t, "A", "a", 22) == 5);
	/* An account limit where there was none. */
	c.account_limit = 5;
	throttle_set_config(t, &c);
	CHECK(throttle_check(t, "B", "a", 23, &retry) ==
	    THROTTLE_REFUSE_ACCOUNT);
	CHECK(retry == 9999);
	/* A shorter window: all of it is over. */
	c.window_ms = 5;
	throttle_set_config(t, &c);
	CHECK(throttle_check(t, "A", "a", 30, NULL) == THROTTLE_ALLOW);
	CHECK(throttle_entries(t) == 0);

	/* A smaller table shrinks at once; 0 keeps nothing. */
	c.window_ms = 10000;
	throttle_set_config(t, &c);
	for (i = 0; i < 10; i++)
		throttle_failure(t, net_n(net, sizeof(net), i), "x", 40);
	CHECK(throttle_entries(t) == 11);
	c.max_entries = 4;
	throttle_set_config(t, &c);
	CHECK(throttle_entries(t) == 4);
	/* The locked account outlived the networks. */
	CHECK(throttle_check(t, "Z", "x", 41, NULL) ==
	    THROTTLE_REFUSE_ACCOUNT);
	c.max_entries = 0;
	throttle_set_config(t, &c);
	CHECK(throttle_entries(t) == 0);
	CHECK(throttle_failure(t, "A", "a", 50) == 1);
	CHECK(throttle_failure(t, "A", "a", 51) == 1);
	throttle_success(t, "A", "a", 52);
	CHECK(throttle_entries(t) == 0);
	CHECK(throttle_check(t, "A", "a", 53, NULL) == THROTTLE_ALLOW);
	throttle_free(&t);
}

static void
test_flood_networks(void)
{
	struct throttle_config	c = config(900000, 10, 20, 1000);
	struct throttle		*t;
	char			 net[THROTTLE_KEY_MAX], acct[32];
	size_t			 most = 0;
	uint32_t		 i;

	c.base_delay_ms = 1;
	c.max_delay_ms = 1000;
	t = throttle_new(&c);

	/* The attacked account is locked before the flood. */
	for (i = 0; i < 20; i++)
		throttle_failure(t, net_n(net, sizeof(net), 1u << 24 | i),
		    "victim", 1000);
	throttle_success(t, "198.51.100.7", "victim", 1000);
	for (i = 0; i < FLOOD_KEYS; i++) {
		snprintf(acct, sizeof(acct), "u%u", i);
		throttle_failure(t, net_n(net, sizeof(net), i), acct, 2000);
		if (throttle_entries(t) > most)
			most = throttle_entries(t);
	}
	CHECK(most == 1000);
	CHECK(throttle_entries(t) == 1000);
	/* Lock-outs and known pairs outlive a flood of single failures. */
	CHECK(throttle_check(t, "192.0.2.1", "victim", 3000, NULL) ==
	    THROTTLE_REFUSE_ACCOUNT);
	CHECK(throttle_check(t, "198.51.100.7", "victim", 3000, NULL) ==
	    THROTTLE_ALLOW);
	/* The newest ones are still counted; the oldest are forgotten. */
	CHECK(throttle_failure(t, net_n(net, sizeof(net), FLOOD_KEYS - 1),
	    "v", 3000) == 2);
	CHECK(throttle_failure(t, net_n(net, sizeof(net), 0), "v", 3000) ==
	    1);
	CHECK(throttle_entries(t) == 1000);
	throttle_free(&t);
}

static void
test_flood_lockouts(void)
{
	struct throttle	*t = new_throttle(900000, 1, 1, 64);
	char		 net[THROTTLE_KEY_MAX], acct[32];
	size_t		 most = 0;
	uint32_t	 i;

	/* Every record a lock-out: they push each other out. */
	for (i = 0; i < FLOOD_KEYS / 10; i++) {
		snprintf(acct, sizeof(acct), "u%u", i);
		throttle_failure(t, net_n(net, sizeof(net), i), acct, 2000);
		if (throttle_entries(t) > most)
			most = throttle_entries(t);
	}
	CHECK(most == 64);
	CHECK(throttle_check(t, net, "other", 2001, NULL) ==
	    THROTTLE_REFUSE_IP);
	CHECK(throttle_check(t, "192.0.2.1", acct, 2001, NULL) ==
	    THROTTLE_REFUSE_ACCOUNT);
	throttle_free(&t);

	/* An odd bound: no room is left for the account after the net. */
	t = new_throttle(900000, 1, 1, 1);
	throttle_failure(t, "A", "a", 0);
	CHECK(throttle_entries(t) == 1);
	CHECK(throttle_check(t, "A", "b", 1, NULL) == THROTTLE_REFUSE_IP);
	throttle_failure(t, "B", "b", 2);
	CHECK(throttle_entries(t) == 1);
	CHECK(throttle_check(t, "B", "c", 3, NULL) == THROTTLE_REFUSE_IP);
	throttle_free(&t);
}

static void
test_flood_pairs(void)
{
	struct throttle	*t = new_throttle(900000, 0, 2, 100);
	char		 net[THROTTLE_KEY_MAX], acct[32];
	size_t		 most = 0;
	uint32_t	 i;

	throttle_failure(t, "192.0.2.1", "victim", 0);
	throttle_failure(t, "192.0.2.2", "victim", 0);
	/* Logins from many networks fill at most the table... */
	for (i = 0; i < FLOOD_KEYS / 10; i++) {
		snprintf(acct, sizeof(acct), "u%u", i % 7);
		throttle_success(t, net_n(net, sizeof(net), i), acct, i);
		if (throttle_entries(t) > most)
			most = throttle_entries(t);
	}
	CHECK(most == 100);
	/* ...but no more than half of it while lock-outs want room. */
	CHECK(throttle_check(t, "192.0.2.3", "victim", 100000, NULL) ==
	    THROTTLE_REFUSE_ACCOUNT);
	throttle_success(t, "198.51.100.7", "carol", 200000);
	/* Failures then claim half of it, and no more. */
	for (i = 0; i < FLOOD_KEYS / 10; i++) {
		snprintf(acct, sizeof(acct), "f%u", i);
		throttle_failure(t, net_n(net, sizeof(net), i), acct,
		    200000);
		if (throttle_entries(t) > most)
			most = throttle_entries(t);
	}
	CHECK(most == 100);
	throttle_failure(t, "192.0.2.1", "carol", 200001);
	throttle_failure(t, "192.0.2.2", "carol", 200001);
	CHECK(throttle_check(t, "192.0.2.3", "carol", 200002, NULL) ==
	    THROTTLE_REFUSE_ACCOUNT);
	CHECK(throttle_check(t, "198.51.100.7", "carol", 200002, NULL) ==
	    THROTTLE_ALLOW);
	CHECK(throttle_entries(t) == 100);
	throttle_free(&t);
}

static void
test_expired_first(void)
{
	struct throttle	*t = new_throttle(1000, 2, 1, 3);
	const uint64_t	 t3 = THROTTLE_KNOWN_PAIR_MS + 995;

	throttle_success(t, "K", "u", 0);
	throttle_failure(t, "n1", "x", THROTTLE_KNOWN_PAIR_MS - 10);
	CHECK(throttle_entries(t) == 3);
	/* The pair has expired: it goes before the live records. */
	throttle_failure(t, "n2", "y", THROTTLE_KNOWN_PAIR_MS);
	CHECK(throttle_entries(t) == 3);
	CHECK(throttle_check(t, "n5", "x", THROTTLE_KNOWN_PAIR_MS, NULL) ==
	    THROTTLE_REFUSE_ACCOUNT);
	CHECK(throttle_check(t, "n5", "y", THROTTLE_KNOWN_PAIR_MS, NULL) ==
	    THROTTLE_REFUSE_ACCOUNT);
	/*
	 * x's lock-out is over: it goes before n2, live and below its
	 * limit, which its next failure then locks.
	 */
	throttle_failure(t, "n6", "y", t3);
	CHECK(throttle_entries(t) == 3);
	throttle_failure(t, "n2", "y", t3);
	CHECK(throttle_entries(t) == 3);
	CHECK(throttle_check(t, "n2", "q", t3, NULL) == THROTTLE_REFUSE_IP);
	throttle_free(&t);
}

static void
test_key_lengths(void)
{
	struct throttle	*t = new_throttle(10000, 2, 2, 100);
	char		 ip[THROTTLE_KEY_MAX + 1], ip2[THROTTLE_KEY_MAX + 1];
	char		 acct[THROTTLE_ACCOUNT_MAX + 2];
	char		 acct2[THROTTLE_ACCOUNT_MAX + 1];

	memset(ip, 'i', THROTTLE_KEY_MAX - 1);
	ip[THROTTLE_KEY_MAX - 1] = '\0';
	memcpy(ip2, ip, sizeof(ip));
	ip2[THROTTLE_KEY_MAX - 2] = 'j';
	memset(acct, 'a', THROTTLE_ACCOUNT_MAX);
	acct[THROTTLE_ACCOUNT_MAX] = '\0';
	memcpy(acct2, acct, sizeof(acct2));
	acct2[THROTTLE_ACCOUNT_MAX - 1] = 'b';

	throttle_success(t, ip, acct, 0);
	throttle_failure(t, ip2, acct, 1);
	CHECK(throttle_check(t, ip2, acct, 1, NULL) == THROTTLE_ALLOW);
	throttle_failure(t, "n", acct, 2);
	/* Keys that differ in their last byte are different. */
	CHECK(throttle_check(t, ip2, acct, 3, NULL) ==
	    THROTTLE_REFUSE_ACCOUNT);
	CHECK(throttle_check(t, ip, acct, 3, NULL) == THROTTLE_ALLOW);
	CHECK(throttle_check(t, ip2, acct2, 3, NULL) == THROTTLE_ALLOW);
	/* Longer names count as their first THROTTLE_ACCOUNT_MAX bytes. */
	acct[THROTTLE_ACCOUNT_MAX] = 'z';
	acct[THROTTLE_ACCOUNT_MAX + 1] = '\0';
	CHECK(throttle_check(t, ip2, acct, 3, NULL) ==
	    THROTTLE_REFUSE_ACCOUNT);
	CHECK(throttle_check(t, ip, acct, 3, NULL) == THROTTLE_ALLOW);
	/* And networks as their first THROTTLE_KEY_MAX - 1. */
	ip2[THROTTLE_KEY_MAX - 2] = 'i';
	ip2[THROTTLE_KEY_MAX - 1] = 'x';
	ip2[THROTTLE_KEY_MAX] = '\0';
	throttle_failure(t, ip, "q", 4);
	throttle_failure(t, ip2, "r", 5);
	CHECK(throttle_check(t, ip, acct, 6, NULL) == THROTTLE_REFUSE_IP);
	throttle_free(&t);
}

static void
test_empty_and_typed_keys(void)
{
	struct throttle	*t = new_throttle(10000, 0, 2, 100);

	throttle_failure(t, "A", "", 0);
	CHECK(throttle_check(t, "B", "", 1, NULL) == THROTTLE_ALLOW);
	throttle_failure(t, "A", "", 1);
	CHECK(throttle_check(t, "B", "", 2, NULL) ==
	    THROTTLE_REFUSE_ACCOUNT);
	CHECK(throttle_check(t, "B", "a", 2, NULL) == THROTTLE_ALLOW);
	throttle_success(t, "C", "", 3);
	CHECK(throttle_check(t, "C", "", 4, NULL) == THROTTLE_ALLOW);
	CHECK(throttle_check(t, "", "", 4, NULL) ==
	    THROTTLE_REFUSE_ACCOUNT);
	throttle_free(&t);

	/* A network and an account of the same name are two records. */
	t = new_throttle(10000, 2, 2, 100);
	throttle_failure(t, "alice", "alice", 0);
	CHECK(throttle_entries(t) == 2);
	throttle_failure(t, "", "", 0);
	CHECK(throttle_entries(t) == 4);
	CHECK(throttle_check(t, "x", "alice", 1, NULL) == THROTTLE_ALLOW);
	CHECK(throttle_check(t, "alice", "x", 1, NULL) == THROTTLE_ALLOW);
	/* Pairs ("a", "bc") and ("ab", "c") are different. */
	throttle_failure(t, "n1", "c", 2);
	throttle_failure(t, "n2", "c", 2);
	CHECK(throttle_check(t, "ab", "c", 3, NULL) ==
	    THROTTLE_REFUSE_ACCOUNT);
	throttle_success(t, "a", "bc", 3);
	CHECK(throttle_check(t, "ab", "c", 4, NULL) ==
	    THROTTLE_REFUSE_ACCOUNT);
	throttle_success(t, "ab", "c", 4);
	CHECK(throttle_check(t, "ab", "c", 5, NULL) == THROTTLE_ALLOW);
	throttle_free(&t);
}

static void
test_odd_clocks(void)
{
	struct throttle	*t = new_throttle(1000, 1, 0, 100);
	uint64_t	 retry;
	unsigned	 i;

	/* The clock going back counts as no time passing. */
	throttle_failure(t, "A", "a", 5000);
	CHECK(throttle_check(t, "A", "a", 10, &retry) == THROTTLE_REFUSE_IP);
	CHECK(retry == 1000);
	CHECK(throttle_check(t, "A", "a", 5999, &retry) ==
	    THROTTLE_REFUSE_IP);
	CHECK(throttle_check(t, "A", "a", 6000, &retry) == THROTTLE_ALLOW);
	throttle_free(&t);

	/* A window of 0 forgets at once; a limit of 0 never refuses. */
	t = new_throttle(0, 1, 1, 100);
	throttle_failure(t, "A", "a", 5);
	CHECK(throttle_check(t, "A", "a", 5, NULL) == THROTTLE_ALLOW);
	throttle_free(&t);
	t = new_throttle(1000, 0, 0, 100);
	for (i = 0; i < 1000; i++)
		throttle_failure(t, "A", "a", 5);
	CHECK(throttle_check(t, "A", "a", 5, NULL) == THROTTLE_ALLOW);
	throttle_free(&t);

	/* Times and windows at the end of 64 bits. */
	t = new_throttle(UINT64_MAX, 1, 1, 100);
	throttle_failure(t, "A", "a", UINT64_MAX - 1);
	CHECK(throttle_check(t, "A", "a", UINT64_MAX, &retry) ==
	    THROTTLE_REFUSE_IP);
	CHECK(retry == UINT64_MAX - 1);
	CHECK(throttle_check(t, "B", "a", UINT64_MAX, &retry) ==
	    THROTTLE_REFUSE_ACCOUNT);
	throttle_free(&t);
}

int
main(void)
{
	UNIT_RUN(test_ip_key);
	UNIT_RUN(test_delay_doubling);
	UNIT_RUN(test_delay_limits);
	UNIT_RUN(test_ip_limit);
	UNIT_RUN(test_window_expiry);
	UNIT_RUN(test_account_lockout_bound);
	UNIT_RUN(test_known_pair);
	UNIT_RUN(test_success);
	UNIT_RUN(test_set_config);
	UNIT_RUN(test_flood_networks);
	UNIT_RUN(test_flood_lockouts);
	UNIT_RUN(test_flood_pairs);
	UNIT_RUN(test_expired_first);
	UNIT_RUN(test_key_lengths);
	UNIT_RUN(test_empty_and_typed_keys);
	UNIT_RUN(test_odd_clocks);
	return unit_finish();
}
