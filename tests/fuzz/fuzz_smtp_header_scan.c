/*
 * libFuzzer target for the header-section scanner (RFC 5322 2.1, 2.2;
 * RFC 6409 8.2, 8.3): the input is a message, fed whole, byte by byte and
 * in pseudo-random splits through a writer that holds back what the
 * scanner says is pending; every run must agree, and the written message
 * must then have both fields. The input's first bytes also make the
 * Message-ID and Date values, to fuzz the additions' checks and bounds.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp_header_scan.h"

#define NONE	((size_t)-1)
#define ALNUM	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct result {
	bool by_feed, ended, on_empty, mid, date, lead;
	size_t end;		/* insertion point, NONE: at the very end */
	char *out;		/* the message as written, with additions */
	size_t out_len;
	size_t out_cap;
	size_t add_len;
};

static void
out_put(struct result *r, const char *p, size_t n)
{
	if (r->out_len + n + 1 > r->out_cap) {
		r->out_cap = 2 * (r->out_len + n + 1);
		r->out = realloc(r->out, r->out_cap);
		if (r->out == NULL)
			abort();
	}
	if (n > 0)
		memcpy(r->out + r->out_len, p, n);
	r->out_len += n;
}

static void
out_additions(struct result *r, const struct smtp_header_scan *hs,
    bool lead, bool sep)
{
	char add[128];
	size_t n;

	n = smtp_header_scan_additions(hs, "f1", "fuzz.example",
	    "Mon, 01 Jan 2024 00:00:00 +0000", lead, sep, add, sizeof(add));
	if (n == NONE || n > SMTP_HEADER_ADDITIONS_MAX(2, 12, 31) ||
	    add[n] != '\0')
		abort();
	r->add_len = n;
	r->lead = lead;
	out_put(r, add, n);
}

/*
 * Feeds in pieces whose lengths come from next_len (NULL: one piece),
 * writing what the scanner no longer holds; abort() on any breach of the
 * "Split lines" contract in the header.
 */
static void
run(const char *in, size_t len, size_t (*next_len)(uint64_t *),
    uint64_t seed, struct result *r)
{
	struct smtp_header_scan hs, before;
	size_t a = 0, b, off, held = 0, ins;
	bool empty;

	memset(r, 0, sizeof(*r));
	r->end = NONE;
	smtp_header_scan_init(&hs);
	while (a < len || a == 0) {
		b = next_len == NULL ? len : a + next_len(&seed);
		if (b > len)
			b = len;
		if (hs.ended) {
			before = hs;
			if (smtp_header_scan_feed(&hs, in + a, b - a, NULL) !=
			    NONE || memcmp(&before, &hs, sizeof(hs)) != 0)
				abort();
			out_put(r, in + a, b - a);
		} else if ((off = smtp_header_scan_feed(&hs, in + a, b - a,
		    &empty)) == NONE) {
			if (hs.ended ||
			    hs.pending_line_len >= SMTP_HEADER_LINE_MAX ||
			    hs.pending_line_len > held + (b - a))
				abort();
			out_put(r, in + a - held, held + (b - a) -
			    hs.pending_line_len);
			held = hs.pending_line_len;
		} else {
			/* the end offset lies within the piece */
			if (!hs.ended || off >= b - a ||
			    empty != hs.ended_on_empty ||
			    hs.ended_in_previous_piece !=
			    (hs.pending_line_len != 0) ||
			    (hs.ended_in_previous_piece &&
			    (off != 0 || hs.pending_line_len != held)))
				abort();
			r->by_feed = true;
			ins = a + off - hs.pending_line_len;
			out_put(r, in + a - held, ins - (a - held));
			out_additions(r, &hs, false, !hs.ended_on_empty);
			out_put(r, in + ins, b - ins);
			held = 0;
			r->end = ins;
		}
		if (b == len)
			break;
		a = b;
	}
	if (!hs.ended) {
		smtp_header_scan_finish(&hs);
		if (hs.ended) {
			if (hs.pending_line_len != held || held == 0 ||
			    !hs.ended_in_previous_piece || hs.ended_on_empty)
				abort();
			ins = len - held;
			out_additions(r, &hs, false, true);
			out_put(r, in + ins, held);
			r->end = ins;
		} else {
			if (held != 0 || hs.pending_line_len != 0)
				abort();
			out_additions(r, &hs, !hs.at_line_start, false);
		}
	}
	r->ended = hs.ended;
	r->on_empty = hs.ended_on_empty;
	r->mid = hs.has_message_id;
	r->date = hs.has_date;
}

