/*
 * libFuzzer target for the DATA/BDAT decoder (RFC 5321 4.5.2, RFC 3030).
 * Decodes the input whole and in three pieces cut at two fuzzer-chosen
 * points; aborts unless both give the same output, end and flaws, the
 * output is never longer than the input, and the output and flaws agree
 * with a plain reading of the input.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct result {
	char *out;
	size_t out_len;
	size_t consumed;
	bool done;
	unsigned flaws;
};

/* Feeds in[0..len) in the pieces [0,c1) [c1,c2) [c2,len). */
static void
decode(const char *in, size_t len, bool dot, size_t line_max, size_t c1,
    size_t c2, struct result *r)
{
	struct smtp_data_decoder d;
	size_t bounds[4] = { 0, c1, c2, len }, k, n, olen, plen;
	char *buf;
	bool done = false;

	memset(r, 0, sizeof(*r));
	r->out = malloc(len + 1);
	if (r->out == NULL)
		abort();
	smtp_data_decoder_init(&d, dot, line_max);
	for (k = 0; k < 3 && !done; k++) {
		plen = bounds[k + 1] - bounds[k];
		/* exactly the piece's size: ASan sees any overrun */
		buf = malloc(plen > 0 ? plen : 1);
		if (buf == NULL)
			abort();
		n = smtp_data_decode(&d, in + bounds[k], plen, buf, &olen,
		    &done);
		if (n > plen || olen > plen || (!done && n != plen))
			abort();
		memcpy(r->out + r->out_len, buf, olen);
		r->out_len += olen;
		r->consumed += n;
		free(buf);
	}
	if (!dot)
		smtp_data_finish(&d);
	if (d.out_total != r->out_len)
		abort();
	/* one byte may wait for the next call, never at the end */
	if (d.held != -1) {
		if (done || !(d.flaws & SMTP_DATA_BARE_CR))
			abort();
		r->out[r->out_len++] = (char)d.held;
	}
	r->done = done;
	r->flaws = smtp_data_flaws(&d);
	if (r->out_len > r->consumed)
		abort();
	if ((smtp_data_flaw_reply(r->flaws) == NULL) != (r->flaws == 0))
		abort();
}

/*
 * DATA: walks the input as RFC 5321 4.5.2 reads it: lines end only at
 * CR LF; at a line start a lone "." CR LF is the end and any other "." is
 * dropped; every other byte must be the next output byte.
 */
static void
check_unstuff(const char *in, const struct result *r)
{
	size_t p = 0, i = 0;
	bool line_start = true;

	while (p < r->consumed) {
		if (line_start && in[p] == '.') {
			if (r->consumed - p >= 3 && in[p + 1] == '\r' &&
			    in[p + 2] == '\n') {
				/* the end: must be the first, and last used */
				if (!r->done || p + 3 != r->consumed)
					abort();
				break;
			}
			p++;
			line_start = false;
			/* an unfinished ".\r" at the end is not out yet */
			if (r->consumed - p == 1 && in[p] == '\r' &&
			    !r->done)
				break;
			continue;
		}
		if (i >= r->out_len || in[p] != r->out[i])
			abort();
		line_start = in[p] == '\n' && p > 0 && in[p - 1] == '\r';
		p++;
		i++;
	}
	if (i != r->out_len || (r->done && p + 3 != r->consumed))
		abort();
}

/* The flaws, found again in the output, where a line ends only at CRLF. */
static unsigned
output_flaws(const struct result *r, bool dot, size_t line_max)
{
	const char *o = r->out;
	size_t i, line = 0;
	unsigned f = 0;

	for (i = 0; i < r->out_len; i++) {
		line++;
		if (o[i] == '\0')
			f |= SMTP_DATA_NUL;
		else if (o[i] == '\n' && (i == 0 || o[i - 1] != '\r'))
			f |= SMTP_DATA_BARE_LF;
		else if (o[i] == '\r' && i + 1 < r->out_len &&
		    o[i + 1] != '\n')
			f |= SMTP_DATA_BARE_CR;
		/* a CR last of all: DATA may still get its LF, BDAT
		 * was finished */
		else if (o[i] == '\r' && i + 1 == r->out_len && !dot)
			f |= SMTP_DATA_BARE_CR;
		if (line > line_max)
			f |= SMTP_DATA_LONG_LINE;
		if (o[i] == '\n' && i > 0 && o[i - 1] == '\r')
			line = 0;
	}
	return f;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct result whole, cut;
	const char *in;
	size_t len, c1, c2, t, line_max;
	bool dot;

	if (size < 4)
		return 0;
	/* header: mode, line limit, two cut points */
	dot = (data[0] & 1) == 0;
	line_max = (data[0] & 2) ? SMTP_TEXT_LINE_MAX : 1 + data[1] % 16;
	in = (const char *)data + 4;
	len = size - 4;
	c1 = len ? data[2] * len / 255 : 0;
	c2 = len ? data[3] * len / 255 : 0;
	if (c1 > c2) {
		t = c1;
		c1 = c2;
		c2 = t;
	}

	decode(in, len, dot, line_max, len, len, &whole);
	decode(in, len, dot, line_max, c1, c2, &cut);
	if (whole.out_len != cut.out_len ||
	    memcmp(whole.out, cut.out, whole.out_len) != 0 ||
	    whole.consumed != cut.consumed || whole.done != cut.done ||
	    whole.flaws != cut.flaws)
		abort();

	if (!dot) {
		/* BDAT: unchanged, never an end */
		if (whole.done || whole.out_len != len ||
		    memcmp(whole.out, in, len) != 0)
			abort();
	} else
		check_unstuff(in, &whole);
	if (output_flaws(&whole, dot, line_max) != whole.flaws)
		abort();

	free(whole.out);
	free(cut.out);
	return 0;
}
