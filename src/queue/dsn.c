/*
 * Delivery status notifications: RFC 3464 sections 2 and 3 (the
 * delivery-status fields), RFC 6522 (multipart/report), RFC 3834
 * (Auto-Submitted) and RFC 6533 (global types, the utf-8 address type).
 */
#include "queue/dsn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"

#define DSN_LINE_MAX	998	/* RFC 5322 2.1.1, without the CR LF */
#define DSN_FOLD_WIDTH	78	/* RFC 5322 2.1.1 "SHOULD" */
#define DSN_TEXT_WIDTH	72	/* prose in the text/plain part */
#define DSN_SEED_MAX	40	/* encoded seed bytes in the boundary */
#define DSN_MSGID_SEED_MAX 64	/* encoded seed bytes in the Message-ID */
#define DSN_HOST_MAX	253	/* a DNS name */
#define DSN_DATE_MAX	253402300799ULL	/* 9999-12-31 23:59:59 UTC */

struct dsn_buf {
	char	*p;
	size_t	 len, cap;
};

static void
db_add(struct dsn_buf *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	if (b->cap - b->len < n + 1) {
		size_t cap = b->cap ? b->cap : 1024;

		while (cap - b->len < n + 1)
			cap *= 2;
		b->p = xreallocarray(b->p, cap, 1);
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
db_str(struct dsn_buf *b, const char *s)
{
	db_add(b, s, strlen(s));
}

static void db_printf(struct dsn_buf *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
db_printf(struct dsn_buf *b, const char *fmt, ...)
{
	va_list ap;
	char small[256], *big;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		db_add(b, small, (size_t)n);
		return;
	}
	big = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	db_add(b, big, (size_t)n);
	free(big);
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629 section 4:
 * no overlong forms, no surrogates, nothing above U+10FFFF), or 0. */
static size_t
dsn_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len, i;
	unsigned char lo = 0x80, hi = 0xBF;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if (n < len)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return len;
}

static bool
dsn_is_ascii(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return false;
	return true;
}

/*
 * A caller's value made safe for one header field or line: control bytes
 * become spaces, runs of spaces one space, no space at either end (so a
 * folded field never has a line of white space only). Non-ASCII is kept
 * only when utf8 is set and it is well-formed UTF-8, else it becomes '?'.
 */
static char *
dsn_clean(const char *s, bool utf8)
{
	const unsigned char *u = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)u), i = 0, k, o = 0;
	char *out = xmalloc(n + 1);
	bool space = false;

	while (i < n) {
		unsigned char c = u[i];

		if (c < 0x20 || c == 0x7F || c == ' ') {
			space = true;
			i++;
			continue;
		}
		if (space && o > 0)
			out[o++] = ' ';
		space = false;
		if (c < 0x80) {
			out[o++] = (char)c;
			i++;
		} else if (utf8 && (k = dsn_utf8_len(u + i, n - i)) > 0) {
			memcpy(out + o, u + i, k);
			o += k;
			i += k;
		} else {
			out[o++] = '?';
			i++;
		}
	}
	out[o] = '\0';
	return out;
}

/* The largest k <= avail that does not split a UTF-8 sequence of p. */
static size_t
dsn_utf8_cut(const char *p, size_t n, size_t avail)
{
	size_t k = avail;

	if (k >= n)
		return n;
	while (k > 0 && ((unsigned char)p[k] & 0xC0) == 0x80)
		k--;
	return k;
}

/*
 * Writes text (a dsn_clean()ed string: words separated by single spaces)
 * as lines of at most width bytes where the words allow, never more than
 * DSN_LINE_MAX. The first two words stay together (a field name and its
 * value's start); a word too long for any line is not moved to a line of
 * its own but continued where it is and cut at DSN_LINE_MAX. Continuation
 * lines start with indent; for a header field that is " ", the folding
 * white space of RFC 5322 3.2.2, so unfolding gives the text back (a cut
 * word gains a space). Ends with CR LF.
 */
