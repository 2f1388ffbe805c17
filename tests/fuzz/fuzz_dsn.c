/*
 * Fuzz target for dsn_format() (RFC 3464, RFC 6522, RFC 6533): random
 * report fields and original message; the result must be a well-formed
 * three-part multipart/report whatever the values hold.
 *
 * Input: 12 bytes of numbers and flags, then NUL-separated strings
 * (reporting MTA, queue id, sender, boundary seed, and per recipient
 * address, status, remote MTA, diagnostic), the rest is the original.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/dsn.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

#define MAX_RCPTS 8
#define CT_REPORT "Content-Type: multipart/report; " \
    "report-type=delivery-status;\r\n\tboundary=\""

struct input {
	const uint8_t	*p;
	size_t		 n;
	char		*strs[4 + 4 * MAX_RCPTS];
};

/* The next string up to a NUL (or the end); "" when nothing is left. */
static char *
take(struct input *in)
{
	const uint8_t *z = memchr(in->p, 0, in->n);
	size_t l = z ? (size_t)(z - in->p) : in->n;
	char *s = malloc(l + 1);

	if (s == NULL)
		abort();
	memcpy(s, in->p, l);
	s[l] = '\0';
	in->p += z ? l + 1 : l;
	in->n -= z ? l + 1 : l;
	return s;
}

static uint32_t
u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static bool
has_text(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s > ' ' && (unsigned char)*s != 0x7F)
			return true;
	return false;
}

static bool
valid_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0, len, k;
	unsigned char c, lo, hi;

	while (i < n) {
		c = s[i];
		lo = 0x80;
		hi = 0xBF;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xC2 && c <= 0xDF)
			len = 2;
		else if (c >= 0xE0 && c <= 0xEF) {
			len = 3;
			lo = c == 0xE0 ? 0xA0 : 0x80;
			hi = c == 0xED ? 0x9F : 0xBF;
		} else if (c >= 0xF0 && c <= 0xF4) {
			len = 4;
			lo = c == 0xF0 ? 0x90 : 0x80;
			hi = c == 0xF4 ? 0x8F : 0xBF;
		} else
			return false;
		if (n - i < len || s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (k = 2; k < len; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xBF)
				return false;
		i += len;
	}
	return true;
}

static size_t
count(const char *s, size_t n, const char *w)
{
	size_t c = 0, wl = strlen(w);
	const char *p = s, *f;

	while ((size_t)(s + n - p) >= wl &&
	    (f = memmem(p, (size_t)(s + n - p), w, wl)) != NULL) {
		c++;
		p = f + 1;
	}
	return c;
}

static int
name_in(const char *line, size_t len, const char *const *names, size_t nn)
{
	size_t i, l;

	for (i = 0; i < nn; i++) {
		l = strlen(names[i]);
		if (len >= l + 2 && memcmp(line, names[i], l) == 0 &&
		    line[l] == ':' && line[l + 1] == ' ')
			return (int)i;
	}
	return -1;
}

static bool
starts(const char *s, size_t n, const char *w)
{
	return n >= strlen(w) && memcmp(s, w, strlen(w)) == 0;
}

