/*
 * Tests for the SMTP client's reply parser (RFC 5321 4.2, 4.1.1.1; RFC 3463,
 * RFC 2034, RFC 1870, RFC 4954): golden replies of real servers, every
 * boundary of the limits, hostile replies (security-tests.md 42).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_reply.h"
#include "unit.h"

#define MORE	SMTP_REPLY_MORE
#define DONE	SMTP_REPLY_DONE
#define BAD	SMTP_REPLY_BAD

/* Feeds one NUL-terminated line to a fresh parser. */
static enum smtp_reply_result
one(const char *line, struct smtp_reply *r)
{
	struct smtp_reply_parser p;

	smtp_reply_parser_init(&p);
	return smtp_reply_feed(&p, line, strlen(line), r);
}

/*
 * What a client reading the wire does: lines end in CR LF, each is fed
 * without it. Feeds from *pos until a reply is DONE or BAD (or the wire
 * ends: MORE) and moves *pos past what was fed.
 */
static enum smtp_reply_result
wire(struct smtp_reply_parser *p, const char *w, size_t *pos,
    struct smtp_reply *r)
{
	enum smtp_reply_result res = MORE;
	const char *s, *e;

	while (w[*pos] != '\0') {
		s = w + *pos;
		if ((e = strstr(s, "\r\n")) == NULL)
			return BAD;	/* test data error: shows as failure */
		*pos += (size_t)(e - s) + 2;
		if ((res = smtp_reply_feed(p, s, (size_t)(e - s), r)) != MORE)
			return res;
	}
	return res;
}

/* A whole wire text that is exactly one reply. */
static enum smtp_reply_result
wire1(const char *w, struct smtp_reply *r)
{
	struct smtp_reply_parser p;
	enum smtp_reply_result res;
	size_t pos = 0;

	smtp_reply_parser_init(&p);
	res = wire(&p, w, &pos, r);
	if (w[pos] != '\0')
		return BAD;
	return res;
}

static const char *
summary(const struct smtp_reply *r)
{
	static char buf[8192];

	return smtp_reply_summary(r, buf, sizeof(buf));
}

static void
test_single_line(void)
{
	struct smtp_reply r;

	CHECK(one("250 OK", &r) == DONE);
	CHECK(r.code == 250);
	CHECK_STR(r.status, "");
	CHECK_STR(r.text, "OK\n");
	CHECK(r.text_len == 3);
	CHECK(r.n_lines == 1);
	CHECK(!r.truncated);

	CHECK(one("354 End data with <CR><LF>.<CR><LF>", &r) == DONE);
	CHECK(r.code == 354);
	CHECK_STR(r.text, "End data with <CR><LF>.<CR><LF>\n");
	CHECK(one("200 x", &r) == DONE && r.code == 200);
	CHECK(one("599 x", &r) == DONE && r.code == 599);
	CHECK(one("421 bye", &r) == DONE && r.code == 421);
	/* only the separator is taken: more spaces are text */
	CHECK(one("250  two  spaces ", &r) == DONE);
	CHECK_STR(r.text, " two  spaces \n");
}

static void
test_no_text(void)
{
	struct smtp_reply r;

	CHECK(one("250", &r) == DONE);
	CHECK(r.code == 250 && r.n_lines == 1 && r.text_len == 1);
	CHECK_STR(r.text, "\n");
	CHECK_STR(summary(&r), "250");
	CHECK(one("250 ", &r) == DONE);
	CHECK_STR(r.text, "\n");
	CHECK_STR(summary(&r), "250");
}

static void
test_multiline(void)
{
	struct smtp_reply_parser p;
	struct smtp_reply r;

	smtp_reply_parser_init(&p);
	CHECK(smtp_reply_feed(&p, "250-a", 5, &r) == MORE);
	CHECK(p.in_reply);
	CHECK(smtp_reply_feed(&p, "250-", 4, &r) == MORE);
	CHECK(smtp_reply_feed(&p, "250-b c", 7, &r) == MORE);
	CHECK(smtp_reply_feed(&p, "250 d", 5, &r) == DONE);
	CHECK(!p.in_reply);
	CHECK(r.code == 250 && r.n_lines == 4);
	CHECK_STR(r.text, "a\n\nb c\nd\n");
	CHECK(r.text_len == 9);
	CHECK_STR(summary(&r), "250 a b c d");

	/* security-tests.md 42: a 3-char last line ends the reply */
	CHECK(wire1("553-a\r\n553\r\n", &r) == DONE);
	CHECK(r.code == 553 && r.n_lines == 2);
	CHECK_STR(r.text, "a\n\n");
	CHECK_STR(summary(&r), "553 a");
}

/* Replies one after another on one parser, as with PIPELINING. */
static void
test_sequence(void)
{
	const char *w = "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	    "550 5.1.1 <n@x>: Recipient address rejected\r\n"
	    "354 End data with <CR><LF>.<CR><LF>\r\n";
	struct smtp_reply_parser p;
	struct smtp_reply r;
	size_t pos = 0;

	smtp_reply_parser_init(&p);
	CHECK(wire(&p, w, &pos, &r) == DONE);
	CHECK(r.code == 250 && r.n_lines == 1);
	CHECK_STR(r.status, "2.1.0");
	CHECK(wire(&p, w, &pos, &r) == DONE);
	CHECK_STR(r.status, "2.1.5");
	CHECK(wire(&p, w, &pos, &r) == DONE);
	CHECK(r.code == 550 && r.n_lines == 1);
	CHECK_STR(r.status, "5.1.1");
	CHECK_STR(r.text, "<n@x>: Recipient address rejected\n");
	CHECK(wire(&p, w, &pos, &r) == DONE);
	CHECK(r.code == 354);
	CHECK_STR(r.status, "");
	CHECK(w[pos] == '\0');
}

