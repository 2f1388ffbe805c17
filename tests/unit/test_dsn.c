/*
 * Tests for delivery status notifications (RFC 3464 2-3, RFC 6522,
 * RFC 3834, RFC 6533): whole golden reports, the original header section
 * (line ends, limits, junk), the global types, and hostile values that
 * try to add a header or break the MIME structure.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue/dsn.h"
#include "unit.h"

static const char orig_crlf[] =
    "Received: from [192.0.2.10] (helo=laptop)\r\n"
    "\tby mail.example.org (tegami) with ESMTPSA id 7A3F09C2B14D5E60;\r\n"
    "\tTue, 14 Nov 2023 22:13:20 +0000\r\n"
    "From: Alice <alice@example.org>\r\n"
    "To: Bob <bob@example.net>\r\n"
    "Subject: Lunch on Friday?\r\n"
    "Message-ID: <a1b2c3@example.org>\r\n"
    "\r\n"
    "Shall we?\r\n";
static const char orig_lf[] =
    "From: Alice <alice@example.org>\n"
    "To: bob@example.net, carol@example.com\n"
    "Subject: Minutes\n"
    "\n"
    "Attached.\n";
static const struct dsn_recipient golden_bob = {
	"bob@example.net", DSN_ACTION_FAILED, "5.1.1", "mx.example.net",
	"550-5.1.1 <bob@example.net>: Recipient address rejected:\n"
	"550 5.1.1 User unknown in virtual mailbox table", 1700003600,
};
static const struct dsn_recipient golden_two[2] = {
	{ "bob@example.net", DSN_ACTION_FAILED, "5.1.1", "mx.example.net",
	  "550 5.1.1 <bob@example.net>: Recipient address rejected: User "
	  "unknown in virtual mailbox table", 1700003600 },
	{ "carol@example.com", DSN_ACTION_DELAYED, "", NULL,
	  "connect to mx.example.com[192.0.2.7]:25: Connection timed out",
	  1700003000 },
};
static const struct dsn_recipient golden_carol = {
	"carol@example.com", DSN_ACTION_DELAYED, "4.4.1", "mx.example.com",
	"451 4.4.1 Greylisted, please try again later", 1700014000,
};
static const struct dsn_report golden_bounce = {
	.reporting_mta = "mail.example.org", .queue_id = "7A3F09C2B14D5E60",
	.arrival = 1700000000, .now = 1700003700,
	.sender = "alice@example.org", .boundary_seed = "7A3F09C2B14D5E60-1",
	.rcpts = &golden_bob, .n_rcpts = 1,
};
static const struct dsn_report golden_mixed = {
	.reporting_mta = "mail.example.org", .queue_id = "0B1C2D3E4F506172",
	.arrival = 1700000000, .now = 1700003700,
	.sender = "alice@example.org", .boundary_seed = "0B1C2D3E4F506172-1",
	.give_up_days = 5, .rcpts = golden_two, .n_rcpts = 2,
};
static const struct dsn_report golden_delay = {
	.reporting_mta = "mail.example.org", .queue_id = "0B1C2D3E4F506172",
	.arrival = 1700000000, .now = 1700014400,
	.sender = "alice@example.org", .boundary_seed = "0B1C2D3E4F506172-2",
	.delay_warning = true, .warn_hours = 4, .give_up_days = 5,
	.rcpts = &golden_carol, .n_rcpts = 1,
};

static const char want_bounce[] =
    "From: Mail Delivery System <MAILER-DAEMON@mail.example.org>\r\n"
    "To: <alice@example.org>\r\n"
    "Subject: Undelivered Mail Returned to Sender\r\n"
    "Date: Tue, 14 Nov 2023 23:15:00 +0000\r\n"
    "Message-ID: <20231114231500.7A3F09C2B14D5E60-1@mail.example.org>\r\n"
    "Auto-Submitted: auto-replied\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
    "\tboundary=\"=_tegami_7A3F09C2B14D5E60-1\"\r\n"
    "\r\n"
    "This is a delivery status notification in MIME format.\r\n"
    "\r\n"
    "--=_tegami_7A3F09C2B14D5E60-1\r\n"
    "Content-Description: Notification\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "\r\n"
    "This is the mail system at host mail.example.org.\r\n"
    "\r\n"
    "Your message could not be delivered to one or more recipients. The\r\n"
    "reason for each is given below, and the headers of your message are\r\n"
    "attached.\r\n"
    "\r\n"
    "For help, write to postmaster@mail.example.org and include this report.\r\n"
    "\r\n"
    "<bob@example.net>: host mx.example.net said: 550-5.1.1 <bob@example.net>:\r\n"
    "    Recipient address rejected: 550 5.1.1 User unknown in virtual mailbox\r\n"
    "    table\r\n"
    "\r\n"
    "--=_tegami_7A3F09C2B14D5E60-1\r\n"
    "Content-Description: Delivery report\r\n"
    "Content-Type: message/delivery-status\r\n"
    "\r\n"
    "Reporting-MTA: dns; mail.example.org\r\n"
    "X-tegami-Queue-ID: 7A3F09C2B14D5E60\r\n"
    "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    "\r\n"
    "Final-Recipient: rfc822; bob@example.net\r\n"
    "Action: failed\r\n"
    "Status: 5.1.1\r\n"
    "Remote-MTA: dns; mx.example.net\r\n"
    "Diagnostic-Code: smtp; 550-5.1.1 <bob@example.net>: Recipient address\r\n"
    " rejected: 550 5.1.1 User unknown in virtual mailbox table\r\n"
    "Last-Attempt-Date: Tue, 14 Nov 2023 23:13:20 +0000\r\n"
    "\r\n"
    "--=_tegami_7A3F09C2B14D5E60-1\r\n"
    "Content-Description: Undelivered message headers\r\n"
    "Content-Type: text/rfc822-headers\r\n"
    "\r\n"
    "Received: from [192.0.2.10] (helo=laptop)\r\n"
    "\tby mail.example.org (tegami) with ESMTPSA id 7A3F09C2B14D5E60;\r\n"
    "\tTue, 14 Nov 2023 22:13:20 +0000\r\n"
    "From: Alice <alice@example.org>\r\n"
    "To: Bob <bob@example.net>\r\n"
    "Subject: Lunch on Friday?\r\n"
    "Message-ID: <a1b2c3@example.org>\r\n"
    "\r\n"
    "--=_tegami_7A3F09C2B14D5E60-1--\r\n"
    ;

static const char want_mixed[] =
    "From: Mail Delivery System <MAILER-DAEMON@mail.example.org>\r\n"
    "To: <alice@example.org>\r\n"
    "Subject: Undelivered Mail Returned to Sender\r\n"
    "Date: Tue, 14 Nov 2023 23:15:00 +0000\r\n"
    "Message-ID: <20231114231500.0B1C2D3E4F506172-1@mail.example.org>\r\n"
    "Auto-Submitted: auto-replied\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
    "\tboundary=\"=_tegami_0B1C2D3E4F506172-1\"\r\n"
    "\r\n"
    "This is a delivery status notification in MIME format.\r\n"
    "\r\n"
    "--=_tegami_0B1C2D3E4F506172-1\r\n"
    "Content-Description: Notification\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "\r\n"
    "This is the mail system at host mail.example.org.\r\n"
    "\r\n"
    "Your message could not be delivered to one or more recipients. The\r\n"
    "reason for each is given below, and the headers of your message are\r\n"
    "attached.\r\n"
    "\r\n"
    "For help, write to postmaster@mail.example.org and include this report.\r\n"
    "\r\n"
    "Delivery has failed for these recipients:\r\n"
    "\r\n"
    "<bob@example.net>: host mx.example.net said: 550 5.1.1 <bob@example.net>:\r\n"
    "    Recipient address rejected: User unknown in virtual mailbox table\r\n"
    "\r\n"
    "Delivery is delayed for these recipients, and still being tried:\r\n"
    "\r\n"
    "<carol@example.com>: connect to mx.example.com[192.0.2.7]:25: Connection timed\r\n"
    "    out\r\n"
    "\r\n"
    "--=_tegami_0B1C2D3E4F506172-1\r\n"
    "Content-Description: Delivery report\r\n"
    "Content-Type: message/delivery-status\r\n"
    "\r\n"
    "Reporting-MTA: dns; mail.example.org\r\n"
    "X-tegami-Queue-ID: 0B1C2D3E4F506172\r\n"
    "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    "\r\n"
    "Final-Recipient: rfc822; bob@example.net\r\n"
    "Action: failed\r\n"
    "Status: 5.1.1\r\n"
    "Remote-MTA: dns; mx.example.net\r\n"
    "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: Recipient address\r\n"
    " rejected: User unknown in virtual mailbox table\r\n"
    "Last-Attempt-Date: Tue, 14 Nov 2023 23:13:20 +0000\r\n"
    "\r\n"
    "Final-Recipient: rfc822; carol@example.com\r\n"
    "Action: delayed\r\n"
    "Status: 4.0.0\r\n"
    "Diagnostic-Code: smtp; connect to mx.example.com[192.0.2.7]:25: Connection\r\n"
    " timed out\r\n"
    "Last-Attempt-Date: Tue, 14 Nov 2023 23:03:20 +0000\r\n"
    "Will-Retry-Until: Sun, 19 Nov 2023 22:13:20 +0000\r\n"
    "\r\n"
    "--=_tegami_0B1C2D3E4F506172-1\r\n"
    "Content-Description: Undelivered message headers\r\n"
    "Content-Type: text/rfc822-headers\r\n"
    "\r\n"
    "From: Alice <alice@example.org>\r\n"
    "To: bob@example.net, carol@example.com\r\n"
    "Subject: Minutes\r\n"
    "\r\n"
    "--=_tegami_0B1C2D3E4F506172-1--\r\n"
    ;

static const char want_delay[] =
    "From: Mail Delivery System <MAILER-DAEMON@mail.example.org>\r\n"
    "To: <alice@example.org>\r\n"
    "Subject: Delayed Mail (still being retried)\r\n"
    "Date: Wed, 15 Nov 2023 02:13:20 +0000\r\n"
    "Message-ID: <20231115021320.0B1C2D3E4F506172-2@mail.example.org>\r\n"
    "Auto-Submitted: auto-replied\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
    "\tboundary=\"=_tegami_0B1C2D3E4F506172-2\"\r\n"
    "\r\n"
    "This is a delivery status notification in MIME format.\r\n"
    "\r\n"
    "--=_tegami_0B1C2D3E4F506172-2\r\n"
    "Content-Description: Notification\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "\r\n"
    "This is the mail system at host mail.example.org.\r\n"
    "\r\n"
    "This is a warning only: you do not need to send your message again.\r\n"
    "\r\n"
    "Your message has been waiting for 4 hours and has not yet been delivered\r\n"
    "to the recipients below. The mail system will keep trying until the\r\n"
    "message is 5 days old, and will tell you if it has to give up. The\r\n"
    "headers of your message are attached.\r\n"
    "\r\n"
    "For help, write to postmaster@mail.example.org and include this report.\r\n"
    "\r\n"
    "<carol@example.com>: host mx.example.com said: 451 4.4.1 Greylisted, please\r\n"
    "    try again later\r\n"
    "\r\n"
    "--=_tegami_0B1C2D3E4F506172-2\r\n"
    "Content-Description: Delivery report\r\n"
    "Content-Type: message/delivery-status\r\n"
    "\r\n"
    "Reporting-MTA: dns; mail.example.org\r\n"
    "X-tegami-Queue-ID: 0B1C2D3E4F506172\r\n"
    "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    "\r\n"
    "Final-Recipient: rfc822; carol@example.com\r\n"
    "Action: delayed\r\n"
    "Status: 4.4.1\r\n"
    "Remote-MTA: dns; mx.example.com\r\n"
    "Diagnostic-Code: smtp; 451 4.4.1 Greylisted, please try again later\r\n"
    "Last-Attempt-Date: Wed, 15 Nov 2023 02:06:40 +0000\r\n"
    "Will-Retry-Until: Sun, 19 Nov 2023 22:13:20 +0000\r\n"
    "\r\n"
    "--=_tegami_0B1C2D3E4F506172-2\r\n"
    "Content-Description: Delayed message headers\r\n"
    "Content-Type: text/rfc822-headers\r\n"
    "\r\n"
    "From: Alice <alice@example.org>\r\n"
    "To: bob@example.net, carol@example.com\r\n"
    "Subject: Minutes\r\n"
    "\r\n"
    "--=_tegami_0B1C2D3E4F506172-2--\r\n"
    ;

#define CT_REPORT "Content-Type: multipart/report; " \
    "report-type=delivery-status;\r\n\tboundary=\""

/* A report split at its MIME delimiters; pointers into the output. */
struct parsed {
	char		 boundary[128];
	const char	*head;		/* top-level header section */
	size_t		 head_len;
	const char	*part[3];	/* part headers, blank line, content */
	size_t		 part_len[3];
	const char	*body[3];	/* part content */
	size_t		 body_len[3];
};