static size_t
one_byte(uint64_t *seed)
{
	(void)seed;
	return 1;
}

static size_t
random_len(uint64_t *seed)
{
	/* xorshift64: cheap, and the same input splits the same way */
	*seed ^= *seed << 13;
	*seed ^= *seed >> 7;
	*seed ^= *seed << 17;
	return (*seed >> 33) % ((*seed & 1) ? 7 : 1500);
}

static void
same(const struct result *x, const struct result *y)
{
	if (x->by_feed != y->by_feed || x->ended != y->ended ||
	    x->on_empty != y->on_empty || x->mid != y->mid ||
	    x->date != y->date || x->end != y->end ||
	    x->out_len != y->out_len ||
	    memcmp(x->out, y->out, x->out_len) != 0)
		abort();
}

/* The written message has both fields, and its section ends on CR LF. */
static void
check_written(const char *in, size_t len, const struct result *r)
{
	struct smtp_header_scan hs;
	size_t off, ins;
	bool empty = false;

	if (r->add_len == 0) {
		if (r->out_len != len || memcmp(r->out, in, len) != 0)
			abort();
		return;
	}
	ins = r->end == NONE ? len : r->end;
	if (r->out_len != len + r->add_len ||
	    memcmp(r->out, in, ins) != 0 ||
	    memcmp(r->out + ins + r->add_len, in + ins, len - ins) != 0)
		abort();
	smtp_header_scan_init(&hs);
	off = smtp_header_scan_feed(&hs, r->out, r->out_len, &empty);
	smtp_header_scan_finish(&hs);
	if (!hs.has_message_id || !hs.has_date || hs.ended != r->ended)
		abort();
	/* a separator added, or the original empty line: either way empty */
	if (r->ended && (off == NONE || !empty ||
	    off + 2 != ins + r->add_len + (r->on_empty ? 2 : 0)))
		abort();
}

/*
 * The same rules written line by line over the whole message, with no
 * state carried between bytes: a second opinion for the streaming code.
 */
static void
reference(const char *in, size_t len, struct result *r)
{
	size_t pos = 0, j, n;
	bool any = false;
	const char *lf;
	unsigned char c;

	memset(r, 0, sizeof(*r));
	r->end = NONE;
	while (pos < len) {
		c = (unsigned char)in[pos];
		if (c == '\n' || c == '\r') {
			r->on_empty = c == '\n' ||
			    (pos + 1 < len && in[pos + 1] == '\n');
			/* only a CR at the very end waits for finish */
			r->by_feed = c == '\n' || pos + 1 < len;
			break;
		}
		if (c != ' ' && c != '\t') {
			for (j = pos; j < len && (unsigned char)in[j] >= 33 &&
			    (unsigned char)in[j] <= 126 && in[j] != ':'; j++)
				;
			n = j - pos;
			if (n >= SMTP_HEADER_LINE_MAX || n == 0 || j == len ||
			    in[j] != ':') {
				r->by_feed = n >= SMTP_HEADER_LINE_MAX ||
				    j < len;
				break;
			}
			if (n == 10 && strncasecmp(in + pos, "Message-ID",
			    10) == 0)
				r->mid = true;
			if (n == 4 && strncasecmp(in + pos, "Date", 4) == 0)
				r->date = true;
			any = true;
		} else if (!any) {
			r->by_feed = true;
			break;
		}
		lf = memchr(in + pos, '\n', len - pos);
		if (lf == NULL)
			return;
		pos = (size_t)(lf - in) + 1;
	}
	if (pos < len) {
		r->ended = true;
		r->end = pos;
	}
}

