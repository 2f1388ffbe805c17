/*
 * POP3 command-line parser (RFC 1939 3 and 5-7, RFC 2449 CAPA and the
 * 255-octet line, RFC 2595 STLS, RFC 5034 AUTH) and the RETR/TOP body
 * writer (RFC 1939 3 byte-stuffing, 7 TOP). Pure functions, no I/O.
 */

#include <stdbool.h>
#include <string.h>

#include "pop3/pop3_parse.h"

#define R_LINE_TOO_LONG	"-ERR Line too long"
#define R_CHAR		"-ERR Invalid character"
#define R_UNKNOWN	"-ERR Unknown command"
#define R_MSG_RANGE \
	"-ERR Syntax error: a message number is 1 to 4294967295"
#define R_LINES_RANGE \
	"-ERR Syntax error: TOP's line count is 0 to 4294967295"

/* How a verb's arguments look; one parser per shape. */
enum shape {
	SHAPE_NONE,		/* no argument */
	SHAPE_WORD,		/* USER name */
	SHAPE_REST,		/* PASS anything */
	SHAPE_AUTH,		/* AUTH [mechanism [initial-response]] */
	SHAPE_TWO_WORDS,	/* APOP name digest */
	SHAPE_OPT_MSG,		/* LIST [msg] */
	SHAPE_MSG,		/* RETR msg */
	SHAPE_MSG_LINES,	/* TOP msg n */
};

static const struct {
	const char *name;
	enum pop3_verb verb;
	enum shape shape;
	const char *syntax;	/* the reply naming what is wanted */
} verbs[] = {
	{ "USER", POP3_VERB_USER, SHAPE_WORD, "-ERR Syntax error: USER name" },
	{ "PASS", POP3_VERB_PASS, SHAPE_REST, "-ERR Syntax error: PASS string" },
	{ "AUTH", POP3_VERB_AUTH, SHAPE_AUTH,
	    "-ERR Syntax error: AUTH [mechanism [initial-response]]" },
	{ "STLS", POP3_VERB_STLS, SHAPE_NONE,
	    "-ERR Syntax error: STLS takes no argument" },
	{ "CAPA", POP3_VERB_CAPA, SHAPE_NONE,
	    "-ERR Syntax error: CAPA takes no argument" },
	{ "STAT", POP3_VERB_STAT, SHAPE_NONE,
	    "-ERR Syntax error: STAT takes no argument" },
	{ "LIST", POP3_VERB_LIST, SHAPE_OPT_MSG,
	    "-ERR Syntax error: LIST [msg]" },
	{ "UIDL", POP3_VERB_UIDL, SHAPE_OPT_MSG,
	    "-ERR Syntax error: UIDL [msg]" },
	{ "RETR", POP3_VERB_RETR, SHAPE_MSG, "-ERR Syntax error: RETR msg" },
	{ "TOP", POP3_VERB_TOP, SHAPE_MSG_LINES,
	    "-ERR Syntax error: TOP msg lines" },
	{ "DELE", POP3_VERB_DELE, SHAPE_MSG, "-ERR Syntax error: DELE msg" },
	{ "RSET", POP3_VERB_RSET, SHAPE_NONE,
	    "-ERR Syntax error: RSET takes no argument" },
	{ "NOOP", POP3_VERB_NOOP, SHAPE_NONE,
	    "-ERR Syntax error: NOOP takes no argument" },
	{ "QUIT", POP3_VERB_QUIT, SHAPE_NONE,
	    "-ERR Syntax error: QUIT takes no argument" },
	{ "APOP", POP3_VERB_APOP, SHAPE_TWO_WORDS,
	    "-ERR Syntax error: APOP name digest" },
};
#define NVERBS (sizeof(verbs) / sizeof(verbs[0]))

