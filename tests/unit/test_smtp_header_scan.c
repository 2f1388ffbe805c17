/*
 * Tests for the header-section scanner (RFC 5322 2.1, 2.2; RFC 6409 8.2,
 * 8.3): golden messages fed whole, byte by byte and in every split, through
 * a simulated spool writer that inserts the additions where told.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "smtp/smtp_header_scan.h"
#include "unit.h"

#define NONE	((size_t)-1)
#define ID	"id1"
#define HOST	"h.example"
#define DATE	"Mon, 01 Jan 2024 00:00:00 +0000"
#define MID	"Message-ID: <" ID "@" HOST ">\r\n"
#define DT	"Date: " DATE "\r\n"

/* What one run of a message through the scanner and the writer gave. */
struct run {
	bool by_feed;		/* ended during the feeds */
	bool ended;		/* ended, after finish */
	bool on_empty;
	bool mid, date;
	size_t end;		/* insertion point from the message start */
	char *out;		/* the file the writer produced */
	size_t out_len;
	int violations;		/* contract breaches seen by the writer */
};

static void
out_put(struct run *r, const char *p, size_t n)
{
	r->out = realloc(r->out, r->out_len + n + 1);
	if (r->out == NULL)
		abort();
	memcpy(r->out + r->out_len, p, n);
	r->out_len += n;
}

static void
out_additions(struct run *r, const struct smtp_header_scan *hs, bool lead,
    bool sep)
{
	char add[256];
	size_t n;

	n = smtp_header_scan_additions(hs, ID, HOST, DATE, lead, sep, add,
	    sizeof(add));
	if (n == NONE || n > SMTP_HEADER_ADDITIONS_MAX(strlen(ID),
	    strlen(HOST), strlen(DATE)) || add[n] != '\0')
		r->violations++;
	else
		out_put(r, add, n);
}

/*
 * The caller that the header's "Split lines" section describes: it writes
 * all it was fed but the last pending_line_len bytes, so when the end is
 * reported the insertion point must lie within the bytes it held back.
 * Pieces are in[cuts[k-1]..cuts[k]), with cuts[-1] = 0, cuts[ncuts] = len.
 */
static void
run_pieces(const char *in, size_t len, const size_t *cuts, size_t ncuts,
    struct run *r)
{
	struct smtp_header_scan hs, before;
	size_t k, a, b, off, held = 0, ins;
	bool empty;

	memset(r, 0, sizeof(*r));
	r->end = NONE;
	smtp_header_scan_init(&hs);
	for (k = 0; k <= ncuts; k++) {
		a = k == 0 ? 0 : cuts[k - 1];
		b = k == ncuts ? len : cuts[k];
		if (hs.ended) {
			before = hs;
			if (smtp_header_scan_feed(&hs, in + a, b - a, &empty) !=
			    NONE || memcmp(&before, &hs, sizeof(hs)) != 0)
				r->violations++;
			out_put(r, in + a, b - a);
			continue;
		}
		empty = !hs.ended_on_empty;	/* must be overwritten */
		off = smtp_header_scan_feed(&hs, in + a, b - a, &empty);
		if (hs.pending_line_len >= SMTP_HEADER_LINE_MAX)
			r->violations++;
		if (off == NONE) {
			if (hs.ended || hs.pending_line_len > held + (b - a))
				r->violations++;
			if (hs.pending_line_len > held + (b - a))
				continue;
			out_put(r, in + a - held, held + (b - a) -
			    hs.pending_line_len);
			held = hs.pending_line_len;
			continue;
		}
		r->by_feed = true;
		if (!hs.ended || off >= b - a || empty != hs.ended_on_empty ||
		    hs.ended_in_previous_piece != (hs.pending_line_len > 0) ||
		    (hs.ended_in_previous_piece && off != 0) ||
		    (hs.pending_line_len != 0 && hs.pending_line_len != held)) {
			r->violations++;
			continue;
		}
		ins = a + off - hs.pending_line_len;
		out_put(r, in + a - held, ins - (a - held));
		out_additions(r, &hs, false, !hs.ended_on_empty);
		out_put(r, in + ins, b - ins);
		held = 0;
		r->end = ins;
	}
	if (!hs.ended) {
		smtp_header_scan_finish(&hs);
		if (hs.ended) {
			if (hs.pending_line_len != held ||
			    hs.pending_line_len == 0 ||
			    !hs.ended_in_previous_piece || hs.ended_on_empty)
				r->violations++;
			else {
				ins = len - hs.pending_line_len;
				out_put(r, in + len - held, held -
				    hs.pending_line_len);
				out_additions(r, &hs, false, true);
				out_put(r, in + ins, len - ins);
				r->end = ins;
			}
		} else {
			/* nothing may be left held: the line was judged */
			if (held != 0 || hs.pending_line_len != 0)
				r->violations++;
			out_put(r, in + len - held, held);
			out_additions(r, &hs, !hs.at_line_start, false);
		}
	} else {
		before = hs;
		smtp_header_scan_finish(&hs);
		if (memcmp(&before, &hs, sizeof(hs)) != 0)
			r->violations++;
	}
	r->ended = hs.ended;
	r->on_empty = hs.ended_on_empty;
	r->mid = hs.has_message_id;
	r->date = hs.has_date;
	if (r->out == NULL)
		out_put(r, "", 0);
}

