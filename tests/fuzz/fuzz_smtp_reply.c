/*
 * libFuzzer target for the SMTP client's reply parser (RFC 5321 4.2,
 * 4.1.1.1; RFC 3463; RFC 1870): the input is a hostile server's output,
 * split at LF into lines fed one by one. Every result is checked against
 * a second, line-at-a-time model of the contract and against invariants.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The model: whole texts, no limits but the contract's. */
struct model {
	bool in_reply;
	int code;
	size_t n_lines;
	char status[16];
	char *text;		/* every line's text and '\n', uncut */
	size_t text_len;
};

static bool
digits(const char *s, size_t *i, size_t len)
{
	size_t n = 0;

	while (*i < len && s[*i] >= '0' && s[*i] <= '9' && n < 4) {
		(*i)++;
		n++;
	}
	return n >= 1 && n <= 3;
}

/* An enhanced status code of class c at s: its length, else 0. */
static size_t
model_status(const char *s, size_t len, int c)
{
	size_t i = 1;

	if ((c != 2 && c != 4 && c != 5) || len < 1 || s[0] != '0' + c)
		return 0;
	if (i >= len || s[i++] != '.' || !digits(s, &i, len))
		return 0;
	if (i >= len || s[i++] != '.' || !digits(s, &i, len))
		return 0;
	return i == len || s[i] == ' ' ? i : 0;
}

static enum smtp_reply_result
model_feed(struct model *m, const char *line, size_t len)
{
	size_t i, st;
	int code;

	if (len < 3 || len > SMTP_REPLY_LINE_MAX ||
	    memchr(line, '\0', len) != NULL ||
	    memchr(line, '\r', len) != NULL ||
	    memchr(line, '\n', len) != NULL ||
	    line[0] < '2' || line[0] > '5' ||
	    line[1] < '0' || line[1] > '9' || line[2] < '0' || line[2] > '9' ||
	    (len > 3 && line[3] != ' ' && line[3] != '-'))
		goto bad;
	code = atoi((char[4]){ line[0], line[1], line[2], '\0' });
	if (!m->in_reply) {
		m->in_reply = true;
		m->code = code;
		m->n_lines = 0;
		m->status[0] = '\0';
		m->text_len = 0;
	} else if (code != m->code)
		goto bad;
	if (++m->n_lines > SMTP_REPLY_LINES_MAX)
		goto bad;
	i = len > 3 ? 4 : 3;
	st = model_status(line + i, len - i, code / 100);
	if (m->n_lines == 1 && st > 0)
		memcpy(m->status, line + i, st), m->status[st] = '\0';
	else if (!(st > 0 && st == strlen(m->status) &&
	    strncmp(m->status, line + i, st) == 0))
		st = 0;
	if (st > 0)
		i += st + (i + st < len);
	memcpy(m->text + m->text_len, line + i, len - i);
	m->text_len += len - i;
	m->text[m->text_len++] = '\n';
	if (len > 3 && line[3] == '-')
		return SMTP_REPLY_MORE;
	m->in_reply = false;
	return SMTP_REPLY_DONE;
bad:
	m->in_reply = false;
	return SMTP_REPLY_BAD;
}

static void
check_reply(const struct smtp_reply *r, const struct model *m)
{
	if (r->code < 200 || r->code > 599 || r->code != m->code ||
	    r->n_lines < 1 || r->n_lines > SMTP_REPLY_LINES_MAX ||
	    r->n_lines != m->n_lines)
		abort();
	if (strcmp(r->status, m->status) != 0 || (r->status[0] != '\0' &&
	    (r->status[0] != '0' + r->code / 100 || r->code / 100 == 3)))
		abort();
	if (r->text_len > SMTP_REPLY_TEXT_MAX - 1 ||
	    r->text[r->text_len] != '\0' || strlen(r->text) != r->text_len)
		abort();
	/* the text is the model's, or cut to exactly what fits */
	if (m->text_len <= SMTP_REPLY_TEXT_MAX - 1) {
		if (r->truncated || r->text_len != m->text_len)
			abort();
	} else if (!r->truncated || r->text_len != SMTP_REPLY_TEXT_MAX - 1)
		abort();
	if (memcmp(r->text, m->text, r->text_len) != 0)
		abort();
}

/* The summary written another way: the text split with strtok_r. */
static void
model_summary(const struct smtp_reply *r, char *out)
{
	char *text, *tok, *save;
	size_t n = 0, i;

	if ((text = strdup(r->text)) == NULL)
		abort();
	n += (size_t)sprintf(out, "%d", r->code);
	if (r->status[0] != '\0')
		n += (size_t)sprintf(out + n, " %s", r->status);
	for (tok = strtok_r(text, "\n", &save); tok != NULL;
	    tok = strtok_r(NULL, "\n", &save)) {
		out[n++] = ' ';
		for (i = 0; tok[i] != '\0'; i++)
			out[n++] = (unsigned char)tok[i] >= 0x20 &&
			    (unsigned char)tok[i] <= 0x7e ? tok[i] : '?';
	}
	out[n] = '\0';
	free(text);
}

