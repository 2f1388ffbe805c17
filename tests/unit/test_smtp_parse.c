/*
 * Tests of the SMTP command-line parser (RFC 5321 4.1, RFC 1870, 3030,
 * 6152, 6531): verbs, every error reply, NUL and 8-bit bytes in every
 * position, the 510/511-octet limit, MAIL/RCPT parameters, BDAT, EHLO.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_parse.h"
#include "unit.h"

#define L(s)	s, sizeof(s) - 1

#define R_UNKNOWN	"500 5.5.1 Command unrecognized"
#define R_NUL		"500 5.5.2 Invalid character (NUL) in command"
#define R_ARGS_NUL	"501 5.5.2 Invalid character (NUL) in parameters"
#define R_8BIT		"500 5.5.2 Invalid character in command"
#define R_EMPTY		"500 5.5.2 Error: bad syntax"
#define R_TOO_LONG	"500 5.5.2 Line too long"
#define R_MAIL_SYNTAX	"501 5.5.4 Syntax: MAIL FROM:<address>"
#define R_RCPT_SYNTAX	"501 5.5.4 Syntax: RCPT TO:<address>"
#define R_SENDER	"501 5.1.7 Bad sender address syntax"
#define R_RECIPIENT	"501 5.1.3 Bad recipient address syntax"
#define R_ADDR_8BIT	"553 5.6.7 Non-ASCII address requires SMTPUTF8"
#define R_SIZE_BIG	"552 5.3.4 Message size exceeds fixed maximum message size"
#define R_BODY		"501 5.5.4 Unsupported BODY type"
#define R_DUP		"501 5.5.4 Duplicate parameter"
#define R_UNSUPPORTED	"555 5.5.4 Unsupported parameter"
#define R_BDAT		"501 5.5.4 Syntax: BDAT chunk-size [LAST]"
#define R_HELO_SYNTAX	"501 5.5.4 Syntax: EHLO hostname"
#define R_HELO_CHAR	"501 5.5.2 Invalid character in hostname"

/* Parses a command line, expecting success with this verb and args. */
static void
check_cmd(const char *line, size_t len, enum smtp_verb verb,
    const char *args, size_t args_len)
{
	struct smtp_command cmd;
	const char *r;

	r = smtp_parse_command(line, len, &cmd);
	CHECK_STR(r, NULL);
	CHECK(cmd.verb == verb);
	CHECK(cmd.args_len == args_len);
	CHECK(cmd.args_len == args_len &&
	    memcmp(cmd.args, args, args_len) == 0);
	/* args point into the line */
	CHECK(cmd.args >= line && cmd.args + cmd.args_len <= line + len);
}

static void
check_cmd_err(const char *line, size_t len, const char *reply)
{
	struct smtp_command cmd;

	CHECK_STR(smtp_parse_command(line, len, &cmd), reply);
}