struct expect {
	bool by_feed, ended, on_empty, mid, date;
	size_t end;
	const char *out;
	size_t out_len;
};

static int
run_matches(const struct run *r, const struct expect *e)
{
	return r->violations == 0 && r->by_feed == e->by_feed &&
	    r->ended == e->ended && r->on_empty == e->on_empty &&
	    r->mid == e->mid && r->date == e->date && r->end == e->end &&
	    r->out_len == e->out_len &&
	    memcmp(r->out, e->out, e->out_len) == 0;
}

static int
check_cuts(const char *in, size_t len, const size_t *cuts, size_t ncuts,
    const struct expect *e)
{
	struct run r;
	int ok;

	run_pieces(in, len, cuts, ncuts, &r);
	ok = run_matches(&r, e);
	if (!ok) {
		fprintf(stderr, "  split into %zu pieces at", ncuts + 1);
		for (size_t k = 0; k < ncuts; k++)
			fprintf(stderr, " %zu", cuts[k]);
		fprintf(stderr, ": violations=%d by_feed=%d ended=%d "
		    "empty=%d mid=%d date=%d end=%zd out_len=%zu\n",
		    r.violations, r.by_feed, r.ended, r.on_empty, r.mid,
		    r.date, (ssize_t)r.end, r.out_len);
	}
	free(r.out);
	return ok;
}

/*
 * One feed, byte by byte (with an empty piece between bytes), every split
 * in two, and every split in three for short inputs; every run must give
 * exactly the expected result and output.
 */
static void
check_all_splits(const char *in, size_t len, const struct expect *e)
{
	size_t *cuts, i, j, bad = 0;

	cuts = calloc(2 * len + 2, sizeof(*cuts));
	if (cuts == NULL)
		abort();
	bad += !check_cuts(in, len, NULL, 0, e);
	for (i = 0; i < len; i++) {
		cuts[2 * i] = i;
		cuts[2 * i + 1] = i + 1;
	}
	if (len > 0)
		bad += !check_cuts(in, len, cuts, 2 * len - 1, e);
	for (i = 0; i <= len && bad < 3; i++) {
		cuts[0] = i;
		bad += !check_cuts(in, len, cuts, 1, e);
	}
	for (i = 0; len <= 200 && i <= len && bad < 3; i++) {
		for (j = i; j <= len && bad < 3; j++) {
			cuts[0] = i;
			cuts[1] = j;
			bad += !check_cuts(in, len, cuts, 2, e);
		}
	}
	free(cuts);
	CHECK(bad == 0);
}

/*
 * A golden case: the message is head then tail, the insertion point is
 * between them (or, when !ended, at the end), out is the whole result.
 */
struct golden {
	const char *name;
	const char *head, *tail;
	bool by_feed, ended, on_empty, mid, date;
	const char *out;
};