static size_t
count_in(const char *s, size_t n, const char *what)
{
	size_t c = 0, wl = strlen(what);
	const char *p = s, *e = s + n, *f;

	while ((size_t)(e - p) >= wl &&
	    (f = memmem(p, (size_t)(e - p), what, wl)) != NULL) {
		c++;
		p = f + 1;
	}
	return c;
}

static bool
has(const char *s, size_t n, const char *what)
{
	return memmem(s, n, what, strlen(what)) != NULL;
}

static bool
line_is(const char *s, size_t n, const char *want)
{
	return n == strlen(want) && memcmp(s, want, n) == 0;
}

static const char *const top_fields[] = {
	"From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding",
};

static const char *const status_fields[] = {
	"Reporting-MTA", "X-tegami-Queue-ID", "Arrival-Date",
	"Final-Recipient", "Action", "Status", "Remote-MTA",
	"Diagnostic-Code", "Last-Attempt-Date", "Will-Retry-Until",
};

/* The field name of a line, if it is one of names[]; -1 otherwise. */
static int
field_of(const char *s, size_t n, const char *const *names, size_t nn)
{
	size_t i, l;

	for (i = 0; i < nn; i++) {
		l = strlen(names[i]);
		if (n >= l + 2 && memcmp(s, names[i], l) == 0 &&
		    s[l] == ':' && s[l + 1] == ' ')
			return (int)i;
	}
	return -1;
}

