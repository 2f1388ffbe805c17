/*
 * Tests of the DATA/BDAT content decoder (RFC 5321 4.1.1.4, 4.5.2, RFC
 * 3030): every input fed whole, byte by byte and cut at every point; the
 * SMTP smuggling end-of-data variants (CVE-2023-51764); dot-stuffing
 * goldens; line length limits; a random comparison with a reference.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_data.h"
#include "unit.h"

#define L(s)	s, sizeof(s) - 1

struct run {
	char *out;
	size_t out_len;
	size_t consumed;
	bool done;
	unsigned flaws;
	bool held;		/* one output byte still held (not done) */
};

/* The decoder's line limit in run_cuts; the random test lowers it. */
static size_t test_line_max = SMTP_TEXT_LINE_MAX;

/*
 * Feeds in[0..len) cut at cuts[0..ncuts) (ascending), stopping at done; each
 * call gets an out buffer of exactly its input's size on the heap, so that
 * ASan sees any write past it. BDAT runs end with smtp_data_finish.
 */
static void
run_cuts(const char *in, size_t len, bool dot, const size_t *cuts,
    size_t ncuts, struct run *r)
{
	struct smtp_data_decoder d;
	size_t k, a, b, n, olen;
	char *buf;
	bool done;

	memset(r, 0, sizeof(*r));
	r->out = malloc(len + 1);
	smtp_data_decoder_init(&d, dot, test_line_max);
	a = 0;
	for (k = 0; k <= ncuts && !r->done; k++) {
		b = k < ncuts ? cuts[k] : len;
		buf = malloc(b - a > 0 ? b - a : 1);
		olen = (size_t)-1;
		n = smtp_data_decode(&d, in + a, b - a, buf, &olen, &done);
		CHECK(olen <= b - a);
		CHECK(n <= b - a);
		CHECK(done || n == b - a);
		if (olen <= b - a) {
			memcpy(r->out + r->out_len, buf, olen);
			r->out_len += olen;
		}
		free(buf);
		r->consumed += n;
		r->done = done;
		a = b;
	}
	if (!dot)
		smtp_data_finish(&d);
	CHECK(d.out_total == r->out_len);
	r->flaws = smtp_data_flaws(&d);
	if (d.held != -1) {
		/* only after ".\r" at a line start, never at done */
		CHECK(!r->done);
		CHECK(r->flaws & SMTP_DATA_BARE_CR);
		r->out[r->out_len++] = (char)d.held;
		r->held = true;
	}
}

static bool
run_eq(const struct run *a, const struct run *b)
{
	return a->out_len == b->out_len &&
	    memcmp(a->out, b->out, a->out_len) == 0 &&
	    a->consumed == b->consumed && a->done == b->done &&
	    a->flaws == b->flaws;
}

/*
 * Decodes whole, byte by byte and at every single cut point; all must give
 * the same result, which is returned in *whole_r (caller frees out).
 */
static void
run_all_splits(const char *in, size_t len, bool dot, struct run *whole_r)
{
	struct run r;
	size_t *cuts, i;

	run_cuts(in, len, dot, NULL, 0, whole_r);
	CHECK(!whole_r->held);
	CHECK(whole_r->out_len <= whole_r->consumed);

	cuts = malloc((len + 1) * sizeof(*cuts));
	for (i = 0; i + 1 < len; i++)
		cuts[i] = i + 1;
	run_cuts(in, len, dot, cuts, len > 0 ? len - 1 : 0, &r);
	if (!run_eq(&r, whole_r))
		fprintf(stderr, "byte-by-byte differs for %zu bytes\n", len);
	CHECK(run_eq(&r, whole_r));
	free(r.out);

	for (i = 0; i <= len; i++) {
		cuts[0] = i;
		run_cuts(in, len, dot, cuts, 1, &r);
		if (!run_eq(&r, whole_r))
			fprintf(stderr, "cut at %zu differs\n", i);
		CHECK(run_eq(&r, whole_r));
		free(r.out);
	}
	free(cuts);
}