static void
test_bad_code(void)
{
	static const char *bad[] = {
		"", "2", "25", "2500", "2500 x", "250x", "250\tx", "250_x",
		"250=x", "600 x", "600", "699 x", "199", "199 x", "100 x",
		"000", "099 x", "999 x", "abc", "ok", "OK 250", " 250 x",
		"2a0 x", "25a x", "a50 x", "-250 x", "+250 x", "250.x",
		"\xb2" "50 x", "25\xb0 x", "\xef\xbc\x92" "50 x",
	};
	struct smtp_reply r;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r.code = 777;
		if (one(bad[i], &r) != BAD) {
			fprintf(stderr, "  not BAD: \"%s\"\n", bad[i]);
			CHECK(0);
		}
		CHECK(r.code == 777);	/* *reply_r untouched */
	}
}

/* The code of each line must be the code of the first. */
static void
test_code_change(void)
{
	struct smtp_reply_parser p;
	struct smtp_reply r;

	smtp_reply_parser_init(&p);
	r.code = 777;
	CHECK(smtp_reply_feed(&p, "250-a", 5, &r) == MORE);
	CHECK(r.code == 777);
	CHECK(smtp_reply_feed(&p, "251 b", 5, &r) == BAD);
	CHECK(r.code == 777);
	CHECK(!p.in_reply);
	/* a new reply starts afresh after BAD */
	CHECK(smtp_reply_feed(&p, "251 b", 5, &r) == DONE);
	CHECK(r.code == 251 && r.n_lines == 1);
	CHECK_STR(r.text, "b\n");

	CHECK(wire1("250-a\r\n550 b\r\n", &r) == BAD);
	CHECK(wire1("550-a\r\n450 b\r\n", &r) == BAD);
	CHECK(wire1("250-a\r\n250-b\r\n25 c\r\n", &r) == BAD);
	CHECK(wire1("250-a\r\n250-b\r\n2500 c\r\n", &r) == BAD);
	/* a continuation line without a separator */
	CHECK(wire1("250-a\r\n250x\r\n", &r) == BAD);
	/* security-tests.md 42: a reply's text line without a code */
	CHECK(wire1("250-a\r\ntype: mda\r\n250 b\r\n", &r) == BAD);
}

static void
test_nul(void)
{
	struct smtp_reply_parser p;
	struct smtp_reply r;

	smtp_reply_parser_init(&p);
	CHECK(smtp_reply_feed(&p, "250 a\0b", 7, &r) == BAD);
	CHECK(smtp_reply_feed(&p, "250 a\0", 6, &r) == BAD);
	CHECK(smtp_reply_feed(&p, "25\0 a", 5, &r) == BAD);
	CHECK(smtp_reply_feed(&p, "250\0", 4, &r) == BAD);
	CHECK(smtp_reply_feed(&p, "250-a", 5, &r) == MORE);
	CHECK(smtp_reply_feed(&p, "250 \0", 5, &r) == BAD);
	CHECK(!p.in_reply);
	CHECK(smtp_reply_feed(&p, "250 ok", 6, &r) == DONE);
	CHECK(r.n_lines == 1);
}

/* A CR or LF left inside a line would fake line breaks (test 42). */
static void
test_cr_lf(void)
{
	struct smtp_reply r;

	CHECK(one("250 a\rb", &r) == BAD);
	CHECK(one("250 a\nb", &r) == BAD);
	CHECK(one("250 a\r", &r) == BAD);
	CHECK(one("250 \n", &r) == BAD);
	CHECK(one("250-x\ntype: mda\nmda-exec: id", &r) == BAD);
	CHECK(one("250\r", &r) == BAD);
	CHECK(one("250\n", &r) == BAD);
	CHECK(wire1("250-a\r\n250 b\rc\r\n", &r) == BAD);
}

static void
test_8bit(void)
{
	struct smtp_reply r;

	CHECK(one("250 caf\xc3\xa9 \xff\x80 \x01\x1b[1m\x7f\tend", &r) == DONE);
	CHECK_STR(r.text, "caf\xc3\xa9 \xff\x80 \x01\x1b[1m\x7f\tend\n");
	CHECK_STR(summary(&r), "250 caf?? ?? ??[1m??end");
	CHECK(one("550 5.1.1 \xe5\xae\x9b\xe5\x85\x88", &r) == DONE);
	CHECK_STR(r.status, "5.1.1");
	CHECK_STR(summary(&r), "550 5.1.1 ??????");
}

static char *
make_line(const char *prefix, size_t len, char fill)
{
	char *s;
	size_t n = strlen(prefix);

	if ((s = malloc(len + 1)) == NULL)
		abort();
	memcpy(s, prefix, n);
	memset(s + n, fill, len - n);
	s[len] = '\0';
	return s;
}

