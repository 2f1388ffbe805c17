/*
 * libFuzzer target for the RFC 5321 4.1.2 path parser: checks the result's
 * invariants, that the strict and lenient modes agree, that no prefix of a
 * path parses, and that parse(format(x)) == x. A violation aborts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_address.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(e) do { if (!(e)) abort(); } while (0)

/* An exactly-sized heap copy, so that ASan sees any read past len. */
static enum smtp_address_result
parse_copy(const void *in, size_t len, bool allow_null, bool allow_utf8,
    struct smtp_address *a, size_t *consumed)
{
	enum smtp_address_result	 r;
	char				*buf;

	buf = malloc(len > 0 ? len : 1);
	ASSERT(buf != NULL);
	memcpy(buf, in, len);
	r = smtp_address_parse_path(buf, len, allow_null, allow_utf8, a,
	    consumed);
	free(buf);
	return r;
}

/* The identity of an address; how it was written (quotes, route) aside. */
static bool
same_address(const struct smtp_address *a, const struct smtp_address *b)
{
	return strcmp(a->local, b->local) == 0 &&
	    strcmp(a->domain, b->domain) == 0 && a->is_null == b->is_null &&
	    a->domain_literal == b->domain_literal && a->utf8 == b->utf8;
}

static bool
same_parse(const struct smtp_address *a, const struct smtp_address *b)
{
	return same_address(a, b) && a->local_quoted == b->local_quoted &&
	    a->had_source_route == b->had_source_route;
}

static void
check_fields(const uint8_t *data, size_t consumed,
    const struct smtp_address *a)
{
	size_t	 i, llen, dlen;
	bool	 high = false;

	ASSERT(consumed >= 2 && consumed <= SMTP_PATH_MAX);
	ASSERT(data[0] == '<' && data[consumed - 1] == '>');
	ASSERT(memchr(data, '\0', consumed) == NULL);
	llen = strnlen(a->local, sizeof(a->local));
	dlen = strnlen(a->domain, sizeof(a->domain));
	ASSERT(llen <= SMTP_LOCALPART_MAX && dlen <= SMTP_DOMAIN_MAX);
	/* unquoting only ever shortens */
	ASSERT(llen + dlen + (dlen > 0 ? 3 : 2) <= consumed);
	for (i = 0; i < llen; i++) {
		ASSERT((unsigned char)a->local[i] >= 0x20 &&
		    a->local[i] != 0x7f);
		if ((unsigned char)a->local[i] >= 0x80)
			high = true;
	}
	for (i = 0; i < dlen; i++) {
		ASSERT((unsigned char)a->domain[i] > 0x20 &&
		    a->domain[i] != 0x7f);
		ASSERT(a->domain[i] < 'A' || a->domain[i] > 'Z');
		ASSERT(a->domain[i] != '@' && a->domain[i] != '>' &&
		    a->domain[i] != '"');
		if ((unsigned char)a->domain[i] >= 0x80)
			high = true;
	}
	ASSERT(a->utf8 == high);
	if (a->is_null)
		ASSERT(consumed == 2 && llen == 0 && dlen == 0 &&
		    !a->local_quoted && !a->domain_literal &&
		    !a->had_source_route);
	else
		ASSERT(llen > 0);
	if (dlen == 0 && !a->is_null)
		ASSERT(strcmp(a->local, "postmaster") == 0 &&
		    !a->had_source_route);
	ASSERT(a->domain_literal == (dlen > 0 && a->domain[0] == '['));
	if (a->domain_literal)
		ASSERT(a->domain[dlen - 1] == ']');
	else if (dlen > 0)
		ASSERT(a->domain[dlen - 1] != '.' && a->domain[0] != '.' &&
		    strstr(a->domain, "..") == NULL);
	ASSERT(smtp_address_has_route_chars(a) ==
	    (strpbrk(a->local, "%!@") != NULL));
}

static void
check_round_trip(size_t consumed, const struct smtp_address *a)
{
	struct smtp_address	 b, c;
	char			 out[SMTP_PATH_MAX + 1], again[SMTP_PATH_MAX + 1];
	char			 path[SMTP_PATH_MAX + 2];
	size_t			 n, c2;

	n = smtp_address_format(a, out, sizeof(out));
	ASSERT(n != (size_t)-1 && n == strlen(out));
	/* the formatted form is never longer than what was parsed */
	ASSERT(n + 2 <= consumed);
	path[0] = '<';
	memcpy(path + 1, out, n);
	path[n + 1] = '>';
	/* as strict as the original allowed: no extra permission needed */
	ASSERT(parse_copy(path, n + 2, a->is_null, a->utf8, &b, &c2) ==
	    SMTP_ADDRESS_OK);
	ASSERT(c2 == n + 2);
	ASSERT(same_address(a, &b));
	ASSERT(!b.had_source_route);
	ASSERT(b.local_quoted == (out[0] == '"'));
	ASSERT(parse_copy(path, n + 2, true, true, &c, &c2) ==
	    SMTP_ADDRESS_OK);
	ASSERT(same_parse(&b, &c));
	/* formatting is idempotent */
	ASSERT(smtp_address_format(&b, again, sizeof(again)) == n);
	ASSERT(memcmp(out, again, n + 1) == 0);
	/* size handling: exactly enough, then one short */
	ASSERT(smtp_address_format(a, again, n + 1) == n);
	if (n > 0) {
		ASSERT(smtp_address_format(a, again, n) == (size_t)-1);
		ASSERT(again[0] == '\0');
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_address		 lax, strict, again;
	enum smtp_address_result	 rl, rs, r;
	size_t				 cl = 0, cs = 0, c2, i;

	rl = smtp_address_parse_path((const char *)data, size, true, true,
	    &lax, &cl);
	rs = smtp_address_parse_path((const char *)data, size, false, false,
	    &strict, &cs);
	ASSERT(rl <= SMTP_ADDRESS_BAD_UTF8 && rs <= SMTP_ADDRESS_BAD_UTF8);
	ASSERT(rl != SMTP_ADDRESS_8BIT && rs != SMTP_ADDRESS_BAD_UTF8);
	ASSERT(smtp_address_strerror(rl) != NULL);

	/* What the strict mode accepts, the lenient one accepts the same. */
	if (rs == SMTP_ADDRESS_OK) {
		ASSERT(rl == SMTP_ADDRESS_OK && cl == cs);
		ASSERT(same_parse(&lax, &strict));
		ASSERT(!strict.is_null && !strict.utf8);
	}
	/* NUL, length and framing do not depend on the mode. */
	if (rs == SMTP_ADDRESS_NUL || rl == SMTP_ADDRESS_NUL)
		ASSERT(rs == rl);
	if (rl != SMTP_ADDRESS_OK)
		return 0;

	check_fields(data, cl, &lax);
	/* ...and an ASCII mailbox needs neither permission. */
	for (i = 0; i < cl && data[i] < 0x80; i++)
		;
	if (!lax.is_null && i == cl)
		ASSERT(rs == SMTP_ADDRESS_OK);

	/* The path alone parses the same; no proper prefix parses at all. */
	ASSERT(parse_copy(data, cl, true, true, &again, &c2) ==
	    SMTP_ADDRESS_OK && c2 == cl && same_parse(&lax, &again));
	r = parse_copy(data, cl - 1, true, true, &again, &c2);
	ASSERT(r != SMTP_ADDRESS_OK);
	r = parse_copy(data, cl / 2, true, true, &again, &c2);
	ASSERT(r != SMTP_ADDRESS_OK);

	check_round_trip(cl, &lax);
	return 0;
}
