/*
 * SMTP paths: the Path, Mailbox, Local-part and Domain grammar of RFC 5321
 * 4.1.2, address literals of 4.1.3, the size limits of 4.5.3.1 and the UTF-8
 * extensions of RFC 6531 3.3. Source routes are parsed and dropped (4.1.1.3).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp_address.h"

#define LABEL_MAX 63		/* RFC 1035 2.3.4, octets as sent */
#define IPV6_TAG "ipv6:"	/* RFC 5321 4.1.3, matched in any case */
#define IPV6_TAG_LEN 5

/*
 * The bytes of one path: s[0] is "<", s[close] its matching ">". Every
 * grammar function reads only s[pos..close).
 */
struct path {
	const unsigned char	*s;
	size_t			 pos;
	size_t			 close;
};

static bool
is_ascii_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static unsigned char
ascii_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* RFC 5322 3.2.3 atext, which RFC 5321 4.1.2 uses for Atom. */
static bool
is_atext(unsigned char c)
{
	return is_ascii_alnum(c) || (c != '\0' &&
	    strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/*
 * Length of the well-formed UTF-8 sequence at p (RFC 3629 section 4: no
 * overlongs, no surrogates, nothing above U+10FFFF), or 0.
 */
static size_t
utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char	 lo = 0x80, hi = 0xbf;
	size_t		 n, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;	/* overlong */
		else if (p[0] == 0xed)
			hi = 0x9f;	/* surrogates */
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		if (p[0] == 0xf0)
			lo = 0x90;	/* overlong */
		else if (p[0] == 0xf4)
			hi = 0x8f;	/* above U+10FFFF */
	} else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/*
 * Well-formed UTF-8 that still has no place in an address: C1 controls
 * (U+0080..U+009F), which terminals obey like their 7-bit cousins, and in
 * a domain the label separators of RFC 3490 3.1 (U+3002, U+FF0E, U+FF61),
 * so that no IDNA conversion later can see more labels than we did. U-labels
 * are not otherwise checked against IDNA2008: that needs libidn2.
 */
static bool
utf8_refused(const unsigned char *p, size_t n, bool in_domain)
{
	if (n == 2 && p[0] == 0xc2 && p[1] <= 0x9f)
		return true;
	if (!in_domain || n != 3)
		return false;
	return (p[0] == 0xe3 && p[1] == 0x80 && p[2] == 0x82) ||
	    (p[0] == 0xef && p[1] == 0xbc && p[2] == 0x8e) ||
	    (p[0] == 0xef && p[1] == 0xbd && p[2] == 0xa1);
}

/*
 * Finds the ">" that closes the path starting at s[0] == "<": the first one
 * outside a quoted string, within SMTP_PATH_MAX octets. A NUL on the way is
 * reported before anything else, as the header promises.
 */
static enum smtp_address_result
path_delimit(const unsigned char *s, size_t len, size_t *close_r)
{
	size_t	 i, limit;
	bool	 quoted = false;

	limit = len < SMTP_PATH_MAX ? len : SMTP_PATH_MAX;
	for (i = 1; i < limit; i++) {
		if (s[i] == '\0')
			return SMTP_ADDRESS_NUL;
		if (quoted) {
			if (s[i] == '"')
				quoted = false;
			else if (s[i] == '\\' && i + 1 < limit) {
				i++;
				if (s[i] == '\0')
					return SMTP_ADDRESS_NUL;
			}
		} else if (s[i] == '"')
			quoted = true;
		else if (s[i] == '>') {
			*close_r = i;
			return SMTP_ADDRESS_OK;
		}
	}
	/* Any ">" still to come would make the path longer than allowed. */
	return limit == SMTP_PATH_MAX ? SMTP_ADDRESS_TOO_LONG :
	    SMTP_ADDRESS_SYNTAX;
}

/* Checks every non-ASCII byte of the path once, before the grammar. */
static enum smtp_address_result
path_check_8bit(const unsigned char *s, size_t close, bool allow_utf8)
{
	size_t	 i, n;

	for (i = 1; i < close; i += n) {
		n = 1;
		if (s[i] < 0x80)
			continue;
		if (!allow_utf8)
			return SMTP_ADDRESS_8BIT;
		if ((n = utf8_len(s + i, s + close)) == 0)
			return SMTP_ADDRESS_BAD_UTF8;
	}
	return SMTP_ADDRESS_OK;
}

/*
 * Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str],
 * with RFC 6531 U-labels. Stops at the first byte that cannot continue it
 * and leaves the caller to judge that byte. out (may be NULL) gets the
 * domain lowercased. An all-numeric last label is refused: "u@192.0.2.1"
 * is an IP address written without its brackets, and resolvers would
 * treat it as one (RFC 3696 2; Postfix's resolve_numeric_domain=no).
 */
static enum smtp_address_result
parse_domain(struct path *ps, char *out, size_t outsize)
{
	const unsigned char	*s = ps->s;
	size_t			 start = ps->pos, label, n, i;
	bool			 numeric;

	for (;;) {
		label = ps->pos;
		numeric = true;
		while (ps->pos < ps->close) {
			if (is_ascii_alnum(s[ps->pos]) || s[ps->pos] == '-')
				n = 1;
			else if (s[ps->pos] >= 0x80) {
				/* path_check_8bit saw it is well-formed */
				n = utf8_len(s + ps->pos, s + ps->close);
				if (n == 0 || utf8_refused(s + ps->pos, n,
				    true))
					return SMTP_ADDRESS_SYNTAX;
			} else
				break;
			if (!is_digit(s[ps->pos]))
				numeric = false;
			ps->pos += n;
		}
		/* Empty labels include "a..b", ".a" and the trailing dot. */
		if (ps->pos == label || ps->pos - label > LABEL_MAX)
			return SMTP_ADDRESS_SYNTAX;
		if (s[label] == '-' || s[ps->pos - 1] == '-')
			return SMTP_ADDRESS_SYNTAX;
		if (ps->pos >= ps->close || s[ps->pos] != '.')
			break;
		ps->pos++;
	}
	if (numeric)
		return SMTP_ADDRESS_SYNTAX;
	if (ps->pos - start > SMTP_DOMAIN_MAX)
		return SMTP_ADDRESS_TOO_LONG;
	if (out != NULL) {
		if (ps->pos - start >= outsize)
			return SMTP_ADDRESS_TOO_LONG;
		for (i = start; i < ps->pos; i++)
			*out++ = (char)ascii_lower(s[i]);
		*out = '\0';
	}
	return SMTP_ADDRESS_OK;
}

/*
 * Snum "." Snum "." Snum "." Snum, each 0..255. Leading zeros are refused
 * although the grammar allows them: inet_aton() and friends read "010" as
 * octal 8, and the literal is kept as sent.
 */
static bool
is_ipv4_literal(const unsigned char *p, size_t len)
{
	size_t	 i = 0, digits;
	int	 part, value;

	for (part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= len || p[i] != '.')
				return false;
			i++;
		}
		value = 0;
		for (digits = 0; i < len && is_digit(p[i]); digits++, i++) {
			if (digits == 3)
				return false;
			value = value * 10 + (p[i] - '0');
		}
		if (digits == 0 || value > 255 || (digits > 1 && p[i -
		    digits] == '0'))
			return false;
	}
	return i == len;
}