static void
test_verbs(void)
{
	static const struct {
		const char *name;
		enum smtp_verb verb;
	} v[] = {
		{ "HELO", SMTP_VERB_HELO }, { "EHLO", SMTP_VERB_EHLO },
		{ "MAIL", SMTP_VERB_MAIL }, { "RCPT", SMTP_VERB_RCPT },
		{ "DATA", SMTP_VERB_DATA }, { "BDAT", SMTP_VERB_BDAT },
		{ "RSET", SMTP_VERB_RSET }, { "NOOP", SMTP_VERB_NOOP },
		{ "QUIT", SMTP_VERB_QUIT }, { "HELP", SMTP_VERB_HELP },
		{ "VRFY", SMTP_VERB_VRFY }, { "EXPN", SMTP_VERB_EXPN },
		{ "STARTTLS", SMTP_VERB_STARTTLS }, { "AUTH", SMTP_VERB_AUTH },
	};
	char line[64];
	size_t i, j, n;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		n = strlen(v[i].name);
		/* upper, lower, mixed case; alone, with args, with "" args */
		memcpy(line, v[i].name, n);
		check_cmd(line, n, v[i].verb, "", 0);
		for (j = 0; j < n; j++)
			line[j] = (char)(line[j] | 0x20);
		check_cmd(line, n, v[i].verb, "", 0);
		line[0] = (char)(line[0] & ~0x20);
		memcpy(line + n, " x y", 4);
		check_cmd(line, n + 4, v[i].verb, "x y", 3);
		check_cmd(line, n + 1, v[i].verb, "", 0);
		CHECK_STR(smtp_verb_name(v[i].verb), v[i].name);
		/* one more letter, one less: unknown */
		memcpy(line + n, "X", 1);
		check_cmd_err(line, n + 1, R_UNKNOWN);
		check_cmd_err(line, n - 1, R_UNKNOWN);
	}
	CHECK_STR(smtp_verb_name(SMTP_VERB_UNKNOWN), "UNKNOWN");

	check_cmd(L("MAIL FROM:<a@b>"), SMTP_VERB_MAIL, L("FROM:<a@b>"));
	/* only the first space is the separator */
	check_cmd(L("NOOP  x"), SMTP_VERB_NOOP, L(" x"));
	check_cmd(L("rcpt TO:<a@b>"), SMTP_VERB_RCPT, L("TO:<a@b>"));
	check_cmd(L("StArTtLs"), SMTP_VERB_STARTTLS, L(""));
}

static void
test_unknown(void)
{
	check_cmd_err(L("MAILX"), R_UNKNOWN);
	check_cmd_err(L("MAILX FROM:<a@b>"), R_UNKNOWN);
	check_cmd_err(L("MAIL\tFROM:<a@b>"), R_UNKNOWN);
	check_cmd_err(L("MAIL:FROM:<a@b>"), R_UNKNOWN);
	check_cmd_err(L("XYZZY"), R_UNKNOWN);
	check_cmd_err(L("M"), R_UNKNOWN);
	check_cmd_err(L("\x01MAIL"), R_UNKNOWN);
	check_cmd_err(L("QUIT\r"), R_UNKNOWN);
	check_cmd_err(L("GET / HTTP/1.0"), R_UNKNOWN);
	check_cmd_err(L(""), R_EMPTY);
	check_cmd_err(L(" "), R_EMPTY);
	check_cmd_err(L(" MAIL FROM:<a@b>"), R_EMPTY);
}

static void
test_nul(void)
{
	static const char base[] = "MAIL FROM:<a@b> SIZE=10";
	char line[sizeof(base)];
	size_t i;

	/* a NUL in every position: in the verb (or in place of the space
	 * after it) 500, in the arguments 501 */
	for (i = 0; i < sizeof(base) - 1; i++) {
		memcpy(line, base, sizeof(base) - 1);
		line[i] = '\0';
		check_cmd_err(line, sizeof(base) - 1, i <= 4 ? R_NUL :
		    R_ARGS_NUL);
	}
	check_cmd_err(L("\0"), R_NUL);
	check_cmd_err(L("NOOP\0"), R_NUL);
	check_cmd_err(L("NOOP \0"), R_ARGS_NUL);
	check_cmd_err(L("MAIL FROM:<a\0b@x>"), R_ARGS_NUL);
	/* NUL wins over 8-bit */
	check_cmd_err(L("\xff\0"), R_NUL);
}

static void
test_8bit(void)
{
	check_cmd_err(L("M\xc3\xa4IL FROM:<a@b>"), R_8BIT);
	check_cmd_err(L("\xffMAIL"), R_8BIT);
	check_cmd_err(L("MAIL\x80 FROM:<a@b>"), R_8BIT);
	check_cmd_err(L("\xef\xbb\xbfHELO x"), R_8BIT);	/* a BOM */
	check_cmd_err(L("\x80"), R_8BIT);
	/* 8-bit in the arguments is for the argument parsers */
	check_cmd(L("NOOP \xff"), SMTP_VERB_NOOP, L("\xff"));
	check_cmd(L("MAIL FROM:<j\xc3\xb6hn@x>"), SMTP_VERB_MAIL,
	    L("FROM:<j\xc3\xb6hn@x>"));
}