static void
same_as_reference(const char *in, size_t len, const struct result *x)
{
	struct result ref;

	reference(in, len, &ref);
	if (x->by_feed != ref.by_feed || x->ended != ref.ended ||
	    (x->ended && x->on_empty != ref.on_empty) ||
	    x->mid != ref.mid || x->date != ref.date || x->end != ref.end)
		abort();
}

/* Values for the additions from the input: checks, bound and bytes. */
static void
check_additions(const uint8_t *data, size_t size)
{
	struct smtp_header_scan hs;
	char id[16], host[16], date[40], want[128], *out;
	size_t a, b, c, n, w, outsize;
	int k;

	if (size < 3)
		return;
	a = data[0] % sizeof(id);
	b = data[1] % sizeof(host);
	c = data[2] % sizeof(date);
	if (3 + a + b + c > size)
		return;
	memcpy(id, data + 3, a);
	id[a] = '\0';
	memcpy(host, data + 3 + a, b);
	host[b] = '\0';
	memcpy(date, data + 3 + a + b, c);
	date[c] = '\0';
	smtp_header_scan_init(&hs);
	for (k = 0; k < 16; k++) {
		hs.has_message_id = k & 1;
		hs.has_date = k & 2;
		w = (size_t)snprintf(want, sizeof(want), "%s%s%s%s%s%s%s%s%s",
		    k & 4 ? "\r\n" : "",
		    hs.has_message_id ? "" : "Message-ID: <",
		    hs.has_message_id ? "" : id, hs.has_message_id ? "" : "@",
		    hs.has_message_id ? "" : host,
		    hs.has_message_id ? "" : ">\r\n",
		    hs.has_date ? "" : "Date: ", hs.has_date ? "" : date,
		    hs.has_date ? "" : "\r\n");
		if (k & 8)
			w += (size_t)snprintf(want + w, sizeof(want) - w, "\r\n");
		if (hs.has_message_id && hs.has_date)
			want[w = 0] = '\0';
		/* exact size, one short, and larger; heap, so ASan sees */
		for (outsize = w; outsize <= w + 2; outsize++) {
			out = malloc(outsize == 0 ? 1 : outsize);
			if (out == NULL)
				abort();
			n = smtp_header_scan_additions(&hs, id, host, date,
			    k & 4, k & 8, out, outsize);
			if (n != NONE && (n > SMTP_HEADER_ADDITIONS_MAX(a, b,
			    c) || n >= outsize || n != w ||
			    memcmp(out, want, n + 1) != 0))
				abort();
			/* too small must fail; enough may fail only on bad values */
			if (outsize <= w && n != NONE)
				abort();
			if (n == NONE && outsize > w && a > 0 && b > 0 &&
			    c > 0 && strspn(id, ALNUM) == a &&
			    strspn(host, ALNUM) == b &&
			    strspn(date, ALNUM " ,+:") == c)
				abort();
			free(out);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct result whole, bytes, split;
	uint64_t seed = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < size && i < 64; i++)
		seed = (seed ^ data[i]) * 0x100000001b3ULL;
	if (seed == 0)
		seed = 1;
	run(in, size, NULL, 0, &whole);
	same_as_reference(in, size, &whole);
	check_written(in, size, &whole);
	run(in, size, one_byte, 0, &bytes);
	same(&whole, &bytes);
	run(in, size, random_len, seed, &split);
	same(&whole, &split);
	free(whole.out);
	free(bytes.out);
	free(split.out);
	check_additions(data, size);
	return 0;
}