/*
 * What holds for every report: NUL-terminated, CR LF line ends only,
 * lines of at most 998 bytes, the known top-level fields once each, the
 * boundary only in Content-Type and in the four delimiter lines, three
 * parts, and in the delivery-status part only known fields, with
 * 1 + n_rcpts groups. Fills p; returns false (with failed checks) if not.
 */
static bool
parse(const char *o, size_t n, size_t n_rcpts, struct parsed *p)
{
	size_t i, ls = 0, seen[9] = { 0 }, delims = 0, groups;
	const char *b = NULL, *e, *line, *next;
	int f, failures = unit_checks_failed_in_test;

	memset(p, 0, sizeof(*p));
	CHECK(o != NULL && n > 0);
	if (o == NULL || n == 0)
		return false;
	CHECK(o[n] == '\0');
	CHECK(strlen(o) == n);
	CHECK(n >= 2 && o[n - 2] == '\r' && o[n - 1] == '\n');
	for (i = 0; i < n; i++) {
		if (o[i] == '\r')
			CHECK(i + 1 < n && o[i + 1] == '\n');
		if (o[i] == '\n') {
			CHECK(i > 0 && o[i - 1] == '\r');
			CHECK(i - 1 - ls <= 998);
			ls = i + 1;
		}
	}

	e = strstr(o, "\r\n\r\n");
	CHECK(e != NULL);
	if (e == NULL)
		return false;
	p->head = o;
	p->head_len = (size_t)(e - o) + 2;
	for (line = o; line < o + p->head_len; line = next) {
		next = strstr(line, "\r\n") + 2;
		if (*line == ' ' || *line == '\t')
			continue;
		f = field_of(line, (size_t)(next - line), top_fields, 9);
		CHECK(f >= 0);
		if (f >= 0)
			seen[f]++;
		if (f == 7)
			b = line;
	}
	for (i = 0; i < 8; i++)
		CHECK(seen[i] == 1);
	CHECK(seen[8] <= 1);

	CHECK(b != NULL && strncmp(b, CT_REPORT, strlen(CT_REPORT)) == 0);
	if (b == NULL || strncmp(b, CT_REPORT, strlen(CT_REPORT)) != 0)
		return false;
	b += strlen(CT_REPORT);
	CHECK(strchr(b, '"') != NULL && strchr(b, '"') - b < 71);
	snprintf(p->boundary, sizeof(p->boundary), "%.*s",
	    (int)(strchr(b, '"') - b), b);
	CHECK(p->boundary[0] != '\0');

	/* Delimiter lines, and the parts between them. */
	{
		char open[140], close[140];
		const char *after = NULL;

		snprintf(open, sizeof(open), "--%s", p->boundary);
		snprintf(close, sizeof(close), "--%s--", p->boundary);
		for (line = e + 4; line < o + n; line = next) {
			next = strstr(line, "\r\n") + 2;
			if (line_is(line, (size_t)(next - 2 - line), open) ||
			    line_is(line, (size_t)(next - 2 - line), close)) {
				if (after != NULL && delims <= 3) {
					p->part[delims - 1] = after;
					p->part_len[delims - 1] =
					    (size_t)(line - 2 - after);
				}
				delims++;
				after = next;
				if (line_is(line, (size_t)(next - 2 - line),
				    close))
					CHECK(next == o + n && delims == 4);
			}
		}
		CHECK(delims == 4);
		CHECK(count_in(o, n, p->boundary) == 5);
	}
	if (delims != 4 || unit_checks_failed_in_test != failures)
		return false;
	for (i = 0; i < 3; i++) {
		b = memmem(p->part[i], p->part_len[i] + 2, "\r\n\r\n", 4);
		CHECK(b != NULL);
		if (b == NULL)
			return false;
		p->body[i] = b + 4;
		p->body_len[i] = p->part_len[i] - (size_t)(b + 4 - p->part[i]);
	}

	/* The delivery-status part: known fields, one group a recipient. */
	groups = 1;
	for (line = p->body[1]; line < p->body[1] + p->body_len[1];
	    line = next) {
		next = strstr(line, "\r\n") + 2;
		if (next - line == 2) {
			groups++;
			continue;
		}
		if (*line == ' ')
			continue;
		CHECK(field_of(line, (size_t)(next - line), status_fields,
		    10) >= 0);
	}
	CHECK(groups == 1 + n_rcpts);
	return unit_checks_failed_in_test == failures;
}

/* The unfolded value of the first field name: in s (its own malloc). */
static char *
field(const char *s, size_t n, const char *name)
{
	char key[64], *out;
	const char *f, *v, *end = s + n;
	size_t o = 0;

	snprintf(key, sizeof(key), "\n%s: ", name);
	if (n > strlen(key) - 1 && memcmp(s, key + 1, strlen(key) - 1) == 0)
		f = s - 1;
	else if ((f = memmem(s, n, key, strlen(key))) == NULL)
		return NULL;
	v = f + strlen(key);
	out = malloc((size_t)(end - v) + 1);
	while (v < end) {
		if (v[0] == '\r' && v + 2 < end && v[1] == '\n' &&
		    (v[2] == ' ' || v[2] == '\t')) {
			v += 2;
			continue;
		}
		if (v[0] == '\r')
			break;
		out[o++] = *v++;
	}
	out[o] = '\0';
	return out;
}

#define CHECK_FIELD(s, n, name, want) do {				\
	char *f_ = field((s), (n), (name));				\
	CHECK_STR(f_, (want));						\
	free(f_);							\
} while (0)

static char *
fmt(const struct dsn_report *r, const char *orig, size_t *n)
{
	return dsn_format(r, orig, orig ? strlen(orig) : 0, n);
}

static void
test_golden(void)
{
	struct parsed p;
	size_t n;
	char *o;

	o = fmt(&golden_bounce, orig_crlf, &n);
	CHECK_STR(o, want_bounce);
	CHECK(n == sizeof(want_bounce) - 1);
	CHECK(parse(o, n, 1, &p));
	free(o);

	o = fmt(&golden_mixed, orig_lf, &n);
	CHECK_STR(o, want_mixed);
	CHECK(n == sizeof(want_mixed) - 1);
	CHECK(parse(o, n, 2, &p));
	free(o);

	o = fmt(&golden_delay, orig_lf, &n);
	CHECK_STR(o, want_delay);
	CHECK(n == sizeof(want_delay) - 1);
	CHECK(parse(o, n, 1, &p));
	free(o);
}