static void
test_line_max(void)
{
	struct smtp_reply_parser p;
	struct smtp_reply r;
	char *s;

	s = make_line("250 ", SMTP_REPLY_LINE_MAX, 'x');
	CHECK(one(s, &r) == DONE);
	CHECK(r.text_len == SMTP_REPLY_LINE_MAX - 4 + 1);
	CHECK(!r.truncated);
	CHECK(r.text[r.text_len - 1] == '\n' && r.text[r.text_len] == '\0');
	free(s);

	s = make_line("250 ", SMTP_REPLY_LINE_MAX + 1, 'x');
	CHECK(one(s, &r) == BAD);
	free(s);

	/* over the limit mid-reply ends that reply */
	smtp_reply_parser_init(&p);
	CHECK(smtp_reply_feed(&p, "250-a", 5, &r) == MORE);
	s = make_line("250 ", SMTP_REPLY_LINE_MAX + 1, 'x');
	CHECK(smtp_reply_feed(&p, s, strlen(s), &r) == BAD);
	CHECK(!p.in_reply);
	free(s);

	/* security-tests.md 42: a 1 MB reply line */
	s = make_line("250 ", 1024 * 1024, 'A');
	CHECK(one(s, &r) == BAD);
	free(s);
}

/* Feeds n lines "250-i" and a last one; returns the first non-MORE. */
static enum smtp_reply_result
feed_n(struct smtp_reply_parser *p, size_t n, struct smtp_reply *r,
    size_t *fed_r)
{
	enum smtp_reply_result res = MORE;
	char line[32];
	size_t i;

	smtp_reply_parser_init(p);
	for (i = 0; i < n && res == MORE; i++) {
		snprintf(line, sizeof(line), "250%c%zu", i + 1 == n ? ' ' : '-',
		    i);
		res = smtp_reply_feed(p, line, strlen(line), r);
	}
	*fed_r = i;
	return res;
}

static void
test_lines_max(void)
{
	struct smtp_reply_parser p;
	struct smtp_reply r;
	size_t fed;
	char line[8];

	CHECK(feed_n(&p, SMTP_REPLY_LINES_MAX, &r, &fed) == DONE);
	CHECK(fed == SMTP_REPLY_LINES_MAX);
	CHECK(r.n_lines == SMTP_REPLY_LINES_MAX);
	CHECK(!r.truncated);
	CHECK(strncmp(r.text, "0\n1\n2\n", 6) == 0);

	/* one more: the line over the limit is BAD, whichever kind */
	CHECK(feed_n(&p, SMTP_REPLY_LINES_MAX + 1, &r, &fed) == BAD);
	CHECK(fed == SMTP_REPLY_LINES_MAX + 1);
	CHECK(!p.in_reply);

	CHECK(feed_n(&p, SMTP_REPLY_LINES_MAX + 2, &r, &fed) == BAD);
	CHECK(fed == SMTP_REPLY_LINES_MAX + 1);

	/* a 3-char line counts as a line too */
	smtp_reply_parser_init(&p);
	for (fed = 0; fed < SMTP_REPLY_LINES_MAX; fed++)
		CHECK(smtp_reply_feed(&p, "250-", 4, &r) == MORE);
	CHECK(smtp_reply_feed(&p, "250", 3, &r) == BAD);

	/* security-tests.md 42: a 1 MB reply in lines that are fine */
	smtp_reply_parser_init(&p);
	for (fed = 0; fed < 1024 * 1024 / 8; fed++) {
		snprintf(line, sizeof(line), "250-%03zu", fed % 1000);
		if (smtp_reply_feed(&p, line, 7, &r) != MORE)
			break;
	}
	CHECK(fed == SMTP_REPLY_LINES_MAX);
}

/* Three lines whose texts are a, b and c bytes long. */
static enum smtp_reply_result
three(size_t a, size_t b, size_t c, struct smtp_reply *r)
{
	struct smtp_reply_parser p;
	enum smtp_reply_result res;
	char *s;

	smtp_reply_parser_init(&p);
	s = make_line("250-", 4 + a, 'a');
	res = smtp_reply_feed(&p, s, strlen(s), r);
	free(s);
	if (res != MORE)
		return BAD;
	s = make_line("250-", 4 + b, 'b');
	res = smtp_reply_feed(&p, s, strlen(s), r);
	free(s);
	if (res != MORE)
		return BAD;
	s = make_line("250 ", 4 + c, 'c');
	res = smtp_reply_feed(&p, s, strlen(s), r);
	free(s);
	return res;
}

