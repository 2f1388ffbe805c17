/*
 * Tests for the request lines of the queue's control socket (`tegami
 * queue`, docs/queue.md) and pickup socket (`tegami sendmail`, RFC 3461 4
 * xtext addresses): every command, every refusal with its exact reply
 * text, the limits at and over their bounds, NUL bytes.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue_envelope.h"
#include "queue/queue_request.h"
#include "unit.h"

#define ID "0123456789ABCDEF"
#define BAD_ID "error bad queue id (16 upper-case hex digits)"
#define UNKNOWN "error unknown command (flush [ID], delete ID, bounce ID)"
#define BAD_LINE "error request line too long or with a NUL byte"
#define ENCODING "perm 5.1.3 bad address encoding or length"
#define SYNTAX "perm 5.1.3 bad address syntax"
#define BAD_SIZE "perm 5.5.4 bad size"
#define TOO_BIG "perm 5.3.4 message size exceeds message_size_limit"

/* len bytes of s in a heap block of exactly that size, so that ASan
 * sees a read past the end. */
static char *
dup_exact(const char *s, size_t len)
{
	char *p = malloc(len > 0 ? len : 1);

	if (p == NULL)
		abort();
	memcpy(p, s, len);
	return p;
}

/* ---- The control socket ------------------------------------------------ */

static char ctl_reply[256];

static enum queue_request_result
ctl_n(const char *s, size_t len, struct queue_request_control *req)
{
	enum queue_request_result rc;
	char *line = dup_exact(s, len);

	memset(ctl_reply, 'X', sizeof(ctl_reply) - 1);
	ctl_reply[sizeof(ctl_reply) - 1] = '\0';
	rc = queue_request_control_parse(line, len, req, ctl_reply,
	    sizeof(ctl_reply));
	free(line);
	return rc;
}

static enum queue_request_result
ctl(const char *s, struct queue_request_control *req)
{
	return ctl_n(s, strlen(s), req);
}

static void
test_control_commands(void)
{
	struct queue_request_control req;

	CHECK(ctl("flush", &req) == QUEUE_REQUEST_OK);
	CHECK(req.cmd == QUEUE_REQUEST_FLUSH);
	CHECK_STR(req.name, "flush");
	CHECK_STR(req.id, "");
	CHECK(ctl("flush " ID, &req) == QUEUE_REQUEST_OK);
	CHECK(req.cmd == QUEUE_REQUEST_FLUSH);
	CHECK_STR(req.id, ID);
	CHECK(ctl("delete " ID, &req) == QUEUE_REQUEST_OK);
	CHECK(req.cmd == QUEUE_REQUEST_DELETE);
	CHECK_STR(req.name, "delete");
	CHECK_STR(req.id, ID);
	CHECK(ctl("bounce FEDCBA9876543210", &req) == QUEUE_REQUEST_OK);
	CHECK(req.cmd == QUEUE_REQUEST_BOUNCE);
	CHECK_STR(req.name, "bounce");
	CHECK_STR(req.id, "FEDCBA9876543210");
	/* every hex digit, both ends of the range */
	CHECK(ctl("delete 0000000000000000", &req) == QUEUE_REQUEST_OK);
	CHECK(ctl("delete FFFFFFFFFFFFFFFF", &req) == QUEUE_REQUEST_OK);
	CHECK(ctl("delete 9A9A9A9A9A9A9A9A", &req) == QUEUE_REQUEST_OK);
	/* only len bytes count: what follows in memory is not read */
	CHECK(ctl_n("flush " ID, 5, &req) == QUEUE_REQUEST_OK);
	CHECK_STR(req.id, "");
	CHECK(ctl_n("delete " ID "0", 7 + 16, &req) == QUEUE_REQUEST_OK);
	CHECK_STR(req.id, ID);
}

