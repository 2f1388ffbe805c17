/*
 * The message-content decoder for DATA (RFC 5321 4.1.1.4, 4.5.2) and BDAT
 * (RFC 3030): finds the end of data, undoes dot-stuffing and checks every
 * line. Only <CR><LF>.<CR><LF> ends DATA (no SMTP smuggling,
 * CVE-2023-51764): a bare CR or LF is never a line end, and its presence
 * marks the message for rejection. A pure state machine fed in arbitrary
 * splits, so that its output does not depend on how TCP cut the input.
 */
#ifndef TEGAMI_SMTP_DATA_H
#define TEGAMI_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_TEXT_LINE_MAX 1000	/* RFC 5321 4.5.3.1.6, with CRLF */

/* Problems seen in the content; the message must then be refused. */
enum smtp_data_flaw {
	SMTP_DATA_BARE_LF = 1 << 0,	/* LF not preceded by CR */
	SMTP_DATA_BARE_CR = 1 << 1,	/* CR not followed by LF */
	SMTP_DATA_LONG_LINE = 1 << 2,	/* a line over line_max with CRLF */
	SMTP_DATA_NUL = 1 << 3,		/* a NUL byte */
};

struct smtp_data_decoder {
	/* Private state; set by smtp_data_decoder_init. */
	int state;
	bool dot_stuffed;	/* true for DATA, false for BDAT */
	size_t line_max;
	size_t line_len;	/* octets in the current line so far */
	bool pending_cr;	/* BDAT: a CR ended the previous chunk */
	unsigned flaws;		/* OR of enum smtp_data_flaw */
	uint64_t out_total;	/* octets produced so far */
	/* DATA: a decoded byte that did not fit in the caller's out buffer
	 * (-1: none); written first by the next call. See smtp_data.c. */
	int held;
};

/*
 * dot_stuffed: true for DATA (end marker and dot removal), false for BDAT
 * (bytes pass through unchanged; the caller counts chunk sizes and calls
 * smtp_data_finish after LAST). line_max: longest line allowed, CRLF
 * included (SMTP_TEXT_LINE_MAX).
 */
void smtp_data_decoder_init(struct smtp_data_decoder *d, bool dot_stuffed,
    size_t line_max);

/*
 * Decodes in[0..len) into out, which must hold at least len bytes.
 * Sets *out_len_r to the bytes written and returns the number of input bytes
 * consumed. For DATA, when the final <CR><LF>.<CR><LF> is seen, *done_r is
 * set and consumption stops right after it (the rest is the next command,
 * pipelined); the CRLF before the dot belongs to the message, the dot line
 * does not. Otherwise all input is consumed and *done_r is false.
 * Output is the message exactly as sent, minus the dot-stuffing dots: bare
 * CR and LF bytes are passed through unchanged (and flagged), so nothing is
 * ever turned into a line end.
 * One flawed sequence (".\r" at a line start followed by anything but LF;
 * the dot is dropped, the CR kept) can leave one output byte for the next
 * call; the output is complete whenever *done_r is set. Called again after
 * done, it consumes nothing and sets *done_r again.
 */
size_t smtp_data_decode(struct smtp_data_decoder *d, const char *in,
    size_t len, char *out, size_t *out_len_r, bool *done_r);

/*
 * BDAT only: call after the LAST chunk; flags a bare CR that ended it.
 * (A last line without CRLF is left as it is, as RFC 3030 permits.)
 */
void smtp_data_finish(struct smtp_data_decoder *d);

/* The flaws seen so far (OR of enum smtp_data_flaw). */
unsigned smtp_data_flaws(const struct smtp_data_decoder *d);

/*
 * The reply for a message with these flaws, without CRLF, e.g.
 * "550 5.6.0 Message contains a bare LF (not allowed in SMTP)";
 * NULL when flaws == 0. Static storage.
 */
const char *smtp_data_flaw_reply(unsigned flaws);

#endif