static void
dsn_fold(struct dsn_buf *b, const char *text, size_t width,
    const char *indent)
{
	size_t col = 0, ilen = strlen(indent), n, k, words = 0;
	const char *p = text, *e;
	bool fold;

	while (*p != '\0') {
		e = strchr(p, ' ');
		n = e ? (size_t)(e - p) : strlen(p);
		if (words > 0) {
			fold = col + 1 + n > width && words > 1 &&
			    ilen + n <= width;
			if (fold || col + 1 + 16 > DSN_LINE_MAX) {
				db_add(b, "\r\n", 2);
				db_add(b, indent, ilen);
				col = ilen;
			} else {
				db_add(b, " ", 1);
				col++;
			}
		}
		while (n > DSN_LINE_MAX - col) {
			k = dsn_utf8_cut(p, n, DSN_LINE_MAX - col);
			db_add(b, p, k);
			db_add(b, "\r\n", 2);
			db_add(b, indent, ilen);
			col = ilen;
			p += k;
			n -= k;
		}
		db_add(b, p, n);
		col += n;
		words++;
		p += n;
		if (*p == ' ')
			p++;
	}
	db_add(b, "\r\n", 2);
}

/* dsn_fold() of a line put together with printf from cleaned values. */
static void dsn_foldf(struct dsn_buf *, size_t, const char *, const char *,
    ...) __attribute__((format(printf, 4, 5)));

static void
dsn_foldf(struct dsn_buf *b, size_t width, const char *indent,
    const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	s = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	dsn_fold(b, s, width, indent);
	free(s);
}

/*
 * RFC 5322 3.3 date-time of a given Unix time in UTC, spelt without the
 * locale's help. -1 when the time is not a four-digit year.
 */