static void
test_control_unknown(void)
{
	static const char *const lines[] = {
		"", " ", "FLUSH", "Flush", "flush\r", "flushx", "flus", "f",
		" flush", "del", "deletex " ID, "status", "quit", "flush\t" ID,
		"\xff", "bounce\r " ID, "delete\t" ID,
	};
	struct queue_request_control req;
	size_t i;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		CHECK(ctl(lines[i], &req) == QUEUE_REQUEST_REFUSED);
		CHECK_STR(ctl_reply, UNKNOWN);
	}
}

static void
test_control_missing_id(void)
{
	struct queue_request_control req;

	CHECK(ctl("delete", &req) == QUEUE_REQUEST_REFUSED);
	CHECK_STR(ctl_reply, "error delete needs a queue id");
	CHECK(ctl("bounce", &req) == QUEUE_REQUEST_REFUSED);
	CHECK_STR(ctl_reply, "error bounce needs a queue id");
	/* a space and nothing: an empty id, not a missing one */
	CHECK(ctl("delete ", &req) == QUEUE_REQUEST_REFUSED);
	CHECK_STR(ctl_reply, BAD_ID);
	CHECK(ctl("flush ", &req) == QUEUE_REQUEST_REFUSED);
	CHECK_STR(ctl_reply, BAD_ID);
}

static void
test_control_bad_ids(void)
{
	static const char *const lines[] = {
		"delete 0123456789ABCDE",		/* 15 */
		"delete 0123456789ABCDEF0",		/* 17 */
		"delete 0",
		"delete 0123456789abcdef",		/* lower case */
		"delete 0123456789ABCDEf",
		"delete 0123456789ABCDEG",
		"delete G123456789ABCDEF",
		"delete 0123456789ABCDE ",
		"delete  0123456789ABCDE",		/* two spaces */
		"delete  0123456789ABCDEF",
		"delete " ID " ",			/* surplus */
		"delete " ID " " ID,
		"bounce " ID "\r",
		"flush " ID "x",
		"flush -123456789ABCDEF",
		"flush 0x23456789ABCDEF",
		("flush 01234567\xff" "9ABCDEF"),	/* \xff, then hex */
		"bounce ../../../etc/pa",		/* 16 bytes, a path */
		"bounce 0123456789ABCDEF.env",
	};
	struct queue_request_control req;
	size_t i;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		CHECK(ctl(lines[i], &req) == QUEUE_REQUEST_REFUSED);
		CHECK_STR(ctl_reply, BAD_ID);
	}
}

static void
test_control_bad_line(void)
{
	struct queue_request_control req;
	char line[QUEUE_REQUEST_CONTROL_LINE_MAX + 8];

	/* a NUL anywhere, before every other check */
	CHECK(ctl_n("flush\0", 6, &req) == QUEUE_REQUEST_BAD_LINE);
	CHECK_STR(ctl_reply, BAD_LINE);
	CHECK(ctl_n("\0", 1, &req) == QUEUE_REQUEST_BAD_LINE);
	CHECK_STR(ctl_reply, BAD_LINE);
	CHECK(ctl_n("delete 01234567\0" "9ABCDEF", 23, &req) ==
	    QUEUE_REQUEST_BAD_LINE);
	CHECK_STR(ctl_reply, BAD_LINE);
	CHECK(ctl_n("delete " ID "\0", 24, &req) == QUEUE_REQUEST_BAD_LINE);
	CHECK(ctl_n("nonsense\0", 9, &req) == QUEUE_REQUEST_BAD_LINE);
	/* the limit counts the LF: len + 1 bytes on the wire */
	memset(line, 'x', sizeof(line));
	CHECK(ctl_n(line, QUEUE_REQUEST_CONTROL_LINE_MAX - 1, &req) ==
	    QUEUE_REQUEST_REFUSED);
	CHECK_STR(ctl_reply, UNKNOWN);
	CHECK(ctl_n(line, QUEUE_REQUEST_CONTROL_LINE_MAX, &req) ==
	    QUEUE_REQUEST_BAD_LINE);
	CHECK_STR(ctl_reply, BAD_LINE);
	CHECK(ctl_n(line, sizeof(line), &req) == QUEUE_REQUEST_BAD_LINE);
	memcpy(line, "flush ", 6);
	memset(line + 6, ' ', sizeof(line) - 6);
	CHECK(ctl_n(line, QUEUE_REQUEST_CONTROL_LINE_MAX - 1, &req) ==
	    QUEUE_REQUEST_REFUSED);
	CHECK_STR(ctl_reply, BAD_ID);
	CHECK(ctl_n(line, QUEUE_REQUEST_CONTROL_LINE_MAX, &req) ==
	    QUEUE_REQUEST_BAD_LINE);
}