#define ADD	MID DT
static const struct golden goldens[] = {
	{ "headers and body", "Subject: hi\r\nFrom: a@b\r\n", "\r\nbody\r\n",
	    1, 1, 1, 0, 0,
	    "Subject: hi\r\nFrom: a@b\r\n" ADD "\r\nbody\r\n" },
	{ "no body, no separator", "Subject: hi\r\n", "", 0, 0, 0, 0, 0,
	    "Subject: hi\r\n" ADD },
	{ "no body, separator", "Subject: hi\r\n", "\r\n", 1, 1, 1, 0, 0,
	    "Subject: hi\r\n" ADD "\r\n" },
	{ "no headers: text", "", "Hello there\r\nDate: x\r\n", 1, 1, 0, 0, 0,
	    ADD "\r\nHello there\r\nDate: x\r\n" },
	{ "no headers: empty line first", "", "\r\nbody\r\n", 1, 1, 1, 0, 0,
	    ADD "\r\nbody\r\n" },
	{ "empty message", "", "", 0, 0, 0, 0, 0, ADD },
	{ "LF only message", "", "\n", 1, 1, 1, 0, 0, ADD "\n" },
	{ "first line a continuation (SP)", "",
	    " folded\r\nSubject: x\r\n\r\n", 1, 1, 0, 0, 0,
	    ADD "\r\n folded\r\nSubject: x\r\n\r\n" },
	{ "first line a continuation (HTAB)", "", "\tMessage-ID: <a@b>\r\n",
	    1, 1, 0, 0, 0, ADD "\r\n\tMessage-ID: <a@b>\r\n" },
	{ "message-id: lower case", "message-id: <a@b>\r\nSubject: x\r\n",
	    "\r\nbody\r\n", 1, 1, 1, 1, 0,
	    "message-id: <a@b>\r\nSubject: x\r\n" DT "\r\nbody\r\n" },
	{ "MESSAGE-ID : is not a field", "Subject: x\r\n",
	    "MESSAGE-ID : <a@b>\r\nDate: d\r\n\r\n", 1, 1, 0, 0, 0,
	    "Subject: x\r\n" ADD "\r\nMESSAGE-ID : <a@b>\r\nDate: d\r\n\r\n" },
	{ "both present: unchanged",
	    "Date: Tue, 2 Jan 2024 00:00:00 +0000\r\nMessage-Id: <x@y>\r\n",
	    "\r\nbody\r\n", 1, 1, 1, 1, 1,
	    "Date: Tue, 2 Jan 2024 00:00:00 +0000\r\nMessage-Id: <x@y>\r\n"
	    "\r\nbody\r\n" },
	{ "both present, no separator: unchanged", "DATE: d\r\nMESSAGE-ID: m\r\n",
	    "body text\r\n", 1, 1, 0, 1, 1,
	    "DATE: d\r\nMESSAGE-ID: m\r\nbody text\r\n" },
	{ "folded Message-ID",
	    "Subject: x\r\nMessage-ID:\r\n <long@id>\r\n\t(comment)\r\n",
	    "\r\nbody\r\n", 1, 1, 1, 1, 0,
	    "Subject: x\r\nMessage-ID:\r\n <long@id>\r\n\t(comment)\r\n" DT
	    "\r\nbody\r\n" },
	{ "folded Date", "Date:\r\n\tMon, 1 Jan 2024\r\n  00:00 +0000\r\n",
	    "\r\n", 1, 1, 1, 0, 1,
	    "Date:\r\n\tMon, 1 Jan 2024\r\n  00:00 +0000\r\n" MID "\r\n" },
	{ "Date: in the body is not counted", "Subject: x\r\n",
	    "\r\nDate: Mon\r\nMessage-ID: <a@b>\r\n", 1, 1, 1, 0, 0,
	    "Subject: x\r\n" ADD "\r\nDate: Mon\r\nMessage-ID: <a@b>\r\n" },
	{ "LF-only line ends", "Subject: x\nDate: y\n", "\nbody\n",
	    1, 1, 1, 0, 1, "Subject: x\nDate: y\n" MID "\nbody\n" },
	{ "mixed line ends", "A: 1\nB: 2\r\n", "\nbody\n", 1, 1, 1, 0, 0,
	    "A: 1\nB: 2\r\n" ADD "\nbody\n" },
	{ "CR without LF in a value", "Subject: a\rb\r\nX: \r\r\n",
	    "\r\nbody\r\n", 1, 1, 1, 0, 0,
	    "Subject: a\rb\r\nX: \r\r\n" ADD "\r\nbody\r\n" },
	{ "lone CR at a line start", "Subject: x\r\n", "\rbody\r\n",
	    1, 1, 0, 0, 0, "Subject: x\r\n" ADD "\r\n\rbody\r\n" },
	{ "CR CR LF at a line start", "Subject: x\r\n", "\r\r\n\r\n",
	    1, 1, 0, 0, 0, "Subject: x\r\n" ADD "\r\n\r\r\n\r\n" },
	{ "name of 32 bytes, then Message-ID",
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345: v\r\nMessage-ID: <a@b>\r\n",
	    "\r\n", 1, 1, 1, 1, 0,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345: v\r\nMessage-ID: <a@b>\r\n" DT
	    "\r\n" },
	{ "name of 33 bytes is a field",
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456: v\r\nDate: d\r\n", "\r\n",
	    1, 1, 1, 0, 1,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456: v\r\nDate: d\r\n" MID "\r\n" },
	{ "Message-ID padded to 33 bytes never matches",
	    "Message-IDXXXXXXXXXXXXXXXXXXXXXXX: v\r\n"
	    "Message-IDXXXXXXXXXXXXXXXXXXXXXX: v\r\n", "\r\n", 1, 1, 1, 0, 0,
	    "Message-IDXXXXXXXXXXXXXXXXXXXXXXX: v\r\n"
	    "Message-IDXXXXXXXXXXXXXXXXXXXXXX: v\r\n" ADD "\r\n" },
	{ "near names", "Message-I: a\r\nMessage-IDs: b\r\nDat: c\r\n"
	    "Dates: d\r\nXDate: e\r\n", "\r\n", 1, 1, 1, 0, 0,
	    "Message-I: a\r\nMessage-IDs: b\r\nDat: c\r\nDates: d\r\n"
	    "XDate: e\r\n" ADD "\r\n" },
	{ "name without colon", "Subject: x\r\n", "Message-ID\r\n\r\n",
	    1, 1, 0, 0, 0, "Subject: x\r\n" ADD "\r\nMessage-ID\r\n\r\n" },
	{ "colon at a line start", "Subject: x\r\n", ": v\r\n\r\n",
	    1, 1, 0, 0, 0, "Subject: x\r\n" ADD "\r\n: v\r\n\r\n" },
	{ "8-bit at a line start", "Subject: x\r\n", "\xc3\xa9t\xc3\xa9: x\r\n",
	    1, 1, 0, 0, 0, "Subject: x\r\n" ADD "\r\n\xc3\xa9t\xc3\xa9: x\r\n" },
	{ "8-bit in a name", "Subject: x\r\n", "Sub\xffject: x\r\n",
	    1, 1, 0, 0, 0, "Subject: x\r\n" ADD "\r\nSub\xffject: x\r\n" },
	{ "control byte in a name", "Subject: x\r\n", "Sub\x01ject: x\r\n",
	    1, 1, 0, 0, 0, "Subject: x\r\n" ADD "\r\nSub\x01ject: x\r\n" },
	{ "DEL in a name", "A: 1\r\n", "B\x7f: 2\r\n", 1, 1, 0, 0, 0,
	    "A: 1\r\n" ADD "\r\nB\x7f: 2\r\n" },
	{ "8-bit in a value is fine", "Subject: \xc3\xa9\r\n", "\r\n",
	    1, 1, 1, 0, 0, "Subject: \xc3\xa9\r\n" ADD "\r\n" },
	{ "message ends inside a name", "Subject: x\r\n", "Foo",
	    0, 1, 0, 0, 0, "Subject: x\r\n" ADD "\r\nFoo" },
	{ "message is a name only", "", "Foo", 0, 1, 0, 0, 0,
	    ADD "\r\nFoo" },
	{ "message ends inside a value", "Subject: x", "", 0, 0, 0, 0, 0,
	    "Subject: x\r\n" ADD },
	{ "message ends after a colon", "Message-ID:", "", 0, 0, 0, 1, 0,
	    "Message-ID:\r\n" DT },
	{ "message ends on a lone CR", "Subject: x\r\n", "\r",
	    0, 1, 0, 0, 0, "Subject: x\r\n" ADD "\r\n\r" },
	{ "message ends on CR in a value", "Date: x\r", "", 0, 0, 0, 0, 1,
	    "Date: x\r\r\n" MID },
};

static void
golden_expect(const struct golden *g, struct expect *e)
{
	e->by_feed = g->by_feed;
	e->ended = g->ended;
	e->on_empty = g->on_empty;
	e->mid = g->mid;
	e->date = g->date;
	e->end = g->ended ? strlen(g->head) : NONE;
	e->out = g->out;
	e->out_len = strlen(g->out);
}

static void
test_goldens(void)
{
	struct expect e;
	char *in;
	size_t i, hl, tl;
	int before;

	for (i = 0; i < sizeof(goldens) / sizeof(goldens[0]); i++) {
		hl = strlen(goldens[i].head);
		tl = strlen(goldens[i].tail);
		in = malloc(hl + tl + 1);
		if (in == NULL)
			abort();
		memcpy(in, goldens[i].head, hl);
		memcpy(in + hl, goldens[i].tail, tl);
		golden_expect(&goldens[i], &e);
		before = unit_checks_failed_in_test;
		check_all_splits(in, hl + tl, &e);
		if (unit_checks_failed_in_test != before)
			fprintf(stderr, "  in golden \"%s\"\n",
			    goldens[i].name);
		free(in);
	}
}

/* The raw return values and flags, one piece. */
static void
test_feed_api(void)
{
	struct smtp_header_scan hs;
	const char *m = "Subject: a\r\n\r\nbody";
	bool empty = false;

	smtp_header_scan_init(&hs);
	CHECK(hs.at_line_start && !hs.ended && hs.pending_line_len == 0);
	CHECK(smtp_header_scan_feed(&hs, m, strlen(m), &empty) == 12);
	CHECK(empty && hs.ended && hs.ended_on_empty);
	CHECK(!hs.ended_in_previous_piece && hs.pending_line_len == 0);
	CHECK(smtp_header_scan_feed(&hs, "\r\n", 2, &empty) == NONE);

	smtp_header_scan_init(&hs);
	CHECK(smtp_header_scan_feed(&hs, "", 0, NULL) == NONE);
	CHECK(smtp_header_scan_feed(&hs, "Subj", 4, NULL) == NONE);
	CHECK(hs.pending_line_len == 4 && !hs.at_line_start);
	CHECK(smtp_header_scan_feed(&hs, "ect", 3, NULL) == NONE);
	CHECK(hs.pending_line_len == 7);
	CHECK(smtp_header_scan_feed(&hs, ": x\r", 4, NULL) == NONE);
	CHECK(hs.pending_line_len == 0 && !hs.at_line_start);
	CHECK(smtp_header_scan_feed(&hs, "\n", 1, NULL) == NONE);
	CHECK(hs.at_line_start);
	CHECK(smtp_header_scan_feed(&hs, "Not", 3, NULL) == NONE);
	CHECK(hs.pending_line_len == 3);
	/* judged in this piece, started 3 bytes back: 0, 3 back */
	empty = true;
	CHECK(smtp_header_scan_feed(&hs, " a field\r\n", 10, &empty) == 0);
	CHECK(!empty && hs.ended && hs.ended_in_previous_piece);
	CHECK(hs.pending_line_len == 3);

	/* CR in one piece, LF in the next: the empty line began 1 back */
	smtp_header_scan_init(&hs);
	CHECK(smtp_header_scan_feed(&hs, "A: b\r\n\r", 7, NULL) == NONE);
	CHECK(hs.pending_line_len == 1);
	CHECK(smtp_header_scan_feed(&hs, "\nbody", 5, &empty) == 0);
	CHECK(empty && hs.ended_in_previous_piece && hs.pending_line_len == 1);

	/* the line started exactly at this piece's start: not "previous" */
	smtp_header_scan_init(&hs);
	CHECK(smtp_header_scan_feed(&hs, "A: b\r\n", 6, NULL) == NONE);
	CHECK(smtp_header_scan_feed(&hs, "x y\r\n", 5, &empty) == 0);
	CHECK(!empty && !hs.ended_in_previous_piece);
	CHECK(hs.pending_line_len == 0);

	/* finish on a pending name */
	smtp_header_scan_init(&hs);
	CHECK(smtp_header_scan_feed(&hs, "A: b\r\nFo", 8, NULL) == NONE);
	smtp_header_scan_finish(&hs);
	CHECK(hs.ended && !hs.ended_on_empty && hs.ended_in_previous_piece);
	CHECK(hs.pending_line_len == 2);

	/* finish inside a value changes nothing */
	smtp_header_scan_init(&hs);
	CHECK(smtp_header_scan_feed(&hs, "A: b", 4, NULL) == NONE);
	smtp_header_scan_finish(&hs);
	CHECK(!hs.ended && !hs.at_line_start && hs.pending_line_len == 0);
}

/* A NUL cannot sit in the golden table's strings. */
static void
test_nul_byte(void)
{
	static const char in[] = "A: 1\r\nB\0: 2\r\n";
	static const char out[] = "A: 1\r\n" ADD "\r\nB\0: 2\r\n";
	static const char in2[] = "A: \0\r\n\r\n";
	static const char out2[] = "A: \0\r\n" ADD "\r\n";
	struct expect e = { 1, 1, 0, 0, 0, 6, out, sizeof(out) - 1 };
	struct expect e2 = { 1, 1, 1, 0, 0, 6, out2, sizeof(out2) - 1 };

	check_all_splits(in, sizeof(in) - 1, &e);
	check_all_splits(in2, sizeof(in2) - 1, &e2);
}

/* RFC 5322 2.1.1: a name part that can no longer fit in 998 characters. */
static void
test_line_limit(void)
{
	size_t n = SMTP_HEADER_LINE_MAX, len, i;
	char *in, *out;
	struct expect e;

	/* 997 name bytes then ':': a field (the line is 998 + CR LF) */
	in = malloc(2 * n + 64);
	out = malloc(2 * n + 256);
	if (in == NULL || out == NULL)
		abort();
	memset(in, 'N', n - 1);
	memcpy(in + n - 1, ": v\r\n\r\nbody", 11);
	len = n - 1 + 11;
	memcpy(out, in, n - 1 + 5);
	memcpy(out + n - 1 + 5, ADD "\r\nbody", strlen(ADD) + 6);
	e = (struct expect){ 1, 1, 1, 0, 0, n - 1 + 5, out,
	    n - 1 + 5 + strlen(ADD) + 6 };
	check_all_splits(in, len, &e);

	/* 998 name bytes: judged "not a field" at the 998th, no ':' needed */
	memcpy(in, "A: 1\r\n", 6);
	memset(in + 6, 'N', n);
	memcpy(in + 6 + n, ": v\r\n", 5);
	len = 6 + n + 5;
	memcpy(out, "A: 1\r\n" ADD "\r\n", 6 + strlen(ADD) + 2);
	memcpy(out + 6 + strlen(ADD) + 2, in + 6, n + 5);
	e = (struct expect){ 1, 1, 0, 0, 0, 6, out,
	    6 + strlen(ADD) + 2 + n + 5 };
	check_all_splits(in, len, &e);
	/* the bytes held back never reach the limit, whatever the split */
	for (i = 0; i <= len; i++) {
		struct smtp_header_scan hs;
		size_t off;

		smtp_header_scan_init(&hs);
		off = smtp_header_scan_feed(&hs, in, i, NULL);
		CHECK(hs.pending_line_len < SMTP_HEADER_LINE_MAX);
		if (off == NONE)
			off = smtp_header_scan_feed(&hs, in + i, len - i, NULL);
		CHECK(hs.ended && hs.pending_line_len < SMTP_HEADER_LINE_MAX);
	}
	free(in);
	free(out);
}

/* A 1 MB header section, fed whole, byte by byte and in many splits. */
static void
test_big_header(void)
{
	size_t cap = (1 << 20) + 4096, len = 0, head, i, step;
	size_t cuts[3];
	char *in, *out;
	struct expect e;
	int k = 0, bad = 0;

	in = malloc(cap);
	out = malloc(cap + 256);
	if (in == NULL || out == NULL)
		abort();
	while (len < (1 << 20)) {
		len += (size_t)snprintf(in + len, cap - len,
		    "X-Filler-%06d: %s\r\n", k, (k % 3) ? "short" :
		    "a longer value\r\n\tfolded onto a second line");
		if (k++ == 20000)
			len += (size_t)snprintf(in + len, cap - len,
			    "Message-ID:\r\n <folded@in.the.middle>\r\n");
	}
	head = len;
	len += (size_t)snprintf(in + len, cap - len, "\r\nDate: body\r\n");
	memcpy(out, in, head);
	memcpy(out + head, DT, strlen(DT));
	memcpy(out + head + strlen(DT), in + head, len - head);
	e = (struct expect){ 1, 1, 1, 1, 0, head, out,
	    len + strlen(DT) };
	CHECK(head >= (1 << 20));
	bad += !check_cuts(in, len, NULL, 0, &e);
	/* byte by byte, without building a million cuts: steps of 1 */
	{
		struct smtp_header_scan hs;
		size_t off = NONE;

		smtp_header_scan_init(&hs);
		for (i = 0; i < len && off == NONE; i++)
			off = smtp_header_scan_feed(&hs, in + i, 1, NULL);
		CHECK(off == 0 && i == head + 2 && hs.ended_on_empty);
		CHECK(hs.ended_in_previous_piece && hs.pending_line_len == 1);
		CHECK(hs.has_message_id && !hs.has_date);
	}
	/* two and three pieces at many points, near the end too */
	for (step = 1, i = 0; i <= len && bad < 3; i += step, step = step * 2
	    + 1 < 65521 ? step * 2 + 1 : 65521) {
		cuts[0] = i;
		bad += !check_cuts(in, len, cuts, 1, &e);
	}
	for (i = head - 40; i <= len; i++) {
		cuts[0] = i;
		bad += !check_cuts(in, len, cuts, 1, &e);
		cuts[0] = 4096;
		cuts[1] = i;
		bad += !check_cuts(in, len, cuts, 2, &e);
	}
	CHECK(bad == 0);
	free(in);
	free(out);
}

static void
test_additions(void)
{
	struct smtp_header_scan hs;
	char out[256], small[128];
	size_t n, want;

	smtp_header_scan_init(&hs);
	n = smtp_header_scan_additions(&hs, "q1.2", "mx.example.org",
	    "Tue, 02 Jan 2024 03:04:05 +0000", false, false, out,
	    sizeof(out));
	CHECK_STR(out, "Message-ID: <q1.2@mx.example.org>\r\n"
	    "Date: Tue, 02 Jan 2024 03:04:05 +0000\r\n");
	CHECK(n == strlen(out));
	n = smtp_header_scan_additions(&hs, ID, HOST, DATE, true, true, out,
	    sizeof(out));
	CHECK_STR(out, "\r\n" MID DT "\r\n");
	CHECK(n == strlen(out));
	CHECK(n == SMTP_HEADER_ADDITIONS_MAX(strlen(ID), strlen(HOST),
	    strlen(DATE)));

	hs.has_message_id = true;
	n = smtp_header_scan_additions(&hs, ID, HOST, DATE, false, true, out,
	    sizeof(out));
	CHECK_STR(out, DT "\r\n");
	CHECK(n == strlen(DT) + 2);
	hs.has_message_id = false;
	hs.has_date = true;
	n = smtp_header_scan_additions(&hs, ID, HOST, DATE, true, false, out,
	    sizeof(out));
	CHECK_STR(out, "\r\n" MID);
	CHECK(n == strlen(MID) + 2);

	/* nothing missing: nothing written, not even CR LF */
	hs.has_message_id = true;
	memset(out, 'x', sizeof(out));
	n = smtp_header_scan_additions(&hs, ID, HOST, DATE, true, true, out,
	    sizeof(out));
	CHECK(n == 0 && out[0] == '\0');
	CHECK(smtp_header_scan_additions(&hs, ID, HOST, DATE, true, true,
	    out, 0) == NONE);

	/* exactly big enough, one short */
	smtp_header_scan_init(&hs);
	want = strlen("\r\n" MID DT "\r\n");
	CHECK(want < sizeof(small));
	memset(small, 'x', sizeof(small));
	CHECK(smtp_header_scan_additions(&hs, ID, HOST, DATE, true, true,
	    small, want + 1) == want);
	CHECK(memcmp(small, "\r\n" MID DT "\r\n", want + 1) == 0);
	memset(small, 'x', sizeof(small));
	CHECK(smtp_header_scan_additions(&hs, ID, HOST, DATE, true, true,
	    small, want) == NONE);
	CHECK(small[0] == '\0' && small[want] == 'x');
	CHECK(smtp_header_scan_additions(&hs, ID, HOST, DATE, false, false,
	    small, 1) == NONE);

	/* values that would break the field or inject a line */
	CHECK(smtp_header_scan_additions(&hs, "a\r\nBcc: x", HOST, DATE,
	    false, false, out, sizeof(out)) == NONE);
	CHECK(smtp_header_scan_additions(&hs, ID, "h>\r\nX: y", DATE,
	    false, false, out, sizeof(out)) == NONE);
	CHECK(smtp_header_scan_additions(&hs, ID, HOST, "Mon\r\nBcc: x",
	    false, false, out, sizeof(out)) == NONE);
	CHECK(smtp_header_scan_additions(&hs, ID, HOST, "Mon\n", false,
	    false, out, sizeof(out)) == NONE);
	CHECK(smtp_header_scan_additions(&hs, ID, HOST, "\xc3\xa9", false,
	    false, out, sizeof(out)) == NONE);
	CHECK(smtp_header_scan_additions(&hs, "", HOST, DATE, false, false,
	    out, sizeof(out)) == NONE);
	CHECK(smtp_header_scan_additions(&hs, ID, "", DATE, false, false,
	    out, sizeof(out)) == NONE);
	CHECK(smtp_header_scan_additions(&hs, ID, HOST, "", false, false,
	    out, sizeof(out)) == NONE);
	CHECK(smtp_header_scan_additions(&hs, ".a", HOST, DATE, false, false,
	    out, sizeof(out)) == NONE);
	CHECK(smtp_header_scan_additions(&hs, "a.", HOST, DATE, false, false,
	    out, sizeof(out)) == NONE);
	CHECK(smtp_header_scan_additions(&hs, "a..b", HOST, DATE, false,
	    false, out, sizeof(out)) == NONE);
	CHECK(smtp_header_scan_additions(&hs, "a@b", HOST, DATE, false,
	    false, out, sizeof(out)) == NONE);
	CHECK(smtp_header_scan_additions(&hs, ID, "[127.0.0.1]", DATE, false,
	    false, out, sizeof(out)) == NONE);
	CHECK(smtp_header_scan_additions(&hs, "a b", HOST, DATE, false,
	    false, out, sizeof(out)) == NONE);
	/* every atext special is fine */
	n = smtp_header_scan_additions(&hs, "!#$%&'*+-/=?^_`{|}~.0", "a.b",
	    "x", false, false, out, sizeof(out));
	CHECK_STR(out, "Message-ID: <!#$%&'*+-/=?^_`{|}~.0@a.b>\r\n"
	    "Date: x\r\n");
	CHECK(n == strlen(out));
}

int
main(void)
{
	UNIT_RUN(test_feed_api);
	UNIT_RUN(test_goldens);
	UNIT_RUN(test_nul_byte);
	UNIT_RUN(test_line_limit);
	UNIT_RUN(test_big_header);
	UNIT_RUN(test_additions);
	return unit_finish();
}
