/*
 * Tests for the pure parts of `tegami sendmail` (sendmail_parse.h): the
 * sendmail(8) command line as cron, mutt, git and PHP call it; RFC 5322
 * 3.4 address lists (groups, comments, quoted names, obsolete forms);
 * CRLF line making with its refusals at and over the limits; the header
 * section (To/Cc/Bcc, Resent-*, Bcc removal) and the fields added.
 */

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/sendmail_parse.h"
#include "unit.h"

#define ERRSZ 256

/* ---- Options ------------------------------------------------------------ */

static int
opts(struct sendmail_options *o, char *err, ...)
{
	char *argv[32];
	va_list ap;
	int argc = 0, rc;

	argv[argc++] = (char *)"sendmail";
	va_start(ap, err);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	err[0] = '\0';
	rc = sendmail_options_parse(argc, argv, o, err, ERRSZ);
	return rc;
}

static void
test_options_common_callers(void)
{
	struct sendmail_options o;
	char err[ERRSZ];

	/* Debian cron */
	CHECK(opts(&o, err, "-FCronDaemon", "-i", "-B8BITMIME", "-oem",
	    "root", NULL) == 0);
	CHECK_STR(o.full_name, "CronDaemon");
	CHECK(o.ignore_dots && !o.extract && o.sender == NULL);
	CHECK(o.n_rcpt_args == 1 && strcmp(o.rcpt_args[0], "root") == 0);
	CHECK(o.mode == SENDMAIL_MODE_DELIVER);
	sendmail_options_free(&o);
	/* PHP's default sendmail_path */
	CHECK(opts(&o, err, "-t", "-i", NULL) == 0);
	CHECK(o.extract && o.ignore_dots && o.n_rcpt_args == 0);
	sendmail_options_free(&o);
	/* mutt */
	CHECK(opts(&o, err, "-oem", "-oi", "--", "a@x.example",
	    "-b@y.example", NULL) == 0);
	CHECK(o.ignore_dots && o.n_rcpt_args == 2);
	CHECK_STR(o.rcpt_args[1], "-b@y.example");
	sendmail_options_free(&o);
	/* git send-email */
	CHECK(opts(&o, err, "-i", "-f", "me@x.example", "a@x.example",
	    "b@x.example", NULL) == 0);
	CHECK_STR(o.sender, "me@x.example");
	CHECK(o.n_rcpt_args == 2);
	sendmail_options_free(&o);
}

static void
test_options_forms(void)
{
	struct sendmail_options o;
	char err[ERRSZ];

	CHECK(opts(&o, err, "-ti", "-fa@b.example", "-F", "Full Name",
	    NULL) == 0);
	CHECK(o.extract && o.ignore_dots);
	CHECK_STR(o.sender, "a@b.example");
	CHECK_STR(o.full_name, "Full Name");
	sendmail_options_free(&o);
	/* bundled with a value at the end: -tf X */
	CHECK(opts(&o, err, "-tf", "x@y.example", "bob", NULL) == 0);
	CHECK(o.extract);
	CHECK_STR(o.sender, "x@y.example");
	CHECK(o.n_rcpt_args == 1);
	sendmail_options_free(&o);
	/* -r is -f; the last one wins */
	CHECK(opts(&o, err, "-r", "a@x.example", "-fb@x.example", NULL) == 0);
	CHECK_STR(o.sender, "b@x.example");
	sendmail_options_free(&o);
	/* options after recipients (getopt permutes) */
	CHECK(opts(&o, err, "bob", "-f", "a@x.example", "carol", "-v",
	    NULL) == 0);
	CHECK(o.n_rcpt_args == 2 && o.verbose);
	CHECK_STR(o.rcpt_args[0], "bob");
	CHECK_STR(o.rcpt_args[1], "carol");
	sendmail_options_free(&o);
	/* empty -f: the null sender */
	CHECK(opts(&o, err, "-f", "", "bob", NULL) == 0);
	CHECK_STR(o.sender, "");
	sendmail_options_free(&o);
	/* ignored ones, with and without values */
	CHECK(opts(&o, err, "-odi", "-odb", "-oQ/var/spool", "-om", "-o7",
	    "-oAfile", "-B", "7BIT", "-N", "never", "-Rhdrs", "-V", "id",
	    "-h", "5", "-L", "lbl", "-X", "/tmp/log", "-O", "a=b", "-Am",
	    "-G", "-U", "-m", "-n", "-pesmtp", "-bm", "x@y.example",
	    NULL) == 0);
	CHECK(!o.ignore_dots && !o.extract && o.n_rcpt_args == 1);
	sendmail_options_free(&o);
	/* -bi and -I: newaliases, nothing to do */
	CHECK(opts(&o, err, "-bi", NULL) == 0 &&
	    o.mode == SENDMAIL_MODE_NOOP);
	sendmail_options_free(&o);
	CHECK(opts(&o, err, "-I", NULL) == 0 &&
	    o.mode == SENDMAIL_MODE_NOOP);
	sendmail_options_free(&o);
	/* nothing at all: deliver, no recipients (the caller complains) */
	CHECK(opts(&o, err, NULL) == 0 && o.n_rcpt_args == 0);
	sendmail_options_free(&o);
}