static int
dsn_date(uint64_t t, char *out, size_t outsize)
{
	static const char *const days[] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
	};
	static const char *const months[] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
	};
	time_t tt;
	struct tm tm;
	int n;

	if (t > DSN_DATE_MAX)
		return -1;
	tt = (time_t)t;
	if (gmtime_r(&tt, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 ||
	    tm.tm_mon < 0 || tm.tm_mon > 11)
		return -1;
	n = snprintf(out, outsize, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return n < 0 || (size_t)n >= outsize ? -1 : 0;
}

/*
 * Our host name as a dot-atom (it goes into From:, Message-ID: and the
 * dns type fields): letters, digits, '-' and '_' kept, other bytes '-',
 * no empty labels, at most DSN_HOST_MAX bytes; "localhost" when nothing
 * is left.
 */
static char *
dsn_host(const char *s)
{
	size_t i, o = 0, n = s ? strlen(s) : 0;
	char *out = xmalloc(DSN_HOST_MAX + 1);
	unsigned char c;

	for (i = 0; i < n && o < DSN_HOST_MAX; i++) {
		c = (unsigned char)s[i];
		if (c == '.') {
			if (o > 0 && out[o - 1] != '.')
				out[o++] = '.';
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_')
			out[o++] = (char)c;
		else
			out[o++] = '-';
	}
	while (o > 0 && out[o - 1] == '.')
		o--;
	out[o] = '\0';
	if (o == 0)
		snprintf(out, DSN_HOST_MAX + 1, "localhost");
	return out;
}

/*
 * The seed as letters, digits, '-' and '_', any other byte as "=XX", so
 * that different seeds stay different; both a boundary (RFC 2046 5.1.1
 * bchars) and an id-left (RFC 5322 3.6.4 dot-atom-text) may hold these.
 * At most max bytes; a missing seed becomes random hex.
 */
static void
dsn_seed(const char *seed, char *out, size_t max)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char rnd[8];
	size_t i, o = 0;
	unsigned char c;

	if (seed == NULL || *seed == '\0') {
		random_bytes(rnd, sizeof(rnd));
		for (i = 0; i < sizeof(rnd) && o + 2 <= max; i++) {
			out[o++] = hex[rnd[i] >> 4];
			out[o++] = hex[rnd[i] & 15];
		}
		out[o] = '\0';
		return;
	}
	for (i = 0; seed[i] != '\0'; i++) {
		c = (unsigned char)seed[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_') {
			if (o + 1 > max)
				break;
			out[o++] = (char)c;
		} else {
			if (o + 3 > max)
				break;
			out[o++] = '=';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}

/* RFC 3463 2: class "." subject "." detail, 1-3 digits each. */
static bool
dsn_status_ok(const char *s, enum dsn_action action)
{
	int part, digits;

	if (s == NULL)
		return false;
	if (action == DSN_ACTION_DELAYED ? s[0] != '4' :
	    s[0] != '4' && s[0] != '5')
		return false;
	if (s[1] != '.')
		return false;
	s += 2;
	for (part = 0; part < 2; part++) {
		for (digits = 0; *s >= '0' && *s <= '9'; s++)
			digits++;
		if (digits < 1 || digits > 3)
			return false;
		if (part == 0 && *s++ != '.')
			return false;
	}
	return *s == '\0';
}

/* Where the original header section ends: see dsn_format() in dsn.h. */
static size_t
dsn_header_end(const char *orig, size_t len)
{
	size_t pos = 0, end;
	const char *nl;

	while (pos < len) {
		if (orig[pos] == '\n' ||
		    (orig[pos] == '\r' && (pos + 1 == len || orig[pos + 1] == '\n')))
			return pos;
		nl = memchr(orig + pos, '\n', len - pos);
		end = nl ? (size_t)(nl - orig) + 1 : len;
		if (end > DSN_HEADERS_MAX)
			return pos;
		pos = end;
	}
	return pos;
}

/*
 * One original header line (its line end removed), with control bytes
 * other than TAB as spaces and cut to DSN_LINE_MAX: before white space
 * where there is some (the RFC 5322 fold), else anywhere with a space
 * put in front of the rest.
 */
static void
dsn_header_line(struct dsn_buf *b, const char *s, size_t n, bool utf8)
{
	struct dsn_buf t = { NULL, 0, 0 };
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, k, lead = 0, avail, pos;
	const char *p;

	while (i < n) {
		unsigned char c = u[i];

		if (c == '\t' || (c >= 0x20 && c < 0x7F)) {
			db_add(&t, s + i, 1);
			i++;
		} else if (c < 0x80) {
			db_add(&t, " ", 1);
			i++;
		} else if (utf8 && (k = dsn_utf8_len(u + i, n - i)) > 0) {
			db_add(&t, s + i, k);
			i += k;
		} else {
			db_add(&t, "?", 1);
			i++;
		}
	}
	p = t.p;
	n = t.len;
	while (lead + n > DSN_LINE_MAX) {
		avail = DSN_LINE_MAX - lead;
		for (pos = avail; pos >= 1; pos--)
			if (p[pos] == ' ' || p[pos] == '\t')
				break;
		if (pos >= 1) {
			db_add(b, p, pos);
			db_add(b, "\r\n", 2);
			lead = 0;
		} else {
			pos = dsn_utf8_cut(p, n, avail);
			db_add(b, p, pos);
			db_add(b, "\r\n ", 3);
			lead = 1;
		}
		p += pos;
		n -= pos;
	}
	db_add(b, p, n);
	db_add(b, "\r\n", 2);
	free(t.p);
}

/* The original header section, line ends as CR LF (RFC 3464 2.1.3 and
 * RFC 6522 3 let the third part be the headers alone). */
static void
dsn_headers(struct dsn_buf *b, const char *orig, size_t end, bool utf8)
{
	size_t pos = 0, e, next;
	const char *nl;

	while (pos < end) {
		nl = memchr(orig + pos, '\n', end - pos);
		if (nl != NULL) {
			e = (size_t)(nl - orig);
			next = e + 1;
		} else
			e = next = end;
		if (e > pos && orig[e - 1] == '\r')
			e--;
		dsn_header_line(b, orig + pos, e - pos, utf8);
		pos = next;
	}
}

static const char *
dsn_plural(unsigned n)
{
	return n == 1 ? "" : "s";
}

struct dsn_rcpt_text {
	char	*address;	/* cleaned */
	char	*remote;	/* cleaned, NULL: none */
	char	*diag;		/* cleaned, NULL: none */
	char	 status[16];
	bool	 address_utf8;
};

static void
dsn_text_rcpt(struct dsn_buf *b, const struct dsn_rcpt_text *t,
    enum dsn_action action)
{
	const char *what = action == DSN_ACTION_FAILED ? "failed" :
	    "is delayed";

	db_add(b, "\r\n", 2);
	if (t->diag != NULL && t->remote != NULL)
		dsn_foldf(b, DSN_FOLD_WIDTH, "    ", "<%s>: host %s said: %s",
		    t->address, t->remote, t->diag);
	else if (t->diag != NULL)
		dsn_foldf(b, DSN_FOLD_WIDTH, "    ", "<%s>: %s", t->address,
		    t->diag);
	else if (t->remote != NULL)
		dsn_foldf(b, DSN_FOLD_WIDTH, "    ",
		    "<%s>: delivery to host %s %s (status %s)", t->address,
		    t->remote, what, t->status);
	else
		dsn_foldf(b, DSN_FOLD_WIDTH, "    ",
		    "<%s>: delivery %s (status %s)", t->address, what,
		    t->status);
}

/* Part 1: what a person reads (after the model of Postfix's bounces). */
static void
dsn_text(struct dsn_buf *b, const struct dsn_report *r, const char *host,
    const struct dsn_rcpt_text *rt, size_t n_failed, size_t n_delayed)
{
	char waited[64] = "", until[64] = "";
	size_t i;
	bool mixed = n_failed > 0 && n_delayed > 0;

	dsn_foldf(b, DSN_TEXT_WIDTH, "", "This is the mail system at host %s.",
	    host);
	db_add(b, "\r\n", 2);
	if (r->delay_warning) {
		dsn_fold(b, "This is a warning only: you do not need to send "
		    "your message again.", DSN_TEXT_WIDTH, "");
		db_add(b, "\r\n", 2);
		if (r->warn_hours > 0)
			snprintf(waited, sizeof(waited), "has been waiting for "
			    "%u hour%s and ", r->warn_hours,
			    dsn_plural(r->warn_hours));
		if (r->give_up_days > 0)
			snprintf(until, sizeof(until), " until the message is "
			    "%u day%s old", r->give_up_days,
			    dsn_plural(r->give_up_days));
		dsn_foldf(b, DSN_TEXT_WIDTH, "", "Your message %shas not yet "
		    "been delivered to the recipients below. The mail system "
		    "will keep trying%s, and will tell you if it has to give "
		    "up. The headers of your message are attached.", waited,
		    until);
	} else
		dsn_fold(b, "Your message could not be delivered to one or more "
		    "recipients. The reason for each is given below, and the "
		    "headers of your message are attached.", DSN_TEXT_WIDTH, "");
	db_add(b, "\r\n", 2);
	dsn_foldf(b, DSN_TEXT_WIDTH, "", "For help, write to postmaster@%s "
	    "and include this report.", host);

	if (mixed) {
		db_add(b, "\r\n", 2);
		dsn_fold(b, "Delivery has failed for these recipients:",
		    DSN_TEXT_WIDTH, "");
	}
	for (i = 0; i < r->n_rcpts; i++)
		if (r->rcpts[i].action != DSN_ACTION_DELAYED)
			dsn_text_rcpt(b, &rt[i], DSN_ACTION_FAILED);
	if (mixed) {
		db_add(b, "\r\n", 2);
		dsn_fold(b, "Delivery is delayed for these recipients, and "
		    "still being tried:", DSN_TEXT_WIDTH, "");
	}
	for (i = 0; i < r->n_rcpts; i++)
		if (r->rcpts[i].action == DSN_ACTION_DELAYED)
			dsn_text_rcpt(b, &rt[i], DSN_ACTION_DELAYED);
}

/* Part 2: RFC 3464 2.2 per-message and 2.3 per-recipient fields. */
static void
dsn_status(struct dsn_buf *b, const struct dsn_report *r, const char *host,
    const char *queue_id, const struct dsn_rcpt_text *rt)
{
	char date[64];
	size_t i;
	const struct dsn_recipient *rc;
	uint64_t until;

	dsn_foldf(b, DSN_FOLD_WIDTH, " ", "Reporting-MTA: dns; %s", host);
	if (*queue_id != '\0')
		dsn_foldf(b, DSN_FOLD_WIDTH, " ", "X-tegami-Queue-ID: %s",
		    queue_id);
	if (r->arrival != 0 && dsn_date(r->arrival, date, sizeof(date)) == 0)
		db_printf(b, "Arrival-Date: %s\r\n", date);

	for (i = 0; i < r->n_rcpts; i++) {
		rc = &r->rcpts[i];
		db_add(b, "\r\n", 2);
		dsn_foldf(b, DSN_FOLD_WIDTH, " ", "Final-Recipient: %s; %s",
		    rt[i].address_utf8 ? "utf-8" : "rfc822", rt[i].address);
		db_printf(b, "Action: %s\r\n",
		    rc->action == DSN_ACTION_DELAYED ? "delayed" : "failed");
		db_printf(b, "Status: %s\r\n", rt[i].status);
		if (rt[i].remote != NULL)
			dsn_foldf(b, DSN_FOLD_WIDTH, " ", "Remote-MTA: dns; %s",
			    rt[i].remote);
		if (rt[i].diag != NULL)
			dsn_foldf(b, DSN_FOLD_WIDTH, " ",
			    "Diagnostic-Code: smtp; %s", rt[i].diag);
		if (rc->last_attempt != 0 &&
		    dsn_date(rc->last_attempt, date, sizeof(date)) == 0)
			db_printf(b, "Last-Attempt-Date: %s\r\n", date);
		/* Days fit: UINT_MAX * 86400 < 2^49. */
		until = (uint64_t)r->give_up_days * 86400;
		if (rc->action == DSN_ACTION_DELAYED && r->arrival != 0 &&
		    until > 0 && r->arrival <= DSN_DATE_MAX - until &&
		    dsn_date(r->arrival + until, date, sizeof(date)) == 0)
			db_printf(b, "Will-Retry-Until: %s\r\n", date);
	}
}

/* Date-time for a Message-ID's left side: digits only. */
static void
dsn_stamp(uint64_t t, char *out, size_t outsize)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t > DSN_DATE_MAX || gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, outsize, "%Y%m%d%H%M%S", &tm) == 0)
		snprintf(out, outsize, "0");
}

