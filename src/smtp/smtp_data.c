/*
 * The DATA/BDAT content decoder: end-of-data detection and dot removal for
 * DATA (RFC 5321 4.1.1.4, 4.5.2), line checks for both (4.5.3.1.6, 2.3.8),
 * and BDAT pass-through (RFC 3030). A byte-at-a-time state machine whose
 * output does not depend on how the input was split.
 */

#include <stdlib.h>

#include "smtp/smtp_data.h"

/*
 * A line starts only after CR LF (or at the start of the data): a bare LF or
 * bare CR never starts one, so "\n.\n" and friends are ordinary text and can
 * never end DATA (SMTP smuggling, CVE-2023-51764).
 */
enum data_state {
	DS_LINE_START = 0,	/* at the start of a line */
	DS_DOT,			/* line start, "." seen and dropped */
	DS_DOT_CR,		/* ".\r" at line start: the CR is withheld */
	DS_TEXT,		/* inside a line, last byte not a CR */
	DS_CR,			/* inside a line, last byte a CR (written) */
	DS_DONE,		/* DATA: the end marker was consumed */
};

struct data_out {
	char *buf;
	size_t len;
	size_t cap;
};

void
smtp_data_decoder_init(struct smtp_data_decoder *d, bool dot_stuffed,
    size_t line_max)
{
	d->state = DS_LINE_START;
	d->dot_stuffed = dot_stuffed;
	d->line_max = line_max;
	d->line_len = 0;
	d->pending_cr = false;
	d->flaws = 0;
	d->out_total = 0;
	d->held = -1;
}

/*
 * Writes one decoded byte and counts it against the line length (the
 * dropped stuffing dot is never counted, as 4.5.3.1.6 says).
 *
 * The caller's out buffer holds as many bytes as this call's input. Only one
 * sequence decodes to more bytes than the call fed: ".\r" at a line start
 * followed by anything but LF, where the withheld CR and the next byte come
 * out together. The dot dropped before it paid for that byte, but possibly in
 * an earlier call; so the byte waits in d->held for the next call. At most
 * one byte is ever held (the next dropped dot absorbs it, and the end marker
 * itself starts with one), so done is never reported with a byte held.
 */
static void
data_emit(struct smtp_data_decoder *d, struct data_out *o, unsigned char c)
{
	if (o->len < o->cap)
		o->buf[o->len++] = (char)c;
	else if (d->held == -1)
		d->held = c;
	else
		abort();	/* impossible, see above; never write past out */
	if (d->line_len <= d->line_max) {
		/* saturates at line_max + 1: bounded, and already flagged */
		d->line_len++;
		if (d->line_len > d->line_max)
			d->flaws |= SMTP_DATA_LONG_LINE;
	}
}

size_t
smtp_data_decode(struct smtp_data_decoder *d, const char *in, size_t len,
    char *out, size_t *out_len_r, bool *done_r)
{
	struct data_out o = { out, 0, len };
	size_t i;
	unsigned char c;

	*done_r = false;
	if (d->state == DS_DONE) {
		*out_len_r = 0;
		*done_r = true;
		return 0;
	}
	if (len > 0 && d->held != -1) {
		out[o.len++] = (char)d->held;
		d->held = -1;
	}

	for (i = 0; i < len; i++) {
		c = (unsigned char)in[i];
		switch (d->state) {
		case DS_LINE_START:
			if (c == '.' && d->dot_stuffed) {
				d->state = DS_DOT;
				continue;
			}
			break;
		case DS_DOT:
			if (c == '\r') {
				d->state = DS_DOT_CR;
				continue;
			}
			/* "." and more: the dot was stuffing (4.5.2) */
			break;
		case DS_DOT_CR:
			if (c == '\n') {
				/* <CRLF>.<CRLF>: the dot line is not content */
				d->state = DS_DONE;
				*done_r = true;
				i++;
				goto out;
			}
			d->flaws |= SMTP_DATA_BARE_CR;
			data_emit(d, &o, '\r');
			break;
		case DS_CR:
			if (c == '\n') {
				data_emit(d, &o, c);
				d->line_len = 0;
				d->state = DS_LINE_START;
				continue;
			}
			d->flaws |= SMTP_DATA_BARE_CR;
			break;
		case DS_TEXT:
			break;
		}

		/* an ordinary byte inside a line */
		data_emit(d, &o, c);
		if (c == '\r') {
			d->state = DS_CR;
			continue;
		}
		if (c == '\n')
			d->flaws |= SMTP_DATA_BARE_LF;
		else if (c == '\0')
			d->flaws |= SMTP_DATA_NUL;
		d->state = DS_TEXT;
	}
out:
	d->pending_cr = d->state == DS_CR || d->state == DS_DOT_CR;
	d->out_total += o.len;
	*out_len_r = o.len;
	return i;
}

void
smtp_data_finish(struct smtp_data_decoder *d)
{
	if (d->dot_stuffed)
		return;
	if (d->state == DS_CR)
		d->flaws |= SMTP_DATA_BARE_CR;
	d->state = DS_TEXT;
	d->pending_cr = false;
}

unsigned
smtp_data_flaws(const struct smtp_data_decoder *d)
{
	return d->flaws;
}

const char *
smtp_data_flaw_reply(unsigned flaws)
{
	/* the bare newline first: it is the smuggling signal */
	if (flaws & (SMTP_DATA_BARE_LF | SMTP_DATA_BARE_CR))
		return "550 5.5.2 Message contains a bare CR or LF "
		    "(SMTP requires CRLF)";
	if (flaws & SMTP_DATA_LONG_LINE)
		return "550 5.6.0 Message has a line longer than 998 "
		    "characters";
	if (flaws & SMTP_DATA_NUL)
		return "550 5.6.0 Message contains a NUL byte";
	return NULL;
}