static void
test_length(void)
{
	char line[2048];
	struct smtp_command cmd;

	memcpy(line, "NOOP ", 5);
	memset(line + 5, 'x', sizeof(line) - 5);
	/* 510 + CRLF = 512 octets (4.5.3.1.4): fits */
	check_cmd(line, 510, SMTP_VERB_NOOP, line + 5, 505);
	check_cmd_err(line, 511, R_TOO_LONG);
	check_cmd_err(line, sizeof(line), R_TOO_LONG);
	CHECK_STR(smtp_parse_command(line, SIZE_MAX, &cmd), R_TOO_LONG);
	/* too long wins even with a NUL in it */
	line[600] = '\0';
	check_cmd_err(line, 700, R_TOO_LONG);
}

static const char *
mail(const char *args, size_t len, bool utf8, struct smtp_mail_params *p)
{
	return smtp_parse_mail_args(args, len, utf8, p);
}

static void
test_mail_from(void)
{
	struct smtp_mail_params p;

	CHECK_STR(mail(L("FROM:<a@example.org>"), false, &p), NULL);
	CHECK_STR(p.from.local, "a");
	CHECK_STR(p.from.domain, "example.org");
	CHECK(!p.from.is_null && !p.has_size && p.body == SMTP_BODY_7BIT &&
	    !p.smtputf8);
	CHECK_STR(mail(L("from:<a@b>"), false, &p), NULL);
	CHECK_STR(mail(L("FrOm:<a@b>"), false, &p), NULL);
	/* a space after the colon is what common clients send */
	CHECK_STR(mail(L("FROM: <a@b>"), false, &p), NULL);
	CHECK_STR(p.from.local, "a");
	CHECK_STR(mail(L("FROM:<>"), false, &p), NULL);
	CHECK(p.from.is_null);
	CHECK_STR(mail(L("FROM:<> "), false, &p), NULL);

	CHECK_STR(mail(L(""), false, &p), R_MAIL_SYNTAX);
	CHECK_STR(mail(L("FROM"), false, &p), R_MAIL_SYNTAX);
	CHECK_STR(mail(L("FROM<a@b>"), false, &p), R_MAIL_SYNTAX);
	CHECK_STR(mail(L("FROM :<a@b>"), false, &p), R_MAIL_SYNTAX);
	CHECK_STR(mail(L(" FROM:<a@b>"), false, &p), R_MAIL_SYNTAX);
	CHECK_STR(mail(L("TO:<a@b>"), false, &p), R_MAIL_SYNTAX);
	CHECK_STR(mail(L("FRO:<a@b>"), false, &p), R_MAIL_SYNTAX);

	CHECK_STR(mail(L("FROM:"), false, &p), R_SENDER);
	CHECK_STR(mail(L("FROM:a@b"), false, &p), R_SENDER);
	CHECK_STR(mail(L("FROM:<a@b"), false, &p), R_SENDER);
	CHECK_STR(mail(L("FROM:<a@@b>"), false, &p), R_SENDER);
	CHECK_STR(mail(L("FROM:<;sleep 66;>"), false, &p), R_SENDER);
	/* after the path: a space or the end */
	CHECK_REPLY(mail(L("FROM:<a@b>x"), false, &p), "501 5.5.4");
	CHECK_REPLY(mail(L("FROM:<a@b>SIZE=10"), false, &p), "501 5.5.4");
	CHECK_REPLY(mail(L("FROM:<a@b>\t"), false, &p), "501 5.5.4");
}