/* Checks one DATA/BDAT input against the expected result in every split. */
static void
check_decode(const char *in, size_t len, bool dot, const char *exp,
    size_t exp_len, size_t exp_consumed, bool exp_done, unsigned exp_flaws)
{
	struct run r;

	run_all_splits(in, len, dot, &r);
	CHECK(r.out_len == exp_len);
	CHECK(r.out_len == exp_len && memcmp(r.out, exp, exp_len) == 0);
	CHECK(r.consumed == exp_consumed);
	CHECK(r.done == exp_done);
	CHECK(r.flaws == exp_flaws);
	if (r.flaws != exp_flaws)
		fprintf(stderr, "flaws %#x, expected %#x\n", r.flaws,
		    exp_flaws);
	free(r.out);
}

/* A DATA input that ends exactly at its end. */
#define DATA_OK(in, exp, flaws) \
	check_decode(L(in), true, L(exp), sizeof(in) - 1, true, flaws)

static void
test_simple(void)
{
	DATA_OK("Subject: x\r\n\r\nbody\r\n.\r\n",
	    "Subject: x\r\n\r\nbody\r\n", 0);
	DATA_OK("a\r\nb\r\nc\r\n.\r\n", "a\r\nb\r\nc\r\n", 0);
	/* no end yet: everything consumed, not done */
	check_decode(L("a\r\nb\r\n"), true, L("a\r\nb\r\n"), 6, false, 0);
	check_decode(L("a\r\n."), true, L("a\r\n"), 4, false, 0);
	check_decode(L("a\r\n.\r"), true, L("a\r\n"), 5, false, 0);
	check_decode(L(""), true, L(""), 0, false, 0);
}

static void
test_empty_message(void)
{
	/* ".\r\n" as the first line: the DATA line's CRLF was the first one */
	DATA_OK(".\r\n", "", 0);
	/* one empty line, then the end: the CRLF belongs to the message */
	DATA_OK("\r\n.\r\n", "\r\n", 0);
	DATA_OK("\r\n\r\n.\r\n", "\r\n\r\n", 0);
}

static void
test_dot_stuffing(void)
{
	DATA_OK("..x\r\n.\r\n", ".x\r\n", 0);
	DATA_OK("...\r\n.\r\n", "..\r\n", 0);
	DATA_OK("..\r\n.\r\n", ".\r\n", 0);
	DATA_OK("a\r\n..\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", 0);
	DATA_OK("a\r\n.b\r\n.\r\n", "a\r\nb\r\n", 0);
	/* not at a line start: kept */
	DATA_OK("a.b\r\na.\r\n x.\r\n.\r\n", "a.b\r\na.\r\n x.\r\n", 0);
	DATA_OK("a\r\n ..\r\n.\r\n", "a\r\n ..\r\n", 0);
	/* every line stuffed */
	DATA_OK("..\r\n..\r\n...\r\n.\r\n", ".\r\n.\r\n..\r\n", 0);
	/* the end comes with the first lone dot: the rest is not consumed */
	check_decode(L("a\r\n.\r\nb\r\n.\r\n"), true, L("a\r\n"), 6, true, 0);
}

static void
test_pipelined_after_end(void)
{
	static const char in[] = "x\r\n.\r\nQUIT\r\n";
	static const char in2[] = "x\r\n.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>"
	    "\r\nDATA\r\ny\r\n.\r\n";

	check_decode(L(in), true, L("x\r\n"), 6, true, 0);
	check_decode(L(in2), true, L("x\r\n"), 6, true, 0);
	check_decode(L(".\r\nQUIT\r\n"), true, L(""), 3, true, 0);
}