static void
test_options_refused(void)
{
	static const char *const bad[][3] = {
		{ "-bs", NULL, NULL }, { "-bp", NULL, NULL },
		{ "-bd", NULL, NULL }, { "-bv", NULL, NULL },
		{ "-q", NULL, NULL }, { "-q30m", NULL, NULL },
		{ "-C", "/etc/x.cf", NULL }, { "-Cx", NULL, NULL },
		{ "-o", "i", NULL }, { "-b", "m", NULL },
		{ "-f", NULL, NULL }, { "-F", NULL, NULL },
		{ "-Z", NULL, NULL }, { "-", NULL, NULL },
		{ "-tZ", NULL, NULL }, { "-F", "a\nBcc: x@y", NULL },
		{ "-Fa\tb", NULL, NULL }, { "-\x01", NULL, NULL },
		{ "-\xc3\xa9", NULL, NULL },
	};
	struct sendmail_options o;
	char err[ERRSZ], name[SENDMAIL_NAME_MAX + 2];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(opts(&o, err, bad[i][0], bad[i][1], bad[i][2]) == -1);
		CHECK(err[0] != '\0');
		sendmail_options_free(&o);
	}
	memset(name, 'n', SENDMAIL_NAME_MAX);
	name[SENDMAIL_NAME_MAX] = '\0';
	CHECK(opts(&o, err, "-F", name, NULL) == 0);
	sendmail_options_free(&o);
	name[SENDMAIL_NAME_MAX] = 'n';
	name[SENDMAIL_NAME_MAX + 1] = '\0';
	CHECK(opts(&o, err, "-F", name, NULL) == -1);
	sendmail_options_free(&o);
	CHECK(opts(&o, err, "-q", NULL) == -1);
	CHECK(strstr(err, "queue flush") != NULL);
	sendmail_options_free(&o);
	CHECK(opts(&o, err, "-C", "x", NULL) == -1);
	CHECK(strstr(err, "TEGAMI_CONFIG") != NULL);
	sendmail_options_free(&o);
}

/* ---- Address lists ------------------------------------------------------ */

/* Parses s; returns "local|domain;..." in a static buffer, or "ERR". */
static const char *
alist(const char *s, size_t len, size_t max)
{
	static char out[8192];
	struct sendmail_addrs l = { 0 };
	char err[ERRSZ];
	size_t i, n = 0;

	if (sendmail_address_list_parse(s, len, max, &l, err,
	    sizeof(err)) < 0) {
		CHECK(err[0] != '\0');
		CHECK(l.n == 0);
		sendmail_addrs_free(&l);
		return "ERR";
	}
	out[0] = '\0';
	for (i = 0; i < l.n; i++)
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s|%s",
		    i ? ";" : "", l.v[i].local, l.v[i].domain);
	sendmail_addrs_free(&l);
	return out;
}

#define AL(s) alist((s), strlen(s), 100)

static void
test_address_list_golden(void)
{
	CHECK_STR(AL("a@b.example"), "a|b.example");
	CHECK_STR(AL("  A.B@Mixed.Example  "), "A.B|Mixed.Example");
	CHECK_STR(AL("Name <a@b.example>"), "a|b.example");
	CHECK_STR(AL("<a@b.example>"), "a|b.example");
	CHECK_STR(AL("\"Public, John Q.\" <jqp@x.example>"),
	    "jqp|x.example");
	CHECK_STR(AL("John Q. Public <jqp@x.example>"), "jqp|x.example");
	CHECK_STR(AL("a@b.example, c@d.example"),
	    "a|b.example;c|d.example");
	CHECK_STR(AL("a@b.example,,c@d.example,"),
	    "a|b.example;c|d.example");
	CHECK_STR(AL(""), "");
	CHECK_STR(AL(" , ,"), "");
	CHECK_STR(AL("Team: a@b.example, Name <c@d.example>;, e@f.example"),
	    "a|b.example;c|d.example;e|f.example");
	CHECK_STR(AL("undisclosed-recipients:;"), "");
	CHECK_STR(AL("Group:;, a@b.example"), "a|b.example");
	CHECK_STR(AL("g: a@b.example"), "a|b.example");	/* no ";" */
	CHECK_STR(AL("\"A Group\" : a@b.example ; , x@y.example"),
	    "a|b.example;x|y.example");
	/* comments, nested and with quoted pairs, wherever CFWS goes */
	CHECK_STR(AL("a(c1)@(c2)b.example (Name)"), "a|b.example");
	CHECK_STR(AL("(a (nested) c) x@y.example"), "x|y.example");
	CHECK_STR(AL("(a \\) b) x@y.example"), "x|y.example");
	CHECK_STR(AL("x@y.example (a, \"b\" <c>)"), "x|y.example");
	/* quoted local parts, decoded */
	CHECK_STR(AL("\"john smith\"@x.example"), "john smith|x.example");
	CHECK_STR(AL("\"a\\\"b\"@x.example"), "a\"b|x.example");
	CHECK_STR(AL("\"a,b\"@x.example, c@d.example"),
	    "a,b|x.example;c|d.example");
	/* obsolete: CFWS around dots, route, empty elements */
	CHECK_STR(AL("john . smith @ x . example"), "john.smith|x.example");
	CHECK_STR(AL("<@r1.example,@r2.example:a@b.example>"),
	    "a|b.example");
	CHECK_STR(AL("a@[192.0.2.1]"), "a|[192.0.2.1]");
	CHECK_STR(AL("a@[IPv6:2001:db8::1]"), "a|[IPv6:2001:db8::1]");
	/* unqualified: the caller adds the domain */
	CHECK_STR(AL("root"), "root|");
	CHECK_STR(AL("Root User <root>, bob"), "root|;bob|");
	/* folding white space, also as header continuation lines */
	CHECK_STR(AL("a@b.example,\r\n c@d.example\r\n"),
	    "a|b.example;c|d.example");
	CHECK_STR(AL("\"folded\r\n name\" <a@b.example>"), "a|b.example");
	/* UTF-8 (RFC 6532) and encoded words */
	CHECK_STR(AL("Jos\xc3\xa9 <jos\xc3\xa9@ex\xc3\xa4mple.test>"),
	    "jos\xc3\xa9|ex\xc3\xa4mple.test");
	CHECK_STR(AL("=?UTF-8?B?Sm9zw6k=?= <j@x.example>"), "j|x.example");
	/* a display name that is itself an address (seen in the wild) */
	CHECK_STR(AL("bob@x.example <bob@x.example>"), "bob|x.example");
	/* special characters of atext */
	CHECK_STR(AL("a+tag!#$%&'*/=?^_`{|}~-@x.example"),
	    "a+tag!#$%&'*/=?^_`{|}~-|x.example");
}