static void
test_mail_address_errors(void)
{
	struct smtp_mail_params p;
	char buf[600];

	CHECK_REPLY(mail(L("FROM:<a\0b@x>"), false, &p), "501 5.5.2");
	CHECK_REPLY(mail(L("FROM:<a\0b@x>"), true, &p), "501 5.5.2");
	/* too long: a 100 kB address is not for this parser (line limit),
	 * but a 300-octet one is */
	memcpy(buf, "FROM:<", 6);
	memset(buf + 6, 'a', 300);
	memcpy(buf + 306, "@b>", 3);
	CHECK_STR(mail(buf, 309, false, &p), R_SENDER);

	/* UTF-8: needs the session's SMTPUTF8 and the parameter */
	CHECK_STR(mail(L("FROM:<j\xc3\xb6hn@x>"), false, &p), R_ADDR_8BIT);
	CHECK_STR(mail(L("FROM:<j\xc3\xb6hn@x>"), true, &p), R_ADDR_8BIT);
	CHECK_STR(mail(L("FROM:<j\xc3\xb6hn@x> SMTPUTF8"), true, &p), NULL);
	CHECK(p.smtputf8 && p.from.utf8);
	CHECK_STR(p.from.local, "j\xc3\xb6hn");
	CHECK_STR(mail(L("FROM:<j\xc3\xb6hn@x> SMTPUTF8"), false, &p),
	    R_ADDR_8BIT);
	CHECK_STR(mail(L("FROM:<a@\xc3\xa9.example> SMTPUTF8"), true, &p),
	    NULL);
	CHECK_STR(mail(L("FROM:<a@\xc3\xa9.example>"), true, &p),
	    R_ADDR_8BIT);
	/* invalid UTF-8 even with SMTPUTF8 */
	CHECK_STR(mail(L("FROM:<j\xffhn@x> SMTPUTF8"), true, &p),
	    R_ADDR_8BIT);
	CHECK_STR(mail(L("FROM:<j\xc3hn@x> SMTPUTF8"), true, &p),
	    R_ADDR_8BIT);
	/* an ASCII address with SMTPUTF8 is fine */
	CHECK_STR(mail(L("FROM:<a@b> SMTPUTF8"), true, &p), NULL);
	CHECK(p.smtputf8 && !p.from.utf8);
}

static void
test_mail_size(void)
{
	struct smtp_mail_params p;

	CHECK_STR(mail(L("FROM:<a@b> SIZE=1000"), false, &p), NULL);
	CHECK(p.has_size && p.size == 1000);
	CHECK_STR(mail(L("FROM:<a@b> size=0"), false, &p), NULL);
	CHECK(p.has_size && p.size == 0);
	CHECK_STR(mail(L("FROM:<a@b> SIZE=18446744073709551615"), false, &p),
	    NULL);
	CHECK(p.has_size && p.size == UINT64_MAX);
	CHECK_STR(mail(L("FROM:<a@b> SIZE=00000000000000000001"), false, &p),
	    NULL);
	CHECK(p.size == 1);
	/* no wrap-around */
	CHECK_STR(mail(L("FROM:<a@b> SIZE=18446744073709551616"), false, &p),
	    R_SIZE_BIG);
	CHECK_STR(mail(L("FROM:<a@b> SIZE=99999999999999999999"), false, &p),
	    R_SIZE_BIG);
	CHECK_STR(mail(L("FROM:<a@b> SIZE=36893488147419103232"), false, &p),
	    R_SIZE_BIG);	/* 2^65: wraps to 0 in 64 bits */
	CHECK_STR(mail(L("FROM:<a@b> SIZE=184467440737095516150"), false,
	    &p), R_SIZE_BIG);
	CHECK_STR(mail(L("FROM:<a@b> SIZE=1000000000000000000000000000000000"
	    "0000000000000"), false, &p), R_SIZE_BIG);
	/* 21 digits that fit: not 1*20DIGIT */
	CHECK_REPLY(mail(L("FROM:<a@b> SIZE=000000000000000000001"), false,
	    &p), "501 5.5.4");
	CHECK_REPLY(mail(L("FROM:<a@b> SIZE="), false, &p), "501 5.5.4");
	CHECK_REPLY(mail(L("FROM:<a@b> SIZE"), false, &p), "501 5.5.4");
	CHECK_REPLY(mail(L("FROM:<a@b> SIZE=-1"), false, &p), "501 5.5.4");
	CHECK_REPLY(mail(L("FROM:<a@b> SIZE=+1"), false, &p), "501 5.5.4");
	CHECK_REPLY(mail(L("FROM:<a@b> SIZE=12a"), false, &p), "501 5.5.4");
	CHECK_REPLY(mail(L("FROM:<a@b> SIZE=0x10"), false, &p), "501 5.5.4");
	CHECK_REPLY(mail(L("FROM:<a@b> SIZE=1e9"), false, &p), "501 5.5.4");
	CHECK_STR(mail(L("FROM:<a@b> SIZE=1 SIZE=1"), false, &p), R_DUP);
	CHECK_STR(mail(L("FROM:<a@b> SIZE=1 size=2"), false, &p), R_DUP);
}

