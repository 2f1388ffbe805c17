/*
 * Unit tests for the RFC 5321 4.1.2 path parser (smtp_address.c): golden
 * cases, every limit at and one over, every truncation and NUL/8-bit
 * injection of each valid path, relay and shell payloads, format round-trips.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_address.h"
#include "unit.h"

#define F_NULL		0x01
#define F_QUOTED	0x02
#define F_LITERAL	0x04
#define F_ROUTE		0x08
#define F_UTF8		0x10
#define F_ROUTECHARS	0x20

/* Flag sets: which of allow_null / allow_utf8 the caller passes. */
#define NONE		0
#define ANULL		1
#define AUTF8		2
#define ABOTH		3

#define OK		SMTP_ADDRESS_OK
#define SYNTAX		SMTP_ADDRESS_SYNTAX
#define TOOLONG		SMTP_ADDRESS_TOO_LONG
#define NUL		SMTP_ADDRESS_NUL
#define EIGHTBIT	SMTP_ADDRESS_8BIT
#define BADUTF8		SMTP_ADDRESS_BAD_UTF8

/* A string literal with its length, so that inputs may hold NUL bytes. */
#define IN(s)		s, sizeof(s) - 1

struct golden {
	const char			*in;
	size_t				 len;
	int				 allow;
	enum smtp_address_result	 want;
	const char			*local;		/* when OK */
	const char			*domain;	/* when OK */
	int				 flags;		/* when OK */
	size_t				 consumed;	/* 0: all of in */
};