static void
test_address_list_refused(void)
{
	static const char *const bad[] = {
		"a@b.example c@d.example", "a@", "@b.example",
		"a@b.example.", "a..b@c.example", ".a@b.example",
		"a.@b.example", "<a@b.example", "Name <>", "a@b.example>",
		"(unterminated a@b.example", "\"unterminated@x",
		"a@[1.2.3.4", "a@[1[2]", "G1: G2: a@b.example;;",
		"a\\b@c.example", ";", "a@b.example;", "Name <a@b.example",
		"John Smith", "<@r1.example a@b.example>", "Name <a@b@c>",
		"\"\"@x.example", "a\x01@b.example", "a@b\x7f.example",
		"a@b.example (\x02)", "]", "<<a@b.example>>",
		"G: a@b.example; x@y.example",
	};
	struct sendmail_addrs l = { 0 };
	struct sendmail_mailbox keep;
	char err[ERRSZ], s[400];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (strcmp(AL(bad[i]), "ERR") != 0)
			fprintf(stderr, "accepted: %s\n", bad[i]);
		CHECK_STR(AL(bad[i]), "ERR");
	}
	/* NUL inside, with an explicit length */
	CHECK_STR(alist("a\0b@c.example", 13, 100), "ERR");
	CHECK_STR(alist("\"a\0b\"@c.example", 15, 100), "ERR");
	CHECK_STR(alist("(a\0)b@c.example", 15, 100), "ERR");
	CHECK_STR(alist("a@b.example\0", 12, 100), "ERR");
	/* never past len */
	CHECK_STR(alist("a@b.exampleXYZ", 11, 100), "a|b.example");
	/* local part: 64 octets, not 65; domain: 255, not 256 */
	memset(s, 'l', 64);
	strcpy(s + 64, "@x.example");
	CHECK(strcmp(AL(s), "ERR") != 0);
	memset(s, 'l', 65);
	strcpy(s + 65, "@x.example");
	CHECK_STR(AL(s), "ERR");
	s[0] = 'a';
	s[1] = '@';
	for (i = 2; i < 2 + 255; i++)
		s[i] = (i - 2) % 64 == 63 ? '.' : 'd';
	s[2 + 255] = '\0';
	CHECK(strcmp(AL(s), "ERR") != 0);
	s[2 + 255] = 'd';
	s[2 + 256] = '\0';
	CHECK_STR(AL(s), "ERR");
	s[2 + 255] = '.';	/* 255 octets, then a dot and more */
	s[2 + 256] = 'e';
	s[2 + 257] = '\0';
	CHECK_STR(AL(s), "ERR");
	memset(s, 'l', 64);	/* 64 octets, then a dot and more */
	strcpy(s + 64, ".m@x.example");
	CHECK_STR(AL(s), "ERR");
	/* at most max; on an error the list stays as it was */
	CHECK(strcmp(alist("a@x.example,b@x.example", 23, 2), "ERR") != 0);
	CHECK_STR(alist("a@x.example,b@x.example,c@x.example", 35, 2),
	    "ERR");
	CHECK(sendmail_address_list_parse("k@x.example", 11, 10, &l, err,
	    sizeof(err)) == 0 && l.n == 1);
	keep = l.v[0];
	CHECK(sendmail_address_list_parse("p@x.example, bad@", 17, 10, &l,
	    err, sizeof(err)) == -1);
	CHECK(l.n == 1 && memcmp(&keep, &l.v[0], sizeof(keep)) == 0);
	CHECK(sendmail_address_list_parse("p@x.example", 11, 1, &l, err,
	    sizeof(err)) == -1);
	CHECK(l.n == 1);
	sendmail_addrs_free(&l);
	CHECK(l.v == NULL && l.n == 0);
}