static void
test_mail_body_utf8(void)
{
	struct smtp_mail_params p;

	CHECK_STR(mail(L("FROM:<a@b> BODY=7BIT"), false, &p), NULL);
	CHECK(p.body == SMTP_BODY_7BIT);
	CHECK_STR(mail(L("FROM:<a@b> BODY=8BITMIME"), false, &p), NULL);
	CHECK(p.body == SMTP_BODY_8BITMIME);
	CHECK_STR(mail(L("FROM:<a@b> body=8bitmime"), false, &p), NULL);
	CHECK(p.body == SMTP_BODY_8BITMIME);
	CHECK_STR(mail(L("FROM:<a@b> BODY=BINARYMIME"), false, &p), R_BODY);
	CHECK_STR(mail(L("FROM:<a@b> BODY=8BIT"), false, &p), R_BODY);
	CHECK_STR(mail(L("FROM:<a@b> BODY="), false, &p),
	    "501 5.5.4 Syntax error in parameters");
	CHECK_STR(mail(L("FROM:<a@b> BODY"), false, &p), R_BODY);
	CHECK_STR(mail(L("FROM:<a@b> BODY=7BIT BODY=7BIT"), false, &p),
	    R_DUP);
	CHECK_STR(mail(L("FROM:<a@b> BODY=7BIT BODY=8BITMIME"), false, &p),
	    R_DUP);

	CHECK_STR(mail(L("FROM:<a@b> SMTPUTF8"), true, &p), NULL);
	CHECK(p.smtputf8);
	CHECK_STR(mail(L("FROM:<a@b> smtputf8"), true, &p), NULL);
	CHECK(p.smtputf8);
	CHECK_REPLY(mail(L("FROM:<a@b> SMTPUTF8"), false, &p), "555 5.5.4");
	CHECK_REPLY(mail(L("FROM:<a@b> SMTPUTF8=yes"), true, &p),
	    "555 5.5.4");
	CHECK_STR(mail(L("FROM:<a@b> SMTPUTF8 SMTPUTF8"), true, &p), R_DUP);

	/* all together, in any order, any run of spaces, trailing spaces */
	CHECK_STR(mail(L("FROM:<a@b>   SMTPUTF8  BODY=8BITMIME SIZE=42  "),
	    true, &p), NULL);
	CHECK(p.smtputf8 && p.body == SMTP_BODY_8BITMIME && p.has_size &&
	    p.size == 42);
}