/* Python's email package reads the structure the same way (if present). */
static void
test_python_parses(void)
{
	static const char script[] =
	    "import sys, email\n"
	    "from email import policy\n"
	    "m = email.message_from_bytes(open(sys.argv[1], \"rb\").read(),"
	    " policy=policy.compat32)\n"
	    "ps = m.get_payload()\n"
	    "out = [m.get_content_type(), m.get_param(\"report-type\"),"
	    " str(len(ps))] + [p.get_content_type() for p in ps]\n"
	    "st = ps[1].get_payload()\n"
	    "out.append(str(len(st)) if isinstance(st, list) else \"x\")\n"
	    "out.append(str(len(m.defects) + sum(len(p.defects) for p in ps)))\n"
	    "print(\" \".join(out))\n";
	static const struct dsn_recipient utf8_rcpt = {
		"j\xc3\xb6rg@b\xc3\xbc" "cher.example", DSN_ACTION_FAILED,
		"5.1.1", NULL, "550 unbekannt", 0,
	};
	struct dsn_report global = golden_bounce;
	const struct { const struct dsn_report *r; const char *orig;
	    const char *want; } cases[] = {
		{ &golden_bounce, orig_crlf, "multipart/report delivery-status "
		    "3 text/plain message/delivery-status text/rfc822-headers "
		    "2 0" },
		{ &golden_mixed, orig_lf, "multipart/report delivery-status "
		    "3 text/plain message/delivery-status text/rfc822-headers "
		    "3 0" },
		{ &golden_delay, orig_lf, "multipart/report delivery-status "
		    "3 text/plain message/delivery-status text/rfc822-headers "
		    "2 0" },
		{ &global, "Subject: \xc3\xa9t\xc3\xa9\r\n\r\n",
		    "multipart/report delivery-status 3 text/plain "
		    "message/global-delivery-status message/global-headers "
		    "1 0" },
	};
	char path[] = "/tmp/test_dsn.XXXXXX", cmd[2048], got[512];
	size_t i, n;
	char *o;
	FILE *fp;
	int fd;

	if (access("/usr/bin/python3", X_OK) != 0) {
		printf("test_python_parses: no /usr/bin/python3, skipped\n");
		return;
	}
	global.rcpts = &utf8_rcpt;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(path + strlen(path) - 6, "XXXXXX", 6);
		o = fmt(cases[i].r, cases[i].orig, &n);
		fd = mkstemp(path);
		CHECK(fd != -1);
		if (fd == -1) {
			free(o);
			return;
		}
		CHECK(write(fd, o, n) == (ssize_t)n);
		close(fd);
		free(o);
		snprintf(cmd, sizeof(cmd), "/usr/bin/python3 -c '%s' %s",
		    script, path);
		fp = popen(cmd, "r");
		CHECK(fp != NULL);
		got[0] = '\0';
		if (fp != NULL) {
			if (fgets(got, sizeof(got), fp) == NULL)
				got[0] = '\0';
			got[strcspn(got, "\n")] = '\0';
			CHECK(pclose(fp) == 0);
		}
		CHECK_STR(got, cases[i].want);
		unlink(path);
	}
}

static void
test_no_report(void)
{
	struct dsn_report r = golden_bounce;
	size_t n = 99;

	r.n_rcpts = 0;
	CHECK(dsn_format(&r, orig_lf, strlen(orig_lf), &n) == NULL);
	CHECK(n == 0);
	r = golden_bounce;
	r.rcpts = NULL;
	CHECK(dsn_format(&r, orig_lf, strlen(orig_lf), &n) == NULL);
	/* The null sender never gets a notification. */
	r = golden_bounce;
	r.sender = NULL;
	CHECK(dsn_format(&r, orig_lf, strlen(orig_lf), &n) == NULL);
	r.sender = "";
	CHECK(dsn_format(&r, orig_lf, strlen(orig_lf), &n) == NULL);
	r.sender = "\r\n \t";
	n = 99;
	CHECK(dsn_format(&r, orig_lf, strlen(orig_lf), &n) == NULL);
	CHECK(n == 0);
}

/* The third part of a report on the golden bounce with this original. */
static char *
headers_of(const char *orig, size_t orig_len, struct parsed *p, size_t *n)
{
	char *o = dsn_format(&golden_bounce, orig, orig_len, n);

	if (!parse(o, *n, 1, p)) {
		free(o);
		return NULL;
	}
	return o;
}

#define CHECK_HEADERS(orig, len, want) do {				\
	struct parsed p_;						\
	size_t n_;							\
	char *o_ = headers_of((orig), (len), &p_, &n_);			\
	CHECK(o_ != NULL);						\
	if (o_ != NULL) {						\
		CHECK(p_.body_len[2] == strlen(want));			\
		CHECK(memcmp(p_.body[2], (want), p_.body_len[2]) == 0 ||	\
		    (fprintf(stderr, "  got: %.*s\n",			\
		    (int)(p_.body_len[2] > 300 ? 300 : p_.body_len[2]),	\
		    p_.body[2]), 0));					\
	}								\
	free(o_);							\
} while (0)

static void
test_header_section(void)
{
	static const char junk[] = "A: 1\0x\r\n"
	    "B: bare\rcr \x01\x1f\x7f end\r\n"
	    "C: tab\tkept\n\r\n";

	/* LF-only and CR LF input, up to the empty line. */
	CHECK_HEADERS("A: 1\nB: 2\n\nbody\n", 16, "A: 1\r\nB: 2\r\n");
	CHECK_HEADERS("A: 1\r\nB: 2\r\n\r\nbody\r\n", 20, "A: 1\r\nB: 2\r\n");
	CHECK_HEADERS("A: 1\r\nB: 2\n\r\nbody\n", 18, "A: 1\r\nB: 2\r\n");
	/* Folded fields stay folded. */
	CHECK_HEADERS("A: 1\n 2\n\tthree\n\nx", 17, "A: 1\r\n 2\r\n\tthree\r\n");
	/* No empty line at all: everything, a last line without end too. */
	CHECK_HEADERS("A: 1\nB: 2\n", 10, "A: 1\r\nB: 2\r\n");
	CHECK_HEADERS("A: 1\nB: 2", 9, "A: 1\r\nB: 2\r\n");
	CHECK_HEADERS("A: 1\r\nB: 2\r", 11, "A: 1\r\nB: 2\r\n");
	/* An empty header section, or none given. */
	CHECK_HEADERS("\nA: 1\n", 6, "");
	CHECK_HEADERS("\r\nA: 1\n", 7, "");
	CHECK_HEADERS("\r", 1, "");
	CHECK_HEADERS("", 0, "");
	CHECK_HEADERS(NULL, 0, "");
	CHECK_HEADERS(NULL, 100, "");
	/* The length is the caller's: nothing past it is read. */
	CHECK_HEADERS("A: 1\nB: 2\n\n", 7, "A: 1\r\nB:\r\n");
	/* Binary junk: control bytes (a bare CR too) are spaces, TAB stays. */
	CHECK_HEADERS(junk, sizeof(junk) - 1,
	    "A: 1 x\r\nB: bare cr     end\r\nC: tab\tkept\r\n");
	/* A white-space line is not the empty line. */
	CHECK_HEADERS("A: 1\n \nB: 2\n\nC: 3\n", 19, "A: 1\r\n \r\nB: 2\r\n");
}