static const char *
mbfmt(const char *s, const char *dflt)
{
	static char out[SENDMAIL_ADDRESS_MAX + 1];
	struct sendmail_addrs l = { 0 };
	char err[ERRSZ];
	int n;

	if (sendmail_address_list_parse(s, strlen(s), 1, &l, err,
	    sizeof(err)) < 0 || l.n != 1) {
		sendmail_addrs_free(&l);
		return "PARSE";
	}
	n = sendmail_mailbox_format(&l.v[0], dflt, out, sizeof(out), err,
	    sizeof(err));
	sendmail_addrs_free(&l);
	if (n < 0) {
		CHECK(err[0] != '\0');
		return "ERR";
	}
	CHECK((size_t)n == strlen(out));
	return out;
}

static void
test_mailbox_format(void)
{
	char out[SENDMAIL_ADDRESS_MAX + 1], err[ERRSZ];

	CHECK_STR(mbfmt("root", "local.test"), "root@local.test");
	CHECK_STR(mbfmt("Bob <bob>", "local.test"), "bob@local.test");
	CHECK_STR(mbfmt("A@B.EXAMPLE", "local.test"), "A@b.example");
	CHECK_STR(mbfmt("\"john smith\"@x.example", "l.test"),
	    "\"john smith\"@x.example");
	CHECK_STR(mbfmt("\"plain\"@x.example", "l.test"), "plain@x.example");
	CHECK_STR(mbfmt("a@[192.0.2.1]", "l.test"), "a@[192.0.2.1]");
	CHECK_STR(mbfmt("a@[not an address]", "l.test"), "ERR");
	CHECK_STR(mbfmt("a@-bad-.example", "l.test"), "ERR");
	CHECK_STR(mbfmt("root", ""), "ERR");
	CHECK_STR(mbfmt("\"a\\\x7f\"@x.example", "l.test"), "PARSE");
	/* too small a buffer */
	{
		struct sendmail_mailbox mb;

		memset(&mb, 0, sizeof(mb));
		strcpy(mb.local, "abcdef");
		strcpy(mb.domain, "x.example");
		CHECK(sendmail_mailbox_format(&mb, "", out, 8, err,
		    sizeof(err)) == -1);
		CHECK(sendmail_mailbox_format(&mb, "", out, 17, err,
		    sizeof(err)) == 16);
		CHECK_STR(out, "abcdef@x.example");
	}
	/* the sender of -f */
	CHECK(sendmail_sender_parse("", "l.test", out, sizeof(out), err,
	    sizeof(err)) == 0 && out[0] == '\0');
	CHECK(sendmail_sender_parse("<>", "l.test", out, sizeof(out), err,
	    sizeof(err)) == 0 && out[0] == '\0');
	CHECK(sendmail_sender_parse("<a@X.example>", "l.test", out,
	    sizeof(out), err, sizeof(err)) == 0);
	CHECK_STR(out, "a@x.example");
	CHECK(sendmail_sender_parse("Web App <noreply@x.example>", "l.test",
	    out, sizeof(out), err, sizeof(err)) == 0);
	CHECK_STR(out, "noreply@x.example");
	CHECK(sendmail_sender_parse("www-data", "l.test", out, sizeof(out),
	    err, sizeof(err)) == 0);
	CHECK_STR(out, "www-data@l.test");
	CHECK(sendmail_sender_parse("a@x.example, b@x.example", "l.test", out,
	    sizeof(out), err, sizeof(err)) == -1);
	CHECK(sendmail_sender_parse("bad@", "l.test", out, sizeof(out), err,
	    sizeof(err)) == -1);
	CHECK(sendmail_sender_parse(" ", "l.test", out, sizeof(out), err,
	    sizeof(err)) == -1);
	CHECK(sendmail_sender_parse("g:;", "l.test", out, sizeof(out), err,
	    sizeof(err)) == -1);
}

/* ---- Lines -------------------------------------------------------------- */

/* normalize; returns the output or "ERR:<err>" in a static buffer */
static const char *
norm(const char *in, size_t len, bool ignore_dots, size_t max)
{
	static char buf[8192];
	char err[ERRSZ], *out;
	size_t n;

	if (sendmail_normalize(in, len, ignore_dots, max, &out, &n, err,
	    sizeof(err)) < 0) {
		snprintf(buf, sizeof(buf), "ERR:%s", err);
		return buf;
	}
	CHECK(n < sizeof(buf));
	memcpy(buf, out, n);
	buf[n] = '\0';
	free(out);
	return buf;
}

#define NORM(s, dots) norm((s), strlen(s), (dots), 1000000)