static void
test_control_small_reply(void)
{
	struct queue_request_control req;
	char reply[8];

	/* cut, and terminated */
	CHECK(queue_request_control_parse("nope", 4, &req, reply,
	    sizeof(reply)) == QUEUE_REQUEST_REFUSED);
	CHECK_STR(reply, "error u");
	CHECK(queue_request_control_parse("delete", 6, &req, reply,
	    sizeof(reply)) == QUEUE_REQUEST_REFUSED);
	CHECK_STR(reply, "error d");
	/* OK leaves the reply alone */
	memcpy(reply, "keep", 5);
	CHECK(queue_request_control_parse("flush", 5, &req, reply,
	    sizeof(reply)) == QUEUE_REQUEST_OK);
	CHECK_STR(reply, "keep");
}

/* ---- The pickup socket: verbs ------------------------------------------ */

static const char *
pick_n(const char *s, size_t len, struct queue_request_pickup *req,
    char **line_r)
{
	*line_r = dup_exact(s, len);
	req->arg = NULL;
	req->arg_len = 12345;
	return queue_request_pickup_parse(*line_r, len, req);
}

/* Parses s[0..len) and checks verb and argument (alen bytes). */
static void
check_pick_n(const char *s, size_t len, enum queue_request_pickup_verb verb,
    const char *arg, size_t alen)
{
	struct queue_request_pickup req;
	char *line;
	const char *err = pick_n(s, len, &req, &line);

	CHECK(err == NULL);
	if (err == NULL) {
		CHECK(req.verb == verb);
		CHECK(req.arg_len == alen);
		CHECK(req.arg >= line && req.arg + req.arg_len == line + len);
		CHECK(memcmp(req.arg, arg, alen) == 0);
	}
	free(line);
}

static void
check_pick(const char *s, enum queue_request_pickup_verb verb,
    const char *arg)
{
	check_pick_n(s, strlen(s), verb, arg, strlen(arg));
}

static void
test_pickup_verbs(void)
{
	check_pick("sender a@example.com", QUEUE_REQUEST_SENDER,
	    "a@example.com");
	check_pick("sender <>", QUEUE_REQUEST_SENDER, "<>");
	check_pick("recipient b@example.com", QUEUE_REQUEST_RECIPIENT,
	    "b@example.com");
	check_pick("size 1234", QUEUE_REQUEST_SIZE, "1234");
	check_pick("data", QUEUE_REQUEST_DATA, "");
	/* the argument is the rest, spaces and all: checked later */
	check_pick("sender ", QUEUE_REQUEST_SENDER, "");
	check_pick("recipient  a b ", QUEUE_REQUEST_RECIPIENT, " a b ");
	check_pick("size 1 2", QUEUE_REQUEST_SIZE, "1 2");
	/* a NUL in the argument is the argument's check's business */
	check_pick_n("sender a\0b", 10, QUEUE_REQUEST_SENDER, "a\0b", 3);
	check_pick_n("size \0", 6, QUEUE_REQUEST_SIZE, "\0", 1);
}