static void
test_after_done(void)
{
	struct smtp_data_decoder d;
	char out[16];
	size_t n, olen;
	bool done;

	smtp_data_decoder_init(&d, true, SMTP_TEXT_LINE_MAX);
	n = smtp_data_decode(&d, L("a\r\n.\r\nNOOP\r\n"), out, &olen, &done);
	CHECK(n == 6 && olen == 3 && done);
	n = smtp_data_decode(&d, L("NOOP\r\n"), out, &olen, &done);
	CHECK(n == 0 && olen == 0 && done);
	CHECK(d.out_total == 3);
}

static const char smug[] = "MAIL FROM:<ceo@victim.test>\r\n"
    "RCPT TO:<bob@local.test>\r\nDATA\r\n"
    "From: ceo@victim.test\r\nSubject: SMUGGLED\r\n\r\nx\r\n.\r\n";

static const struct {
	const char *name;
	const char *end;
	size_t end_len;
	unsigned flaws;
	bool dot_dropped;	/* the dot was at a real line start */
} smuggle[] = {
	{ "lflf", L("\n.\n"), SMTP_DATA_BARE_LF, false },
	{ "crcr", L("\r.\r"), SMTP_DATA_BARE_CR, false },
	{ "crlf", L("\r.\n"), SMTP_DATA_BARE_CR | SMTP_DATA_BARE_LF, false },
	{ "lfcr", L("\n.\r"), SMTP_DATA_BARE_CR | SMTP_DATA_BARE_LF, false },
	{ "lfcrlf", L("\n.\r\n"), SMTP_DATA_BARE_LF, false },
	{ "crlflf", L("\r\n.\n"), SMTP_DATA_BARE_LF, true },
	{ "crcrlf", L("\r.\r\n"), SMTP_DATA_BARE_CR, false },
	{ "crlfcr", L("\r\n.\r"), SMTP_DATA_BARE_CR, true },
	{ "nul", L("\r\n\0.\r\n"), SMTP_DATA_NUL, false },
};

/*
 * Every smuggling end from security-payloads.md T4, followed by a complete
 * second transaction: only the final real <CRLF>.<CRLF> ends the data, so
 * the decoder finds exactly one end and the "commands" stay message text.
 */
static void
test_smuggling(void)
{
	static const char head[] = "Subject: t\r\n\r\nbody";
	char in[512], exp[512];
	const char *dot;
	size_t i, len, elen, hlen, at;

	for (i = 0; i < sizeof(smuggle) / sizeof(smuggle[0]); i++) {
		/* after a body line, and right at the start of the data */
		for (hlen = 0; hlen <= sizeof(head) - 1;
		    hlen += sizeof(head) - 1) {
			memcpy(in, head, hlen);
			len = hlen;
			memcpy(in + len, smuggle[i].end, smuggle[i].end_len);
			len += smuggle[i].end_len;
			memcpy(in + len, smug, sizeof(smug) - 1);
			len += sizeof(smug) - 1;

			/* expected: all but the final ".\r\n" and the
			 * stuffing dot, if the variant has one */
			elen = len - 3;
			memcpy(exp, in, elen);
			if (smuggle[i].dot_dropped) {
				dot = memchr(smuggle[i].end, '.',
				    smuggle[i].end_len);
				at = hlen + (size_t)(dot - smuggle[i].end);
				memmove(exp + at, exp + at + 1, elen - at - 1);
				elen--;
			}
			check_decode(in, len, true, exp, elen, len, true,
			    smuggle[i].flaws);
		}
		CHECK_REPLY(smtp_data_flaw_reply(smuggle[i].flaws),
		    smuggle[i].flaws == SMTP_DATA_NUL ? "550 5.6.0" :
		    "550 5.5.2");
	}

	/* the control: a real end stops right there, before the payload */
	len = sizeof(head) - 1;
	memcpy(in, head, len);
	memcpy(in + len, "\r\n.\r\n", 5);
	memcpy(in + len + 5, smug, sizeof(smug) - 1);
	memcpy(exp, head, len);
	memcpy(exp + len, "\r\n", 2);
	check_decode(in, len + 5 + sizeof(smug) - 1, true, exp, len + 2,
	    len + 5, true, 0);

	/* BDAT: no end marker exists; bytes pass through, flaws noted */
	for (i = 0; i < sizeof(smuggle) / sizeof(smuggle[0]); i++) {
		len = sizeof(head) - 1;
		memcpy(in, head, len);
		memcpy(in + len, smuggle[i].end, smuggle[i].end_len);
		len += smuggle[i].end_len;
		memcpy(in + len, smug, sizeof(smug) - 1);
		len += sizeof(smug) - 1;
		check_decode(in, len, false, in, len, len, false,
		    smuggle[i].flaws);
	}
}