/* ASCII only, whatever the locale says: the protocol is ASCII. */
static bool
is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static unsigned char
to_upper(unsigned char c)
{
	return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

/* s[0..len) equals the upper-case w, ignoring ASCII case (RFC 1939 3). */
static bool
keyword_eq(const char *s, size_t len, const char *w)
{
	size_t i;

	if (strlen(w) != len)
		return false;
	for (i = 0; i < len; i++)
		if (to_upper((unsigned char)s[i]) != (unsigned char)w[i])
			return false;
	return true;
}

/*
 * Splits s[0..len) into words separated by single spaces: at most max of
 * them, each non-empty. Returns the count, or -1 when there are more
 * than max, or an empty word (two spaces, a leading or trailing space).
 */
static int
split_words(const char *s, size_t len, const char **w, size_t *wlen,
    int max)
{
	size_t i = 0, start;
	int n = 0;

	if (len == 0)
		return 0;
	for (;;) {
		start = i;
		while (i < len && s[i] != ' ')
			i++;
		if (i == start || n == max)
			return -1;
		w[n] = s + start;
		wlen[n] = i - start;
		n++;
		if (i == len)
			return n;
		i++;		/* the space; a word must follow it */
		if (i == len)
			return -1;
	}
}

/*
 * Plain decimal digits (no sign, no space) that fit in 32 bits. Returns
 * 0 and *v_r, 1 when they are digits but too big, -1 when not digits.
 */
static int
parse_u32(const char *s, size_t len, uint32_t *v_r)
{
	uint64_t v = 0;
	size_t i;
	bool big = false;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (!big) {
			v = v * 10 + (uint64_t)(s[i] - '0');
			if (v > UINT32_MAX)
				big = true;	/* keep checking the syntax */
		}
	}
	if (big)
		return 1;
	*v_r = (uint32_t)v;
	return 0;
}

/* A message number, 1..UINT32_MAX. NULL or the reply. */
static const char *
parse_msg(const char *s, size_t len, const char *syntax, uint32_t *msg_r)
{
	switch (parse_u32(s, len, msg_r)) {
	case 0:
		return *msg_r == 0 ? R_MSG_RANGE : NULL;
	case 1:
		return R_MSG_RANGE;
	default:
		return syntax;
	}
}

const char *
pop3_parse_command(const char *line, size_t len, struct pop3_command *cmd_r)
{
	const char *w[3], *args, *r;
	size_t wlen[3], klen, alen, i, v;
	int n;

	memset(cmd_r, 0, sizeof(*cmd_r));
	cmd_r->verb = POP3_VERB_UNKNOWN;
	cmd_r->arg = cmd_r->arg2 = line;

	if (len > POP3_COMMAND_LINE_MAX - 2)
		return R_LINE_TOO_LONG;

	for (klen = 0; klen < len && line[klen] != ' '; klen++)
		if (is_ctl((unsigned char)line[klen]))
			return R_CHAR;
	for (v = 0; v < NVERBS; v++)
		if (keyword_eq(line, klen, verbs[v].name))
			break;

	/* What follows the keyword and its single space. */
	args = line + klen + (klen < len ? 1 : 0);
	alen = (size_t)(line + len - args);
	for (i = 0; i < alen; i++) {
		unsigned char c = (unsigned char)args[i];

		/* RFC 1939 7 lets a password hold any octet but the line
		 * end; a NUL would cut it short in the verifier. */
		if (v < NVERBS && verbs[v].shape == SHAPE_REST ?
		    c == '\0' || c == '\r' || c == '\n' : is_ctl(c))
			return R_CHAR;
	}
	if (v == NVERBS)
		return R_UNKNOWN;
	cmd_r->verb = verbs[v].verb;

	/* "RETR " (a space and nothing) is an empty word: refused below. */
	if (verbs[v].shape == SHAPE_REST) {
		cmd_r->arg = args;
		cmd_r->arg_len = alen;
		return NULL;
	}
	n = klen < len ? split_words(args, alen, w, wlen, 3) : 0;
	if (klen < len && n == 0)
		n = -1;

	switch (verbs[v].shape) {
	case SHAPE_NONE:
		if (n != 0)
			return verbs[v].syntax;
		break;
	case SHAPE_WORD:
		if (n != 1)
			return verbs[v].syntax;
		cmd_r->arg = w[0];
		cmd_r->arg_len = wlen[0];
		break;
	case SHAPE_AUTH:
		if (n < 0 || n > 2)
			return verbs[v].syntax;
		if (n >= 1) {
			cmd_r->arg = w[0];
			cmd_r->arg_len = wlen[0];
		}
		if (n == 2) {
			cmd_r->arg2 = w[1];
			cmd_r->arg2_len = wlen[1];
		}
		break;
	case SHAPE_TWO_WORDS:
		if (n != 2)
			return verbs[v].syntax;
		cmd_r->arg = w[0];
		cmd_r->arg_len = wlen[0];
		cmd_r->arg2 = w[1];
		cmd_r->arg2_len = wlen[1];
		break;
	case SHAPE_OPT_MSG:
		if (n < 0 || n > 1)
			return verbs[v].syntax;
		if (n == 1) {
			if ((r = parse_msg(w[0], wlen[0], verbs[v].syntax,
			    &cmd_r->msg)) != NULL)
				return r;
			cmd_r->has_msg = 1;
		}
		break;
	case SHAPE_MSG:
		if (n != 1)
			return verbs[v].syntax;
		if ((r = parse_msg(w[0], wlen[0], verbs[v].syntax,
		    &cmd_r->msg)) != NULL)
			return r;
		cmd_r->has_msg = 1;
		break;
	case SHAPE_MSG_LINES:
		if (n != 2)
			return verbs[v].syntax;
		if ((r = parse_msg(w[0], wlen[0], verbs[v].syntax,
		    &cmd_r->msg)) != NULL)
			return r;
		switch (parse_u32(w[1], wlen[1], &cmd_r->lines)) {
		case 0:
			break;
		case 1:
			return R_LINES_RANGE;
		default:
			return verbs[v].syntax;
		}
		cmd_r->has_msg = 1;
		break;
	case SHAPE_REST:
		break;		/* handled above */
	}
	return NULL;
}