static void
test_pickup_unknown(void)
{
	static const struct {
		const char *s;
		size_t len;
	} lines[] = {
		{ "", 0 }, { " ", 1 }, { "sender", 6 }, { "recipient", 9 },
		{ "size", 4 }, { "data ", 5 }, { "data x", 6 },
		{ "DATA", 4 }, { "Sender a@b.example", 18 },
		{ "SIZE 1", 6 }, { " sender a@b.example", 19 },
		{ "sender\ta@b.example", 18 }, { "data\r", 5 },
		{ "dat", 3 }, { "datax", 5 }, { "senders a", 9 },
		{ "recipients a", 12 }, { "sizes 1", 7 }, { "quit", 4 },
		{ "mail from:<a@b.example>", 23 }, { "rcpt", 4 },
		{ "data\0", 5 }, { "\0data", 5 }, { "send\0r a", 8 },
		{ "sender\0a@b.example", 18 }, { "\xff", 1 },
	};
	struct queue_request_pickup req;
	char *line;
	size_t i;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		CHECK_STR(pick_n(lines[i].s, lines[i].len, &req, &line),
		    "perm 5.5.1 unknown command");
		free(line);
	}
}

/* ---- The pickup socket: addresses -------------------------------------- */

static char addr_out[QUEUE_ADDRESS_MAX + 1];

static const char *
address_n(const char *s, size_t len, struct smtp_address *a)
{
	char *arg = dup_exact(s, len);
	const char *err;

	memcpy(addr_out, "untouched", 10);
	err = queue_request_pickup_address(arg, len, a, addr_out,
	    sizeof(addr_out));
	free(arg);
	return err;
}

static const char *
address(const char *s)
{
	struct smtp_address a;

	return address_n(s, strlen(s), &a);
}

static void
test_pickup_address_ok(void)
{
	struct smtp_address a;

	CHECK(address_n("user@example.com", 16, &a) == NULL);
	CHECK_STR(addr_out, "user@example.com");
	CHECK_STR(a.local, "user");
	CHECK_STR(a.domain, "example.com");
	CHECK(!a.is_null && !a.utf8);
	/* the domain lowercased, the local part kept */
	CHECK(address("User.Name@Example.COM") == NULL);
	CHECK_STR(addr_out, "User.Name@example.com");
	/* xtext: "+2B" is '+', "+3D" '=' */
	CHECK(address("a+2Btag@example.com") == NULL);
	CHECK_STR(addr_out, "a+tag@example.com");
	CHECK(address("a+3Db@example.com") == NULL);
	CHECK_STR(addr_out, "a=b@example.com");
	/* a quoted local part with a space */
	CHECK(address("+22a+20b+22@example.com") == NULL);
	CHECK_STR(addr_out, "\"a b\"@example.com");
	/* UTF-8 (sendmail has no SMTPUTF8 switch: always allowed) */
	CHECK(address_n("j+C3+B6rg@example.com", 21, &a) == NULL);
	CHECK_STR(addr_out, "j\xc3\xb6rg@example.com");
	CHECK(a.utf8);
	/* an address literal */
	CHECK(address("a@[192.0.2.1]") == NULL);
	CHECK_STR(addr_out, "a@[192.0.2.1]");
	/* a source route is dropped */
	CHECK(address("@relay.example:a@example.com") == NULL);
	CHECK_STR(addr_out, "a@example.com");
}

