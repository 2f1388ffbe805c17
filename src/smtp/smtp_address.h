/*
 * RFC 5321 section 4.1.2 paths: "<local@domain>", "<>", source routes
 * ("<@a,@b:u@c>", parsed and dropped as 4.1.1.3 says), quoted local parts,
 * address literals, and RFC 6531 UTF-8 when the session allows it.
 * A pure parser: no I/O, no allocation, fuzzed in tests/fuzz.
 */
#ifndef TEGAMI_SMTP_ADDRESS_H
#define TEGAMI_SMTP_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_LOCALPART_MAX 64	/* RFC 5321 4.5.3.1.1, octets as sent */
#define SMTP_DOMAIN_MAX 255	/* RFC 5321 4.5.3.1.2 */
#define SMTP_PATH_MAX 256	/* RFC 5321 4.5.3.1.3, including < and > */

enum smtp_address_result {
	SMTP_ADDRESS_OK = 0,
	SMTP_ADDRESS_SYNTAX,	/* not a valid path (501 5.1.3 / 5.1.7) */
	SMTP_ADDRESS_TOO_LONG,	/* a limit above was exceeded (501 5.1.3) */
	SMTP_ADDRESS_NUL,	/* contained a NUL byte (501 5.5.2) */
	SMTP_ADDRESS_8BIT,	/* non-ASCII without SMTPUTF8 (553 5.6.7) */
	SMTP_ADDRESS_BAD_UTF8,	/* non-ASCII that is not valid UTF-8 (553 5.6.7) */
};

struct smtp_address {
	/* Local part with quoting removed ("a b"@x gives a b), NUL-terminated;
	 * case preserved. Empty for the null path. */
	char local[SMTP_LOCALPART_MAX + 1];
	/* Domain, lowercased ASCII (UTF-8 bytes kept as sent), without a
	 * trailing dot (a trailing dot is a syntax error); address literals
	 * keep their brackets: "[192.0.2.1]", "[ipv6:...]". Empty for <> and
	 * for the bare "<postmaster>" form. */
	char domain[SMTP_DOMAIN_MAX + 1];
	bool is_null;		/* "<>" */
	bool local_quoted;	/* local part was a quoted-string */
	bool domain_literal;	/* domain is an address literal */
	bool had_source_route;	/* "@a,@b:" was present and dropped */
	bool utf8;		/* local part or domain has non-ASCII bytes */
};

/*
 * Parses one path at the start of s[0..len): "<" ... ">". Stops right after
 * the ">"; *consumed_r is the number of bytes used (set only on OK).
 * allow_null: "<>" is accepted (MAIL FROM), else it is SMTP_ADDRESS_SYNTAX.
 * allow_utf8: the client sent SMTPUTF8; otherwise any byte >= 0x80 gives
 * SMTP_ADDRESS_8BIT. The bare "<postmaster>" (any case) is accepted and
 * gives local "postmaster" with an empty domain. Never reads past s+len.
 */
enum smtp_address_result smtp_address_parse_path(const char *s, size_t len,
    bool allow_null, bool allow_utf8, struct smtp_address *addr_r,
    size_t *consumed_r);

/*
 * Writes the address as it should appear in a path, without the angle
 * brackets: local part re-quoted when it is not a dot-atom, "@", domain.
 * "" for the null path. Returns the length written, or (size_t)-1 if it did
 * not fit in outsize (out then holds ""). The result round-trips through
 * smtp_address_parse_path.
 */
size_t smtp_address_format(const struct smtp_address *addr, char *out,
    size_t outsize);

/*
 * True when the local part holds a routing character that old relays
 * obeyed: '%', '!' or '@' (the last only possible when quoted). Such an
 * address is never delivered as local mail.
 */
bool smtp_address_has_route_chars(const struct smtp_address *addr);

/*
 * True when the local part holds '`', '$', '|', '{' or '}': legal atext,
 * but found in no real mailbox name and in every shell and expansion
 * injection (CVE-2020-7247, CVE-2019-10149). tegami never passes an address
 * to a shell; refusing them anyway protects whatever reads the mail later.
 */
bool smtp_address_has_shell_chars(const struct smtp_address *addr);

/* A short English reason for a result, for replies and logs. */
const char *smtp_address_strerror(enum smtp_address_result r);

#endif