static void
test_mail_params_bad(void)
{
	struct smtp_mail_params p;

	CHECK_STR(mail(L("FROM:<a@b> RET=FULL"), false, &p), R_UNSUPPORTED);
	CHECK_STR(mail(L("FROM:<a@b> ENVID=x"), false, &p), R_UNSUPPORTED);
	CHECK_STR(mail(L("FROM:<a@b> X-FOO"), false, &p), R_UNSUPPORTED);
	CHECK_STR(mail(L("FROM:<a@b> 9"), false, &p), R_UNSUPPORTED);
	CHECK_STR(mail(L("FROM:<a@b> AUTH=<>"), false, &p), R_UNSUPPORTED);
	/* CVE-2020-28021 class: xtext is not decoded; refused anyway */
	CHECK_STR(mail(L("FROM:<> AUTH=x+0AInjected:+20yes"), false, &p),
	    R_UNSUPPORTED);
	/* an unknown parameter after a good one */
	CHECK_STR(mail(L("FROM:<a@b> SIZE=1 FOO"), false, &p), R_UNSUPPORTED);

	/* keyword and value syntax */
	CHECK_REPLY(mail(L("FROM:<a@b> =10"), false, &p), "501 5.5.4");
	CHECK_REPLY(mail(L("FROM:<a@b> -X=1"), false, &p), "501 5.5.4");
	CHECK_REPLY(mail(L("FROM:<a@b> A_B=1"), false, &p), "501 5.5.4");
	CHECK_REPLY(mail(L("FROM:<a@b> A==1"), false, &p), "501 5.5.4");
	CHECK_REPLY(mail(L("FROM:<a@b> A="), false, &p), "501 5.5.4");
	CHECK_REPLY(mail(L("FROM:<a@b> A=b=c"), false, &p), "501 5.5.4");
	/* control and 8-bit bytes in parameters */
	CHECK_REPLY(mail(L("FROM:<a@b> SIZE=1\x01"), false, &p), "501 5.5.4");
	CHECK_REPLY(mail(L("FROM:<a@b> SIZE=10\t"), false, &p), "501 5.5.4");
	CHECK_REPLY(mail(L("FROM:<a@b> X=\xff"), false, &p), "501 5.5.4");
	CHECK_REPLY(mail(L("FROM:<a@b> X=a\rb"), false, &p), "501 5.5.4");
	CHECK_REPLY(mail(L("FROM:<a@b> X=a\nb"), false, &p), "501 5.5.4");
	CHECK_REPLY(mail(L("FROM:<a@b> X=a\x7f"), false, &p), "501 5.5.4");
	CHECK_REPLY(mail(L("FROM:<a@b> SIZE=1\0"), false, &p), "501 5.5.4");
	CHECK_REPLY(mail(L("FROM:<a@b> \xc3\xa4=1"), true, &p), "501 5.5.4");
}

static const char *
rcpt(const char *args, size_t len, bool utf8, struct smtp_rcpt_params *p)
{
	return smtp_parse_rcpt_args(args, len, utf8, p);
}