static void
test_pickup_address_refused(void)
{
	static const struct {
		const char *s;
		size_t len;
		const char *reply;
	} cases[] = {
		{ "", 0, ENCODING },
		{ "a b@example.com", 15, ENCODING },	/* raw space */
		{ "a+b@example.com", 15, ENCODING },	/* '+' not hex */
		{ "a+2b@example.com", 16, ENCODING },	/* lower-case hex */
		{ "a=b@example.com", 15, ENCODING },
		{ "a@example.com+", 14, ENCODING },	/* '+' at the end */
		{ "a@example.com+2", 15, ENCODING },
		{ "a\0@example.com", 15, ENCODING },	/* raw NUL */
		{ "a\x7f@example.com", 15, ENCODING },
		{ "a\xc3\xb6@example.com", 16, ENCODING },	/* raw 8-bit */
		{ "a\r@example.com", 15, ENCODING },
		{ "a+00@example.com", 16, SYNTAX },	/* NUL decoded */
		{ "a+20b@example.com", 17, SYNTAX },	/* bare space */
		{ "a+0D+0A@example.com", 19, SYNTAX },
		{ "user", 4, SYNTAX },			/* no domain */
		{ "postmaster", 10, SYNTAX },		/* <postmaster> */
		{ "Postmaster", 10, SYNTAX },
		{ "<>", 2, SYNTAX },			/* not for recipient */
		{ "+3C+3E", 6, SYNTAX },
		{ "<a@example.com>", 15, SYNTAX },	/* brackets twice */
		{ "a@example.com>x", 15, SYNTAX },	/* after the path */
		{ "a@example.com.", 14, SYNTAX },
		{ "a@@example.com", 14, SYNTAX },
		{ "@example.com", 12, SYNTAX },
		{ "a@", 2, SYNTAX },
		{ "a@-x.example", 12, SYNTAX },
		{ "a+C3@example.com", 16, SYNTAX },	/* bad UTF-8 */
	};
	struct smtp_address a;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *err = address_n(cases[i].s, cases[i].len, &a);

		CHECK_STR(err, cases[i].reply);
		if (err == NULL || strcmp(err, cases[i].reply) != 0)
			fprintf(stderr, "  case %zu\n", i);
	}
}

/* An address of n octets: 64 'l', '@', labels of 'd' up to n. */
static void
long_address(char *out, size_t n)
{
	size_t i = 0, label = 0;

	memset(out, 'l', 64);
	out[64] = '@';
	for (i = 65; i < n; i++) {
		/* labels of 60, the last one never empty or a '.' */
		if (label == 60 && i + 1 < n) {
			out[i] = '.';
			label = 0;
		} else {
			out[i] = 'd';
			label++;
		}
	}
	out[n] = '\0';
}

static void
test_pickup_address_length(void)
{
	char a[600], x[3 * 600 + 1], small[8];
	struct smtp_address sa;
	size_t i, n;

	/* SMTP_PATH_MAX with the brackets: 254 octets inside */
	long_address(a, SMTP_PATH_MAX - 2);
	CHECK(address(a) == NULL);
	CHECK_STR(addr_out, a);
	long_address(a, SMTP_PATH_MAX - 1);
	CHECK_STR(address(a), ENCODING);
	long_address(a, QUEUE_ADDRESS_MAX);
	CHECK_STR(address(a), ENCODING);
	long_address(a, QUEUE_ADDRESS_MAX + 1);
	CHECK_STR(address(a), ENCODING);
	long_address(a, sizeof(a) - 1);
	CHECK_STR(address(a), ENCODING);
	/* the decoded length counts, not the xtext's: 254 octets each
	 * written as "+XX" are 762 bytes of argument */
	long_address(a, SMTP_PATH_MAX - 2);
	for (i = 0, n = 0; a[i] != '\0'; i++)
		n += (size_t)sprintf(x + n, "+%02X", (unsigned char)a[i]);
	CHECK(address(x) == NULL);
	CHECK_STR(addr_out, a);
	/* a local part over 64 octets */
	memset(a, 'l', 65);
	memcpy(a + 65, "@example.com", 13);
	CHECK_STR(address(a), SYNTAX);
	/* the formatted address must fit the caller's buffer */
	CHECK_STR(queue_request_pickup_address("abcd@example.com", 16, &sa,
	    small, sizeof(small)), SYNTAX);
	CHECK(queue_request_pickup_address("a@b.ex", 6, &sa, small,
	    sizeof(small)) == NULL);
	CHECK_STR(small, "a@b.ex");
}

static const char *
sender(const char *s, size_t len)
{
	char *arg = dup_exact(s, len);
	const char *err;

	memcpy(addr_out, "untouched", 10);
	err = queue_request_pickup_sender(arg, len, addr_out,
	    sizeof(addr_out));
	free(arg);
	return err;
}