static void
test_bare_newlines(void)
{
	DATA_OK("a\nb\r\n.\r\n", "a\nb\r\n", SMTP_DATA_BARE_LF);
	DATA_OK("a\rb\r\n.\r\n", "a\rb\r\n", SMTP_DATA_BARE_CR);
	DATA_OK("\n\r\n.\r\n", "\n\r\n", SMTP_DATA_BARE_LF);
	DATA_OK("\r\r\n.\r\n", "\r\r\n", SMTP_DATA_BARE_CR);
	DATA_OK("a\r\r\r\n.\r\n", "a\r\r\r\n", SMTP_DATA_BARE_CR);
	DATA_OK("a\n\n\r\n.\r\n", "a\n\n\r\n", SMTP_DATA_BARE_LF);
	/* LF CR is not a line end either */
	DATA_OK("a\n\rb\r\n.\r\n", "a\n\rb\r\n",
	    SMTP_DATA_BARE_LF | SMTP_DATA_BARE_CR);
	/* after a bare LF no line starts: the dot stays */
	DATA_OK("a\n..\r\n.\r\n", "a\n..\r\n", SMTP_DATA_BARE_LF);
	/* line-start dot then bare LF: dot is stuffing, LF passes */
	DATA_OK(".\nx\r\n.\r\n", "\nx\r\n", SMTP_DATA_BARE_LF);
	/* ".\r" then not LF at a line start: dot dropped, CR kept */
	DATA_OK(".\rx\r\n.\r\n", "\rx\r\n", SMTP_DATA_BARE_CR);
	DATA_OK(".\r\r\n.\r\n", "\r\r\n", SMTP_DATA_BARE_CR);
	DATA_OK(".\r.\r.\r\n.\r\n", "\r.\r.\r\n", SMTP_DATA_BARE_CR);
	DATA_OK("\r\n.\rA\r\n.\rB\r\n.\r\n", "\r\n\rA\r\n\rB\r\n",
	    SMTP_DATA_BARE_CR);
	DATA_OK(".\r.\r\n.\r\n", "\r.\r\n", SMTP_DATA_BARE_CR);
	DATA_OK(".\r\n", "", 0);
	/* the held byte of ".\r" + x comes out when a call has no room */
	DATA_OK(".\rxyz\r\n..\r\n.\r\n", "\rxyz\r\n.\r\n", SMTP_DATA_BARE_CR);
	check_decode(L(".\rx"), true, L("\rx"), 3, false, SMTP_DATA_BARE_CR);
	check_decode(L("a\r"), true, L("a\r"), 2, false, 0);
	check_decode(L("a\rb"), true, L("a\rb"), 3, false,
	    SMTP_DATA_BARE_CR);
}

static void
test_nul(void)
{
	DATA_OK("a\0b\r\n.\r\n", "a\0b\r\n", SMTP_DATA_NUL);
	DATA_OK("\0\r\n.\r\n", "\0\r\n", SMTP_DATA_NUL);
	DATA_OK(".\0\r\n.\r\n", "\0\r\n", SMTP_DATA_NUL);
	/* a NUL before the dot: that line is not the end */
	DATA_OK("\0.\r\n.\r\n", "\0.\r\n", SMTP_DATA_NUL);
	check_decode(L("a\0b"), false, L("a\0b"), 3, false, SMTP_DATA_NUL);
}