static void
test_header_limit(void)
{
	size_t max = DSN_HEADERS_MAX, line = 100, i, lines = max / line;
	char *orig = malloc(max + 64), *want = malloc(max * 2);
	size_t wl = 0;

	/* Lines of 100 bytes (99 + LF); the last one short to end at max. */
	for (i = 0; i < max; i++)
		orig[i] = (i % line == line - 1) ? '\n' : 'a' + (char)(i / line % 26);
	orig[max - 1] = '\n';
	memcpy(orig + max, "\nbody\n", 6);
	/* Exactly DSN_HEADERS_MAX bytes of header section: all of it. */
	for (i = 0; i < lines; i++) {
		memcpy(want + wl, orig + i * line, line - 1);
		wl += line - 1;
		memcpy(want + wl, "\r\n", 2);
		wl += 2;
	}
	memcpy(want + wl, orig + lines * line, max - 1 - lines * line);
	wl += max - 1 - lines * line;
	memcpy(want + wl, "\r\n", 3);
	wl += 2;
	CHECK_HEADERS(orig, max + 6, want);
	/* Without the empty line after it: the same. */
	CHECK_HEADERS(orig, max, want);

	/* One byte more: the last line goes, cut at the line end before. */
	orig[max - 1] = 'z';
	orig[max] = '\n';
	memcpy(orig + max + 1, "\nbody\n", 6);
	want[lines * (line + 1)] = '\0';
	CHECK_HEADERS(orig, max + 7, want);
	/* Also when the original is only the start of the message. */
	CHECK_HEADERS(orig, max + 1, want);
	/* A last line without end within the limit is kept. */
	wl = lines * (line + 1);
	memcpy(want + wl, orig + lines * line, max - lines * line);
	wl += max - lines * line;
	memcpy(want + wl, "\r\n", 3);
	CHECK_HEADERS(orig, max, want);

	/* No line end within the limit: nothing is copied. */
	memset(orig, 'x', max + 10);
	orig[max + 10] = '\n';
	CHECK_HEADERS(orig, max + 11, "");
	/* ...even when an empty line follows it. */
	memcpy(orig + max + 11, "\nbody\n", 6);
	CHECK_HEADERS(orig, max + 17, "");
	free(orig);
	free(want);
}

/* Removes CR LF before white space: RFC 5322 3.2.2 unfolding. */
static size_t
unfold(char *s, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '\r' && i + 2 < n && s[i + 1] == '\n' &&
		    (s[i + 2] == ' ' || s[i + 2] == '\t')) {
			i++;
			continue;
		}
		s[o++] = s[i];
	}
	return o;
}

static void
test_long_header_lines(void)
{
	char *orig = malloc(5000), *copy;
	struct parsed p;
	size_t i, n, l;
	char *o;

	/* 3000 bytes of words: folded before white space, unfolds back. */
	memcpy(orig, "Subject:", 8);
	for (i = 8; i < 3000; i++)
		orig[i] = i % 10 == 0 ? ' ' : 'w';
	orig[3000] = '\n';
	o = headers_of(orig, 3001, &p, &n);
	CHECK(o != NULL);
	if (o != NULL) {
		copy = malloc(p.body_len[2]);
		memcpy(copy, p.body[2], p.body_len[2]);
		l = unfold(copy, p.body_len[2]);
		CHECK(l == 3002);
		CHECK(memcmp(copy, orig, 3000) == 0);
		CHECK(count_in(p.body[2], p.body_len[2], "\r\n") == 4);
		free(copy);
	}
	free(o);

	/* 3000 bytes without white space: cut, each rest after a space. */
	memset(orig, 'x', 3000);
	memcpy(orig, "X-Long:", 7);
	orig[3000] = '\n';
	o = headers_of(orig, 3001, &p, &n);
	CHECK(o != NULL);
	if (o != NULL) {
		CHECK(p.body_len[2] == 998 + 2 + 1 + 997 + 2 + 1 + 997 + 2 +
		    1 + 8 + 2);
		CHECK(memcmp(p.body[2], orig, 998) == 0);
		CHECK(memcmp(p.body[2] + 998, "\r\n x", 4) == 0);
	}
	free(o);

	/* Exactly 998 bytes: one line; 999: two. */
	memset(orig, 'y', 998);
	memcpy(orig, "X-Edge:", 7);
	orig[998] = '\n';
	o = headers_of(orig, 999, &p, &n);
	CHECK(o != NULL && p.body_len[2] == 1000);
	free(o);
	orig[998] = 'y';
	orig[999] = '\n';
	o = headers_of(orig, 1000, &p, &n);
	CHECK(o != NULL && p.body_len[2] == 998 + 2 + 2 + 2);
	free(o);

	/* A UTF-8 character is not cut in two. */
	memset(orig, 'z', 997);
	memcpy(orig, "X-Utf8:", 7);
	memcpy(orig + 997, "\xc3\xa9\xc3\xa9\n", 5);
	o = headers_of(orig, 1002, &p, &n);
	CHECK(o != NULL);
	if (o != NULL) {
		CHECK(memcmp(p.body[2] + 997, "\r\n \xc3\xa9\xc3\xa9\r\n", 9)
		    == 0);
		CHECK(strstr(p.part[2], "message/global-headers") != NULL);
	}
	free(o);
	free(orig);
}