/* "IPv6:" followed by what inet_pton() accepts (RFC 4291 2.2 forms). */
static bool
is_ipv6_literal(const unsigned char *p, size_t len)
{
	char		 buf[INET6_ADDRSTRLEN];
	struct in6_addr	 in6;
	size_t		 i;

	if (len <= IPV6_TAG_LEN)
		return false;
	for (i = 0; i < IPV6_TAG_LEN; i++)
		if (ascii_lower(p[i]) != IPV6_TAG[i])
			return false;
	p += IPV6_TAG_LEN;
	len -= IPV6_TAG_LEN;
	if (len >= sizeof(buf))
		return false;
	/* inet_pton() would stop at a NUL; let nothing odd reach it. */
	for (i = 0; i < len; i++) {
		if (!is_digit(p[i]) && p[i] != ':' && p[i] != '.' &&
		    !(ascii_lower(p[i]) >= 'a' && ascii_lower(p[i]) <= 'f'))
			return false;
		buf[i] = (char)p[i];
	}
	buf[len] = '\0';
	return inet_pton(AF_INET6, buf, &in6) == 1;
}

/*
 * address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
 * General-address-literal ) "]". General literals name no transport that
 * we could use and are refused. The literal must end the mailbox.
 */
static enum smtp_address_result
parse_literal(struct path *ps, char *out, size_t outsize)
{
	const unsigned char	*s = ps->s;
	size_t			 start = ps->pos, rb, i;

	for (rb = start + 1; rb < ps->close && s[rb] != ']'; rb++)
		;
	if (rb + 1 != ps->close)
		return SMTP_ADDRESS_SYNTAX;
	if (!is_ipv4_literal(s + start + 1, rb - start - 1) &&
	    !is_ipv6_literal(s + start + 1, rb - start - 1))
		return SMTP_ADDRESS_SYNTAX;
	if (rb + 1 - start > SMTP_DOMAIN_MAX || rb + 1 - start >= outsize)
		return SMTP_ADDRESS_TOO_LONG;
	for (i = start; i <= rb; i++)
		*out++ = (char)ascii_lower(s[i]);
	*out = '\0';
	ps->pos = rb + 1;
	return SMTP_ADDRESS_OK;
}

