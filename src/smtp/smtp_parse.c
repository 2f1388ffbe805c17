/*
 * SMTP command-line parser: verb and arguments (RFC 5321 4.1.1, 4.1.2),
 * MAIL/RCPT parameters (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8),
 * BDAT (RFC 3030 2) and the EHLO/HELO argument. Pure functions, no I/O.
 */

#include <string.h>

#include "smtp/smtp_parse.h"

#define R_LINE_TOO_LONG		"500 5.5.2 Line too long"
#define R_EMPTY			"500 5.5.2 Error: bad syntax"
#define R_NUL			"500 5.5.2 Invalid character (NUL) in command"
#define R_ARGS_NUL		"501 5.5.2 Invalid character (NUL) in parameters"
#define R_8BIT			"500 5.5.2 Invalid character in command"
#define R_UNKNOWN		"500 5.5.1 Command unrecognized"

#define R_MAIL_SYNTAX		"501 5.5.4 Syntax: MAIL FROM:<address>"
#define R_RCPT_SYNTAX		"501 5.5.4 Syntax: RCPT TO:<address>"
#define R_SENDER		"501 5.1.7 Bad sender address syntax"
#define R_RECIPIENT		"501 5.1.3 Bad recipient address syntax"
#define R_ADDR_NUL		"501 5.5.2 Invalid character (NUL) in address"
#define R_ADDR_8BIT		"553 5.6.7 Non-ASCII address requires SMTPUTF8"
#define R_PARAM_SYNTAX		"501 5.5.4 Syntax error in parameters"
#define R_PARAM_CHAR		"501 5.5.4 Invalid character in parameters"
#define R_PARAM_DUP		"501 5.5.4 Duplicate parameter"
#define R_PARAM_UNKNOWN		"555 5.5.4 Unsupported parameter"
#define R_SIZE_SYNTAX		"501 5.5.4 Syntax error in SIZE parameter"
#define R_SIZE_BIG \
	"552 5.3.4 Message size exceeds fixed maximum message size"
#define R_BODY			"501 5.5.4 Unsupported BODY type"
#define R_UTF8_VALUE		"555 5.5.4 SMTPUTF8 takes no value"
#define R_UTF8_OFF		"555 5.5.4 SMTPUTF8 not supported"

#define R_BDAT_SYNTAX		"501 5.5.4 Syntax: BDAT chunk-size [LAST]"

#define R_HELO_SYNTAX		"501 5.5.4 Syntax: EHLO hostname"
#define R_HELO_CHAR		"501 5.5.2 Invalid character in hostname"
#define R_HELO_NAME		"501 5.5.4 Invalid hostname"
#define R_HELO_LONG		"501 5.5.4 Hostname too long"

#define HELO_NAME_MAX		255	/* RFC 5321 4.5.3.1.2 */
#define SIZE_DIGITS_MAX		20	/* RFC 1870: 1*20DIGIT */

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
	{ "HELO", SMTP_VERB_HELO },
	{ "EHLO", SMTP_VERB_EHLO },
	{ "MAIL", SMTP_VERB_MAIL },
	{ "RCPT", SMTP_VERB_RCPT },
	{ "DATA", SMTP_VERB_DATA },
	{ "BDAT", SMTP_VERB_BDAT },
	{ "RSET", SMTP_VERB_RSET },
	{ "NOOP", SMTP_VERB_NOOP },
	{ "QUIT", SMTP_VERB_QUIT },
	{ "HELP", SMTP_VERB_HELP },
	{ "VRFY", SMTP_VERB_VRFY },
	{ "EXPN", SMTP_VERB_EXPN },
	{ "STARTTLS", SMTP_VERB_STARTTLS },
	{ "AUTH", SMTP_VERB_AUTH },
};