static void
test_normalize(void)
{
	char line[1100];
	size_t i;

	CHECK_STR(NORM("a\nb\n", false), "a\r\nb\r\n");
	CHECK_STR(NORM("a\r\nb\r\n", false), "a\r\nb\r\n");
	CHECK_STR(NORM("a\r\nb\n", false), "a\r\nb\r\n");
	CHECK_STR(NORM("a\nb", false), "a\r\nb\r\n");	/* no last LF */
	CHECK_STR(NORM("", false), "");
	CHECK_STR(NORM("\n", false), "\r\n");
	CHECK_STR(NORM("\n\n", false), "\r\n\r\n");
	/* an mbox From_ line first is dropped, nowhere else */
	CHECK_STR(NORM("From x@y Mon Jan  1 00:00:00 2024\nS: s\n", false),
	    "S: s\r\n");
	CHECK_STR(NORM("From: x@y\n", false), "From: x@y\r\n");
	CHECK_STR(NORM("S: s\nFrom x\n", false), "S: s\r\nFrom x\r\n");
	/* the "." line ends the message unless -i */
	CHECK_STR(NORM("a\n.\nb\n", false), "a\r\n");
	CHECK_STR(NORM("a\r\n.\r\nb\r\n", false), "a\r\n");
	CHECK_STR(NORM("a\n.", false), "a\r\n");
	CHECK_STR(NORM("a\n.\nb\n", true), "a\r\n.\r\nb\r\n");
	CHECK_STR(NORM("a\n..\n. \n.x\n", false), "a\r\n..\r\n. \r\n.x\r\n");
	CHECK_STR(NORM(".\n", false), "");
	/* refusals, with the line */
	CHECK_STR(norm("a\nb\0c\n", 6, false, 1000),
	    "ERR:line 2: a NUL byte");
	CHECK_STR(NORM("a\rb\n", false),
	    "ERR:line 1: a carriage return that does not end the line");
	CHECK_STR(NORM("a\n\r\r\n", false),
	    "ERR:line 2: a carriage return that does not end the line");
	CHECK(strncmp(NORM("a\r", false), "ERR:line 1", 10) == 0);
	/* 998 octets: fine; 999: refused (CR LF not counted) */
	memset(line, 'x', 998);
	strcpy(line + 998, "\r\n");
	CHECK(strncmp(NORM(line, false), "xxx", 3) == 0);
	strcpy(line + 998, "\n");
	CHECK(strncmp(NORM(line, false), "xxx", 3) == 0);
	line[998] = '\0';
	CHECK(strncmp(NORM(line, false), "xxx", 3) == 0);
	memset(line, 'x', 999);
	strcpy(line + 999, "\r\n");
	CHECK_STR(NORM(line, false),
	    "ERR:line 1 is longer than 998 characters (RFC 5322 2.1.1)");
	line[999] = '\0';
	CHECK(strncmp(NORM(line, false), "ERR:line 1 is", 13) == 0);
	/* the size limit counts the output: "ab\n" is 4 octets */
	CHECK_STR(norm("ab\n", 3, false, 4), "ab\r\n");
	CHECK(strncmp(norm("ab\n", 3, false, 3), "ERR:the message", 15) == 0);
	CHECK_STR(norm("ab\ncd\n", 6, false, 8), "ab\r\ncd\r\n");
	CHECK(strncmp(norm("ab\ncd\n", 6, false, 7), "ERR:", 4) == 0);
	/* many short lines grow the buffer right */
	{
		static char big[20000], want[40001];

		for (i = 0; i < 10000; i++) {
			big[2 * i] = 'a';
			big[2 * i + 1] = '\n';
			memcpy(want + 3 * i, "a\r\n", 3);
		}
		want[30000] = '\0';
		{
			char *out, err[ERRSZ];
			size_t n;

			CHECK(sendmail_normalize(big, 20000, false, 30000,
			    &out, &n, err, sizeof(err)) == 0);
			CHECK(n == 30000 && memcmp(out, want, n) == 0);
			free(out);
			CHECK(sendmail_normalize(big, 20000, false, 29999,
			    &out, &n, err, sizeof(err)) == -1);
		}
	}
}

static void
test_find_dot_line(void)
{
	static const char msg[] = "Subject: s\n\nbody\n..\n.x\n.\r\nafter\n";
	size_t dot = strlen("Subject: s\n\nbody\n..\n.x\n");
	size_t len, pos;
	bool found;

	/* as the reader sees it: every prefix, scanning on */
	pos = 0;
	found = false;
	for (len = 0; len <= sizeof(msg) - 1 && !found; len++) {
		found = sendmail_find_dot_line(msg, len, &pos);
		CHECK(pos <= len);
		if (!found)
			CHECK(pos == 0 || msg[pos - 1] == '\n');
	}
	CHECK(found && pos == dot);
	CHECK(len - 1 == dot + 3);	/* found once ".\r\n" was complete */
	/* not a dot line */
	pos = 0;
	CHECK(!sendmail_find_dot_line(". \n..\n.x\nx.\n", 12, &pos) &&
	    pos == 12);
	pos = 0;
	CHECK(!sendmail_find_dot_line(".", 1, &pos) && pos == 0);
	pos = 0;
	CHECK(sendmail_find_dot_line(".\n", 2, &pos) && pos == 0);
	pos = 0;
	CHECK(!sendmail_find_dot_line("abc", 3, &pos) && pos == 0);
}

/* ---- The header section -------------------------------------------------- */

/* The composed message: head + additions + body, as sendmail sends it. */
static char *
compose(const char *msg, bool extract, struct sendmail_headers *h,
    const char *from, int *rc_r)
{
	char err[ERRSZ], *head, *out;
	size_t len = strlen(msg), hl;

	*rc_r = sendmail_headers_scan(msg, len, extract, 100, h, err,
	    sizeof(err));
	if (*rc_r < 0)
		return strdup(err);
	head = sendmail_compose_head(h, len, from,
	    "Mon, 01 Jan 2024 00:00:00 +0000", "<id@h.example>", &hl);
	if (head == NULL)
		return NULL;
	out = malloc(hl + len - h->body_offset + 1);
	memcpy(out, head, hl);
	memcpy(out + hl, msg + h->body_offset, len - h->body_offset);
	out[hl + len - h->body_offset] = '\0';
	free(head);
	return out;
}