static void
test_text_max(void)
{
	struct smtp_reply_parser p;
	struct smtp_reply r;
	const size_t third = (SMTP_REPLY_TEXT_MAX - 1) / 3 - 1;
	size_t i;
	char *s;

	/* (third + 1) * 3 == SMTP_REPLY_TEXT_MAX - 1: fits exactly */
	CHECK((third + 1) * 3 == SMTP_REPLY_TEXT_MAX - 1);
	CHECK(three(third, third, third, &r) == DONE);
	CHECK(!r.truncated);
	CHECK(r.text_len == SMTP_REPLY_TEXT_MAX - 1);
	CHECK(r.text[r.text_len - 1] == '\n' && r.text[r.text_len] == '\0');

	/* one more byte: the '\n' does not fit, the last line is cut */
	CHECK(three(third, third, third + 1, &r) == DONE);
	CHECK(r.truncated);
	CHECK(r.text_len == SMTP_REPLY_TEXT_MAX - 1);
	CHECK(r.text[r.text_len - 1] == 'c' && r.text[r.text_len] == '\0');
	CHECK(r.n_lines == 3);

	CHECK(three(third, third, third - 1, &r) == DONE);
	CHECK(!r.truncated && r.text_len == SMTP_REPLY_TEXT_MAX - 2);

	/* long lines: the third is cut mid-way, the rest only counted */
	smtp_reply_parser_init(&p);
	s = make_line("250-", SMTP_REPLY_LINE_MAX, 'x');
	for (i = 0; i < 5; i++)
		CHECK(smtp_reply_feed(&p, s, strlen(s), &r) == MORE);
	CHECK(smtp_reply_feed(&p, "250 last", 8, &r) == DONE);
	CHECK(r.truncated && r.n_lines == 6);
	CHECK(r.text_len == SMTP_REPLY_TEXT_MAX - 1);
	CHECK(strchr(r.text, 'l') == NULL);
	CHECK(strlen(r.text) == r.text_len);
	free(s);

	/* the next reply on the same parser starts clean */
	CHECK(smtp_reply_feed(&p, "250 ok", 6, &r) == DONE);
	CHECK(!r.truncated && r.text_len == 3 && r.n_lines == 1);
}

static void
test_status(void)
{
	static const struct {
		const char *line, *status, *text;
	} t[] = {
		{ "550 5.1.1 User unknown", "5.1.1", "User unknown\n" },
		{ "550 5.1.1", "5.1.1", "\n" },
		{ "550 5.1.1 ", "5.1.1", "\n" },
		{ "550 5.1.1  two", "5.1.1", " two\n" },
		{ "250 2.0.0 Ok: queued as 4Xyz", "2.0.0", "Ok: queued as 4Xyz\n" },
		{ "451 4.7.1 Try again", "4.7.1", "Try again\n" },
		{ "550 5.999.999 x", "5.999.999", "x\n" },
		{ "550 5.0.0 x", "5.0.0", "x\n" },
		/* RFC 3463: 1*3digit, so leading zeros are in the grammar */
		{ "550 5.01.001 x", "5.01.001", "x\n" },
		/* a class that is not the reply's is not taken */
		{ "450 5.1.1 x", "", "5.1.1 x\n" },
		{ "550 4.1.1 x", "", "4.1.1 x\n" },
		{ "250 5.0.0 x", "", "5.0.0 x\n" },
		{ "550 2.0.0 x", "", "2.0.0 x\n" },
		/* class 3 has none */
		{ "354 3.0.0 go", "", "3.0.0 go\n" },
		/* incomplete or too long */
		{ "550 5.1 x", "", "5.1 x\n" },
		{ "550 5.1", "", "5.1\n" },
		{ "550 5. x", "", "5. x\n" },
		{ "550 5", "", "5\n" },
		{ "550 5.1.", "", "5.1.\n" },
		{ "550 5..1 x", "", "5..1 x\n" },
		{ "550 5.1.1000 x", "", "5.1.1000 x\n" },
		{ "550 5.1000.1 x", "", "5.1000.1 x\n" },
		{ "550 55.1.1 x", "", "55.1.1 x\n" },
		{ "550 5.1.1.1 x", "", "5.1.1.1 x\n" },
		{ "550 5.1.1x", "", "5.1.1x\n" },
		{ "550 5.1.1:", "", "5.1.1:\n" },
		{ "550 5.1.1\tx", "", "5.1.1\tx\n" },
		{ "550 5.a.1 x", "", "5.a.1 x\n" },
		{ "550 5.1.-1 x", "", "5.1.-1 x\n" },
		{ "550  5.1.1 x", "", " 5.1.1 x\n" },
		{ "550 x 5.1.1", "", "x 5.1.1\n" },
		{ "5505.1.1 x", NULL, NULL },
	};
	struct smtp_reply r;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (t[i].status == NULL) {
			CHECK(one(t[i].line, &r) == BAD);
			continue;
		}
		CHECK(one(t[i].line, &r) == DONE);
		CHECK_STR(r.status, t[i].status);
		CHECK_STR(r.text, t[i].text);
	}
}

/* RFC 2034: the status on every line; only the first line's is taken. */
static void
test_status_multiline(void)
{
	struct smtp_reply r;

	CHECK(wire1("550-5.1.1 a\r\n550-5.1.1 b\r\n550 5.1.1\r\n", &r) ==
	    DONE);
	CHECK_STR(r.status, "5.1.1");
	CHECK_STR(r.text, "a\nb\n\n");
	CHECK_STR(summary(&r), "550 5.1.1 a b");

	/* a different one on a later line stays in the text */
	CHECK(wire1("550-5.1.1 a\r\n550 5.7.1 b\r\n", &r) == DONE);
	CHECK_STR(r.status, "5.1.1");
	CHECK_STR(r.text, "a\n5.7.1 b\n");

	/* none on the first line: none taken from later ones */
	CHECK(wire1("550-first\r\n550 5.1.1 x\r\n", &r) == DONE);
	CHECK_STR(r.status, "");
	CHECK_STR(r.text, "first\n5.1.1 x\n");

	/* a prefix of the status is not the status */
	CHECK(wire1("550-5.1.10 a\r\n550 5.1.1 b\r\n", &r) == DONE);
	CHECK_STR(r.status, "5.1.10");
	CHECK_STR(r.text, "a\n5.1.1 b\n");
}