static void
test_global(void)
{
	struct dsn_recipient rc[2] = {
		{ "j\xc3\xb6rg@b\xc3\xbc" "cher.example", DSN_ACTION_FAILED,
		  "5.1.1", "mx.xn--bcher-kva.example",
		  "550 5.1.1 Benutzer unbekannt: \xc3\xbc", 0 },
		{ "bob@example.net", DSN_ACTION_FAILED, "5.1.1", NULL, NULL, 0 },
	};
	struct dsn_report r = golden_bounce;
	struct parsed p;
	size_t n;
	char *o;

	r.rcpts = rc;
	r.n_rcpts = 2;
	o = fmt(&r, orig_lf, &n);
	CHECK(parse(o, n, 2, &p));
	CHECK(strstr(p.head, "Content-Transfer-Encoding: 8bit\r\n") != NULL);
	CHECK(has(p.part[0], p.part_len[0], "Content-Type: text/plain; "
	    "charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"));
	CHECK(has(p.part[1], p.part_len[1], "Content-Type: "
	    "message/global-delivery-status\r\nContent-Transfer-Encoding: "
	    "8bit\r\n\r\n"));
	CHECK(has(p.part[2], p.part_len[2], "Content-Type: "
	    "message/global-headers\r\nContent-Transfer-Encoding: "
	    "8bit\r\n\r\n"));
	CHECK_FIELD(p.body[1], p.body_len[1], "Final-Recipient",
	    "utf-8; j\xc3\xb6rg@b\xc3\xbc" "cher.example");
	CHECK(has(p.body[1], p.body_len[1],
	    "Final-Recipient: rfc822; bob@example.net\r\n"));
	CHECK_FIELD(p.body[1], p.body_len[1], "Diagnostic-Code",
	    "smtp; 550 5.1.1 Benutzer unbekannt: \xc3\xbc");
	CHECK(has(p.body[0], p.body_len[0], "<j\xc3\xb6rg@b\xc3\xbc"
	    "cher.example>: host mx.xn--bcher-kva.example said: 550"));
	CHECK(has(p.body[0], p.body_len[0], "<bob@example.net>: delivery "
	    "failed (status 5.1.1)\r\n"));
	free(o);

	/* A non-ASCII sender alone makes it global. */
	r = golden_bounce;
	r.sender = "\xe7\x94\xb0\xe4\xb8\xad@example.jp";
	o = fmt(&r, orig_lf, &n);
	CHECK(parse(o, n, 1, &p));
	CHECK_FIELD(p.head, p.head_len, "To",
	    "<\xe7\x94\xb0\xe4\xb8\xad@example.jp>");
	CHECK(strstr(o, "message/global-delivery-status") != NULL);
	CHECK_FIELD(p.body[1], p.body_len[1], "Final-Recipient",
	    "rfc822; bob@example.net");
	free(o);

	/* Non-ASCII headers alone make it global too. */
	o = fmt(&golden_bounce, "Subject: \xe6\x97\xa5\xe6\x9c\xac\n\nx", &n);
	CHECK(parse(o, n, 1, &p));
	CHECK(strstr(o, "message/global-headers") != NULL);
	CHECK(p.body_len[2] == 17 &&
	    memcmp(p.body[2], "Subject: \xe6\x97\xa5\xe6\x9c\xac\r\n", 17) == 0);
	free(o);

	/* Not global: a non-ASCII diagnostic and host are '?'; 7-bit out. */
	rc[0].address = "bob@example.net";
	rc[0].remote_mta = "mx.\xc3\xbc.example";
	r = golden_bounce;
	r.rcpts = rc;
	r.n_rcpts = 1;
	o = fmt(&r, orig_lf, &n);
	CHECK(parse(o, n, 1, &p));
	CHECK(strstr(o, "8bit") == NULL && strstr(o, "global") == NULL);
	CHECK_FIELD(p.body[1], p.body_len[1], "Diagnostic-Code",
	    "smtp; 550 5.1.1 Benutzer unbekannt: ??");
	CHECK_FIELD(p.body[1], p.body_len[1], "Remote-MTA",
	    "dns; mx.??.example");
	for (size_t i = 0; i < n; i++)
		CHECK((unsigned char)o[i] < 0x80);
	free(o);

	/* Ill-formed UTF-8 stays out of a global report: '?' each byte. */
	rc[0].address = "a\xc3@example.net";
	rc[0].diagnostic = "bad \xed\xa0\x80 surrogate, \xc0\xaf overlong, "
	    "\xf4\x90\x80\x80 too big, \xf0\x9f\x98\x80 fine";
	o = fmt(&r, "X: \xff\xfe\n\n", &n);
	CHECK(parse(o, n, 1, &p));
	CHECK_FIELD(p.body[1], p.body_len[1], "Final-Recipient",
	    "rfc822; a?@example.net");
	CHECK_FIELD(p.body[1], p.body_len[1], "Diagnostic-Code",
	    "smtp; bad ??? surrogate, ?? overlong, ???? too big, "
	    "\xf0\x9f\x98\x80 fine");
	CHECK(p.body_len[2] == 7 && memcmp(p.body[2], "X: ??\r\n", 7) == 0);
	free(o);
}

static void
test_hostile_values(void)
{
	struct dsn_recipient rc = {
		"bob@example.net\r\nBcc: victim@example.com",
		DSN_ACTION_FAILED, "5.1.1\r\nX-Injected: 1",
		"mx.example.net\r\n\r\n--=_tegami_7A3F09C2B14D5E60-1--",
		"550 no\r\nX-Injected: yes\r\n\r\n"
		"--=_tegami_7A3F09C2B14D5E60-1\r\n"
		"Content-Type: text/html\r\n\r\n<b>x</b>", 1700003600,
	};
	struct dsn_report r = golden_bounce;
	struct parsed p;
	size_t n;
	char *o;

	r.rcpts = &rc;
	r.sender = "alice@example.org>\r\nBcc: victim@example.com\r\nX: <";
	r.queue_id = "7A3F\r\nX-Injected: 2";
	r.reporting_mta = "mail.example.org\r\nX-Injected: 3";
	o = fmt(&r, "Subject: --=_tegami_7A3F09C2B14D5E60-1\n\n", &n);
	CHECK(parse(o, n, 1, &p));
	CHECK(strstr(o, "\nX-Injected") == NULL);
	CHECK(strstr(o, "\nBcc") == NULL);
	CHECK(strstr(o, "\nContent-Type: text/html") == NULL);
	CHECK_STR(p.boundary, "=_tegami_7A3F09C2B14D5E60-1_00000001");
	CHECK_FIELD(p.head, p.head_len, "To", "<alice@example.org> Bcc: "
	    "victim@example.com X: <>");
	CHECK_FIELD(p.head, p.head_len, "From", "Mail Delivery System "
	    "<MAILER-DAEMON@mail.example.org--X-Injected--3>");
	CHECK_FIELD(p.body[1], p.body_len[1], "X-tegami-Queue-ID",
	    "7A3F X-Injected: 2");
	CHECK_FIELD(p.body[1], p.body_len[1], "Final-Recipient",
	    "rfc822; bob@example.net Bcc: victim@example.com");
	CHECK_FIELD(p.body[1], p.body_len[1], "Status", "5.0.0");
	CHECK_FIELD(p.body[1], p.body_len[1], "Diagnostic-Code",
	    "smtp; 550 no X-Injected: yes --=_tegami_7A3F09C2B14D5E60-1 "
	    "Content-Type: text/html <b>x</b>");
	free(o);

	/* Each candidate in the content moves the boundary on once more. */
	o = fmt(&golden_bounce, "A: =_tegami_7A3F09C2B14D5E60-1_00000001\n"
	    "B: =_tegami_7A3F09C2B14D5E60-1_00000002\n\n", &n);
	CHECK(parse(o, n, 1, &p));
	CHECK_STR(p.boundary, "=_tegami_7A3F09C2B14D5E60-1_00000003");
	free(o);
	/* The queue id as seed is in our own Received: field. */
	r = golden_bounce;
	r.boundary_seed = "7A3F09C2B14D5E60";
	o = fmt(&r, "Received: by x with ESMTP id =_tegami_7A3F09C2B14D5E60;"
	    "\n\n", &n);
	CHECK(parse(o, n, 1, &p));
	CHECK_STR(p.boundary, "=_tegami_7A3F09C2B14D5E60_00000001");
	free(o);
}