/*
 * Dot-string = Atom *("." Atom), Atom = 1*atext (RFC 6531: or UTF-8).
 * Stops before the "@" or wherever the dot-string ends.
 */
static enum smtp_address_result
parse_dot_string(struct path *ps, char *out)
{
	const unsigned char	*s = ps->s;
	size_t			 start = ps->pos, atom, n;

	for (;;) {
		atom = ps->pos;
		while (ps->pos < ps->close) {
			if (is_atext(s[ps->pos]))
				n = 1;
			else if (s[ps->pos] >= 0x80) {
				n = utf8_len(s + ps->pos, s + ps->close);
				if (n == 0 || utf8_refused(s + ps->pos, n,
				    false))
					return SMTP_ADDRESS_SYNTAX;
			} else
				break;
			if (ps->pos + n - start > SMTP_LOCALPART_MAX)
				return SMTP_ADDRESS_TOO_LONG;
			memcpy(out, s + ps->pos, n);
			out += n;
			ps->pos += n;
		}
		if (ps->pos == atom)
			return SMTP_ADDRESS_SYNTAX;
		if (ps->pos >= ps->close || s[ps->pos] != '.')
			break;
		if (ps->pos + 1 - start > SMTP_LOCALPART_MAX)
			return SMTP_ADDRESS_TOO_LONG;
		*out++ = '.';
		ps->pos++;
	}
	*out = '\0';
	return SMTP_ADDRESS_OK;
}

/*
 * Quoted-string = DQUOTE *QcontentSMTP DQUOTE, QcontentSMTP = qtextSMTP /
 * quoted-pairSMTP; qtextSMTP is printable ASCII but " and \ (RFC 6531: or
 * UTF-8), and a quoted pair escapes printable ASCII only, so no control
 * character, CR or LF gets in. Quoting is removed into out. The empty
 * string "" is refused: a mailbox with no name is never one we deliver to,
 * and it would look like the null path once unquoted.
 */