static void
check_summary(const struct smtp_reply *r)
{
	static const size_t sizes[] = { 0, 1, 2, 3, 4, 5, 10, 17, 100 };
	static char full[2 * SMTP_REPLY_TEXT_MAX], want[2 * SMTP_REPLY_TEXT_MAX];
	char *buf;
	size_t i, n, len;

	smtp_reply_summary(r, full, sizeof(full));
	len = strlen(full);
	if (len < 3 || len >= sizeof(full) - 1)
		abort();
	for (i = 0; i < len; i++)
		if ((unsigned char)full[i] < 0x20 ||
		    (unsigned char)full[i] > 0x7e)
			abort();
	model_summary(r, want);
	if (strcmp(full, want) != 0)
		abort();
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		n = sizes[i];
		/* heap and exact: ASan sees a byte written too many */
		if ((buf = malloc(n == 0 ? 1 : n)) == NULL)
			abort();
		buf[0] = 'Z';
		if (smtp_reply_summary(r, buf, n) != buf)
			abort();
		if (n == 0 ? buf[0] != 'Z' : strlen(buf) != (n - 1 < len ?
		    n - 1 : len) || strncmp(buf, full, strlen(buf)) != 0)
			abort();
		free(buf);
	}
}

/* Whatever is offered must at least be named in the text. */
static void
check_ehlo(const struct smtp_reply *r)
{
	struct smtp_ehlo e;

	smtp_ehlo_parse(r, &e);
	if (r->code != 250 || r->n_lines < 2) {
		if (e.pipelining || e.eightbitmime || e.smtputf8 ||
		    e.chunking || e.starttls || e.enhancedstatuscodes ||
		    e.dsn || e.has_size || e.size != 0 || e.auth_plain ||
		    e.auth_login)
			abort();
		return;
	}
	if ((e.pipelining && !strcasestr(r->text, "pipelining")) ||
	    (e.eightbitmime && !strcasestr(r->text, "8bitmime")) ||
	    (e.smtputf8 && !strcasestr(r->text, "smtputf8")) ||
	    (e.chunking && !strcasestr(r->text, "chunking")) ||
	    (e.starttls && !strcasestr(r->text, "starttls")) ||
	    (e.enhancedstatuscodes &&
	    !strcasestr(r->text, "enhancedstatuscodes")) ||
	    (e.dsn && !strcasestr(r->text, "dsn")) ||
	    (e.has_size && !strcasestr(r->text, "size")) ||
	    (!e.has_size && e.size != 0) || e.size > (uint64_t)1 << 63 ||
	    (e.auth_plain && (!strcasestr(r->text, "auth") ||
	    !strcasestr(r->text, "plain"))) ||
	    (e.auth_login && (!strcasestr(r->text, "auth") ||
	    !strcasestr(r->text, "login"))))
		abort();
}

/* A struct not made by the parser: the formatters stay in bounds. */
static void
check_raw(const uint8_t *data, size_t size)
{
	struct smtp_reply *r;
	struct smtp_ehlo e;
	char out[64];

	if ((r = malloc(sizeof(*r))) == NULL)
		abort();
	memset(r, 0, sizeof(*r));
	memcpy(r->status, data, size < sizeof(r->status) ?
	    size : sizeof(r->status));
	memcpy(r->text, data, size < sizeof(r->text) ? size : sizeof(r->text));
	r->code = 250;
	r->text_len = size > 0 ? (size_t)data[0] << (data[size - 1] & 15) : 0;
	smtp_reply_summary(r, out, sizeof(out));
	smtp_ehlo_parse(r, &e);
	free(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data, *lf;
	struct smtp_reply_parser p, q;
	struct smtp_reply *r;
	enum smtp_reply_result res, resq, want;
	struct model m;
	size_t pos = 0, len;

	static char model_text[SMTP_REPLY_LINES_MAX * SMTP_REPLY_LINE_MAX];

	memset(&m, 0, sizeof(m));
	m.text = model_text;
	if ((r = malloc(sizeof(*r))) == NULL)
		abort();
	smtp_reply_parser_init(&p);
	smtp_reply_parser_init(&q);
	while (pos < size) {
		lf = memchr(in + pos, '\n', size - pos);
		len = lf == NULL ? size - pos : (size_t)(lf - (in + pos));
		/* the caller takes CR LF off; a bare CR stays in */
		if (lf != NULL && len > 0 && in[pos + len - 1] == '\r')
			len--;
		r->code = -1;
		res = smtp_reply_feed(&p, in + pos, len, r);
		/* a second parser that returns into its own reply agrees */
		resq = smtp_reply_feed(&q, in + pos, len, &q.reply);
		want = model_feed(&m, in + pos, len);
		if (res != want || resq != want || p.in_reply != m.in_reply)
			abort();
		if (res == SMTP_REPLY_DONE) {
			check_reply(r, &m);
			if (r->code != q.reply.code ||
			    strcmp(r->status, q.reply.status) != 0 ||
			    r->text_len != q.reply.text_len ||
			    r->n_lines != q.reply.n_lines ||
			    r->truncated != q.reply.truncated ||
			    memcmp(r->text, q.reply.text, r->text_len + 1) != 0)
				abort();
			check_summary(r);
			check_ehlo(r);
		} else if (r->code != -1)
			abort();	/* *reply_r is written only on DONE */
		pos = lf == NULL ? size : (size_t)(lf - in) + 1;
	}
	check_raw(data, size);
	free(r);
	return 0;
}