#define FROM_L "From: a@l.test\r\n"
#define ADDS FROM_L "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n" \
	"Message-ID: <id@h.example>\r\n"

static void
test_headers_golden(void)
{
	struct sendmail_headers h;
	char *out;
	int rc;

	/* Bcc and its continuation go; the recipients come in order */
	out = compose("Subject: s\r\nTo: a@b.example\r\nBcc: c@d.example,\r\n"
	    " e@f.example\r\nCc: Name <g@h.example>\r\n\r\nbody\r\nBcc: x\r\n",
	    true, &h, FROM_L, &rc);
	CHECK(rc == 0);
	CHECK_STR(out, "Subject: s\r\nTo: a@b.example\r\n"
	    "Cc: Name <g@h.example>\r\n" ADDS "\r\nbody\r\nBcc: x\r\n");
	CHECK(h.rcpts.n == 4);
	if (h.rcpts.n == 4) {
		CHECK_STR(h.rcpts.v[0].local, "a");
		CHECK_STR(h.rcpts.v[1].local, "c");
		CHECK_STR(h.rcpts.v[2].local, "e");
		CHECK_STR(h.rcpts.v[3].local, "g");
	}
	CHECK(h.separator && !h.has_from && !h.has_date);
	free(out);
	sendmail_headers_free(&h);
	/* without -t, Bcc still goes, nothing is parsed */
	out = compose("BCC: not an address list ((\r\nTo: ((\r\n\r\nb\r\n",
	    false, &h, FROM_L, &rc);
	CHECK(rc == 0);
	CHECK_STR(out, "To: ((\r\n" ADDS "\r\nb\r\n");
	CHECK(h.rcpts.n == 0);
	free(out);
	sendmail_headers_free(&h);
	/* every field present: nothing added, any case */
	out = compose("FROM: x@y.example\r\ndate: today\r\nMESSAGE-id: <m@x>"
	    "\r\n\r\nbody\r\n", true, &h, NULL, &rc);
	CHECK(rc == 0 && h.has_from && h.has_date && h.has_message_id);
	CHECK_STR(out, "FROM: x@y.example\r\ndate: today\r\nMESSAGE-id: <m@x>"
	    "\r\n\r\nbody\r\n");
	CHECK(h.rcpts.n == 0);
	free(out);
	sendmail_headers_free(&h);
	/* Resent-*: only the new recipients; Resent-Bcc goes too */
	out = compose("To: a@b.example\r\nResent-To: x@y.example\r\n"
	    "Resent-Bcc: z@w.example\r\nBcc: q@q.example\r\n\r\n", true, &h,
	    FROM_L, &rc);
	CHECK(rc == 0);
	CHECK_STR(out, "To: a@b.example\r\nResent-To: x@y.example\r\n" ADDS
	    "\r\n");
	CHECK(h.rcpts.n == 2);
	if (h.rcpts.n == 2) {
		CHECK_STR(h.rcpts.v[0].local, "x");
		CHECK_STR(h.rcpts.v[1].local, "z");
	}
	free(out);
	sendmail_headers_free(&h);
	/* an empty Resent-Bcc alone still makes it a resent message */
	out = compose("To: a@b.example\r\nResent-Bcc:\r\n\r\n", true, &h,
	    FROM_L, &rc);
	CHECK(rc == 0 && h.rcpts.n == 0);
	free(out);
	sendmail_headers_free(&h);
}

static void
test_headers_section_ends(void)
{
	struct sendmail_headers h;
	char *out;
	int rc;

	/* no header at all: the fields, then an empty line, then the text */
	out = compose("hello\r\n", true, &h, FROM_L, &rc);
	CHECK_STR(out, ADDS "\r\nhello\r\n");
	CHECK(h.body_offset == 0 && !h.separator);
	free(out);
	sendmail_headers_free(&h);
	/* a first line that is a continuation is no header */
	out = compose(" x: y\r\n", true, &h, FROM_L, &rc);
	CHECK_STR(out, ADDS "\r\n x: y\r\n");
	free(out);
	sendmail_headers_free(&h);
	/* a field, then a line that is none */
	out = compose("Subject: s\r\nnot a field\r\n", true, &h, FROM_L, &rc);
	CHECK_STR(out, "Subject: s\r\n" ADDS "\r\nnot a field\r\n");
	free(out);
	sendmail_headers_free(&h);
	/* "Name :" is no field (as smtp_header_scan judges it) */
	out = compose("Subject : s\r\n\r\n", true, &h, FROM_L, &rc);
	CHECK_STR(out, ADDS "\r\nSubject : s\r\n\r\n");
	free(out);
	sendmail_headers_free(&h);
	/* only a header, no body: no empty line is added */
	out = compose("Subject: s\r\n", true, &h, FROM_L, &rc);
	CHECK_STR(out, "Subject: s\r\n" ADDS);
	CHECK(h.body_offset == strlen("Subject: s\r\n") && !h.separator);
	free(out);
	sendmail_headers_free(&h);
	/* empty message */
	out = compose("", true, &h, FROM_L, &rc);
	CHECK_STR(out, ADDS);
	free(out);
	sendmail_headers_free(&h);
	/* just the separator */
	out = compose("\r\n", true, &h, FROM_L, &rc);
	CHECK_STR(out, ADDS "\r\n");
	CHECK(h.separator);
	free(out);
	sendmail_headers_free(&h);
	/* a long folded To with a group */
	out = compose("To: Team:\r\n\ta@b.example,\r\n\tc@d.example;\r\n"
	    "\r\nx\r\n", true, &h, FROM_L, &rc);
	CHECK(rc == 0 && h.rcpts.n == 2);
	free(out);
	sendmail_headers_free(&h);
}