static void
test_rcpt(void)
{
	struct smtp_rcpt_params p;

	CHECK_STR(rcpt(L("TO:<bob@local.test>"), false, &p), NULL);
	CHECK_STR(p.to.local, "bob");
	CHECK_STR(p.to.domain, "local.test");
	CHECK_STR(rcpt(L("to:<bob@local.test>"), false, &p), NULL);
	CHECK_STR(rcpt(L("To: <bob@local.test>"), false, &p), NULL);
	CHECK_STR(rcpt(L("TO:<bob@local.test> "), false, &p), NULL);
	CHECK_STR(rcpt(L("TO:<postmaster>"), false, &p), NULL);
	CHECK_STR(rcpt(L("TO:<@a,@b:bob@local.test>"), false, &p), NULL);
	CHECK(p.to.had_source_route);
	CHECK_STR(p.to.domain, "local.test");

	CHECK_STR(rcpt(L(""), false, &p), R_RCPT_SYNTAX);
	CHECK_STR(rcpt(L("TO<a@b>"), false, &p), R_RCPT_SYNTAX);
	CHECK_STR(rcpt(L("FROM:<a@b>"), false, &p), R_RCPT_SYNTAX);
	CHECK_STR(rcpt(L("T:<a@b>"), false, &p), R_RCPT_SYNTAX);

	CHECK_STR(rcpt(L("TO:<>"), false, &p), R_RECIPIENT);
	CHECK_STR(rcpt(L("TO:"), false, &p), R_RECIPIENT);
	CHECK_STR(rcpt(L("TO:bob@local.test"), false, &p), R_RECIPIENT);
	CHECK_STR(rcpt(L("TO:<bob@local.test"), false, &p), R_RECIPIENT);
	CHECK_STR(rcpt(L("TO:<${run{\\x2fbin\\x2fsh\\t-c\\t\\x22id\\x22}}"
	    "@localhost>"), false, &p), R_RECIPIENT);
	CHECK_REPLY(rcpt(L("TO:<a\0b@x>"), false, &p), "501 5.5.2");
	CHECK_STR(rcpt(L("TO:<j\xc3\xb6hn@x>"), false, &p), R_ADDR_8BIT);
	CHECK_STR(rcpt(L("TO:<j\xffhn@x>"), true, &p), R_ADDR_8BIT);
	CHECK_STR(rcpt(L("TO:<j\xc3\xb6hn@x>"), true, &p), NULL);
	CHECK(p.to.utf8);

	/* no parameter is known */
	CHECK_STR(rcpt(L("TO:<a@b> NOTIFY=NEVER"), false, &p), R_UNSUPPORTED);
	CHECK_STR(rcpt(L("TO:<a@b> ORCPT=rfc822;a+0Ab@c"), false, &p),
	    R_UNSUPPORTED);
	CHECK_STR(rcpt(L("TO:<a@b>   X"), false, &p), R_UNSUPPORTED);
	CHECK_REPLY(rcpt(L("TO:<a@b> X=\x01"), false, &p), "501 5.5.4");
	CHECK_REPLY(rcpt(L("TO:<a@b> X=\xff"), false, &p), "501 5.5.4");
	CHECK_REPLY(rcpt(L("TO:<a@b>X"), false, &p), "501 5.5.4");
}

static void
check_bdat(const char *args, size_t len, const char *reply, uint64_t size,
    bool last)
{
	uint64_t n = 12345;
	bool l = true;

	CHECK_STR(smtp_parse_bdat_args(args, len, &n, &l), reply);
	if (reply == NULL)
		CHECK(n == size && l == last);
}

static void
test_bdat(void)
{
	check_bdat(L("0"), NULL, 0, false);
	check_bdat(L("0 LAST"), NULL, 0, true);
	check_bdat(L("100 last"), NULL, 100, true);
	check_bdat(L("100 LaSt"), NULL, 100, true);
	check_bdat(L("0010"), NULL, 10, false);
	check_bdat(L("18446744073709551615"), NULL, UINT64_MAX, false);
	check_bdat(L("18446744073709551615 LAST"), NULL, UINT64_MAX, true);
	check_bdat(L("18446744073709551616"), R_SIZE_BIG, 0, false);
	check_bdat(L("18446744073709551616 LAST"), R_SIZE_BIG, 0, false);
	check_bdat(L("99999999999999999999"), R_SIZE_BIG, 0, false);
	check_bdat(L("184467440737095516150"), R_SIZE_BIG, 0, false);
	check_bdat(L(""), R_BDAT, 0, false);
	check_bdat(L("-1"), R_BDAT, 0, false);
	check_bdat(L("+1"), R_BDAT, 0, false);
	check_bdat(L("1x"), R_BDAT, 0, false);
	check_bdat(L("LAST"), R_BDAT, 0, false);
	check_bdat(L(" 1"), R_BDAT, 0, false);
	check_bdat(L("1 "), R_BDAT, 0, false);
	check_bdat(L("1  LAST"), R_BDAT, 0, false);
	check_bdat(L("1 LAST "), R_BDAT, 0, false);
	check_bdat(L("1 LASTX"), R_BDAT, 0, false);
	check_bdat(L("1 LAS"), R_BDAT, 0, false);
	check_bdat(L("1\tLAST"), R_BDAT, 0, false);
	check_bdat(L("1 LAST x"), R_BDAT, 0, false);
	check_bdat(L("1\0"), R_BDAT, 0, false);
	/* junk is junk even after a too-big number */
	check_bdat(L("99999999999999999999x"), R_BDAT, 0, false);
}