static void
dsn_head(struct dsn_buf *b, const struct dsn_report *r, const char *host,
    const char *sender)
{
	char date[64], stamp[32], seed[DSN_MSGID_SEED_MAX + 1];
	uint64_t now = r->now;
	time_t t;

	if (now == 0 && (t = time(NULL)) > 0)
		now = (uint64_t)t;
	if (dsn_date(now, date, sizeof(date)) == -1)
		rfc5322_date(date, sizeof(date));
	dsn_stamp(now, stamp, sizeof(stamp));
	dsn_seed(r->boundary_seed, seed, DSN_MSGID_SEED_MAX);

	db_printf(b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
	    host);
	dsn_foldf(b, DSN_FOLD_WIDTH, " ", "To: <%s>", sender);
	db_printf(b, "Subject: %s\r\n", r->delay_warning ?
	    "Delayed Mail (still being retried)" :
	    "Undelivered Mail Returned to Sender");
	db_printf(b, "Date: %s\r\n", date);
	db_printf(b, "Message-ID: <%s.%s@%s>\r\n", stamp, seed, host);
	db_str(b, "Auto-Submitted: auto-replied\r\n");
	db_str(b, "MIME-Version: 1.0\r\n");
}

static bool
dsn_contains(const struct dsn_buf *b, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i].len > 0 && memmem(b[i].p, b[i].len, s, strlen(s)))
			return true;
	return false;
}