static void
test_golden_greetings(void)
{
	struct smtp_reply r;

	CHECK(wire1("220 mail.example.org ESMTP Postfix (Debian/GNU)\r\n", &r)
	    == DONE);
	CHECK(r.code == 220);
	CHECK_STR(r.status, "");
	CHECK_STR(summary(&r), "220 mail.example.org ESMTP Postfix (Debian/GNU)");

	CHECK(wire1("220 mx.google.com ESMTP d1si1234567wmq.1 - gsmtp\r\n",
	    &r) == DONE);
	CHECK(r.code == 220);

	CHECK(wire1("220-mx.example.com ESMTP Exim 4.96 Mon, 01 Jan 2024 "
	    "00:00:00 +0000\r\n220-We do not authorize the use of this "
	    "system to transport unsolicited,\r\n220 and/or bulk e-mail.\r\n",
	    &r) == DONE);
	CHECK(r.code == 220 && r.n_lines == 3);
	CHECK_STR(summary(&r), "220 mx.example.com ESMTP Exim 4.96 Mon, 01 "
	    "Jan 2024 00:00:00 +0000 We do not authorize the use of this "
	    "system to transport unsolicited, and/or bulk e-mail.");

	CHECK(wire1("421 4.7.0 mx.example.org Error: too many connections "
	    "from 192.0.2.1\r\n", &r) == DONE);
	CHECK(r.code == 421);
	CHECK_STR(r.status, "4.7.0");

	CHECK(wire1("554 5.7.1 <bob@example.net>: Relay access denied\r\n",
	    &r) == DONE);
	CHECK_STR(summary(&r), "554 5.7.1 <bob@example.net>: Relay access "
	    "denied");
}

static void
test_golden_gmail_550(void)
{
	struct smtp_reply r;

	CHECK(wire1("550-5.1.1 The email account that you tried to reach "
	    "does not exist. Please try\r\n"
	    "550-5.1.1 double-checking the recipient's email address for "
	    "typos or\r\n"
	    "550-5.1.1 unnecessary spaces. For more information, go to\r\n"
	    "550 5.1.1  https://support.google.com/mail/?p=NoSuchUser "
	    "d1si1234567wmq.1 - gsmtp\r\n", &r) == DONE);
	CHECK(r.code == 550 && r.n_lines == 4);
	CHECK_STR(r.status, "5.1.1");
	CHECK_STR(summary(&r), "550 5.1.1 The email account that you tried "
	    "to reach does not exist. Please try double-checking the "
	    "recipient's email address for typos or unnecessary spaces. For "
	    "more information, go to  https://support.google.com/mail/"
	    "?p=NoSuchUser d1si1234567wmq.1 - gsmtp");

	CHECK(wire1("421-4.7.0 Try again later, closing connection. (EHLO)\r\n"
	    "421-4.7.0 For more information, go to\r\n"
	    "421 4.7.0  https://support.google.com/a/answer/3221692 - gsmtp"
	    "\r\n", &r) == DONE);
	CHECK(r.code == 421);
	CHECK_STR(r.status, "4.7.0");
}

static void
check_ehlo_all_false(const struct smtp_ehlo *e)
{
	CHECK(!e->pipelining && !e->eightbitmime && !e->smtputf8 &&
	    !e->chunking && !e->starttls && !e->enhancedstatuscodes &&
	    !e->dsn && !e->has_size && e->size == 0 && !e->auth_plain &&
	    !e->auth_login);
}

static void
test_ehlo_postfix(void)
{
	struct smtp_reply r;
	struct smtp_ehlo e;

	CHECK(wire1("250-mail.example.org\r\n250-PIPELINING\r\n"
	    "250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n"
	    "250-SMTPUTF8\r\n250 CHUNKING\r\n", &r) == DONE);
	CHECK(r.n_lines == 11);
	smtp_ehlo_parse(&r, &e);
	CHECK(e.pipelining && e.eightbitmime && e.smtputf8 && e.chunking &&
	    e.starttls && e.enhancedstatuscodes && e.dsn);
	CHECK(e.has_size && e.size == 10240000);
	CHECK(!e.auth_plain && !e.auth_login);

	/* after STARTTLS on submission */
	CHECK(wire1("250-mail.example.org\r\n250-PIPELINING\r\n"
	    "250-SIZE 10240000\r\n250-AUTH PLAIN LOGIN\r\n"
	    "250-AUTH=PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n"
	    "250 8BITMIME\r\n", &r) == DONE);
	smtp_ehlo_parse(&r, &e);
	CHECK(e.auth_plain && e.auth_login && !e.starttls && !e.chunking);
}