static const struct golden golden[] = {
	/* plain mailboxes */
	{ IN("<user@example.org>"), NONE, OK, "user", "example.org", 0, 0 },
	{ IN("<first.last@sub.example.com>"), NONE, OK, "first.last",
	    "sub.example.com", 0, 0 },
	{ IN("<Bob@LOCAL.Test>"), NONE, OK, "Bob", "local.test", 0, 0 },
	{ IN("<u@localhost>"), NONE, OK, "u", "localhost", 0, 0 },
	{ IN("<u@a-b.example>"), NONE, OK, "u", "a-b.example", 0, 0 },
	{ IN("<u@a--b.example>"), NONE, OK, "u", "a--b.example", 0, 0 },
	{ IN("<u@1a.2b.example>"), NONE, OK, "u", "1a.2b.example", 0, 0 },
	{ IN("<u@123.example>"), NONE, OK, "u", "123.example", 0, 0 },
	{ IN("<u@xn--bcher-kva.Example>"), NONE, OK, "u",
	    "xn--bcher-kva.example", 0, 0 },
	{ IN("<!#$%&'*+-/=?^_`{|}~@x.example>"), NONE, OK,
	    "!#$%&'*+-/=?^_`{|}~", "x.example", F_ROUTECHARS, 0 },
	{ IN("<a`touch${IFS}/tmp/pwn`@x>"), NONE, OK, "a`touch${IFS}/tmp/pwn`",
	    "x", 0, 0 },
	{ IN("<a`touch${IFS}/tmp/pwn`@ext.test>"), NONE, OK,
	    "a`touch${IFS}/tmp/pwn`", "ext.test", 0, 0 },
	/* only the path is consumed */
	{ IN("<user@example.org> SIZE=100"), NONE, OK, "user", "example.org",
	    0, 18 },
	{ IN("<u@x>>"), NONE, OK, "u", "x", 0, 5 },
	{ IN("<> BODY=8BITMIME"), ANULL, OK, "", "", F_NULL, 2 },
	/* null path and postmaster */
	{ IN("<>"), ANULL, OK, "", "", F_NULL, 0 },
	{ IN("<>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<postmaster>"), NONE, OK, "postmaster", "", 0, 0 },
	{ IN("<PostMaster>"), NONE, OK, "postmaster", "", 0, 0 },
	{ IN("<POSTMASTER>"), ANULL, OK, "postmaster", "", 0, 0 },
	{ IN("<Postmaster@Local.Test>"), NONE, OK, "Postmaster", "local.test",
	    0, 0 },
	{ IN("<postmaste>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<postmasters>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<\"postmaster\">"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<@a.example:postmaster>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<root>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	/* relay tricks (security-tests.md 9) */
	{ IN("<v%ext.test@local.test>"), NONE, OK, "v%ext.test", "local.test",
	    F_ROUTECHARS, 0 },
	{ IN("<@local.test:v@ext.test>"), NONE, OK, "v", "ext.test", F_ROUTE,
	    0 },
	{ IN("<@a.example,@b.example:u@c.example>"), NONE, OK, "u",
	    "c.example", F_ROUTE, 0 },
	{ IN("<ext.test!v@local.test>"), NONE, OK, "ext.test!v", "local.test",
	    F_ROUTECHARS, 0 },
	{ IN("<\"v@ext.test\"@local.test>"), NONE, OK, "v@ext.test",
	    "local.test", F_QUOTED | F_ROUTECHARS, 0 },
	{ IN("<v@ext.test@local.test>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<v@[192.0.2.1]>"), NONE, OK, "v", "[192.0.2.1]", F_LITERAL, 0 },
	{ IN("<v@local.test.>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<v@ext.test>"), NONE, OK, "v", "ext.test", 0, 0 },
	/* source routes: every domain must be valid */
	{ IN("<@a.example,b.example:u@c.example>"), NONE, SYNTAX, NULL, NULL,
	    0, 0 },
	{ IN("<@a.example;u@c.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<@a.example:>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<@a.example:@b.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<@:u@c.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<@a.example.:u@c.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<@-a.example:u@c.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<@[192.0.2.1]:u@c.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<@a.example,:u@c.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<@x>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	/* shell and expansion payloads (security-tests.md 7) */
	{ IN("<;sleep 66;>"), ABOTH, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<${run{\\x2fbin\\x2fsh\\t-c\\t\\x22id\\x22}}@localhost>"), ABOTH,
	    SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<${run{\x2f" "bin\x2fsh\t-c\t\x22id\x22}}@localhost>"), ABOTH,
	    SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<${run{/bin/sh}}@localhost>"), NONE, OK, "${run{/bin/sh}}",
	    "localhost", 0, 0 },
	/* quoted local parts */
	{ IN("<\"a b\"@x.example>"), NONE, OK, "a b", "x.example", F_QUOTED,
	    0 },
	{ IN("<\"a\\\"b\\\\c\"@x.example>"), NONE, OK, "a\"b\\c", "x.example",
	    F_QUOTED, 0 },
	{ IN("<\"\\a\"@x.example>"), NONE, OK, "a", "x.example", F_QUOTED, 0 },
	{ IN("<\"a>b\"@x.example>"), NONE, OK, "a>b", "x.example", F_QUOTED,
	    0 },
	{ IN("<\"a\\ b\"@x.example>"), NONE, OK, "a b", "x.example", F_QUOTED,
	    0 },
	{ IN("<\".a..b.\"@x.example>"), NONE, OK, ".a..b.", "x.example",
	    F_QUOTED, 0 },
	{ IN("<\"a\"@[192.0.2.1]>"), NONE, OK, "a", "[192.0.2.1]",
	    F_QUOTED | F_LITERAL, 0 },
	{ IN("<\"\"@x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<\"a\tb\"@x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<\"a\r\nb\"@x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<\"a\\\rb\"@x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<\"a\\\tb\"@x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<\"a\x7f\"@x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<\"a\\\x7f\"@x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<\"a\x1b[2J\"@x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<\"ab@x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<\"ab\\\"@x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<a\"b\"@x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<\"a\"b@x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<\"a\".b@x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<a\\@b@x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	/* dot-strings */
	{ IN("<.u@x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u.@x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u..v@x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<a b@x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<a(b)@x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<a,b@x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<a:b@x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<a[b]@x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<a<b@x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	/* domains */
	{ IN("<u@>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@.x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@x..example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@-x.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@x-.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@x.example->"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@x_y.example>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@x.example,y>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@x.example:25>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@x.example >"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@192.0.2.1>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@1>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	/* address literals */
	{ IN("<u@[0.0.0.0]>"), NONE, OK, "u", "[0.0.0.0]", F_LITERAL, 0 },
	{ IN("<u@[255.255.255.255]>"), NONE, OK, "u", "[255.255.255.255]",
	    F_LITERAL, 0 },
	{ IN("<u@[IPv6:2001:DB8::1]>"), NONE, OK, "u", "[ipv6:2001:db8::1]",
	    F_LITERAL, 0 },
	{ IN("<u@[ipv6:::ffff:192.0.2.1]>"), NONE, OK, "u",
	    "[ipv6:::ffff:192.0.2.1]", F_LITERAL, 0 },
	{ IN("<u@[IPV6:1:2:3:4:5:6:7:8]>"), NONE, OK, "u",
	    "[ipv6:1:2:3:4:5:6:7:8]", F_LITERAL, 0 },
	{ IN("<u@[IPv6:::]>"), NONE, OK, "u", "[ipv6:::]", F_LITERAL, 0 },
	{ IN("<u@[192.0.2.256]>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@[192.0.2]>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@[192.0.2.1.5]>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@[010.0.2.1]>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@[1920.0.2.1]>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@[ 192.0.2.1]>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@[192.0.2.1x]>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@[x192.0.2.1]>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@[192..2.1]>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@[]>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@[192.0.2.1]x>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@[192.0.2.1]]>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@[192.0.2.1>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@x.[192.0.2.1]>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@[IPv6:2001:db8::g]>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@[IPv6:1:2:3:4:5:6:7:8:9]>"), NONE, SYNTAX, NULL, NULL, 0,
	    0 },
	{ IN("<u@[IPv6:]>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@[IPv6:fe80::1%eth0]>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@[IPv6:192.0.2.1]>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@[IPv6 ::1]>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@[IPv4:192.0.2.1]>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@[tag:content]>"), NONE, SYNTAX, NULL, NULL, 0, 0 },
	/* framing */
	{ IN(""), ABOTH, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("user@example.org"), ABOTH, SYNTAX, NULL, NULL, 0, 0 },
	{ IN(" <user@example.org>"), ABOTH, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<user@example.org"), ABOTH, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("< user@example.org>"), ABOTH, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<<user@example.org>>"), ABOTH, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<"), ABOTH, SYNTAX, NULL, NULL, 0, 0 },
	{ IN(">"), ABOTH, SYNTAX, NULL, NULL, 0, 0 },
	/* NUL bytes */
	{ IN("<u@x\0>"), ABOTH, NUL, NULL, NULL, 0, 0 },
	{ IN("<\0>"), ABOTH, NUL, NULL, NULL, 0, 0 },
	{ IN("<u\0@x>"), ABOTH, NUL, NULL, NULL, 0, 0 },
	{ IN("<\"a\\\0\"@x>"), ABOTH, NUL, NULL, NULL, 0, 0 },
	{ IN("<\"a\0b\"@x>"), ABOTH, NUL, NULL, NULL, 0, 0 },
	{ IN("<a\0"), ABOTH, NUL, NULL, NULL, 0, 0 },
	{ IN("<a b\0>"), ABOTH, NUL, NULL, NULL, 0, 0 },
	{ IN("<u@x>\0"), ABOTH, OK, "u", "x", 0, 5 },
	/* 8-bit and UTF-8 */
	{ IN("<\xc3\xa9l\xc3\xa8ve@\xc3\xa9" "cole.example>"), AUTF8, OK,
	    "\xc3\xa9l\xc3\xa8ve", "\xc3\xa9" "cole.example", F_UTF8, 0 },
	{ IN("<\xc3\xa9l\xc3\xa8ve@\xc3\xa9" "cole.example>"), ANULL, EIGHTBIT,
	    NULL, NULL, 0, 0 },
	{ IN("<u@\xc3\x89" "COLE.Example>"), AUTF8, OK, "u",
	    "\xc3\x89" "cole.example", F_UTF8, 0 },
	{ IN("<\xf0\x9f\x98\x80@x.example>"), AUTF8, OK, "\xf0\x9f\x98\x80",
	    "x.example", F_UTF8, 0 },
	{ IN("<\xef\xbf\xbf\xf4\x8f\xbf\xbf@x.example>"), AUTF8, OK,
	    "\xef\xbf\xbf\xf4\x8f\xbf\xbf", "x.example", F_UTF8, 0 },
	{ IN("<\xc2\xa9@x.example>"), AUTF8, OK, "\xc2\xa9", "x.example",
	    F_UTF8, 0 },
	{ IN("<u@\xc2\xa9.example>"), ABOTH, OK, "u", "\xc2\xa9.example",
	    F_UTF8, 0 },
	{ IN("<\"\xc3\xa9 x\"@x.example>"), AUTF8, OK, "\xc3\xa9 x",
	    "x.example", F_UTF8 | F_QUOTED, 0 },
	{ IN("<@\xc3\xa9.example:u@x.example>"), AUTF8, OK, "u", "x.example",
	    F_ROUTE, 0 },
	{ IN("<u@x.example>\x80"), NONE, OK, "u", "x.example", 0, 13 },
	{ IN("<u@x.exampl\xe9>"), NONE, EIGHTBIT, NULL, NULL, 0, 0 },
	{ IN("<u@x.exampl\xe9>"), AUTF8, BADUTF8, NULL, NULL, 0, 0 },
	{ IN("<\xc0\x80@x.example>"), AUTF8, BADUTF8, NULL, NULL, 0, 0 },
	{ IN("<\xc1\xbf@x.example>"), AUTF8, BADUTF8, NULL, NULL, 0, 0 },
	{ IN("<\xe0\x80\xaf@x.example>"), AUTF8, BADUTF8, NULL, NULL, 0, 0 },
	{ IN("<\xe0\x9f\xbf@x.example>"), AUTF8, BADUTF8, NULL, NULL, 0, 0 },
	{ IN("<\xf0\x80\x80\xaf@x.example>"), AUTF8, BADUTF8, NULL, NULL, 0,
	    0 },
	{ IN("<\xf0\x8f\xbf\xbf@x.example>"), AUTF8, BADUTF8, NULL, NULL, 0,
	    0 },
	{ IN("<\xed\xa0\x80@x.example>"), AUTF8, BADUTF8, NULL, NULL, 0, 0 },
	{ IN("<\xed\xbf\xbf@x.example>"), AUTF8, BADUTF8, NULL, NULL, 0, 0 },
	{ IN("<\xf4\x90\x80\x80@x.example>"), AUTF8, BADUTF8, NULL, NULL, 0,
	    0 },
	{ IN("<\xf5\x80\x80\x80@x.example>"), AUTF8, BADUTF8, NULL, NULL, 0,
	    0 },
	{ IN("<\xff@x.example>"), AUTF8, BADUTF8, NULL, NULL, 0, 0 },
	{ IN("<\x80@x.example>"), AUTF8, BADUTF8, NULL, NULL, 0, 0 },
	{ IN("<\xc3@x.example>"), AUTF8, BADUTF8, NULL, NULL, 0, 0 },
	{ IN("<\xe2\x82@x.example>"), AUTF8, BADUTF8, NULL, NULL, 0, 0 },
	{ IN("<\xe2\x82\xac\xac@x.example>"), AUTF8, BADUTF8, NULL, NULL, 0,
	    0 },
	{ IN("<u@x.example\xc3>"), AUTF8, BADUTF8, NULL, NULL, 0, 0 },
	{ IN("<\"\xc3\"@x.example>"), AUTF8, BADUTF8, NULL, NULL, 0, 0 },
	{ IN("<\xc2\x85@x.example>"), AUTF8, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<\"\xc2\x9b\"@x.example>"), AUTF8, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<\"\\\xc3\xa9\"@x.example>"), AUTF8, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@local\xe3\x80\x82test>"), AUTF8, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@local\xef\xbc\x8etest>"), AUTF8, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@local\xef\xbd\xa1test>"), AUTF8, SYNTAX, NULL, NULL, 0, 0 },
	{ IN("<u@[192.0.2.\xc3\xa9]>"), AUTF8, SYNTAX, NULL, NULL, 0, 0 },
};

/* Runs the parser on an exactly-sized heap copy so ASan sees overreads. */
static enum smtp_address_result
parse_exact(const char *in, size_t len, int allow, struct smtp_address *a,
    size_t *consumed)
{
	enum smtp_address_result	 r;
	char				*buf;

	buf = malloc(len > 0 ? len : 1);
	if (buf == NULL)
		abort();
	memcpy(buf, in, len);
	r = smtp_address_parse_path(buf, len, (allow & ANULL) != 0,
	    (allow & AUTF8) != 0, a, consumed);
	free(buf);
	return r;
}

static int
addr_flags(const struct smtp_address *a)
{
	return (a->is_null ? F_NULL : 0) | (a->local_quoted ? F_QUOTED : 0) |
	    (a->domain_literal ? F_LITERAL : 0) |
	    (a->had_source_route ? F_ROUTE : 0) | (a->utf8 ? F_UTF8 : 0) |
	    (smtp_address_has_route_chars(a) ? F_ROUTECHARS : 0);
}

static bool
same_address(const struct smtp_address *a, const struct smtp_address *b)
{
	return strcmp(a->local, b->local) == 0 &&
	    strcmp(a->domain, b->domain) == 0 && a->is_null == b->is_null &&
	    a->domain_literal == b->domain_literal && a->utf8 == b->utf8;
}

static void
test_golden(void)
{
	struct smtp_address	 a;
	size_t			 i, consumed, want_consumed;
	enum smtp_address_result r;

	CHECK(sizeof(golden) / sizeof(golden[0]) >= 60);
	for (i = 0; i < sizeof(golden) / sizeof(golden[0]); i++) {
		const struct golden *g = &golden[i];

		consumed = 9999;
		r = parse_exact(g->in, g->len, g->allow, &a, &consumed);
		if (r != g->want)
			fprintf(stderr, "golden %zu \"%.*s\": got %d want %d\n",
			    i, (int)g->len, g->in, r, g->want);
		CHECK(r == g->want);
		if (r != OK || g->want != OK) {
			CHECK(consumed == 9999);
			continue;
		}
		want_consumed = g->consumed != 0 ? g->consumed : g->len;
		CHECK(consumed == want_consumed);
		CHECK_STR(a.local, g->local);
		CHECK_STR(a.domain, g->domain);
		if (addr_flags(&a) != g->flags)
			fprintf(stderr, "golden %zu: flags %#x want %#x\n", i,
			    addr_flags(&a), g->flags);
		CHECK(addr_flags(&a) == g->flags);
	}
}

/*
 * Every proper prefix of a valid path must fail without reading past its
 * end, and whatever follows the path must not change the result.
 */
static void
test_truncations(void)
{
	struct smtp_address	 a, b;
	size_t			 i, k, consumed, c2;
	char			 ext[SMTP_PATH_MAX + 16];

	for (i = 0; i < sizeof(golden) / sizeof(golden[0]); i++) {
		const struct golden *g = &golden[i];

		if (g->want != OK)
			continue;
		CHECK(parse_exact(g->in, g->len, g->allow, &a, &consumed) ==
		    OK);
		for (k = 0; k < consumed; k++)
			CHECK(parse_exact(g->in, k, g->allow, &b, &c2) != OK);
		CHECK(consumed + 3 <= sizeof(ext));
		memcpy(ext, g->in, consumed);
		memcpy(ext + consumed, "x\0>", 3);
		for (k = consumed; k <= consumed + 3; k++) {
			memset(&b, 0x55, sizeof(b));
			CHECK(parse_exact(ext, k, g->allow, &b, &c2) == OK);
			CHECK(c2 == consumed);
			CHECK(same_address(&a, &b));
			CHECK(addr_flags(&a) == addr_flags(&b));
		}
	}
}

/* A NUL or a stray 8-bit byte at any place inside a valid path. */
static void
test_injections(void)
{
	struct smtp_address	 a;
	size_t			 i, k, consumed, c2;
	char			*buf;
	enum smtp_address_result r;
	bool			 plain;

	for (i = 0; i < sizeof(golden) / sizeof(golden[0]); i++) {
		const struct golden *g = &golden[i];

		if (g->want != OK)
			continue;
		CHECK(parse_exact(g->in, g->len, g->allow, &a, &consumed) ==
		    OK);
		buf = malloc(consumed);
		CHECK(buf != NULL);
		if (buf == NULL)
			return;
		for (k = 1; k < consumed; k++) {
			memcpy(buf, g->in, consumed);
			buf[k] = '\0';
			CHECK(parse_exact(buf, consumed, ABOTH, &a, &c2) ==
			    NUL);
			if ((unsigned char)g->in[k] >= 0x80)
				continue;
			buf[k] = (char)0x80;
			r = parse_exact(buf, consumed, ANULL, &a, &c2);
			CHECK(r != OK);
			/*
			 * Losing the ">", a quote or a backslash may leave the
			 * path without an end, which is SYNTAX.
			 */
			plain = k + 1 < consumed && g->in[k] != '"' &&
			    g->in[k] != '\\';
			if (plain)
				CHECK(r == EIGHTBIT);
			r = parse_exact(buf, consumed, ABOTH, &a, &c2);
			CHECK(r != OK);
			if (plain)
				CHECK(r == BADUTF8);
		}
		free(buf);
	}
}

/* Builds "<" local "@" domain ">" with the parts made of repeated text. */
static size_t
build(char *out, const char *pre, size_t nlocal, const char *mid,
    size_t ndomain_labels, size_t last_label, const char *post)
{
	size_t	 n = 0, i, j;

	n += (size_t)sprintf(out + n, "%s", pre);
	for (i = 0; i < nlocal; i++)
		out[n++] = 'l';
	n += (size_t)sprintf(out + n, "%s", mid);
	for (i = 0; i < ndomain_labels; i++) {
		for (j = 0; j < 9; j++)
			out[n++] = 'd';
		out[n++] = '.';
	}
	for (j = 0; j < last_label; j++)
		out[n++] = 'e';
	n += (size_t)sprintf(out + n, "%s", post);
	out[n] = '\0';
	return n;
}

static void
test_limits(void)
{
	struct smtp_address	 a;
	char			 buf[1024];
	size_t			 n, consumed, i;

	/* dot-string local part: 64 octets, then 65 */
	n = build(buf, "<", 64, "@", 0, 1, ">");
	CHECK(parse_exact(buf, n, NONE, &a, &consumed) == OK);
	CHECK(strlen(a.local) == 64 && consumed == n);
	n = build(buf, "<", 65, "@", 0, 1, ">");
	CHECK(parse_exact(buf, n, NONE, &a, &consumed) == TOOLONG);
	n = build(buf, "<a.", 62, "@", 0, 1, ">");
	CHECK(parse_exact(buf, n, NONE, &a, &consumed) == OK);
	n = build(buf, "<a.", 63, "@", 0, 1, ">");
	CHECK(parse_exact(buf, n, NONE, &a, &consumed) == TOOLONG);
	n = build(buf, "<", 64, ".a@", 0, 1, ">");
	CHECK(parse_exact(buf, n, NONE, &a, &consumed) == TOOLONG);

	/* quoted: the quotes and backslashes count, as sent */
	n = build(buf, "<\"", 62, "\"@", 0, 1, ">");
	CHECK(parse_exact(buf, n, NONE, &a, &consumed) == OK);
	CHECK(strlen(a.local) == 62);
	n = build(buf, "<\"", 63, "\"@", 0, 1, ">");
	CHECK(parse_exact(buf, n, NONE, &a, &consumed) == TOOLONG);
	n = (size_t)sprintf(buf, "<\"");
	for (i = 0; i < 31; i++)
		n += (size_t)sprintf(buf + n, "\\\\");
	n += (size_t)sprintf(buf + n, "\"@x>");
	CHECK(parse_exact(buf, n, NONE, &a, &consumed) == OK);
	CHECK(strlen(a.local) == 31 && a.local[30] == '\\');
	n = (size_t)sprintf(buf, "<\"");
	for (i = 0; i < 31; i++)
		n += (size_t)sprintf(buf + n, "\\\\");
	n += (size_t)sprintf(buf + n, "a\"@x>");
	CHECK(parse_exact(buf, n, NONE, &a, &consumed) == TOOLONG);

	/* UTF-8 counts octets, not characters */
	n = (size_t)sprintf(buf, "<");
	for (i = 0; i < 32; i++)
		n += (size_t)sprintf(buf + n, "\xc3\xa9");
	n += (size_t)sprintf(buf + n, "@x>");
	CHECK(parse_exact(buf, n, AUTF8, &a, &consumed) == OK);
	CHECK(strlen(a.local) == 64 && a.utf8);
	n = build(buf, "<", 63, "\xc3\xa9@", 0, 1, ">");
	CHECK(parse_exact(buf, n, AUTF8, &a, &consumed) == TOOLONG);

	/* a label: 63 octets, then 64 */
	n = build(buf, "<u@", 0, "", 0, 63, ".example>");
	CHECK(parse_exact(buf, n, NONE, &a, &consumed) == OK);
	n = build(buf, "<u@", 0, "", 0, 64, ".example>");
	CHECK(parse_exact(buf, n, NONE, &a, &consumed) == SYNTAX);
	n = build(buf, "<u@", 0, "", 0, 63, ">");
	CHECK(parse_exact(buf, n, NONE, &a, &consumed) == OK);
	n = build(buf, "<u@", 0, "", 0, 64, ">");
	CHECK(parse_exact(buf, n, NONE, &a, &consumed) == SYNTAX);

	/*
	 * The whole path: 256 octets, then 257. "<a@" and ">" leave 252 for
	 * the domain, so SMTP_DOMAIN_MAX (255) can never be reached inside a
	 * path and the path limit is the one that bites.
	 */
	n = build(buf, "<", 1, "@", 25, 2, ">");
	CHECK(n == 256);
	CHECK(parse_exact(buf, n, NONE, &a, &consumed) == OK);
	CHECK(strlen(a.domain) == 252 && consumed == 256);
	n = build(buf, "<", 1, "@", 25, 3, ">");
	CHECK(n == 257);
	CHECK(parse_exact(buf, n, NONE, &a, &consumed) == TOOLONG);
	n = build(buf, "<", 64, "@", 18, 9, ">");
	CHECK(n == 256);
	CHECK(parse_exact(buf, n, NONE, &a, &consumed) == OK);
	n = build(buf, "<", 64, "@", 18, 10, ">");
	CHECK(n == 257);
	CHECK(parse_exact(buf, n, NONE, &a, &consumed) == TOOLONG);
	/* the source route counts toward the path */
	n = build(buf, "<@", 0, "", 24, 9, ":u@x>");
	CHECK(n == 256);
	CHECK(parse_exact(buf, n, NONE, &a, &consumed) == OK);
	CHECK(a.had_source_route && strcmp(a.domain, "x") == 0);
	n = build(buf, "<@", 0, "", 24, 10, ":u@x>");
	CHECK(parse_exact(buf, n, NONE, &a, &consumed) == TOOLONG);
	/* quoted, with a ">" inside, at 256 and 257 */
	n = build(buf, "<\">", 61, "\"@", 18, 9, ">");
	CHECK(n == 256);
	CHECK(parse_exact(buf, n, NONE, &a, &consumed) == OK);
	CHECK(consumed == 256 && a.local[0] == '>');
	n = build(buf, "<\">", 61, "\"@", 18, 10, ">");
	CHECK(parse_exact(buf, n, NONE, &a, &consumed) == TOOLONG);
	/* no ">" at all: too long once 256 octets have gone by */
	memset(buf, 'a', sizeof(buf));
	buf[0] = '<';
	CHECK(parse_exact(buf, 255, NONE, &a, &consumed) == SYNTAX);
	CHECK(parse_exact(buf, 256, NONE, &a, &consumed) == TOOLONG);
	CHECK(parse_exact(buf, sizeof(buf), NONE, &a, &consumed) == TOOLONG);
	/* a NUL past the limit is not inside the path */
	buf[300] = '\0';
	CHECK(parse_exact(buf, sizeof(buf), NONE, &a, &consumed) == TOOLONG);
	buf[255] = '\0';
	CHECK(parse_exact(buf, sizeof(buf), NONE, &a, &consumed) == NUL);
}

/* security-tests.md 9, one by one, with what each must mean. */
static void
test_relay_forms(void)
{
	struct smtp_address	 a;
	size_t			 consumed;

	CHECK(parse_exact(IN("<v%ext.test@local.test>"), NONE, &a,
	    &consumed) == OK);
	CHECK_STR(a.local, "v%ext.test");
	CHECK_STR(a.domain, "local.test");
	CHECK(smtp_address_has_route_chars(&a));

	CHECK(parse_exact(IN("<@local.test:v@ext.test>"), NONE, &a,
	    &consumed) == OK);
	CHECK_STR(a.local, "v");
	CHECK_STR(a.domain, "ext.test");
	CHECK(a.had_source_route && !smtp_address_has_route_chars(&a));

	CHECK(parse_exact(IN("<ext.test!v@local.test>"), NONE, &a,
	    &consumed) == OK);
	CHECK_STR(a.domain, "local.test");
	CHECK(smtp_address_has_route_chars(&a));

	CHECK(parse_exact(IN("<\"v@ext.test\"@local.test>"), NONE, &a,
	    &consumed) == OK);
	CHECK_STR(a.local, "v@ext.test");
	CHECK_STR(a.domain, "local.test");
	CHECK(a.local_quoted && smtp_address_has_route_chars(&a));

	CHECK(parse_exact(IN("<v@ext.test@local.test>"), NONE, &a,
	    &consumed) == SYNTAX);
	CHECK(parse_exact(IN("<v@ext.test@local.test>"), ABOTH, &a,
	    &consumed) == SYNTAX);

	CHECK(parse_exact(IN("<v@[192.0.2.1]>"), NONE, &a, &consumed) == OK);
	CHECK(a.domain_literal);
	CHECK_STR(a.domain, "[192.0.2.1]");

	CHECK(parse_exact(IN("<v@local.test.>"), NONE, &a, &consumed) ==
	    SYNTAX);

	CHECK(parse_exact(IN("<Bob@LOCAL.Test>"), NONE, &a, &consumed) ==
	    OK);
	CHECK_STR(a.local, "Bob");
	CHECK_STR(a.domain, "local.test");
	CHECK(!smtp_address_has_route_chars(&a));

	/* a plain address has no routing characters */
	CHECK(parse_exact(IN("<v.w-x+y@local.test>"), NONE, &a, &consumed) ==
	    OK);
	CHECK(!smtp_address_has_route_chars(&a));
}

/* security-tests.md 7: rejected, or parsed into something inert. */
static void
test_shell_payloads(void)
{
	struct smtp_address	 a;
	size_t			 consumed;
	const char		 tab[] =
	    "<${run{\x2f" "bin\x2fsh\t-c\t\x22id\x22}}@localhost>";

	CHECK(parse_exact(IN("<;sleep 66;>"), ABOTH, &a, &consumed) ==
	    SYNTAX);
	CHECK(parse_exact(IN("<;sleep 66;@x>"), ABOTH, &a, &consumed) ==
	    SYNTAX);
	CHECK(strchr(tab, '\t') != NULL);
	CHECK(parse_exact(tab, sizeof(tab) - 1, ABOTH, &a, &consumed) ==
	    SYNTAX);
	CHECK(parse_exact(IN("<${run{\\x2fbin\\x2fsh\\t-c\\t\\x22id\\x22}}"
	    "@localhost>"), ABOTH, &a, &consumed) == SYNTAX);
	CHECK(parse_exact(IN("<a`touch${IFS}/tmp/pwn`@x>"), NONE, &a,
	    &consumed) == OK);
	CHECK_STR(a.local, "a`touch${IFS}/tmp/pwn`");
	CHECK_STR(a.domain, "x");
	/* Legal, but the session refuses it (smtp_address_has_shell_chars). */
	CHECK(smtp_address_has_shell_chars(&a));
	CHECK(parse_exact(IN("<a|b@x>"), NONE, &a, &consumed) == OK);
	CHECK(smtp_address_has_shell_chars(&a));
	CHECK(parse_exact(IN("<a{b@x>"), NONE, &a, &consumed) == OK);
	CHECK(smtp_address_has_shell_chars(&a));
	CHECK(parse_exact(IN("<a}b@x>"), NONE, &a, &consumed) == OK);
	CHECK(smtp_address_has_shell_chars(&a));
	CHECK(parse_exact(IN("<a$b@x>"), NONE, &a, &consumed) == OK);
	CHECK(smtp_address_has_shell_chars(&a));
	CHECK(parse_exact(IN("<a.b-c_d+e~f'g=h?i^j&k*l#m/n@x>"), NONE, &a,
	    &consumed) == OK);
	CHECK(!smtp_address_has_shell_chars(&a));
	CHECK(parse_exact(IN("<a;b@x>"), NONE, &a, &consumed) == SYNTAX);
	CHECK(parse_exact(IN("<a\nb@x>"), NONE, &a, &consumed) == SYNTAX);
	CHECK(parse_exact(IN("<a@x\r\n>"), NONE, &a, &consumed) == SYNTAX);
}

/* parse(format(x)) gives x back for every valid golden case. */
static void
test_round_trip(void)
{
	struct smtp_address	 a, b;
	char			 out[SMTP_PATH_MAX + 1], path[SMTP_PATH_MAX + 2];
	size_t			 i, n, consumed, c2;

	for (i = 0; i < sizeof(golden) / sizeof(golden[0]); i++) {
		const struct golden *g = &golden[i];

		if (g->want != OK)
			continue;
		CHECK(parse_exact(g->in, g->len, g->allow, &a, &consumed) ==
		    OK);
		n = smtp_address_format(&a, out, sizeof(out));
		CHECK(n != (size_t)-1 && n == strlen(out));
		if (n == (size_t)-1)
			continue;
		CHECK(n + 2 <= consumed);
		path[0] = '<';
		memcpy(path + 1, out, n);
		path[n + 1] = '>';
		CHECK(parse_exact(path, n + 2, g->allow, &b, &c2) == OK);
		CHECK(c2 == n + 2);
		CHECK(same_address(&a, &b));
		CHECK(!b.had_source_route);
		if (!same_address(&a, &b))
			fprintf(stderr, "round trip %zu: \"%s\"\n", i, out);
		/* exactly the size needed, and one less */
		CHECK(smtp_address_format(&a, out, n + 1) == n);
		CHECK(smtp_address_format(&a, out, n) == (size_t)-1);
		CHECK(out[0] == '\0' || n == 0);
	}
}

static void
format_one(const char *path, size_t len, const char *want)
{
	struct smtp_address	 a;
	char			 out[SMTP_PATH_MAX + 1];
	size_t			 consumed;

	CHECK(parse_exact(path, len, ABOTH, &a, &consumed) == OK);
	CHECK(smtp_address_format(&a, out, sizeof(out)) == strlen(want));
	CHECK_STR(out, want);
}

static void
test_format(void)
{
	struct smtp_address	 a;
	char			 out[16];

	format_one(IN("<User@Example.ORG>"), "User@example.org");
	format_one(IN("<\"a b\"@x>"), "\"a b\"@x");
	format_one(IN("<\"a\\\"b\\\\c\"@x>"), "\"a\\\"b\\\\c\"@x");
	format_one(IN("<\"\\a\\b\"@x>"), "ab@x");
	format_one(IN("<\"a.b\"@x>"), "a.b@x");
	format_one(IN("<\".a\"@x>"), "\".a\"@x");
	format_one(IN("<\"a.\"@x>"), "\"a.\"@x");
	format_one(IN("<\"a..b\"@x>"), "\"a..b\"@x");
	format_one(IN("<\"a@b\"@x>"), "\"a@b\"@x");
	format_one(IN("<\"a>b\"@x>"), "\"a>b\"@x");
	format_one(IN("<\"a,b\"@x>"), "\"a,b\"@x");
	format_one(IN("<\"\xc3\xa9\"@x>"), "\xc3\xa9@x");
	format_one(IN("<\"\xc3\xa9 \"@x>"), "\"\xc3\xa9 \"@x");
	format_one(IN("<@a,@b:u@C>"), "u@c");
	format_one(IN("<PostMaster>"), "postmaster");
	format_one(IN("<>"), "");
	format_one(IN("<u@[IPv6:::1]>"), "u@[ipv6:::1]");

	/* sizes: too small leaves "" and says so */
	memset(&a, 0, sizeof(a));
	a.is_null = true;
	CHECK(smtp_address_format(&a, out, 0) == (size_t)-1);
	CHECK(smtp_address_format(&a, out, 1) == 0 && out[0] == '\0');
	memset(&a, 0, sizeof(a));
	memcpy(a.local, "a\"b", 4);
	memcpy(a.domain, "x.y", 4);
	CHECK(smtp_address_format(&a, out, sizeof(out)) == 10);
	CHECK_STR(out, "\"a\\\"b\"@x.y");
	CHECK(smtp_address_format(&a, out, 11) == 10);
	memset(out, 'z', sizeof(out));
	CHECK(smtp_address_format(&a, out, 10) == (size_t)-1);
	CHECK(out[0] == '\0');
	CHECK(smtp_address_format(&a, out, 1) == (size_t)-1);
	CHECK(out[0] == '\0');
	/* a local part that fills the array without its NUL */
	memset(&a, 0, sizeof(a));
	memset(a.local, 'q', sizeof(a.local));
	CHECK(smtp_address_format(&a, out, sizeof(out)) == (size_t)-1);
	CHECK(!smtp_address_has_route_chars(&a));
}

static void
test_strerror(void)
{
	int	 i, j;

	for (i = OK; i <= BADUTF8; i++) {
		CHECK(smtp_address_strerror(i) != NULL);
		CHECK(smtp_address_strerror(i)[0] != '\0');
		for (j = OK; j < i; j++)
			CHECK(strcmp(smtp_address_strerror(i),
			    smtp_address_strerror(j)) != 0);
	}
	CHECK(smtp_address_strerror((enum smtp_address_result)99) != NULL);
}

/* A path is not changed on failure, and *consumed_r is left alone. */
static void
test_no_output_on_error(void)
{
	struct smtp_address	 a;
	size_t			 consumed = 7;

	memset(&a, 0x41, sizeof(a));
	CHECK(parse_exact(IN("<u@x.example.>"), NONE, &a, &consumed) ==
	    SYNTAX);
	CHECK(consumed == 7);
	CHECK(a.local[0] == 0x41 && a.domain[0] == 0x41);
}

int
main(void)
{
	UNIT_RUN(test_golden);
	UNIT_RUN(test_truncations);
	UNIT_RUN(test_injections);
	UNIT_RUN(test_limits);
	UNIT_RUN(test_relay_forms);
	UNIT_RUN(test_shell_payloads);
	UNIT_RUN(test_round_trip);
	UNIT_RUN(test_format);
	UNIT_RUN(test_strerror);
	UNIT_RUN(test_no_output_on_error);
	return unit_finish();
}