/* ASCII classes, whatever the locale says: the protocol is ASCII. */
static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alnum(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A printable, non-space ASCII byte (VCHAR, RFC 5234). */
static bool
is_vchar(unsigned char c)
{
	return c > ' ' && c < 0x7f;
}

static unsigned char
to_upper(unsigned char c)
{
	return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

/* ASCII case-insensitive: does s[0..len) start with the upper-case w? */
static bool
prefix_eq(const char *s, size_t len, const char *w)
{
	size_t i;

	for (i = 0; w[i] != '\0'; i++)
		if (i == len ||
		    to_upper((unsigned char)s[i]) != (unsigned char)w[i])
			return false;
	return true;
}

/* ASCII case-insensitive match of s[0..len) against the upper-case w. */
static bool
word_eq(const char *s, size_t len, const char *w)
{
	return strlen(w) == len && prefix_eq(s, len, w);
}

const char *
smtp_parse_command(const char *line, size_t len, struct smtp_command *cmd_r)
{
	size_t i, vlen;

	cmd_r->verb = SMTP_VERB_UNKNOWN;
	cmd_r->args = line;
	cmd_r->args_len = 0;

	if (len > SMTP_COMMAND_LINE_MAX - 2)
		return R_LINE_TOO_LONG;
	{
		const char *nul = memchr(line, '\0', len);
		const char *space = memchr(line, ' ', len);

		/* In the verb: not a command at all; after it: bad arguments
		 * (security-tests.md 15 expects 501 for MAIL FROM:<a\0b@x>). */
		if (nul != NULL)
			return space != NULL && space < nul ? R_ARGS_NUL : R_NUL;
	}

	for (vlen = 0; vlen < len && line[vlen] != ' '; vlen++)
		if ((unsigned char)line[vlen] >= 0x80)
			return R_8BIT;
	if (vlen == 0)
		return R_EMPTY;		/* empty, or starts with a space */

	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (word_eq(line, vlen, verbs[i].name)) {
			cmd_r->verb = verbs[i].verb;
			if (vlen < len) {
				/* skip the one space after the verb */
				cmd_r->args = line + vlen + 1;
				cmd_r->args_len = len - vlen - 1;
			} else
				cmd_r->args = line + len;
			return NULL;
		}
	}
	return R_UNKNOWN;
}

/*
 * After the path: nothing, or parameters each preceded by one or more
 * spaces. Splits the next parameter off s[*pos..len) into keyword and value
 * (value NULL when there is no "="). Returns 1 with a parameter, 0 at the
 * end, or -1 with *reply_r set on a malformed one.
 */
static int
param_next(const char *s, size_t len, size_t *pos, const char **kw_r,
    size_t *kwlen_r, const char **val_r, size_t *vallen_r,
    const char **reply_r)
{
	size_t p = *pos, start, end, eq;
	unsigned char c;

	while (p < len && s[p] == ' ')
		p++;
	if (p == len) {
		*pos = p;
		return 0;
	}
	start = p;
	while (p < len && s[p] != ' ')
		p++;
	end = p;
	*pos = p;

	for (p = start; p < end; p++) {
		if (!is_vchar((unsigned char)s[p])) {
			*reply_r = R_PARAM_CHAR;
			return -1;
		}
	}

	/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
	for (eq = start; eq < end && s[eq] != '='; eq++) {
		c = (unsigned char)s[eq];
		if (!is_alnum(c) && (c != '-' || eq == start)) {
			*reply_r = R_PARAM_SYNTAX;
			return -1;
		}
	}
	if (eq == start) {
		*reply_r = R_PARAM_SYNTAX;
		return -1;
	}
	*kw_r = s + start;
	*kwlen_r = eq - start;
	if (eq == end) {
		*val_r = NULL;
		*vallen_r = 0;
		return 1;
	}

	/* esmtp-value = 1*(%d33-60 / %d62-126): printable, no "=" */
	if (eq + 1 == end || memchr(s + eq + 1, '=', end - eq - 1) != NULL) {
		*reply_r = R_PARAM_SYNTAX;
		return -1;
	}
	*val_r = s + eq + 1;
	*vallen_r = end - eq - 1;
	return 1;
}

/*
 * The run of decimal digits at the start of s[0..len): returns how many,
 * with their value in *n_r, or *big_r set if it exceeds UINT64_MAX (never
 * a wrapped-around value).
 */
static size_t
parse_digits(const char *s, size_t len, uint64_t *n_r, bool *big_r)
{
	uint64_t n = 0;
	unsigned d;
	size_t i;

	*big_r = false;
	for (i = 0; i < len && is_digit((unsigned char)s[i]); i++) {
		d = (unsigned)(s[i] - '0');
		if (n > (UINT64_MAX - d) / 10)
			*big_r = true;
		else
			n = n * 10 + d;
	}
	*n_r = n;
	return i;
}

/* SIZE=1*20DIGIT (RFC 1870 6). */
static const char *
param_size(const char *v, size_t len, uint64_t *size_r)
{
	uint64_t n;
	bool big;

	if (v == NULL || len == 0 || parse_digits(v, len, &n, &big) != len)
		return R_SIZE_SYNTAX;
	/* a number is too big before it is too long: clients get 552 */
	if (big)
		return R_SIZE_BIG;
	if (len > SIZE_DIGITS_MAX)
		return R_SIZE_SYNTAX;
	*size_r = n;
	return NULL;
}

static const char *
mail_params(const char *s, size_t len, bool utf8_allowed,
    struct smtp_mail_params *p)
{
	const char *kw, *val, *reply = NULL;
	size_t kwlen, vallen, pos = 0;
	bool seen_body = false;
	int r;

	while ((r = param_next(s, len, &pos, &kw, &kwlen, &val, &vallen,
	    &reply)) == 1) {
		if (word_eq(kw, kwlen, "SIZE")) {
			if (p->has_size)
				return R_PARAM_DUP;
			if ((reply = param_size(val, vallen, &p->size)) != NULL)
				return reply;
			p->has_size = true;
		} else if (word_eq(kw, kwlen, "BODY")) {
			if (seen_body)
				return R_PARAM_DUP;
			seen_body = true;
			if (val != NULL && word_eq(val, vallen, "7BIT"))
				p->body = SMTP_BODY_7BIT;
			else if (val != NULL &&
			    word_eq(val, vallen, "8BITMIME"))
				p->body = SMTP_BODY_8BITMIME;
			else
				return R_BODY;
		} else if (word_eq(kw, kwlen, "SMTPUTF8")) {
			if (p->smtputf8)
				return R_PARAM_DUP;
			if (val != NULL)
				return R_UTF8_VALUE;
			if (!utf8_allowed)
				return R_UTF8_OFF;
			p->smtputf8 = true;
		} else
			return R_PARAM_UNKNOWN;
	}
	return r == 0 ? NULL : reply;
}

/*
 * "FROM:" / "TO:" then an optional run of spaces (common clients send one),
 * then where the path starts. Returns false when the prefix is missing.
 */
static bool
path_start(const char *s, size_t len, const char *prefix, size_t *pos_r)
{
	size_t n = strlen(prefix), p;

	if (!prefix_eq(s, len, prefix))
		return false;
	for (p = n; p < len && s[p] == ' '; p++)
		;
	*pos_r = p;
	return true;
}

static const char *
address_reply(enum smtp_address_result r, const char *syntax_reply)
{
	switch (r) {
	case SMTP_ADDRESS_OK:
		return NULL;
	case SMTP_ADDRESS_NUL:
		return R_ADDR_NUL;
	case SMTP_ADDRESS_8BIT:
	case SMTP_ADDRESS_BAD_UTF8:
		return R_ADDR_8BIT;
	case SMTP_ADDRESS_SYNTAX:
	case SMTP_ADDRESS_TOO_LONG:
		break;
	}
	return syntax_reply;
}

const char *
smtp_parse_mail_args(const char *args, size_t len, bool utf8_allowed,
    struct smtp_mail_params *params_r)
{
	const char *reply;
	size_t pos, used;

	memset(params_r, 0, sizeof(*params_r));
	params_r->body = SMTP_BODY_7BIT;

	if (!path_start(args, len, "FROM:", &pos))
		return R_MAIL_SYNTAX;
	/*
	 * Whether UTF-8 is allowed depends on a parameter that follows the
	 * path: parse the path as the session allows, then require the
	 * SMTPUTF8 parameter if the address turned out to be UTF-8.
	 */
	reply = address_reply(smtp_address_parse_path(args + pos, len - pos,
	    true, utf8_allowed, &params_r->from, &used), R_SENDER);
	if (reply != NULL)
		return reply;
	pos += used;
	if (pos < len && args[pos] != ' ')
		return R_PARAM_SYNTAX;	/* "<a@b>x" */
	if ((reply = mail_params(args + pos, len - pos, utf8_allowed,
	    params_r)) != NULL)
		return reply;
	if (params_r->from.utf8 && !params_r->smtputf8)
		return R_ADDR_8BIT;
	return NULL;
}

const char *
smtp_parse_rcpt_args(const char *args, size_t len, bool utf8,
    struct smtp_rcpt_params *params_r)
{
	const char *kw, *val, *reply = NULL;
	size_t kwlen, vallen, pos, used;
	int r;

	memset(params_r, 0, sizeof(*params_r));

	if (!path_start(args, len, "TO:", &pos))
		return R_RCPT_SYNTAX;
	/* allow_null false: "<>" is a syntax error for a recipient */
	reply = address_reply(smtp_address_parse_path(args + pos, len - pos,
	    false, utf8, &params_r->to, &used), R_RECIPIENT);
	if (reply != NULL)
		return reply;
	pos += used;
	if (pos < len && args[pos] != ' ')
		return R_PARAM_SYNTAX;
	/* no RCPT parameter is supported (no DSN yet): any is refused */
	r = param_next(args, len, &pos, &kw, &kwlen, &val, &vallen, &reply);
	if (r == 1)
		return R_PARAM_UNKNOWN;
	return r == 0 ? NULL : reply;
}

const char *
smtp_parse_bdat_args(const char *args, size_t len, uint64_t *size_r,
    bool *last_r)
{
	uint64_t n;
	size_t i;
	bool big;

	*size_r = 0;
	*last_r = false;
	i = parse_digits(args, len, &n, &big);
	if (i == 0)
		return R_BDAT_SYNTAX;
	if (i < len && !(len - i == 5 && args[i] == ' ' &&
	    word_eq(args + i + 1, 4, "LAST")))
		return R_BDAT_SYNTAX;
	/* syntax first: "99999999999999999999x" is junk, not a size */
	if (big)
		return R_SIZE_BIG;
	*size_r = n;
	*last_r = i < len;
	return NULL;
}

/* An address literal: "[" 1*dcontent "]", dcontent = %d33-90 / %d94-126. */
static bool
helo_literal_ok(const char *s, size_t len)
{
	size_t i;
	unsigned char c;

	if (len < 3 || s[0] != '[' || s[len - 1] != ']')
		return false;
	for (i = 1; i < len - 1; i++) {
		c = (unsigned char)s[i];
		if (!is_vchar(c) || c == '[' || c == ']' || c == '\\')
			return false;
	}
	return true;
}

/*
 * A host name as clients really send it: letters, digits, "-", "." and the
 * "_" that many Windows hosts have. No label checks; what matters is that
 * the name is safe to log and to put in a Received: header.
 */
static bool
helo_name_ok(const char *s, size_t len)
{
	size_t i;
	unsigned char c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (!is_alnum(c) && c != '-' && c != '.' && c != '_')
			return false;
	}
	return len > 0;
}

