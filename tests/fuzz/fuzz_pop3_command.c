/*
 * libFuzzer target for the POP3 command parser (RFC 1939, RFC 2449) and
 * the RETR/TOP body writer (RFC 1939 3 byte-stuffing): the input is one
 * command line, and also a message fed in pieces. Aborts when a result
 * breaks its contract.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static void
check_inside(const char *line, size_t len, const char *p, size_t plen)
{
	if (plen > 0 && (p < line || p > line + len ||
	    plen > (size_t)(line + len - p)))
		abort();
}

/* The decimal text of a number argument matches the parsed value. */
static void
check_number(const char *s, size_t len, uint32_t v)
{
	char want[16];
	size_t i = 0;

	while (i + 1 < len && s[i] == '0')
		i++;
	snprintf(want, sizeof(want), "%u", v);
	if (len - i != strlen(want) || memcmp(s + i, want, len - i) != 0)
		abort();
}

/* A single-space-separated word of the line: the n-th after the verb. */
static const char *
word(const char *line, size_t len, int n, size_t *wlen)
{
	size_t i = 0, start;
	int k;

	for (k = 0; k <= n; k++) {
		while (i < len && line[i] != ' ')
			i++;
		if (i == len)
			abort();	/* parsed, so the word is there */
		i++;
	}
	start = i;
	while (i < len && line[i] != ' ')
		i++;
	*wlen = i - start;
	return line + start;
}

static void
check_parse(const char *line, size_t len)
{
	struct pop3_command cmd, cmd2;
	const char *r, *r2, *name, *w;
	char *flipped;
	size_t i, wlen;

	r = pop3_parse_command(line, len, &cmd);
	if (r != NULL) {
		if (strncmp(r, "-ERR ", 5) != 0)
			abort();
		for (i = 0; r[i] != '\0'; i++)
			if (r[i] < ' ' || r[i] > '~')
				abort();
	} else {
		name = pop3_verb_name(cmd.verb);
		if (cmd.verb == POP3_VERB_UNKNOWN || strcmp(name, "?") == 0)
			abort();
		if (len > POP3_COMMAND_LINE_MAX - 2)
			abort();
		/* the keyword, any case, then nothing or a space */
		for (i = 0; name[i] != '\0'; i++)
			if (i == len || (line[i] & ~0x20) != name[i])
				abort();
		if (i < len && line[i] != ' ')
			abort();
		check_inside(line, len, cmd.arg, cmd.arg_len);
		check_inside(line, len, cmd.arg2, cmd.arg2_len);
		for (i = 0; i < len; i++) {
			unsigned char c = (unsigned char)line[i];

			if (cmd.verb == POP3_VERB_PASS ?
			    c == '\0' || c == '\r' || c == '\n' : is_ctl(c))
				abort();
		}
		if (cmd.verb != POP3_VERB_PASS &&
		    (memchr(cmd.arg, ' ', cmd.arg_len) != NULL ||
		    memchr(cmd.arg2, ' ', cmd.arg2_len) != NULL))
			abort();
		if (cmd.verb == POP3_VERB_USER && cmd.arg_len == 0)
			abort();
		if (cmd.verb == POP3_VERB_APOP &&
		    (cmd.arg_len == 0 || cmd.arg2_len == 0))
			abort();
		switch (cmd.verb) {
		case POP3_VERB_RETR:
		case POP3_VERB_DELE:
		case POP3_VERB_TOP:
			if (!cmd.has_msg)
				abort();
			/* FALLTHROUGH */
		case POP3_VERB_LIST:
		case POP3_VERB_UIDL:
			if (cmd.has_msg) {
				if (cmd.msg == 0)
					abort();
				w = word(line, len, 0, &wlen);
				check_number(w, wlen, cmd.msg);
			}
			if (cmd.verb == POP3_VERB_TOP) {
				w = word(line, len, 1, &wlen);
				check_number(w, wlen, cmd.lines);
			}
			break;
		default:
			if (cmd.has_msg || cmd.msg != 0 || cmd.lines != 0)
				abort();
			break;
		}
	}

	/* RFC 1939 3: keywords are case-insensitive */
	if (len > 0) {
		flipped = malloc(len);
		memcpy(flipped, line, len);
		for (i = 0; i < len && flipped[i] != ' '; i++)
			if ((flipped[i] | 0x20) >= 'a' && (flipped[i] | 0x20) <= 'z')
				flipped[i] ^= 0x20;
		r2 = pop3_parse_command(flipped, len, &cmd2);
		if (r != r2 && (r == NULL || r2 == NULL || strcmp(r, r2) != 0))
			abort();
		if (r == NULL && (cmd.verb != cmd2.verb ||
		    cmd.arg_len != cmd2.arg_len ||
		    cmd.arg2_len != cmd2.arg2_len || cmd.msg != cmd2.msg ||
		    cmd.lines != cmd2.lines || cmd.has_msg != cmd2.has_msg))
			abort();
		free(flipped);
	}
}