/*
 * RFC 2046 5.1.1: the boundary must not occur in any part. The seed may
 * well be there (a queue id is in our own Received: field), so a counter
 * is added until it is not; of fixed width, so that no candidate is a
 * prefix of another and each occurrence in the content rules out one
 * candidate at most.
 */
static void
dsn_boundary(const char *boundary_seed, const struct dsn_buf *pieces,
    size_t n, char *out, size_t outsize)
{
	char seed[DSN_SEED_MAX + 1], base[64];
	uint32_t attempt;

	dsn_seed(boundary_seed, seed, DSN_SEED_MAX);
	snprintf(base, sizeof(base), "=_tegami_%s", seed);
	snprintf(out, outsize, "%s", base);
	for (attempt = 1; dsn_contains(pieces, n, out); attempt++)
		snprintf(out, outsize, "%s_%08X", base, (unsigned)attempt);
}

/* Cleaned values of each recipient, the status checked. */
static struct dsn_rcpt_text *
dsn_rcpts(const struct dsn_report *r, bool global, size_t *n_failed_r,
    size_t *n_delayed_r)
{
	struct dsn_rcpt_text *rt = xcalloc(r->n_rcpts, sizeof(*rt));
	const struct dsn_recipient *rc;
	size_t i;

	*n_failed_r = *n_delayed_r = 0;
	for (i = 0; i < r->n_rcpts; i++) {
		rc = &r->rcpts[i];
		rt[i].address = dsn_clean(rc->address, global);
		rt[i].address_utf8 = !dsn_is_ascii(rt[i].address,
		    strlen(rt[i].address));
		if (rc->remote_mta != NULL) {
			rt[i].remote = dsn_clean(rc->remote_mta, global);
			if (rt[i].remote[0] == '\0')
				xfree(&rt[i].remote);
		}
		if (rc->diagnostic != NULL) {
			rt[i].diag = dsn_clean(rc->diagnostic, global);
			if (rt[i].diag[0] == '\0')
				xfree(&rt[i].diag);
		}
		snprintf(rt[i].status, sizeof(rt[i].status), "%s",
		    dsn_status_ok(rc->status, rc->action) ? rc->status :
		    rc->action == DSN_ACTION_DELAYED ? "4.0.0" : "5.0.0");
		if (rc->action == DSN_ACTION_DELAYED)
			(*n_delayed_r)++;
		else
			(*n_failed_r)++;
	}
	return rt;
}