static void
test_ehlo_exim(void)
{
	struct smtp_reply r;
	struct smtp_ehlo e;

	CHECK(wire1("250-mx.example.com Hello client.example.net "
	    "[192.0.2.1]\r\n250-SIZE 52428800\r\n250-LIMITS MAILMAX=1000 "
	    "RCPTMAX=50000\r\n250-8BITMIME\r\n250-PIPELINING\r\n"
	    "250-PIPE_CONNECT\r\n250-AUTH PLAIN LOGIN CRAM-MD5\r\n"
	    "250-CHUNKING\r\n250-STARTTLS\r\n250-PRDR\r\n250 HELP\r\n", &r) ==
	    DONE);
	smtp_ehlo_parse(&r, &e);
	CHECK(e.has_size && e.size == 52428800);
	CHECK(e.eightbitmime && e.pipelining && e.chunking && e.starttls);
	CHECK(e.auth_plain && e.auth_login);
	CHECK(!e.smtputf8 && !e.dsn && !e.enhancedstatuscodes);
}

static void
test_ehlo_gmail(void)
{
	struct smtp_reply r;
	struct smtp_ehlo e;

	CHECK(wire1("250-smtp.gmail.com at your service, [203.0.113.5]\r\n"
	    "250-SIZE 35882577\r\n250-8BITMIME\r\n250-STARTTLS\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-CHUNKING\r\n"
	    "250 SMTPUTF8\r\n", &r) == DONE);
	smtp_ehlo_parse(&r, &e);
	CHECK(e.has_size && e.size == 35882577);
	CHECK(e.eightbitmime && e.starttls && e.enhancedstatuscodes &&
	    e.pipelining && e.chunking && e.smtputf8);
	CHECK(!e.dsn && !e.auth_plain && !e.auth_login);

	CHECK(wire1("250-smtp.gmail.com at your service, [203.0.113.5]\r\n"
	    "250-SIZE 35882577\r\n250-8BITMIME\r\n"
	    "250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER "
	    "XOAUTH\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n"
	    "250-CHUNKING\r\n250 SMTPUTF8\r\n", &r) == DONE);
	smtp_ehlo_parse(&r, &e);
	CHECK(e.auth_plain && e.auth_login && !e.starttls);
}

/* Parses a 250 reply "250-h\r\n250 LINE\r\n". */
static void
ehlo1(const char *line, struct smtp_ehlo *e)
{
	struct smtp_reply_parser p;
	struct smtp_reply r;

	smtp_reply_parser_init(&p);
	memset(e, 0xa5, sizeof(*e));	/* every field must be set */
	if (smtp_reply_feed(&p, "250-h", 5, &r) != MORE ||
	    smtp_reply_feed(&p, line, strlen(line), &r) != DONE) {
		fprintf(stderr, "  not DONE: \"%s\"\n", line);
		memset(e, 0, sizeof(*e));
		e->size = 1;	/* fails every check below */
		return;
	}
	smtp_ehlo_parse(&r, e);
}

static void
test_ehlo_auth(void)
{
	struct smtp_ehlo e;

	ehlo1("250 AUTH PLAIN LOGIN XOAUTH2", &e);
	CHECK(e.auth_plain && e.auth_login);
	ehlo1("250 AUTH LOGIN", &e);
	CHECK(!e.auth_plain && e.auth_login);
	ehlo1("250 auth plain", &e);
	CHECK(e.auth_plain && !e.auth_login);
	/* the pre-RFC 4954 form */
	ehlo1("250 AUTH=LOGIN", &e);
	CHECK(!e.auth_plain && e.auth_login);
	ehlo1("250 AUTH=PLAIN LOGIN", &e);
	CHECK(e.auth_plain && e.auth_login);
	ehlo1("250 auth=login", &e);
	CHECK(e.auth_login);
	/* malformed or useless */
	ehlo1("250 AUTH", &e);
	check_ehlo_all_false(&e);
	ehlo1("250 AUTH=", &e);
	check_ehlo_all_false(&e);
	ehlo1("250 AUTH= PLAIN", &e);
	check_ehlo_all_false(&e);
	ehlo1("250 AUTH XOAUTH2 CRAM-MD5 PLAINX LOGINS PLAI", &e);
	check_ehlo_all_false(&e);
	ehlo1("250 AUTH PLAIN LOGIN \x01", &e);
	check_ehlo_all_false(&e);
	ehlo1("250 AUTH PLAIN \xc3\xa9", &e);
	check_ehlo_all_false(&e);
	ehlo1("250 AUTHPLAIN", &e);
	check_ehlo_all_false(&e);
	ehlo1("250 XAUTH PLAIN", &e);
	check_ehlo_all_false(&e);
}