static void
test_headers_refused(void)
{
	struct sendmail_headers h;
	char err[ERRSZ];
	static const char many[] = "To: a@x.example, b@x.example, "
	    "c@x.example\r\n\r\n";
	static const char bad[] = "Subject: s\r\nTo: a@b.example c@d.example"
	    "\r\n\r\n";

	CHECK(sendmail_headers_scan(bad, strlen(bad), true, 100, &h, err,
	    sizeof(err)) == -1);
	CHECK(strncmp(err, "To: ", 4) == 0);
	sendmail_headers_free(&h);
	CHECK(sendmail_headers_scan(bad, strlen(bad), false, 100, &h, err,
	    sizeof(err)) == 0);
	sendmail_headers_free(&h);
	CHECK(sendmail_headers_scan(many, strlen(many), true, 3, &h, err,
	    sizeof(err)) == 0 && h.rcpts.n == 3);
	sendmail_headers_free(&h);
	CHECK(sendmail_headers_scan(many, strlen(many), true, 2, &h, err,
	    sizeof(err)) == -1);
	sendmail_headers_free(&h);
	CHECK(h.head == NULL && h.rcpts.v == NULL);
}

static void
test_compose_refuses_bad_values(void)
{
	struct sendmail_headers h;
	char err[ERRSZ];
	size_t n;
	static const char msg[] = "Subject: s\r\n\r\nb\r\n";
	static const char *const bad_from[] = {
		"From: a@b\r\nBcc: x@y\r\n", "From: a@b", "From: a@b\n",
		"To: a@b\r\n", "From: a\rb\r\n", "From: a\r\nb\r\n", "",
		"From: a\x01@b\r\n",
	};
	size_t i;

	CHECK(sendmail_headers_scan(msg, strlen(msg), false, 1, &h, err,
	    sizeof(err)) == 0);
	for (i = 0; i < sizeof(bad_from) / sizeof(bad_from[0]); i++)
		CHECK(sendmail_compose_head(&h, strlen(msg), bad_from[i], "d",
		    "<i@h>", &n) == NULL);
	CHECK(sendmail_compose_head(&h, strlen(msg), NULL, "d", "<i@h>",
	    &n) == NULL);
	CHECK(sendmail_compose_head(&h, strlen(msg), FROM_L, "d\r\nX: y",
	    "<i@h>", &n) == NULL);
	CHECK(sendmail_compose_head(&h, strlen(msg), FROM_L, "", "<i@h>",
	    &n) == NULL);
	CHECK(sendmail_compose_head(&h, strlen(msg), FROM_L, "d", "i@h",
	    &n) == NULL);
	CHECK(sendmail_compose_head(&h, strlen(msg), FROM_L, "d", "<i h>",
	    &n) == NULL);
	CHECK(sendmail_compose_head(&h, strlen(msg), FROM_L, "d", "<a<b>",
	    &n) == NULL);
	CHECK(sendmail_compose_head(&h, strlen(msg), FROM_L, "d", "<a>b>",
	    &n) == NULL);
	CHECK(sendmail_compose_head(&h, strlen(msg), FROM_L, "d", "<>",
	    &n) == NULL);
	{
		char *head = sendmail_compose_head(&h, strlen(msg),
		    "From: x\r\n =?UTF-8?B?w6k=?= <a@b>\r\n", "d", "<i@h>",
		    &n);

		CHECK(head != NULL);
		free(head);
	}
	sendmail_headers_free(&h);
}

/* ---- From, full names ----------------------------------------------------- */

static const char *
from(const char *name, const char *addr, size_t outsize)
{
	static char out[4096];
	size_t n = sendmail_format_from(name, addr, out, outsize);

	if (n == (size_t)-1)
		return "ERR";
	CHECK(n == strlen(out));
	return out;
}