/* A line of n 'a's then CRLF, in DATA after prefix p, then the end. */
static void
check_line_len(const char *prefix, size_t n, bool dot, unsigned exp_flaws)
{
	size_t plen = strlen(prefix), len = plen + n + 2, elen;
	char *in = malloc(len + 3), *exp = malloc(len + 3);
	struct run r;

	memcpy(in, prefix, plen);
	memset(in + plen, 'a', n);
	memcpy(in + plen + n, "\r\n.\r\n", 5);
	elen = len;
	if (dot) {
		len += 3;
		/* a stuffing dot is dropped and not counted */
		if (plen > 0 && prefix[0] == '.') {
			memcpy(exp, in + 1, elen - 1);
			elen--;
		} else
			memcpy(exp, in, elen);
	} else
		memcpy(exp, in, elen);

	/* every split of a long line is too slow to try: whole, bytes */
	{
		size_t *cuts = malloc(len * sizeof(*cuts)), i;
		struct run b;

		for (i = 0; i + 1 < len; i++)
			cuts[i] = i + 1;
		run_cuts(in, len, dot, NULL, 0, &r);
		run_cuts(in, len, dot, cuts, len - 1, &b);
		CHECK(run_eq(&r, &b));
		for (i = 1; i < len; i += 97) {
			free(b.out);
			cuts[0] = i;
			run_cuts(in, len, dot, cuts, 1, &b);
			CHECK(run_eq(&r, &b));
		}
		free(b.out);
		free(cuts);
	}
	CHECK(r.out_len == elen && memcmp(r.out, exp, elen) == 0);
	CHECK(r.done == dot);
	CHECK(r.flaws == exp_flaws);
	free(r.out);
	free(in);
	free(exp);
}

static void
test_line_length(void)
{
	/* 998 octets + CRLF = 1000 = SMTP_TEXT_LINE_MAX: allowed */
	check_line_len("", 998, true, 0);
	check_line_len("", 999, true, SMTP_DATA_LONG_LINE);
	check_line_len("", 998, false, 0);
	check_line_len("", 999, false, SMTP_DATA_LONG_LINE);
	/* a later line */
	check_line_len("x\r\n", 998, true, 0);
	check_line_len("x\r\n", 999, true, SMTP_DATA_LONG_LINE);
	/* the stuffing dot does not count (4.5.3.1.6) */
	check_line_len(".", 998, true, 0);
	check_line_len(".", 999, true, SMTP_DATA_LONG_LINE);
	/* a bare CR does not end a line */
	check_line_len("\r", 997, true, SMTP_DATA_BARE_CR);
	check_line_len("\r", 998, true, SMTP_DATA_BARE_CR |
	    SMTP_DATA_LONG_LINE);
	/* 100 kB in one line: flagged, decoded unchanged, no buffering */
	check_line_len("", 100000, true, SMTP_DATA_LONG_LINE);
	check_line_len("", 100000, false, SMTP_DATA_LONG_LINE);
}

static void
test_line_max_param(void)
{
	struct smtp_data_decoder d;
	char out[16];
	size_t olen;
	bool done;

	smtp_data_decoder_init(&d, true, 4);
	smtp_data_decode(&d, L("ab\r\n.\r\n"), out, &olen, &done);
	CHECK(done && smtp_data_flaws(&d) == 0);
	smtp_data_decoder_init(&d, true, 4);
	smtp_data_decode(&d, L("abc\r\n.\r\n"), out, &olen, &done);
	CHECK(done && smtp_data_flaws(&d) == SMTP_DATA_LONG_LINE);
}