static enum smtp_address_result
parse_quoted_string(struct path *ps, char *out)
{
	const unsigned char	*s = ps->s;
	size_t			 start = ps->pos, n;
	char			*out0 = out;

	ps->pos++;
	for (;;) {
		if (ps->pos >= ps->close)
			return SMTP_ADDRESS_SYNTAX;
		if (s[ps->pos] == '"')
			break;
		if (s[ps->pos] == '\\') {
			if (ps->pos + 1 >= ps->close || s[ps->pos + 1] < 32 ||
			    s[ps->pos + 1] > 126)
				return SMTP_ADDRESS_SYNTAX;
			n = 2;
		} else if (s[ps->pos] >= 32 && s[ps->pos] <= 126)
			n = 1;
		else if (s[ps->pos] >= 0x80) {
			n = utf8_len(s + ps->pos, s + ps->close);
			if (n == 0 || utf8_refused(s + ps->pos, n, false))
				return SMTP_ADDRESS_SYNTAX;
		} else
			return SMTP_ADDRESS_SYNTAX;
		if (ps->pos + n - start > SMTP_LOCALPART_MAX)
			return SMTP_ADDRESS_TOO_LONG;
		if (n == 2 && s[ps->pos] == '\\')
			*out++ = (char)s[ps->pos + 1];
		else {
			memcpy(out, s + ps->pos, n);
			out += n;
		}
		ps->pos += n;
	}
	if (ps->pos + 1 - start > SMTP_LOCALPART_MAX)
		return SMTP_ADDRESS_TOO_LONG;
	ps->pos++;
	if (out == out0)
		return SMTP_ADDRESS_SYNTAX;
	*out = '\0';
	return SMTP_ADDRESS_OK;
}

/* A-d-l = At-domain *( "," At-domain ), At-domain = "@" Domain; then ":". */
static enum smtp_address_result
parse_source_route(struct path *ps)
{
	enum smtp_address_result	 r;

	for (;;) {
		if (ps->pos >= ps->close || ps->s[ps->pos] != '@')
			return SMTP_ADDRESS_SYNTAX;
		ps->pos++;
		if ((r = parse_domain(ps, NULL, 0)) != SMTP_ADDRESS_OK)
			return r;
		if (ps->pos >= ps->close)
			return SMTP_ADDRESS_SYNTAX;
		if (ps->s[ps->pos] == ':') {
			ps->pos++;
			return SMTP_ADDRESS_OK;
		}
		if (ps->s[ps->pos] != ',')
			return SMTP_ADDRESS_SYNTAX;
		ps->pos++;
	}
}