static void
test_format_from(void)
{
	char name[SENDMAIL_NAME_MAX + 2], *p, *q;
	const char *r;
	size_t i, words = 0;

	CHECK_STR(from(NULL, "a@b", 4096), "From: a@b\r\n");
	CHECK_STR(from("", "a@b", 4096), "From: a@b\r\n");
	CHECK_STR(from("Alice Example", "a@b", 4096),
	    "From: Alice Example <a@b>\r\n");
	CHECK_STR(from("Cron Daemon", "root@x", 4096),
	    "From: Cron Daemon <root@x>\r\n");
	CHECK_STR(from("Alice \"Al\" X\\", "a@b", 4096),
	    "From: \"Alice \\\"Al\\\" X\\\\\" <a@b>\r\n");
	CHECK_STR(from("O'Brien, Pat", "a@b", 4096),
	    "From: \"O'Brien, Pat\" <a@b>\r\n");
	CHECK_STR(from("John Q. Public", "a@b", 4096),
	    "From: \"John Q. Public\" <a@b>\r\n");
	CHECK_STR(from(" lead", "a@b", 4096), "From: \" lead\" <a@b>\r\n");
	CHECK_STR(from("Jos\xc3\xa9", "a@b", 4096),
	    "From: =?UTF-8?B?Sm9zw6k=?= <a@b>\r\n");
	CHECK_STR(from("x", "\"a b\"@c", 4096), "From: x <\"a b\"@c>\r\n");
	/* a long UTF-8 name: encoded words of at most 75 characters, one a
	 * line, each split between characters */
	p = name;
	for (i = 0; i < 85; i++) {
		memcpy(p, "\xc3\xa9", 2);	/* 2-octet é */
		p += 2;
	}
	*p = '\0';
	r = from(name, "a@b", 4096);
	CHECK(strncmp(r, "From: =?UTF-8?B?", 16) == 0);
	for (p = strstr(r, "=?"); p != NULL; p = strstr(q, "=?")) {
		q = strstr(p, "?=");
		CHECK(q != NULL && q - p + 2 <= 75);
		if (q == NULL)
			break;
		q += 2;
		words++;
		/* 45 octets of é is 22 whole ones: 44 octets, 60 chars */
		CHECK(q - p == 2 + 10 + 60 || strncmp(q, " <a@b>", 6) == 0);
		CHECK(strncmp(q, "\r\n =?", 5) == 0 ||
		    strcmp(q, " <a@b>\r\n") == 0);
	}
	CHECK(words == 4);	/* 170 octets: 44 + 44 + 44 + 38 */
	/* refused */
	CHECK_STR(from("a\r\nBcc: x", "a@b", 4096), "ERR");
	CHECK_STR(from("a\tb", "a@b", 4096), "ERR");
	CHECK_STR(from("a\x7f", "a@b", 4096), "ERR");
	CHECK_STR(from("\xff", "a@b", 4096), "ERR");
	CHECK_STR(from("\xc3", "a@b", 4096), "ERR");
	CHECK_STR(from("\xed\xa0\x80", "a@b", 4096), "ERR");	/* surrogate */
	CHECK_STR(from("\xc0\xaf", "a@b", 4096), "ERR");	/* overlong */
	CHECK_STR(from("x", "", 4096), "ERR");
	CHECK_STR(from("x", NULL, 4096), "ERR");
	CHECK_STR(from("x", "a\r\n@b", 4096), "ERR");
	memset(name, 'n', SENDMAIL_NAME_MAX);
	name[SENDMAIL_NAME_MAX] = '\0';
	CHECK(strcmp(from(name, "a@b", 4096), "ERR") != 0);
	name[SENDMAIL_NAME_MAX] = 'n';
	name[SENDMAIL_NAME_MAX + 1] = '\0';
	CHECK_STR(from(name, "a@b", 4096), "ERR");
	/* outsize: exactly enough (with the NUL) and one less */
	CHECK_STR(from("N", "a@b", 16), "From: N <a@b>\r\n");
	CHECK_STR(from("N", "a@b", 15), "ERR");
	CHECK_STR(from("N", "a@b", 0), "ERR");
}

static void
test_gecos_name(void)
{
	char out[SENDMAIL_NAME_MAX + 1], big[600];

	sendmail_gecos_name("Alice Example,Room 1,555-1234,", "alice", out,
	    sizeof(out));
	CHECK_STR(out, "Alice Example");
	sendmail_gecos_name("& Smith", "bob", out, sizeof(out));
	CHECK_STR(out, "Bob Smith");
	sendmail_gecos_name("&", "", out, sizeof(out));
	CHECK_STR(out, "&");
	sendmail_gecos_name("", "x", out, sizeof(out));
	CHECK_STR(out, "");
	sendmail_gecos_name(",,,", "x", out, sizeof(out));
	CHECK_STR(out, "");
	sendmail_gecos_name("   ", "x", out, sizeof(out));
	CHECK_STR(out, "");
	sendmail_gecos_name(NULL, "x", out, sizeof(out));
	CHECK_STR(out, "");
	sendmail_gecos_name("Evil\nBcc: x", "x", out, sizeof(out));
	CHECK_STR(out, "");
	memset(big, 'g', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sendmail_gecos_name(big, "x", out, sizeof(out));
	CHECK_STR(out, "");
	sendmail_gecos_name("Tiny", "x", out, 3);
	CHECK_STR(out, "");
}

int
main(void)
{
	UNIT_RUN(test_options_common_callers);
	UNIT_RUN(test_options_forms);
	UNIT_RUN(test_options_refused);
	UNIT_RUN(test_address_list_golden);
	UNIT_RUN(test_address_list_refused);
	UNIT_RUN(test_mailbox_format);
	UNIT_RUN(test_normalize);
	UNIT_RUN(test_find_dot_line);
	UNIT_RUN(test_headers_golden);
	UNIT_RUN(test_headers_section_ends);
	UNIT_RUN(test_headers_refused);
	UNIT_RUN(test_compose_refuses_bad_values);
	UNIT_RUN(test_format_from);
	UNIT_RUN(test_gecos_name);
	return unit_finish();
}