static void
test_bdat(void)
{
	struct smtp_data_decoder d;
	char out[16];
	size_t n, olen;
	bool done;

	/* unchanged, dots and all; never done */
	check_decode(L("..x\r\n.\r\n"), false, L("..x\r\n.\r\n"), 8, false, 0);
	check_decode(L("a\r\nb"), false, L("a\r\nb"), 4, false, 0);
	check_decode(L("a\nb"), false, L("a\nb"), 3, false, SMTP_DATA_BARE_LF);
	check_decode(L("a\rb"), false, L("a\rb"), 3, false, SMTP_DATA_BARE_CR);
	/* a CR that ends the LAST chunk is bare (finish) */
	check_decode(L("a\r"), false, L("a\r"), 2, false, SMTP_DATA_BARE_CR);
	check_decode(L("\r\n\r\n"), false, L("\r\n\r\n"), 4, false, 0);

	/* CR at the end of one chunk, LF at the start of the next */
	smtp_data_decoder_init(&d, false, SMTP_TEXT_LINE_MAX);
	n = smtp_data_decode(&d, L("a\r"), out, &olen, &done);
	CHECK(n == 2 && olen == 2 && !done && d.pending_cr);
	n = smtp_data_decode(&d, L("\nb"), out, &olen, &done);
	CHECK(n == 2 && olen == 2 && !done && !d.pending_cr);
	CHECK(memcmp(out, "\nb", 2) == 0);
	smtp_data_finish(&d);
	CHECK(smtp_data_flaws(&d) == 0);
	CHECK(d.out_total == 4);

	/* and a CR ending a chunk followed by something else */
	smtp_data_decoder_init(&d, false, SMTP_TEXT_LINE_MAX);
	smtp_data_decode(&d, L("a\r"), out, &olen, &done);
	CHECK(smtp_data_flaws(&d) == 0);
	smtp_data_decode(&d, L("b"), out, &olen, &done);
	CHECK(smtp_data_flaws(&d) == SMTP_DATA_BARE_CR);

	/* a chunk of length zero */
	smtp_data_decoder_init(&d, false, SMTP_TEXT_LINE_MAX);
	n = smtp_data_decode(&d, "", 0, out, &olen, &done);
	CHECK(n == 0 && olen == 0 && !done);
}

static void
test_flaw_reply(void)
{
	CHECK(smtp_data_flaw_reply(0) == NULL);
	CHECK_STR(smtp_data_flaw_reply(SMTP_DATA_BARE_LF),
	    "550 5.5.2 Message contains a bare CR or LF (SMTP requires CRLF)");
	CHECK_STR(smtp_data_flaw_reply(SMTP_DATA_BARE_CR),
	    "550 5.5.2 Message contains a bare CR or LF (SMTP requires CRLF)");
	CHECK_STR(smtp_data_flaw_reply(SMTP_DATA_LONG_LINE),
	    "550 5.6.0 Message has a line longer than 998 characters");
	CHECK_STR(smtp_data_flaw_reply(SMTP_DATA_NUL),
	    "550 5.6.0 Message contains a NUL byte");
	/* the bare newline wins */
	CHECK_REPLY(smtp_data_flaw_reply(SMTP_DATA_NUL | SMTP_DATA_BARE_LF |
	    SMTP_DATA_LONG_LINE), "550 5.5.2");
	CHECK_REPLY(smtp_data_flaw_reply(SMTP_DATA_BARE_CR |
	    SMTP_DATA_LONG_LINE), "550 5.5.2");
	CHECK_REPLY(smtp_data_flaw_reply(SMTP_DATA_NUL | SMTP_DATA_LONG_LINE),
	    "550 5.6.0");
}

/*
 * A reference decoder written the obvious, non-streaming way: split the
 * input into lines at CR LF only, and look at each line whole.
 */
static void
ref_decode(const char *in, size_t len, bool dot, size_t line_max,
    struct run *r)
{
	size_t pos = 0, j, k, start, n;
	bool crlf;