static void
test_long_values(void)
{
	struct dsn_recipient rc = golden_bob;
	struct dsn_report r = golden_bounce;
	char *diag = malloc(6000), *want, *f;
	struct parsed p;
	size_t i, n, len;
	const char *line, *next;
	char *o;

	/* Words: every status line within 78 bytes, unfolding gives it back. */
	for (i = 0; i < 5999; i++)
		diag[i] = i % 7 == 6 ? ' ' : 'd';
	diag[5998] = 'd';
	diag[5999] = '\0';
	rc.diagnostic = diag;
	r.rcpts = &rc;
	o = fmt(&r, orig_lf, &n);
	CHECK(parse(o, n, 1, &p));
	for (line = p.body[1]; line < p.body[1] + p.body_len[1]; line = next) {
		next = strstr(line, "\r\n") + 2;
		CHECK(next - line - 2 <= 78);
	}
	for (line = p.body[0]; line < p.body[0] + p.body_len[0]; line = next) {
		next = strstr(line, "\r\n") + 2;
		CHECK(next - line - 2 <= 78);
	}
	want = malloc(6100);
	snprintf(want, 6100, "smtp; %s", diag);
	CHECK_FIELD(p.body[1], p.body_len[1], "Diagnostic-Code", want);
	free(o);

	/* One word of 5999 bytes: cut at 998, nothing lost but spaces. */
	memset(diag, 'D', 5999);
	o = fmt(&r, orig_lf, &n);
	CHECK(parse(o, n, 1, &p));
	f = field(p.body[1], p.body_len[1], "Diagnostic-Code");
	CHECK(f != NULL);
	if (f != NULL) {
		len = strlen(f);
		for (i = n = 0; i < len; i++)
			if (f[i] == 'D')
				n++;
		CHECK(n == 5999);
		CHECK(strncmp(f, "smtp; DDDD", 10) == 0);
	}
	free(f);
	free(o);

	/* A long UTF-8 word is cut between characters. */
	for (i = 0; i + 2 <= 5998; i += 2)
		memcpy(diag + i, "\xc3\xa9", 2);
	diag[5998] = '\0';
	rc.address = "\xc3\xa9@example.net";
	o = fmt(&r, orig_lf, &n);
	CHECK(parse(o, n, 1, &p));
	for (line = p.body[1]; line < p.body[1] + p.body_len[1]; line = next) {
		next = strstr(line, "\r\n") + 2;
		CHECK(((unsigned char)next[-3] & 0xC0) != 0xC0);
		CHECK(((unsigned char)*line & 0xC0) != 0x80);
	}
	free(o);
	free(want);
	free(diag);
}

/* The status line of a one-recipient report with this diagnostic. */
static void
check_diag_lines(const char *diag, const char *want)
{
	struct dsn_recipient rc = golden_bob;
	struct dsn_report r = golden_bounce;
	struct parsed p;
	const char *f;
	size_t n;
	char *o;

	rc.diagnostic = diag;
	r.rcpts = &rc;
	o = fmt(&r, NULL, &n);
	CHECK(parse(o, n, 1, &p));
	f = o ? strstr(o, "\r\nDiagnostic-Code: ") : NULL;
	CHECK(f != NULL && strncmp(f + 2, want, strlen(want)) == 0 &&
	    strncmp(f + 2 + strlen(want), "Last-Attempt-Date:", 18) == 0);
	free(o);
}

static void
test_fold_edges(void)
{
	char diag[2000], want[2100];

	/* 78 bytes: one line; 79: folded before the last word. */
	memset(diag, 'x', 50);
	memcpy(diag + 50, " yyyy", 6);
	snprintf(want, sizeof(want), "Diagnostic-Code: smtp; %s\r\n", diag);
	check_diag_lines(diag, want);
	memcpy(diag + 50, " yyyyy", 7);
	snprintf(want, sizeof(want), "Diagnostic-Code: smtp; %.50s\r\n"
	    " yyyyy\r\n", diag);
	check_diag_lines(diag, want);

	/* One word: 998 bytes of line stay one; 999 are cut at 998. */
	memset(diag, 'D', 975);
	diag[975] = '\0';
	snprintf(want, sizeof(want), "Diagnostic-Code: smtp; %s\r\n", diag);
	check_diag_lines(diag, want);
	diag[975] = 'E';
	diag[976] = '\0';
	snprintf(want, sizeof(want), "Diagnostic-Code: smtp; %.975s\r\n"
	    " E\r\n", diag);
	check_diag_lines(diag, want);
	/* ... and 998 + 997 + 1 bytes: the continuation is 998 too. */
	memset(diag, 'D', 975 + 997);
	diag[975 + 997] = 'F';
	diag[975 + 998] = '\0';
	snprintf(want, sizeof(want), "Diagnostic-Code: smtp; %.975s\r\n"
	    " %.997s\r\n F\r\n", diag, diag);
	check_diag_lines(diag, want);

	/* A short word after a long one is not folded away from it. */
	memset(diag, 'G', 100);
	memcpy(diag + 100, " h", 3);
	snprintf(want, sizeof(want), "Diagnostic-Code: smtp; %.100s\r\n"
	    " h\r\n", diag);
	check_diag_lines(diag, want);
}

static void
test_status_and_defaults(void)
{
	const struct { enum dsn_action a; const char *in, *want; } cases[] = {
		{ DSN_ACTION_FAILED, "5.1.1", "5.1.1" },
		{ DSN_ACTION_FAILED, "4.4.7", "4.4.7" },
		{ DSN_ACTION_FAILED, "5.123.999", "5.123.999" },
		{ DSN_ACTION_FAILED, "", "5.0.0" },
		{ DSN_ACTION_FAILED, NULL, "5.0.0" },
		{ DSN_ACTION_FAILED, "2.0.0", "5.0.0" },
		{ DSN_ACTION_FAILED, "5.1", "5.0.0" },
		{ DSN_ACTION_FAILED, "5.1.", "5.0.0" },
		{ DSN_ACTION_FAILED, "5..1", "5.0.0" },
		{ DSN_ACTION_FAILED, "5.1234.1", "5.0.0" },
		{ DSN_ACTION_FAILED, "5.1.1234", "5.0.0" },
		{ DSN_ACTION_FAILED, "5.1.1 ", "5.0.0" },
		{ DSN_ACTION_FAILED, "55.1.1", "5.0.0" },
		{ DSN_ACTION_DELAYED, "4.4.1", "4.4.1" },
		{ DSN_ACTION_DELAYED, "5.1.1", "4.0.0" },
		{ DSN_ACTION_DELAYED, "", "4.0.0" },
	};
	struct dsn_recipient rc = { "bob@example.net", DSN_ACTION_FAILED,
	    NULL, NULL, NULL, 0 };
	struct dsn_report r = golden_bounce;
	struct parsed p;
	const char *want;
	size_t i, n;
	char *o;

	r.rcpts = &rc;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rc.action = cases[i].a;
		rc.status = cases[i].in;
		o = fmt(&r, orig_lf, &n);
		CHECK(parse(o, n, 1, &p));
		CHECK_FIELD(p.body[1], p.body_len[1], "Status", cases[i].want);
		free(o);
	}

	/* No remote MTA, no diagnostic, no dates: those fields are absent. */
	rc.action = DSN_ACTION_FAILED;
	rc.status = "5.4.4";
	rc.remote_mta = "";
	rc.diagnostic = " \r\n ";
	r.arrival = 0;
	r.queue_id = NULL;
	r.reporting_mta = NULL;
	o = fmt(&r, NULL, &n);
	CHECK(parse(o, n, 1, &p));
	CHECK(strstr(o, "Remote-MTA") == NULL);
	CHECK(strstr(o, "Diagnostic-Code") == NULL);
	CHECK(strstr(o, "Arrival-Date") == NULL);
	CHECK(strstr(o, "Last-Attempt-Date") == NULL);
	CHECK(strstr(o, "X-tegami-Queue-ID") == NULL);
	CHECK(strstr(o, "Will-Retry-Until") == NULL);
	want = "Reporting-MTA: dns; localhost\r\n\r\n"
	    "Final-Recipient: rfc822; bob@example.net\r\n"
	    "Action: failed\r\nStatus: 5.4.4\r\n";
	CHECK(p.body_len[1] == strlen(want) &&
	    memcmp(p.body[1], want, strlen(want)) == 0);
	CHECK(has(p.body[0], p.body_len[0], "\r\n\r\n<bob@example.net>: "
	    "delivery failed (status 5.4.4)\r\n"));
	free(o);

	/* Remote MTA but no reply; a delayed one. */
	rc.remote_mta = "mx.example.net";
	rc.action = DSN_ACTION_DELAYED;
	rc.status = "4.4.2";
	o = fmt(&r, NULL, &n);
	CHECK(parse(o, n, 1, &p));
	CHECK(has(p.body[0], p.body_len[0], "<bob@example.net>: delivery "
	    "to host mx.example.net is delayed (status 4.4.2)\r\n"));
	free(o);

	/* A NULL address is an empty one; an odd host name is made a name. */
	rc.address = NULL;
	r.reporting_mta = "..m\xc3\xa4il..example.org..";
	o = fmt(&r, NULL, &n);
	CHECK(parse(o, n, 1, &p));
	CHECK_FIELD(p.body[1], p.body_len[1], "Final-Recipient", "rfc822;");
	CHECK_FIELD(p.body[1], p.body_len[1], "Reporting-MTA",
	    "dns; m--il.example.org");
	free(o);
}