static void
test_pickup_sender(void)
{
	CHECK(sender("<>", 2) == NULL);
	CHECK_STR(addr_out, "");
	CHECK(sender("Me@Example.org", 14) == NULL);
	CHECK_STR(addr_out, "Me@example.org");
	CHECK(sender("a+2Bb@example.org", 17) == NULL);
	CHECK_STR(addr_out, "a+b@example.org");
	/* only the two bytes "<>" are the null sender */
	CHECK_STR(sender("", 0), ENCODING);
	CHECK_STR(sender("<", 1), SYNTAX);
	CHECK_STR(sender("<><>", 4), SYNTAX);
	CHECK_STR(sender("<>x", 3), SYNTAX);
	CHECK_STR(sender("<> ", 3), ENCODING);
	CHECK_STR(sender("+3C+3E", 6), SYNTAX);
	CHECK_STR(sender("<\0", 2), ENCODING);
	CHECK_STR(sender("postmaster", 10), SYNTAX);
	CHECK_STR(sender("a b@example.org", 15), ENCODING);
	CHECK_STR(sender("a+00@example.org", 16), SYNTAX);
}

/* ---- The pickup socket: size ------------------------------------------- */

static uint64_t size_out;

static const char *
size_n(const char *s, size_t len, uint64_t limit)
{
	char *arg = dup_exact(s, len);
	const char *err;

	size_out = 777;
	err = queue_request_pickup_size(arg, len, limit, &size_out);
	free(arg);
	return err;
}

static const char *
size(const char *s, uint64_t limit)
{
	return size_n(s, strlen(s), limit);
}

static void
test_pickup_size(void)
{
	static const char *const bad[] = {
		"", "00", "01", "0000000000000000001", "-1", "+1", " 1",
		"1 ", "1a", "a", "0x10", "1e6", "1.5", "1,000", "\xff",
		"99999999999999999999",			/* 20 digits */
		"18446744073709551615",			/* UINT64_MAX */
		"18446744073709551616",			/* 2^64 */
		"36893488147419103232",			/* 2^65 */
		"100000000000000000000000000000",
	};
	size_t i;

	CHECK(size("0", 100) == NULL && size_out == 0);
	CHECK(size("1", 100) == NULL && size_out == 1);
	CHECK(size("100", 100) == NULL && size_out == 100);
	CHECK(size("10485760", 10485760) == NULL && size_out == 10485760);
	CHECK_STR(size("101", 100), TOO_BIG);
	CHECK(size_out == 777);
	CHECK_STR(size("10485761", 10485760), TOO_BIG);
	CHECK_STR(size("1", 0), TOO_BIG);
	CHECK(size("0", 0) == NULL && size_out == 0);
	/* the longest accepted: 19 digits, no overflow */
	CHECK(size("9999999999999999999", UINT64_MAX) == NULL);
	CHECK(size_out == UINT64_C(9999999999999999999));
	CHECK(size("1000000000000000000", UINT64_MAX) == NULL);
	CHECK(size_out == UINT64_C(1000000000000000000));
	CHECK_STR(size("9999999999999999999", UINT64_C(9999999999999999998)),
	    TOO_BIG);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_STR(size(bad[i], UINT64_MAX), BAD_SIZE);
		CHECK(size_out == 777);
	}
	CHECK_STR(size_n("1\0", 2, UINT64_MAX), BAD_SIZE);
	CHECK_STR(size_n("\0" "1", 2, UINT64_MAX), BAD_SIZE);
	CHECK(size_n("12", 1, UINT64_MAX) == NULL);
	CHECK(size_out == 1);
}

int
main(void)
{
	UNIT_RUN(test_control_commands);
	UNIT_RUN(test_control_unknown);
	UNIT_RUN(test_control_missing_id);
	UNIT_RUN(test_control_bad_ids);
	UNIT_RUN(test_control_bad_line);
	UNIT_RUN(test_control_small_reply);
	UNIT_RUN(test_pickup_verbs);
	UNIT_RUN(test_pickup_unknown);
	UNIT_RUN(test_pickup_address_ok);
	UNIT_RUN(test_pickup_address_refused);
	UNIT_RUN(test_pickup_address_length);
	UNIT_RUN(test_pickup_sender);
	UNIT_RUN(test_pickup_size);
	return unit_finish();
}