	memset(r, 0, sizeof(*r));
	r->out = malloc(len + 1);
	while (pos < len) {
		for (j = pos; j + 1 < len &&
		    !(in[j] == '\r' && in[j + 1] == '\n'); j++)
			;
		crlf = j + 1 < len;
		if (!crlf)
			j = len;
		if (dot && crlf && j - pos == 1 && in[pos] == '.') {
			r->consumed = j + 2;
			r->done = true;
			break;
		}
		start = pos;
		if (dot && j > pos && in[pos] == '.')
			start++;
		/* an unfinished ".\r" at the end: the CR is not out yet */
		n = j - start;
		if (dot && !crlf && start > pos && n == 1 && in[start] == '\r')
			n = 0;
		/* no CR LF inside a line: any CR or LF in it is bare */
		for (k = start; k < start + n; k++) {
			if (in[k] == '\n')
				r->flaws |= SMTP_DATA_BARE_LF;
			else if (in[k] == '\0')
				r->flaws |= SMTP_DATA_NUL;
			/* a DATA CR last in the input may still get its LF;
			 * BDAT runs end with finish, which flags it */
			else if (in[k] == '\r' && (k + 1 < len || !dot))
				r->flaws |= SMTP_DATA_BARE_CR;
		}
		memcpy(r->out + r->out_len, in + start, n);
		r->out_len += n;
		if (crlf) {
			memcpy(r->out + r->out_len, "\r\n", 2);
			r->out_len += 2;
			n += 2;
		}
		if (n > line_max)
			r->flaws |= SMTP_DATA_LONG_LINE;
		pos = crlf ? j + 2 : len;
	}
	if (!r->done)
		r->consumed = len;
}

/*
 * Random inputs over the bytes that matter, each compared with the
 * reference and decoded in random cuts.
 */
static void
test_random_vs_reference(void)
{
	static const char alphabet[] = "\r\n.a\0";
	char in[64];
	struct run a, b, ref;
	size_t cuts[4], len, i, k, bad = 0;
	unsigned seed = 12345, round;
	bool dot;

	/* short, so that long lines happen in short inputs too */
	test_line_max = 8;
	for (round = 0; round < 200000; round++) {
		seed = seed * 1103515245 + 12345;
		len = (seed >> 16) % sizeof(in);
		for (i = 0; i < len; i++) {
			seed = seed * 1103515245 + 12345;
			in[i] = alphabet[(seed >> 16) % 5];
		}
		dot = round % 4 != 0;
		for (k = 0; k < 3; k++) {
			seed = seed * 1103515245 + 12345;
			cuts[k] = len ? (seed >> 16) % (len + 1) : 0;
		}
		/* ascending */
		for (k = 0; k < 2; k++)
			for (i = 0; i + 1 < 3; i++)
				if (cuts[i] > cuts[i + 1]) {
					size_t t = cuts[i];
					cuts[i] = cuts[i + 1];
					cuts[i + 1] = t;
				}
		run_cuts(in, len, dot, NULL, 0, &a);
		run_cuts(in, len, dot, cuts, 3, &b);
		ref_decode(in, len, dot, test_line_max, &ref);
		if (!run_eq(&a, &b) || !run_eq(&a, &ref)) {
			if (bad++ < 5) {
				fprintf(stderr, "random case %u (dot %d):",
				    round, dot);
				for (i = 0; i < len; i++)
					fprintf(stderr, " %02x",
					    (unsigned char)in[i]);
				fprintf(stderr, "\n");
			}
		}
		free(a.out);
		free(b.out);
		free(ref.out);
	}
	test_line_max = SMTP_TEXT_LINE_MAX;
	CHECK(bad == 0);
}

int
main(void)
{
	UNIT_RUN(test_simple);
	UNIT_RUN(test_empty_message);
	UNIT_RUN(test_dot_stuffing);
	UNIT_RUN(test_pipelined_after_end);
	UNIT_RUN(test_after_done);
	UNIT_RUN(test_smuggling);
	UNIT_RUN(test_bare_newlines);
	UNIT_RUN(test_nul);
	UNIT_RUN(test_line_length);
	UNIT_RUN(test_line_max_param);
	UNIT_RUN(test_bdat);
	UNIT_RUN(test_flaw_reply);
	UNIT_RUN(test_random_vs_reference);
	return unit_finish();
}