const char *
pop3_verb_name(enum pop3_verb verb)
{
	size_t v;

	for (v = 0; v < NVERBS; v++)
		if (verbs[v].verb == verb)
			return verbs[v].name;
	return "?";
}

void
pop3_stuff_init(struct pop3_stuff *st, int64_t top_body_lines)
{
	memset(st, 0, sizeof(*st));
	st->at_line_start = 1;
	st->header_line_empty = 1;
	st->body_lines_left = top_body_lines < 0 ? -1 : top_body_lines;
}

/*
 * One line of output ended (an LF was written). For TOP, counts the line:
 * the header section ends at its first empty line (RFC 1939 7: headers,
 * the blank line, then n lines of the body); a message without one is
 * sent whole.
 */
static void
stuff_line_end(struct pop3_stuff *st)
{
	if (st->body_lines_left >= 0) {
		if (st->in_body) {
			if (--st->body_lines_left == 0)
				st->done = 1;
		} else if (st->header_line_empty) {
			st->in_body = 1;
			if (st->body_lines_left == 0)
				st->done = 1;
		}
	}
	st->at_line_start = 1;
	st->header_line_empty = 1;
}

/*
 * RETR: no line counting, so whole lines are copied at once (the
 * byte-by-byte loop below was a third of a RETR's CPU time).
 */
static size_t
stuff_whole(struct pop3_stuff *st, const char *in, size_t len, char *out)
{
	size_t i = 0, o = 0, n;
	const char *nl;

	while (i < len) {
		if (st->at_line_start && in[i] == '.')
			out[o++] = '.';
		nl = memchr(in + i, '\n', len - i);
		n = (nl != NULL ? (size_t)(nl - in) : len) - i;
		if (n > 0) {
			memcpy(out + o, in + i, n);
			o += n;
			st->last_cr = in[i + n - 1] == '\r';
			st->at_line_start = 0;
		}
		if (nl == NULL)
			break;
		if (!st->last_cr)
			out[o++] = '\r';
		out[o++] = '\n';
		st->last_cr = 0;
		st->at_line_start = 1;
		i += n + 1;
	}
	return o;
}

size_t
pop3_stuff(struct pop3_stuff *st, const char *in, size_t len, char *out)
{
	size_t i, o = 0;

	if (st->body_lines_left < 0) {
		return stuff_whole(st, in, len, out);
	}
	for (i = 0; i < len && !st->done; i++) {
		char c = in[i];

		if (c == '\n') {
			if (!st->last_cr)
				out[o++] = '\r';
			out[o++] = '\n';
			st->last_cr = 0;
			stuff_line_end(st);
			continue;
		}
		/* A CR is a line end only with the LF that follows it; one
		 * followed by anything else is content (as in
		 * maildir_crlf_size), and so is the CR before it. */
		if (st->last_cr || c != '\r')
			st->header_line_empty = 0;
		if (st->at_line_start && c == '.')
			out[o++] = '.';
		out[o++] = c;
		st->at_line_start = 0;
		st->last_cr = c == '\r';
	}
	return o;
}

size_t
pop3_stuff_end(struct pop3_stuff *st, char *out)
{
	size_t o = 0;

	/* at_line_start is only cleared by a byte written. */
	if (!st->at_line_start) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	memcpy(out + o, ".\r\n", 3);
	return o + 3;
}