static bool
has_8bit(const char *p)
{
	for (; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			return true;
	return false;
}

enum smtp_address_result
smtp_address_parse_path(const char *s, size_t len, bool allow_null,
    bool allow_utf8, struct smtp_address *addr_r, size_t *consumed_r)
{
	struct smtp_address		 a;
	struct path			 ps;
	enum smtp_address_result	 r;
	size_t				 close = 0;

	if (len == 0 || s[0] != '<')
		return SMTP_ADDRESS_SYNTAX;
	ps.s = (const unsigned char *)s;
	if ((r = path_delimit(ps.s, len, &close)) != SMTP_ADDRESS_OK)
		return r;
	if ((r = path_check_8bit(ps.s, close, allow_utf8)) != SMTP_ADDRESS_OK)
		return r;
	ps.pos = 1;
	ps.close = close;
	memset(&a, 0, sizeof(a));

	if (close == 1) {
		if (!allow_null)
			return SMTP_ADDRESS_SYNTAX;
		a.is_null = true;
		goto done;
	}

	if (ps.s[ps.pos] == '@') {
		if ((r = parse_source_route(&ps)) != SMTP_ADDRESS_OK)
			return r;
		a.had_source_route = true;
	}

	if (ps.pos < ps.close && ps.s[ps.pos] == '"') {
		a.local_quoted = true;
		r = parse_quoted_string(&ps, a.local);
	} else
		r = parse_dot_string(&ps, a.local);
	if (r != SMTP_ADDRESS_OK)
		return r;

	if (ps.pos == ps.close) {
		/* RFC 5321 4.1.1.3: "<Postmaster>" needs no domain. */
		if (a.had_source_route || a.local_quoted ||
		    strcasecmp(a.local, "postmaster") != 0)
			return SMTP_ADDRESS_SYNTAX;
		memcpy(a.local, "postmaster", sizeof("postmaster"));
		goto done;
	}
	if (ps.s[ps.pos] != '@')
		return SMTP_ADDRESS_SYNTAX;
	ps.pos++;

	if (ps.pos < ps.close && ps.s[ps.pos] == '[') {
		a.domain_literal = true;
		r = parse_literal(&ps, a.domain, sizeof(a.domain));
	} else
		r = parse_domain(&ps, a.domain, sizeof(a.domain));
	if (r != SMTP_ADDRESS_OK)
		return r;
	/* Whatever stopped the domain ("@", "_", "!"...) is not allowed. */
	if (ps.pos != ps.close)
		return SMTP_ADDRESS_SYNTAX;

 done:
	a.utf8 = has_8bit(a.local) || has_8bit(a.domain);
	*addr_r = a;
	*consumed_r = close + 1;
	return SMTP_ADDRESS_OK;
}

/* Would the local part parse back unchanged without quotes? */
static bool
local_is_dot_string(const char *local, size_t len)
{
	size_t	 i;

	if (len == 0 || local[0] == '.' || local[len - 1] == '.')
		return false;
	for (i = 0; i < len; i++) {
		if (local[i] == '.') {
			if (local[i + 1] == '.')
				return false;
		} else if (!is_atext((unsigned char)local[i]) &&
		    (unsigned char)local[i] < 0x80)
			return false;
	}
	return true;
}

/* Appends c if there is still room for it and the final NUL. */
static bool
put_char(char *out, size_t outsize, size_t *n, char c)
{
	if (*n + 1 >= outsize)
		return false;
	out[(*n)++] = c;
	return true;
}

size_t
smtp_address_format(const struct smtp_address *addr, char *out,
    size_t outsize)
{
	size_t	 n = 0, i, local_len, domain_len;
	bool	 quote;

	if (outsize == 0)
		return (size_t)-1;
	if (addr->is_null) {
		out[0] = '\0';
		return 0;
	}
	local_len = strnlen(addr->local, sizeof(addr->local));
	domain_len = strnlen(addr->domain, sizeof(addr->domain));
	quote = !local_is_dot_string(addr->local, local_len);
	if (quote && !put_char(out, outsize, &n, '"'))
		goto toolong;
	for (i = 0; i < local_len; i++) {
		if (quote && (addr->local[i] == '"' ||
		    addr->local[i] == '\\') &&
		    !put_char(out, outsize, &n, '\\'))
			goto toolong;
		if (!put_char(out, outsize, &n, addr->local[i]))
			goto toolong;
	}
	if (quote && !put_char(out, outsize, &n, '"'))
		goto toolong;
	if (domain_len > 0) {
		if (!put_char(out, outsize, &n, '@'))
			goto toolong;
		for (i = 0; i < domain_len; i++)
			if (!put_char(out, outsize, &n, addr->domain[i]))
				goto toolong;
	}
	out[n] = '\0';
	return n;

 toolong:
	out[0] = '\0';
	return (size_t)-1;
}

bool
smtp_address_has_route_chars(const struct smtp_address *addr)
{
	size_t	 i;

	for (i = 0; i < sizeof(addr->local) && addr->local[i] != '\0'; i++)
		if (addr->local[i] == '%' || addr->local[i] == '!' ||
		    addr->local[i] == '@')
			return true;
	return false;
}

bool
smtp_address_has_shell_chars(const struct smtp_address *addr)
{
	size_t	 i;

	for (i = 0; i < sizeof(addr->local) && addr->local[i] != '\0'; i++)
		if (strchr("`$|{}", addr->local[i]) != NULL)
			return true;
	return false;
}

const char *
smtp_address_strerror(enum smtp_address_result r)
{
	switch (r) {
	case SMTP_ADDRESS_OK:
		return "valid address";
	case SMTP_ADDRESS_SYNTAX:
		return "syntax error in address";
	case SMTP_ADDRESS_TOO_LONG:
		return "address too long";
	case SMTP_ADDRESS_NUL:
		return "NUL byte in address";
	case SMTP_ADDRESS_8BIT:
		return "non-ASCII address without SMTPUTF8";
	case SMTP_ADDRESS_BAD_UTF8:
		return "address is not valid UTF-8";
	}
	return "unknown address error";
}