static void
check_helo(const char *args, size_t len, const char *reply, const char *name)
{
	char out[256];

	memset(out, 'Z', sizeof(out));
	CHECK_STR(smtp_parse_helo_args(args, len, out, sizeof(out)), reply);
	if (reply == NULL)
		CHECK_STR(out, name);
}

static void
test_helo(void)
{
	char buf[300], out[16];

	check_helo(L("mail.example.org"), NULL, "mail.example.org");
	check_helo(L("localhost"), NULL, "localhost");
	check_helo(L("MAIL.Example.ORG"), NULL, "MAIL.Example.ORG");
	check_helo(L("win_host-1"), NULL, "win_host-1");
	check_helo(L("[192.0.2.1]"), NULL, "[192.0.2.1]");
	check_helo(L("[IPv6:2001:db8::1]"), NULL, "[IPv6:2001:db8::1]");
	check_helo(L("192.0.2.1"), NULL, "192.0.2.1");
	/* trailing text is ignored, leading spaces skipped */
	check_helo(L("host extra words"), NULL, "host");
	check_helo(L("  host"), NULL, "host");

	check_helo(L(""), R_HELO_SYNTAX, NULL);
	check_helo(L("   "), R_HELO_SYNTAX, NULL);

	check_helo(L("ho\0st"), R_HELO_CHAR, NULL);
	check_helo(L("host\0"), R_HELO_CHAR, NULL);
	check_helo(L("ho\rst"), R_HELO_CHAR, NULL);
	check_helo(L("host\r\nMAIL FROM:<a@b>"), R_HELO_CHAR, NULL);
	check_helo(L("host\tx"), R_HELO_CHAR, NULL);
	check_helo(L("h\xc3\xa4st"), R_HELO_CHAR, NULL);
	check_helo(L("host \xff"), R_HELO_CHAR, NULL);
	check_helo(L("host\x7f"), R_HELO_CHAR, NULL);

	check_helo(L("ho<st"), "501 5.5.4 Invalid hostname", NULL);
	check_helo(L("a;b"), "501 5.5.4 Invalid hostname", NULL);
	check_helo(L("[1.2.3.4"), "501 5.5.4 Invalid hostname", NULL);
	check_helo(L("[]"), "501 5.5.4 Invalid hostname", NULL);
	check_helo(L("[a]b]"), "501 5.5.4 Invalid hostname", NULL);
	check_helo(L("[a\\b]"), "501 5.5.4 Invalid hostname", NULL);

	/* 255 octets fit, 256 do not */
	memset(buf, 'a', sizeof(buf));
	CHECK_STR(smtp_parse_helo_args(buf, 255, out, sizeof(out)),
	    "501 5.5.4 Hostname too long");	/* out is too small */
	{
		char big[256];

		CHECK_STR(smtp_parse_helo_args(buf, 255, big, sizeof(big)),
		    NULL);
		CHECK(strlen(big) == 255);
		CHECK_STR(smtp_parse_helo_args(buf, 256, big, sizeof(big)),
		    "501 5.5.4 Hostname too long");
		CHECK_STR(smtp_parse_helo_args(buf, 300, big, sizeof(big)),
		    "501 5.5.4 Hostname too long");
	}
}

int
main(void)
{
	UNIT_RUN(test_verbs);
	UNIT_RUN(test_unknown);
	UNIT_RUN(test_nul);
	UNIT_RUN(test_8bit);
	UNIT_RUN(test_length);
	UNIT_RUN(test_mail_from);
	UNIT_RUN(test_mail_address_errors);
	UNIT_RUN(test_mail_size);
	UNIT_RUN(test_mail_body_utf8);
	UNIT_RUN(test_mail_params_bad);
	UNIT_RUN(test_rcpt);
	UNIT_RUN(test_bdat);
	UNIT_RUN(test_helo);
	return unit_finish();
}