static void
check(const char *o, size_t n, size_t n_rcpts)
{
	static const char *const top[] = { "From", "To", "Subject", "Date",
	    "Message-ID", "Auto-Submitted", "MIME-Version", "Content-Type",
	    "Content-Transfer-Encoding" };
	static const char *const st[] = { "Reporting-MTA",
	    "X-tegami-Queue-ID", "Arrival-Date", "Final-Recipient", "Action",
	    "Status", "Remote-MTA", "Diagnostic-Code", "Last-Attempt-Date",
	    "Will-Retry-Until" };
	const char *line, *next, *e, *b, *part[4] = { NULL }, *body, *q;
	const char *ct = NULL;
	char boundary[128], open[140], close[140];
	size_t i, ls = 0, seen[9] = { 0 }, delims = 0, groups, plen, blen;
	bool global, eightbit = false;
	int f;

	/* CR LF only, lines of at most 998 bytes, no NUL, NUL-terminated. */
	if (o[n] != '\0' || strlen(o) != n || n < 2 || o[n - 1] != '\n')
		abort();
	for (i = 0; i < n; i++) {
		if (o[i] == '\r' && (i + 1 == n || o[i + 1] != '\n'))
			abort();
		if (o[i] == '\n') {
			if (i == 0 || o[i - 1] != '\r' || i - 1 - ls > 998)
				abort();
			ls = i + 1;
		}
		if ((unsigned char)o[i] >= 0x80)
			eightbit = true;
	}

	/* The top-level fields, each once; nothing else. */
	if ((e = strstr(o, "\r\n\r\n")) == NULL)
		abort();
	for (line = o; line < e + 2; line = next) {
		next = strstr(line, "\r\n") + 2;
		if (*line == ' ' || *line == '\t')
			continue;
		if ((f = name_in(line, (size_t)(next - line), top, 9)) < 0)
			abort();
		if (f == 7)
			ct = line;
		seen[f]++;
	}
	for (i = 0; i < 8; i++)
		if (seen[i] != 1)
			abort();
	if (seen[8] > 1)
		abort();
	global = seen[8] == 1;
	if (eightbit && !global)
		abort();
	if (global && !valid_utf8((const unsigned char *)o, n))
		abort();

	/* The boundary: in Content-Type, and as four delimiter lines. */
	if (!starts(ct, (size_t)(e - ct), CT_REPORT))
		abort();
	b = ct + strlen(CT_REPORT);
	if ((q = strchr(b, '"')) == NULL || q - b > 70 || q == b)
		abort();
	memcpy(boundary, b, (size_t)(q - b));
	boundary[q - b] = '\0';
	snprintf(open, sizeof(open), "--%s\r\n", boundary);
	snprintf(close, sizeof(close), "--%s--\r\n", boundary);
	for (line = e + 4; line < o + n; line = next) {
		next = strstr(line, "\r\n") + 2;
		if (starts(line, (size_t)(next - line), open) &&
		    next - line == (ptrdiff_t)strlen(open)) {
			if (delims >= 3)
				abort();
			part[delims++] = next;
		} else if (starts(line, (size_t)(next - line), close) &&
		    next - line == (ptrdiff_t)strlen(close)) {
			if (delims != 3 || next != o + n)
				abort();
			part[delims++] = next;
		}
	}
	if (delims != 4 || count(o, n, boundary) != 5)
		abort();

	/* Three parts of the right types; the report's groups. */
	for (i = 0; i < 3; i++) {
		plen = (size_t)(part[i + 1] - part[i]) -
		    strlen(i == 2 ? close : open) - 2;
		if ((body = memmem(part[i], plen + 2, "\r\n\r\n", 4)) == NULL)
			abort();
		body += 4;
		blen = plen - (size_t)(body - part[i]);
		if (!starts(part[i], plen, i == 0 ?
		    "Content-Description: Notification\r\nContent-Type: "
		    "text/plain; charset=" : i == 1 ?
		    "Content-Description: Delivery report\r\nContent-Type: "
		    "message/" : "Content-Description: "))
			abort();
		if (memmem(part[i], (size_t)(body - part[i]), "global", 6) ==
		    NULL && global && i > 0)
			abort();
		if (memmem(part[i], (size_t)(body - part[i]), "global", 6) !=
		    NULL && !global)
			abort();
		if (i != 1)
			continue;
		groups = 1;
		for (line = body; line < body + blen; line = next) {
			next = strstr(line, "\r\n") + 2;
			if (next - line == 2)
				groups++;
			else if (*line != ' ' &&
			    name_in(line, (size_t)(next - line), st, 10) < 0)
				abort();
		}
		if (groups != 1 + n_rcpts)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct dsn_recipient rc[MAX_RCPTS];
	struct dsn_report r;
	struct input in;
	size_t i, k, len, ns = 0;
	char *out;
	bool want;

	if (n < 12)
		return 0;
	memset(&r, 0, sizeof(r));
	memset(rc, 0, sizeof(rc));
	r.delay_warning = d[0] & 1;
	r.n_rcpts = (d[0] >> 1) & 7;
	if (d[0] & 0x10)
		r.n_rcpts = MAX_RCPTS;
	r.arrival = u32(d + 1);
	if (d[0] & 0x20)
		r.arrival = UINT64_MAX - d[1];
	r.now = u32(d + 5);
	if (d[0] & 0x40)
		r.now = 253402300799ULL + d[5] - 128;
	r.warn_hours = d[9];
	r.give_up_days = d[10] & 0x80 ? UINT32_MAX - d[10] : d[10];
	r.rcpts = rc;

	in.p = d + 12;
	in.n = n - 12;
	for (i = 0; i < 4; i++)
		in.strs[ns++] = take(&in);
	r.reporting_mta = (d[11] & 1) ? NULL : in.strs[0];
	r.queue_id = (d[11] & 2) ? NULL : in.strs[1];
	r.sender = (d[11] & 4) && in.strs[2][0] == '\0' ? NULL : in.strs[2];
	r.boundary_seed = (d[11] & 8) ? in.strs[3] : in.strs[1];
	for (i = 0; i < r.n_rcpts; i++) {
		for (k = 0; k < 4; k++)
			in.strs[ns++] = take(&in);
		rc[i].address = in.strs[ns - 4];
		rc[i].action = (d[11] >> (i % 4 + 4)) & 1 ?
		    DSN_ACTION_DELAYED : DSN_ACTION_FAILED;
		rc[i].status = in.strs[ns - 3];
		rc[i].remote_mta = in.strs[ns - 2][0] ? in.strs[ns - 2] : NULL;
		rc[i].diagnostic = in.strs[ns - 1];
		rc[i].last_attempt = i & 1 ? r.arrival + i : 0;
	}

	want = r.n_rcpts > 0 && r.sender != NULL && has_text(r.sender);
	out = dsn_format(&r, (const char *)in.p, in.n, &len);
	if ((out != NULL) != want || (out == NULL && len != 0))
		abort();
	if (out != NULL)
		check(out, len, r.n_rcpts);
	free(out);
	for (i = 0; i < ns; i++)
		free(in.strs[i]);
	return 0;
}