/* Feeds in[0..len) in the pieces cut at a <= b; appends the end. */
static size_t
stuff_pieces(const char *in, size_t len, int64_t top, size_t a, size_t b,
    char *out)
{
	struct pop3_stuff st;
	size_t cuts[3] = { a, b, len }, prev = 0, o = 0, i, n;

	pop3_stuff_init(&st, top);
	for (i = 0; i < 3; i++) {
		n = pop3_stuff(&st, in + prev, cuts[i] - prev, out + o);
		if (n > 2 * (cuts[i] - prev) + 2)
			abort();
		o += n;
		prev = cuts[i];
	}
	n = pop3_stuff_end(&st, out + o);
	if (n > 5)
		abort();
	return o + n;
}

static void
check_stuff(const char *in, size_t len)
{
	uint64_t h = 14695981039346656037ULL;
	size_t a, b, n1, n2, n3, i, dots = 0, body;
	uint64_t crlf = len;
	int64_t top;
	char *o1, *o2, *o3;
	struct pop3_stuff st;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)in[i]) * 1099511628211ULL;
	top = (int64_t)(h % 7) - 1;
	a = (size_t)((h >> 8) % (len + 1));
	b = (size_t)((h >> 32) % (len + 1));
	if (a > b) {
		size_t t = a;

		a = b;
		b = t;
	}
	o1 = malloc(2 * len + 8);
	o2 = malloc(2 * len + 8);
	o3 = malloc(2 * len + 8);
	n1 = stuff_pieces(in, len, top, len, len, o1);
	n2 = stuff_pieces(in, len, top, a, b, o2);
	if (n1 != n2 || memcmp(o1, o2, n1) != 0)
		abort();
	/* byte by byte */
	pop3_stuff_init(&st, top);
	for (i = 0, n3 = 0; i < len; i++)
		n3 += pop3_stuff(&st, in + i, 1, o3 + n3);
	n3 += pop3_stuff_end(&st, o3 + n3);
	if (n1 != n3 || memcmp(o1, o3, n1) != 0)
		abort();

	/* CR LF lines only, ended by the only "\r\n.\r\n" (or just ".") */
	for (i = 0; i < n1; i++)
		if (o1[i] == '\n' && (i == 0 || o1[i - 1] != '\r'))
			abort();
	if (n1 == 3) {
		if (memcmp(o1, ".\r\n", 3) != 0)
			abort();
	} else if (n1 < 5 || memcmp(o1 + n1 - 5, "\r\n.\r\n", 5) != 0 ||
	    memmem(o1, n1 - 3, "\r\n.\r\n", 5) != NULL ||
	    memcmp(o1, ".\r\n", 3) == 0)
		abort();

	/* RETR: what LIST says (maildir_crlf_size's rule), plus the dots */
	if (top < 0) {
		for (i = 0; i < len; i++)
			if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
				crlf++;
		body = n1 - 3;
		if (len > 0 && in[len - 1] != '\n')
			body -= 2;	/* the line end that end added */
		for (i = 0; i < body; i++)
			if (o1[i] == '.' && (i == 0 || o1[i - 1] == '\n'))
				dots++;
		if (body - dots != crlf)
			abort();
	}
	free(o1);
	free(o2);
	free(o3);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_parse((const char *)data, size);
	check_stuff((const char *)data, size);
	return 0;
}
