/*
 * The SMTP client's reply parser: reply lines and codes (RFC 5321 4.2),
 * enhanced status codes (RFC 3463, RFC 2034) and EHLO keywords (RFC 5321
 * 4.1.1.1, RFC 1870 SIZE, RFC 4954 AUTH). The peer is untrusted.
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "smtp/smtp_reply.h"

#define SIZE_LIMIT	((uint64_t)1 << 63)

static int
reply_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * The length of an enhanced status code "class.subject.detail" at the
 * start of s whose class is the reply's, followed by a space or the end;
 * 0 when there is none. class 3 has no status codes (RFC 3463 3.1).
 */
static size_t
reply_status_len(const char *s, size_t n, int class)
{
	size_t i, d;
	int part;

	if (class == 3 || n < 5 || s[0] != '0' + class)
		return 0;
	i = 1;
	for (part = 0; part < 2; part++) {
		if (i >= n || s[i] != '.')
			return 0;
		i++;
		for (d = 0; d < 3 && i < n && reply_digit(s[i]); d++)
			i++;
		if (d == 0)
			return 0;
	}
	if (i < n && s[i] != ' ')
		return 0;
	return i;
}

/* Appends one line's text; what does not fit is cut, never overflows. */
static void
reply_text_add(struct smtp_reply *r, const char *s, size_t n)
{
	size_t room;

	if (r->truncated)
		return;
	room = sizeof(r->text) - 1 - r->text_len;
	if (n + 1 <= room) {
		memcpy(r->text + r->text_len, s, n);
		r->text_len += n;
		r->text[r->text_len++] = '\n';
	} else {
		if (n > room)
			n = room;
		memcpy(r->text + r->text_len, s, n);
		r->text_len += n;
		r->truncated = true;
	}
	r->text[r->text_len] = '\0';
}

void
smtp_reply_parser_init(struct smtp_reply_parser *p)
{
	memset(p, 0, sizeof(*p));
}

enum smtp_reply_result
smtp_reply_feed(struct smtp_reply_parser *p, const char *line, size_t len,
    struct smtp_reply *reply_r)
{
	struct smtp_reply *r = &p->reply;
	size_t i, off, st;
	int code;
	bool last;

	if (len < 3 || len > SMTP_REPLY_LINE_MAX)
		goto bad;
	for (i = 0; i < len; i++)
		if (line[i] == '\0' || line[i] == '\r' || line[i] == '\n')
			goto bad;
	if (line[0] < '2' || line[0] > '5' || !reply_digit(line[1]) ||
	    !reply_digit(line[2]))
		goto bad;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (len == 3 || line[3] == ' ')
		last = true;
	else if (line[3] == '-')
		last = false;
	else
		goto bad;

	if (!p->in_reply) {
		memset(r, 0, sizeof(*r));
		r->code = code;
		p->in_reply = true;
	} else if (r->code != code)
		goto bad;
	if (r->n_lines >= SMTP_REPLY_LINES_MAX)
		goto bad;
	r->n_lines++;

	off = len == 3 ? 3 : 4;
	st = reply_status_len(line + off, len - off, code / 100);
	if (st > 0 && r->n_lines == 1) {
		memcpy(r->status, line + off, st);
		r->status[st] = '\0';
	} else if (st > 0 && (strlen(r->status) != st ||
	    memcmp(r->status, line + off, st) != 0))
		st = 0;
	if (st > 0) {
		off += st;
		if (off < len)
			off++;		/* the space after the status */
	}
	reply_text_add(r, line + off, len - off);

	if (!last)
		return SMTP_REPLY_MORE;
	p->in_reply = false;
	if (reply_r != r)
		*reply_r = *r;
	return SMTP_REPLY_DONE;

bad:
	smtp_reply_parser_init(p);
	return SMTP_REPLY_BAD;
}

/* ASCII only: the locale's tolower() is not ours to rely on. */
static int
ehlo_word_is(const char *w, size_t n, const char *want)
{
	size_t i;
	unsigned char c;

	if (strlen(want) != n)
		return 0;
	for (i = 0; i < n; i++) {
		c = (unsigned char)w[i];
		if (c >= 'a' && c <= 'z')
			c -= 'a' - 'A';
		if (c != (unsigned char)want[i])
			return 0;
	}
	return 1;
}

static int
ehlo_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
	    (c >= 'a' && c <= 'z');
}

/* Finds the next word of s..end; 0 at the end. */
static int
ehlo_next_word(const char **s, const char *end, const char **w, size_t *n)
{
	const char *p = *s;

	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p == end)
		return 0;
	*w = p;
	while (p < end && *p != ' ' && *p != '\t')
		p++;
	*n = (size_t)(p - *w);
	*s = p;
	return 1;
}