static void
test_dates(void)
{
	struct dsn_recipient rc = golden_carol;
	struct dsn_report r = golden_delay;
	struct parsed p;
	size_t n;
	char *o;

	rc.last_attempt = 1;
	r.arrival = 1709164800;		/* a leap day */
	r.now = 253402300799ULL;	/* the last second of 9999 */
	r.give_up_days = 1;
	r.warn_hours = 1;
	r.rcpts = &rc;
	o = fmt(&r, NULL, &n);
	CHECK(parse(o, n, 1, &p));
	CHECK_FIELD(p.head, p.head_len, "Date",
	    "Fri, 31 Dec 9999 23:59:59 +0000");
	CHECK_FIELD(p.head, p.head_len, "Message-ID",
	    "<99991231235959.0B1C2D3E4F506172-2@mail.example.org>");
	CHECK_FIELD(p.body[1], p.body_len[1], "Arrival-Date",
	    "Thu, 29 Feb 2024 00:00:00 +0000");
	CHECK_FIELD(p.body[1], p.body_len[1], "Last-Attempt-Date",
	    "Thu, 01 Jan 1970 00:00:01 +0000");
	CHECK_FIELD(p.body[1], p.body_len[1], "Will-Retry-Until",
	    "Fri, 01 Mar 2024 00:00:00 +0000");
	CHECK(has(p.body[0], p.body_len[0], "Your message has been waiting "
	    "for 1 hour and has not yet been delivered\r\nto the recipients "
	    "below. The mail system will keep trying until the\r\nmessage "
	    "is 1 day old, and will"));
	free(o);

	/* Past the year 9999: left out; now 0 is the current time. */
	r.arrival = 253402300800ULL;
	rc.last_attempt = UINT64_MAX;
	r.now = 0;
	r.warn_hours = 0;
	r.give_up_days = 0;
	o = fmt(&r, NULL, &n);
	CHECK(parse(o, n, 1, &p));
	CHECK(strstr(o, "Arrival-Date") == NULL);
	CHECK(strstr(o, "Last-Attempt-Date") == NULL);
	CHECK(strstr(o, "Will-Retry-Until") == NULL);
	CHECK(strstr(o, "Date: Thu, 01 Jan 1970") == NULL);
	CHECK(has(p.body[0], p.body_len[0], "Your message has not yet been "
	    "delivered to the recipients below. The\r\nmail system will keep "
	    "trying, and will tell you if it has to give up.\r\n"));
	free(o);

	/* An arrival so late that adding the days overflows: no field. */
	r.arrival = UINT64_MAX - 10;
	r.give_up_days = 5;
	o = fmt(&r, NULL, &n);
	CHECK(parse(o, n, 1, &p));
	CHECK(strstr(o, "Will-Retry-Until") == NULL);
	free(o);
}

static void
test_seed(void)
{
	struct dsn_report r = golden_bounce;
	struct parsed p1, p2;
	size_t n1, n2;
	char *o1, *o2;

	r.boundary_seed = NULL;
	o1 = fmt(&r, orig_lf, &n1);
	o2 = fmt(&r, orig_lf, &n2);
	CHECK(parse(o1, n1, 1, &p1) && parse(o2, n2, 1, &p2));
	CHECK(strlen(p1.boundary) == 9 + 16);
	CHECK(strcmp(p1.boundary, p2.boundary) != 0);
	free(o1);
	free(o2);

	r.boundary_seed = "a.b/c=d e\r\n\xc3\xa9_-";
	o1 = fmt(&r, orig_lf, &n1);
	CHECK(parse(o1, n1, 1, &p1));
	CHECK_STR(p1.boundary, "=_tegami_a=2Eb=2Fc=3Dd=20e=0D=0A=C3=A9_-");
	CHECK_FIELD(p1.head, p1.head_len, "Message-ID", "<20231114231500."
	    "a=2Eb=2Fc=3Dd=20e=0D=0A=C3=A9_-@mail.example.org>");
	free(o1);

	/* A long seed is cut to fit the 70 bytes of a boundary. */
	r.boundary_seed = "0123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789";
	o1 = fmt(&r, "A: =_tegami_0123456789012345678901234567890123456789\n"
	    "\n", &n1);
	CHECK(parse(o1, n1, 1, &p1));
	CHECK_STR(p1.boundary, "=_tegami_0123456789012345678901234567890123456789"
	    "_00000001");
	CHECK(strlen(p1.boundary) <= 70);
	free(o1);
}

static void
test_many_recipients(void)
{
	struct dsn_recipient *rc = calloc(1000, sizeof(*rc));
	struct dsn_report r = golden_mixed;
	struct parsed p;
	char (*addr)[32] = calloc(1000, 32);
	size_t i, n;
	char *o;

	for (i = 0; i < 1000; i++) {
		snprintf(addr[i], 32, "user%zu@example.net", i);
		rc[i] = golden_two[i % 2];
		rc[i].address = addr[i];
	}
	r.rcpts = rc;
	r.n_rcpts = 1000;
	o = fmt(&r, orig_lf, &n);
	CHECK(parse(o, n, 1000, &p));
	CHECK(count_in(p.body[1], p.body_len[1], "Action: failed\r\n") == 500);
	CHECK(count_in(p.body[1], p.body_len[1], "Action: delayed\r\n") == 500);
	CHECK(count_in(p.body[0], p.body_len[0], "\r\n<user") == 1000);
	free(o);
	free(rc);
	free(addr);
}

int
main(void)
{
	UNIT_RUN(test_golden);
	UNIT_RUN(test_python_parses);
	UNIT_RUN(test_no_report);
	UNIT_RUN(test_header_section);
	UNIT_RUN(test_header_limit);
	UNIT_RUN(test_long_header_lines);
	UNIT_RUN(test_global);
	UNIT_RUN(test_hostile_values);
	UNIT_RUN(test_long_values);
	UNIT_RUN(test_fold_edges);
	UNIT_RUN(test_status_and_defaults);
	UNIT_RUN(test_dates);
	UNIT_RUN(test_seed);
	UNIT_RUN(test_many_recipients);
	return unit_finish();
}