/* RFC 6533 3: the global types once an address or a header is UTF-8. */
static bool
dsn_is_global(const struct dsn_report *r, const char *orig, size_t hdr_end)
{
	size_t i;
	const char *a;

	if (!dsn_is_ascii(r->sender, strlen(r->sender)) ||
	    !dsn_is_ascii(orig, hdr_end))
		return true;
	for (i = 0; i < r->n_rcpts; i++)
		if ((a = r->rcpts[i].address) != NULL &&
		    !dsn_is_ascii(a, strlen(a)))
			return true;
	return false;
}

enum { DSN_P_HEAD, DSN_P_TEXT, DSN_P_STATUS, DSN_P_HEADERS, DSN_P_MIME1,
    DSN_P_MIME2, DSN_P_MIME3, DSN_P_N };

char *
dsn_format(const struct dsn_report *r, const char *orig, size_t orig_len,
    size_t *len_r)
{
	struct dsn_buf p[DSN_P_N], out = { NULL, 0, 0 };
	struct dsn_rcpt_text *rt;
	char boundary[96], *host, *sender, *queue_id;
	const char *cte;
	size_t i, hdr_end, n_failed, n_delayed;
	bool global;

	*len_r = 0;
	if (r == NULL || r->n_rcpts == 0 || r->rcpts == NULL ||
	    r->sender == NULL)
		return NULL;
	if (orig == NULL)
		orig_len = 0;
	hdr_end = dsn_header_end(orig, orig_len);
	global = dsn_is_global(r, orig, hdr_end);
	sender = dsn_clean(r->sender, global);
	if (sender[0] == '\0') {
		free(sender);
		return NULL;
	}
	cte = global ? "Content-Transfer-Encoding: 8bit\r\n" : "";
	host = dsn_host(r->reporting_mta);
	queue_id = dsn_clean(r->queue_id, false);
	rt = dsn_rcpts(r, global, &n_failed, &n_delayed);

	memset(p, 0, sizeof(p));
	dsn_head(&p[DSN_P_HEAD], r, host, sender);
	dsn_text(&p[DSN_P_TEXT], r, host, rt, n_failed, n_delayed);
	dsn_status(&p[DSN_P_STATUS], r, host, queue_id, rt);
	dsn_headers(&p[DSN_P_HEADERS], orig, hdr_end, global);
	db_printf(&p[DSN_P_MIME1], "Content-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=%s\r\n%s",
	    global ? "utf-8" : "us-ascii", cte);
	db_printf(&p[DSN_P_MIME2], "Content-Description: Delivery report\r\n"
	    "Content-Type: message/%sdelivery-status\r\n%s",
	    global ? "global-" : "", cte);
	db_printf(&p[DSN_P_MIME3], "Content-Description: %s message "
	    "headers\r\nContent-Type: %s\r\n%s",
	    r->delay_warning ? "Delayed" : "Undelivered",
	    global ? "message/global-headers" : "text/rfc822-headers", cte);
	dsn_boundary(r->boundary_seed, p, DSN_P_N, boundary,
	    sizeof(boundary));

	/* RFC 2046 5.1.1: the CR LF before each delimiter belongs to it. */
	db_add(&out, p[DSN_P_HEAD].p, p[DSN_P_HEAD].len);
	db_str(&out, cte);
	db_printf(&out, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n\r\n"
	    "This is a delivery status notification in MIME format.\r\n",
	    boundary);
	for (i = 0; i < 3; i++) {
		db_printf(&out, "\r\n--%s\r\n", boundary);
		db_add(&out, p[DSN_P_MIME1 + i].p, p[DSN_P_MIME1 + i].len);
		db_add(&out, "\r\n", 2);
		db_add(&out, p[DSN_P_TEXT + i].p, p[DSN_P_TEXT + i].len);
	}
	db_printf(&out, "\r\n--%s--\r\n", boundary);

	for (i = 0; i < r->n_rcpts; i++) {
		free(rt[i].address);
		free(rt[i].remote);
		free(rt[i].diag);
	}
	free(rt);
	for (i = 0; i < DSN_P_N; i++)
		free(p[i].p);
	free(host);
	free(sender);
	free(queue_id);
	*len_r = out.len;
	return out.p;
}