/* RFC 1870 size-value as a number in 0..2^63; -1 when it is not one. */
static int
ehlo_size(const char *w, size_t n, uint64_t *size_r)
{
	uint64_t v = 0, d;
	size_t i;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (!reply_digit(w[i]))
			return -1;
		d = (uint64_t)(w[i] - '0');
		if (v > (SIZE_LIMIT - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*size_r = v;
	return 0;
}

static void
ehlo_line(struct smtp_ehlo *ehlo, const char *s, size_t len)
{
	const char *end = s + len, *p = s, *kw, *w;
	size_t kwn, n, i, nparams = 0;
	uint64_t size = 0;
	bool auth_eq = false;

	/* the whole line is checked before any of it is believed */
	while (ehlo_next_word(&p, end, &w, &n)) {
		for (i = 0; i < n; i++)
			if ((unsigned char)w[i] < 33 ||
			    (unsigned char)w[i] > 126)
				return;
	}
	p = s;
	if (!ehlo_next_word(&p, end, &kw, &kwn))
		return;
	if (kwn > 5 && ehlo_word_is(kw, 5, "AUTH=")) {
		/* pre-RFC 4954 servers: "AUTH=LOGIN PLAIN" */
		auth_eq = true;
		kwn = 4;
	} else {
		for (i = 0; i < kwn; i++)
			if (!ehlo_alnum((unsigned char)kw[i]) &&
			    (i == 0 || kw[i] != '-'))
				return;
	}

	if (ehlo_word_is(kw, kwn, "PIPELINING"))
		ehlo->pipelining = true;
	else if (ehlo_word_is(kw, kwn, "8BITMIME"))
		ehlo->eightbitmime = true;
	else if (ehlo_word_is(kw, kwn, "SMTPUTF8"))
		ehlo->smtputf8 = true;
	else if (ehlo_word_is(kw, kwn, "CHUNKING"))
		ehlo->chunking = true;
	else if (ehlo_word_is(kw, kwn, "STARTTLS"))
		ehlo->starttls = true;
	else if (ehlo_word_is(kw, kwn, "ENHANCEDSTATUSCODES"))
		ehlo->enhancedstatuscodes = true;
	else if (ehlo_word_is(kw, kwn, "DSN"))
		ehlo->dsn = true;
	else if (ehlo_word_is(kw, kwn, "SIZE")) {
		ehlo->has_size = true;
		ehlo->size = 0;
		while (ehlo_next_word(&p, end, &w, &n)) {
			nparams++;
			if (nparams == 1 && ehlo_size(w, n, &size) == -1)
				size = 0;
		}
		if (nparams == 1)
			ehlo->size = size;
	} else if (ehlo_word_is(kw, kwn, "AUTH")) {
		if (auth_eq)
			p = kw + 5;	/* the first mechanism follows '=' */
		while (ehlo_next_word(&p, end, &w, &n)) {
			if (ehlo_word_is(w, n, "PLAIN"))
				ehlo->auth_plain = true;
			else if (ehlo_word_is(w, n, "LOGIN"))
				ehlo->auth_login = true;
		}
	}
}

void
smtp_ehlo_parse(const struct smtp_reply *reply, struct smtp_ehlo *ehlo)
{
	const char *s, *end, *nl;
	size_t len;

	memset(ehlo, 0, sizeof(*ehlo));
	if (reply->code != 250)
		return;
	len = reply->text_len;
	if (len > sizeof(reply->text))
		len = sizeof(reply->text);
	s = reply->text;
	end = s + len;
	/* the first line is the server's name and greeting */
	if ((nl = memchr(s, '\n', len)) == NULL)
		return;
	s = nl + 1;
	while (s < end && (nl = memchr(s, '\n', (size_t)(end - s))) != NULL) {
		ehlo_line(ehlo, s, (size_t)(nl - s));
		s = nl + 1;
	}
}

struct summary {
	char *out;
	size_t size, len;
};

static void
summary_put(struct summary *sm, unsigned char c)
{
	if (c < 0x20 || c > 0x7e)
		c = '?';
	if (sm->len + 1 < sm->size)
		sm->out[sm->len++] = (char)c;
}

char *
smtp_reply_summary(const struct smtp_reply *reply, char *out,
    size_t outsize)
{
	struct summary sm = { out, outsize, 0 };
	char code[16];
	const char *s, *end, *nl;
	size_t i, len;

	if (outsize == 0)
		return out;
	snprintf(code, sizeof(code), "%03d", reply->code);
	for (i = 0; code[i] != '\0'; i++)
		summary_put(&sm, (unsigned char)code[i]);
	if (reply->status[0] != '\0') {
		summary_put(&sm, ' ');
		for (i = 0; i < sizeof(reply->status) &&
		    reply->status[i] != '\0'; i++)
			summary_put(&sm, (unsigned char)reply->status[i]);
	}
	len = reply->text_len;
	if (len > sizeof(reply->text))
		len = sizeof(reply->text);
	s = reply->text;
	end = s + len;
	while (s < end) {
		if ((nl = memchr(s, '\n', (size_t)(end - s))) == NULL)
			nl = end;
		if (nl > s) {
			summary_put(&sm, ' ');
			for (; s < nl; s++)
				summary_put(&sm, (unsigned char)*s);
		}
		s = nl + 1;
	}
	out[sm.len] = '\0';
	return out;
}