static void
test_ehlo_size(void)
{
	static const struct {
		const char *line;
		uint64_t size;
	} t[] = {
		{ "250 SIZE", 0 },
		{ "250 SIZE ", 0 },
		{ "250 SIZE 0", 0 },
		{ "250 SIZE 1", 1 },
		{ "250 size 1000", 1000 },
		{ "250 Size  1000  ", 1000 },
		{ "250 SIZE\t1000", 1000 },
		{ "250 SIZE 0010", 10 },
		{ "250 SIZE 35882577", 35882577 },
		{ "250 SIZE 9223372036854775807", 9223372036854775807ULL },
		{ "250 SIZE 9223372036854775808", (uint64_t)1 << 63 },
		{ "250 SIZE 00000000000000000000009223372036854775808",
		    (uint64_t)1 << 63 },
		{ "250 SIZE 9223372036854775809", 0 },
		{ "250 SIZE 9223372036854775810", 0 },
		{ "250 SIZE 18446744073709551615", 0 },
		{ "250 SIZE 18446744073709551616", 0 },
		{ "250 SIZE 36893488147419103232", 0 },
		{ "250 SIZE 99999999999999999999999999999999", 0 },
		{ "250 SIZE abc", 0 },
		{ "250 SIZE -1", 0 },
		{ "250 SIZE +5", 0 },
		{ "250 SIZE 10x", 0 },
		{ "250 SIZE 0x10", 0 },
		{ "250 SIZE 1e6", 0 },
		{ "250 SIZE 10 20", 0 },
		{ "250 SIZE 10,000", 0 },
	};
	struct smtp_ehlo e;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		ehlo1(t[i].line, &e);
		if (!e.has_size || e.size != t[i].size) {
			fprintf(stderr, "  \"%s\": has_size %d size %llu\n",
			    t[i].line, e.has_size,
			    (unsigned long long)e.size);
			CHECK(0);
		}
		CHECK(!e.pipelining && !e.auth_plain && !e.starttls);
	}
	/* not the SIZE keyword */
	ehlo1("250 SIZE=1000", &e);
	check_ehlo_all_false(&e);
	ehlo1("250 XSIZE 1000", &e);
	check_ehlo_all_false(&e);
	ehlo1("250 SIZE 1000 \x80", &e);
	check_ehlo_all_false(&e);
}

static void
test_ehlo_malformed(void)
{
	struct smtp_reply r;
	struct smtp_ehlo e;

	/* the first line is the greeting, never a keyword */
	CHECK(wire1("250-PIPELINING\r\n250 8BITMIME\r\n", &r) == DONE);
	smtp_ehlo_parse(&r, &e);
	CHECK(!e.pipelining && e.eightbitmime);
	CHECK(one("250 STARTTLS", &r) == DONE);
	smtp_ehlo_parse(&r, &e);
	check_ehlo_all_false(&e);

	/* only a 250 reply offers anything */
	CHECK(wire1("220-h\r\n220 STARTTLS\r\n", &r) == DONE);
	smtp_ehlo_parse(&r, &e);
	check_ehlo_all_false(&e);
	CHECK(wire1("251-h\r\n251 STARTTLS\r\n", &r) == DONE);
	smtp_ehlo_parse(&r, &e);
	check_ehlo_all_false(&e);
	CHECK(wire1("550-h\r\n550 STARTTLS\r\n", &r) == DONE);
	smtp_ehlo_parse(&r, &e);
	check_ehlo_all_false(&e);

	ehlo1("250 pipelining", &e);
	CHECK(e.pipelining);
	ehlo1("250 StartTLS", &e);
	CHECK(e.starttls);
	ehlo1("250 STARTTLS ", &e);
	CHECK(e.starttls);
	ehlo1("250  STARTTLS", &e);
	CHECK(e.starttls);
	ehlo1("250 8bitmime", &e);
	CHECK(e.eightbitmime);
	ehlo1("250 dsn", &e);
	CHECK(e.dsn);
	ehlo1("250 SMTPUTF8", &e);
	CHECK(e.smtputf8);

	ehlo1("250 STARTTLS\xff", &e);
	check_ehlo_all_false(&e);
	ehlo1("250 START TLS", &e);
	check_ehlo_all_false(&e);
	ehlo1("250 STARTTLSX", &e);
	check_ehlo_all_false(&e);
	ehlo1("250 -STARTTLS", &e);
	check_ehlo_all_false(&e);
	ehlo1("250 STARTTLS=yes", &e);
	check_ehlo_all_false(&e);
	ehlo1("250 STARTTLS \x7f", &e);
	check_ehlo_all_false(&e);
	ehlo1("250 STARTTL\x01S", &e);
	check_ehlo_all_false(&e);
	ehlo1("250 X-STARTTLS", &e);
	check_ehlo_all_false(&e);
	ehlo1("250", &e);
	check_ehlo_all_false(&e);
	ehlo1("250 ", &e);
	check_ehlo_all_false(&e);
	/* a status on a later line, none on the first: it is text */
	ehlo1("250 2.0.0 STARTTLS", &e);
	check_ehlo_all_false(&e);
}

/* A keyword on the line that was cut is not believed. */
static void
test_ehlo_truncated(void)
{
	struct smtp_reply_parser p;
	struct smtp_reply r;
	struct smtp_ehlo e;
	char *s;
	size_t used;

	/* two lines leave room for 7 bytes: "SIZE 12345" is cut to "SIZE 12" */
	used = SMTP_REPLY_TEXT_MAX - 1 - 7;
	smtp_reply_parser_init(&p);
	s = make_line("250-", 4 + used / 2 - 1, 'h');
	CHECK(smtp_reply_feed(&p, s, strlen(s), &r) == MORE);
	CHECK(smtp_reply_feed(&p, s, strlen(s), &r) == MORE);
	free(s);
	CHECK(p.reply.text_len == used);
	CHECK(smtp_reply_feed(&p, "250-SIZE 12345", 14, &r) == MORE);
	CHECK(smtp_reply_feed(&p, "250 STARTTLS", 12, &r) == DONE);
	CHECK(r.truncated && r.n_lines == 4);
	CHECK(r.text_len == SMTP_REPLY_TEXT_MAX - 1);
	CHECK(strcmp(r.text + r.text_len - 8, "\nSIZE 12") == 0);
	smtp_ehlo_parse(&r, &e);
	check_ehlo_all_false(&e);
}