const char *
smtp_parse_helo_args(const char *args, size_t len, char *out, size_t outsize)
{
	size_t i, start, end;
	unsigned char c;

	if (outsize > 0)
		out[0] = '\0';
	/* control characters anywhere, even in the ignored tail */
	for (i = 0; i < len; i++) {
		c = (unsigned char)args[i];
		if (c < ' ' || c >= 0x7f)
			return R_HELO_CHAR;
	}
	for (start = 0; start < len && args[start] == ' '; start++)
		;
	if (start == len)
		return R_HELO_SYNTAX;
	for (end = start; end < len && args[end] != ' '; end++)
		;
	/* text after the name is ignored (old HELO clients send some) */
	if (end - start > HELO_NAME_MAX)
		return R_HELO_LONG;
	if (args[start] == '[' ? !helo_literal_ok(args + start, end - start) :
	    !helo_name_ok(args + start, end - start))
		return R_HELO_NAME;
	if (end - start >= outsize)
		return R_HELO_LONG;	/* out is too small: never truncate */
	memcpy(out, args + start, end - start);
	out[end - start] = '\0';
	return NULL;
}

const char *
smtp_verb_name(enum smtp_verb verb)
{
	size_t i;

	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (verbs[i].verb == verb)
			return verbs[i].name;
	return "UNKNOWN";
}