static void
test_summary_escape(void)
{
	struct smtp_reply r;

	CHECK(one("250 a\tb\x1b[31mred\x7f\x80\xff~ !", &r) == DONE);
	CHECK_STR(summary(&r), "250 a?b?[31mred???~ !");
	CHECK(wire1("250-\r\n250-\r\n250-x\r\n250-\r\n250\r\n", &r) == DONE);
	CHECK_STR(summary(&r), "250 x");
	CHECK(wire1("550-5.1.1\r\n550 5.1.1\r\n", &r) == DONE);
	CHECK_STR(summary(&r), "550 5.1.1");

	/* a reply not made by the parser: every byte escaped, bounded */
	memset(&r, 0, sizeof(r));
	r.code = 451;
	memset(r.status, '\n', sizeof(r.status));	/* no NUL */
	memcpy(r.text, "a\nb\n", 4);
	r.text_len = 4;
	CHECK_STR(summary(&r), "451 ???????????????? a b");
	r.status[0] = '\0';
	memset(r.text, '\x01', sizeof(r.text));
	r.text_len = sizeof(r.text) + 100;
	CHECK(strlen(summary(&r)) == 4 + sizeof(r.text));
	r.text_len = 0;
	CHECK_STR(summary(&r), "451");
}

/* Every output size from 0 up: a prefix, NUL-terminated, in bounds. */
static void
test_summary_sizes(void)
{
	struct smtp_reply r;
	const char *full;
	char *buf;
	size_t n, len;

	CHECK(wire1("550-5.1.1 first\r\n550 5.1.1 second\r\n", &r) == DONE);
	full = "550 5.1.1 first second";
	CHECK_STR(summary(&r), full);
	len = strlen(full);
	for (n = 0; n <= len + 2; n++) {
		/* heap, exact size: ASan catches one byte too many */
		if ((buf = malloc(n == 0 ? 1 : n)) == NULL)
			abort();
		buf[0] = 'Z';
		CHECK(smtp_reply_summary(&r, buf, n) == buf);
		if (n == 0)
			CHECK(buf[0] == 'Z');
		else {
			CHECK(strlen(buf) == (n - 1 < len ? n - 1 : len));
			CHECK(strncmp(buf, full, strlen(buf)) == 0);
		}
		free(buf);
	}
}

/* *reply_r may be the parser's own reply. */
static void
test_alias(void)
{
	struct smtp_reply_parser p;

	smtp_reply_parser_init(&p);
	CHECK(smtp_reply_feed(&p, "250-a", 5, &p.reply) == MORE);
	CHECK(smtp_reply_feed(&p, "250 2.0.0 b", 11, &p.reply) == DONE);
	CHECK(p.reply.code == 250 && p.reply.n_lines == 2);
	CHECK_STR(p.reply.text, "a\n2.0.0 b\n");
	CHECK_STR(p.reply.status, "");
	CHECK(smtp_reply_feed(&p, "451 4.3.0 c", 11, &p.reply) == DONE);
	CHECK(p.reply.code == 451 && p.reply.n_lines == 1);
	CHECK_STR(p.reply.status, "4.3.0");
	CHECK_STR(p.reply.text, "c\n");
}

/* security-tests.md 42: bytes after the reply stay for the next one. */
static void
test_hostile_sequences(void)
{
	struct smtp_reply_parser p;
	struct smtp_reply r;
	size_t pos = 0;
	const char *w = "220 go\r\n250 x\r\n";

	smtp_reply_parser_init(&p);
	CHECK(wire(&p, w, &pos, &r) == DONE);
	CHECK(r.code == 220 && r.n_lines == 1);
	CHECK_STR(r.text, "go\n");
	CHECK(wire(&p, w, &pos, &r) == DONE);
	CHECK(r.code == 250 && r.n_lines == 1);

	/* a continuation that never ends is bounded */
	CHECK(feed_n(&p, 1000, &r, &pos) == BAD);
	CHECK(pos == SMTP_REPLY_LINES_MAX + 1);
}

int
main(void)
{
	UNIT_RUN(test_single_line);
	UNIT_RUN(test_no_text);
	UNIT_RUN(test_multiline);
	UNIT_RUN(test_sequence);
	UNIT_RUN(test_bad_code);
	UNIT_RUN(test_code_change);
	UNIT_RUN(test_nul);
	UNIT_RUN(test_cr_lf);
	UNIT_RUN(test_8bit);
	UNIT_RUN(test_line_max);
	UNIT_RUN(test_lines_max);
	UNIT_RUN(test_text_max);
	UNIT_RUN(test_status);
	UNIT_RUN(test_status_multiline);
	UNIT_RUN(test_golden_greetings);
	UNIT_RUN(test_golden_gmail_550);
	UNIT_RUN(test_ehlo_postfix);
	UNIT_RUN(test_ehlo_exim);
	UNIT_RUN(test_ehlo_gmail);
	UNIT_RUN(test_ehlo_auth);
	UNIT_RUN(test_ehlo_size);
	UNIT_RUN(test_ehlo_malformed);
	UNIT_RUN(test_ehlo_truncated);
	UNIT_RUN(test_summary_escape);
	UNIT_RUN(test_summary_sizes);
	UNIT_RUN(test_alias);
	UNIT_RUN(test_hostile_sequences);
	return unit_finish();
}
