/*
 * Tests for the POP3 command parser (RFC 1939, RFC 2449 line length,
 * security-tests.md 25) and the RETR/TOP body writer (RFC 1939 3 byte
 * stuffing, 7 TOP), the latter fed in every split against a reference.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3_parse.h"
#include "unit.h"

static const char *
parse(const char *line, struct pop3_command *cmd)
{
	return pop3_parse_command(line, strlen(line), cmd);
}

/* The argument as a string, for CHECK_STR. */
static const char *
arg_str(const char *p, size_t len)
{
	static char buf[2][512];
	static int which;

	which ^= 1;
	memcpy(buf[which], p, len);
	buf[which][len] = '\0';
	return buf[which];
}

static void
test_verbs(void)
{
	static const struct {
		const char *line;
		enum pop3_verb verb;
	} ok[] = {
		{ "STLS", POP3_VERB_STLS }, { "CAPA", POP3_VERB_CAPA },
		{ "STAT", POP3_VERB_STAT }, { "LIST", POP3_VERB_LIST },
		{ "UIDL", POP3_VERB_UIDL }, { "RSET", POP3_VERB_RSET },
		{ "NOOP", POP3_VERB_NOOP }, { "QUIT", POP3_VERB_QUIT },
		{ "AUTH", POP3_VERB_AUTH }, { "quit", POP3_VERB_QUIT },
		{ "Capa", POP3_VERB_CAPA }, { "sTlS", POP3_VERB_STLS },
		{ "retr 1", POP3_VERB_RETR }, { "Dele 2", POP3_VERB_DELE },
		{ "tOp 1 0", POP3_VERB_TOP }, { "user bob", POP3_VERB_USER },
		{ "pass x", POP3_VERB_PASS }, { "apop a b", POP3_VERB_APOP },
	};
	struct pop3_command cmd;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		CHECK(parse(ok[i].line, &cmd) == NULL);
		CHECK(cmd.verb == ok[i].verb);
	}
	CHECK_STR(pop3_verb_name(POP3_VERB_TOP), "TOP");
	CHECK_STR(pop3_verb_name(POP3_VERB_RETR), "RETR");
	CHECK_STR(pop3_verb_name(POP3_VERB_APOP), "APOP");
	CHECK_STR(pop3_verb_name(POP3_VERB_UNKNOWN), "?");
	CHECK_STR(pop3_verb_name((enum pop3_verb)999), "?");

	CHECK_STR(parse("FOO", &cmd), "-ERR Unknown command");
	CHECK(cmd.verb == POP3_VERB_UNKNOWN);
	CHECK_STR(parse("", &cmd), "-ERR Unknown command");
	CHECK_STR(parse(" QUIT", &cmd), "-ERR Unknown command");
	CHECK_STR(parse("QUITX", &cmd), "-ERR Unknown command");
	CHECK_STR(parse("QUI", &cmd), "-ERR Unknown command");
	CHECK_STR(parse("LAST", &cmd), "-ERR Unknown command");
	CHECK_STR(parse("RETR\xc3\xa9 1", &cmd), "-ERR Unknown command");
	CHECK_STR(parse("STARTTLS", &cmd), "-ERR Unknown command");
}

static void
test_no_arguments(void)
{
	struct pop3_command cmd;

	CHECK(parse("STAT", &cmd) == NULL);
	CHECK(cmd.has_msg == 0 && cmd.arg_len == 0 && cmd.arg2_len == 0);
	CHECK_STR(parse("STAT x", &cmd),
	    "-ERR Syntax error: STAT takes no argument");
	CHECK(cmd.verb == POP3_VERB_STAT);
	CHECK_REPLY(parse("STAT ", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("QUIT now", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("NOOP 1", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("RSET  ", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("CAPA x", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("STLS x", &cmd), "-ERR Syntax error");
}

static void
test_numbers(void)
{
	struct pop3_command cmd;

	CHECK(parse("RETR 1", &cmd) == NULL);
	CHECK(cmd.verb == POP3_VERB_RETR && cmd.has_msg == 1 && cmd.msg == 1);
	CHECK(parse("RETR 4294967295", &cmd) == NULL);
	CHECK(cmd.msg == UINT32_MAX);
	CHECK(parse("DELE 0000000000000000000000042", &cmd) == NULL);
	CHECK(cmd.verb == POP3_VERB_DELE && cmd.msg == 42);

	/* security-tests.md 25 */
	CHECK_STR(parse("RETR 0", &cmd),
	    "-ERR Syntax error: a message number is 1 to 4294967295");
	CHECK_STR(parse("RETR -1", &cmd), "-ERR Syntax error: RETR msg");
	CHECK_REPLY(parse("RETR 4294967296", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("RETR 4294967297", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("RETR 18446744073709551617", &cmd),
	    "-ERR Syntax error");
	CHECK_STR(parse("TOP 1 -1", &cmd), "-ERR Syntax error: TOP msg lines");
	CHECK_STR(parse("LIST 99999999999999999999", &cmd),
	    "-ERR Syntax error: a message number is 1 to 4294967295");
	CHECK(cmd.has_msg == 0);

	CHECK_STR(parse("RETR", &cmd), "-ERR Syntax error: RETR msg");
	CHECK_REPLY(parse("RETR ", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("RETR  1", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("RETR 1 ", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("RETR +1", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("RETR 1.0", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("RETR 0x1", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("RETR 1a", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("RETR 1 2", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("DELE", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("DELE 0", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("DELE 99999999999999999999999999", &cmd),
	    "-ERR Syntax error");

	CHECK(parse("LIST", &cmd) == NULL);
	CHECK(cmd.verb == POP3_VERB_LIST && cmd.has_msg == 0);
	CHECK(parse("list 7", &cmd) == NULL);
	CHECK(cmd.has_msg == 1 && cmd.msg == 7);
	CHECK(parse("UIDL 3", &cmd) == NULL);
	CHECK(cmd.verb == POP3_VERB_UIDL && cmd.has_msg == 1 && cmd.msg == 3);
	CHECK(parse("UIDL", &cmd) == NULL);
	CHECK(cmd.has_msg == 0);
	CHECK_STR(parse("LIST 1 2", &cmd), "-ERR Syntax error: LIST [msg]");
	CHECK_REPLY(parse("LIST 0", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("LIST ", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("UIDL x", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("UIDL 4294967296", &cmd), "-ERR Syntax error");

	CHECK(parse("TOP 1 0", &cmd) == NULL);
	CHECK(cmd.verb == POP3_VERB_TOP && cmd.has_msg && cmd.msg == 1 &&
	    cmd.lines == 0);
	CHECK(parse("TOP 12 4294967295", &cmd) == NULL);
	CHECK(cmd.msg == 12 && cmd.lines == UINT32_MAX);
	CHECK_STR(parse("TOP 1 4294967296", &cmd),
	    "-ERR Syntax error: TOP's line count is 0 to 4294967295");
	CHECK_REPLY(parse("TOP 0 1", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("TOP 1", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("TOP", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("TOP 1 2 3", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("TOP 1  2", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("TOP -1 2", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("TOP 1 +2", &cmd), "-ERR Syntax error");
}

static void
test_text_arguments(void)
{
	struct pop3_command cmd;

	CHECK(parse("USER bob@example.org", &cmd) == NULL);
	CHECK(cmd.verb == POP3_VERB_USER);
	CHECK_STR(arg_str(cmd.arg, cmd.arg_len), "bob@example.org");
	CHECK(parse("USER j\xc3\xb6rg@example.org", &cmd) == NULL);
	CHECK_STR(parse("USER", &cmd), "-ERR Syntax error: USER name");
	CHECK_REPLY(parse("USER ", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("USER a b", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("USER  a", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("USER a ", &cmd), "-ERR Syntax error");

	/* RFC 1939 7: the password is the rest of the line */
	CHECK(parse("PASS  two  spaces ", &cmd) == NULL);
	CHECK(cmd.verb == POP3_VERB_PASS);
	CHECK_STR(arg_str(cmd.arg, cmd.arg_len), " two  spaces ");
	CHECK(parse("PASS tab\there\x7f\x01", &cmd) == NULL);
	CHECK_STR(arg_str(cmd.arg, cmd.arg_len), "tab\there\x7f\x01");
	CHECK(parse("PASS ", &cmd) == NULL);
	CHECK(cmd.arg_len == 0);
	CHECK(parse("PASS", &cmd) == NULL);
	CHECK(cmd.arg_len == 0);
	CHECK(parse("pass s3cr\xc3\xa9t", &cmd) == NULL);
	CHECK_STR(arg_str(cmd.arg, cmd.arg_len), "s3cr\xc3\xa9t");
	CHECK_STR(pop3_parse_command("PASS a\0b", 8, &cmd),
	    "-ERR Invalid character");
	CHECK_STR(parse("PASS a\rb", &cmd), "-ERR Invalid character");
	CHECK_STR(parse("PASS a\nb", &cmd), "-ERR Invalid character");

	CHECK(parse("AUTH", &cmd) == NULL);
	CHECK(cmd.verb == POP3_VERB_AUTH && cmd.arg_len == 0 &&
	    cmd.arg2_len == 0);
	CHECK(parse("AUTH PLAIN", &cmd) == NULL);
	CHECK_STR(arg_str(cmd.arg, cmd.arg_len), "PLAIN");
	CHECK(cmd.arg2_len == 0);
	CHECK(parse("auth PLAIN AGJvYgBzZWNyZXQ=", &cmd) == NULL);
	CHECK_STR(arg_str(cmd.arg, cmd.arg_len), "PLAIN");
	CHECK_STR(arg_str(cmd.arg2, cmd.arg2_len), "AGJvYgBzZWNyZXQ=");
	CHECK(parse("AUTH EXTERNAL =", &cmd) == NULL);
	CHECK_STR(arg_str(cmd.arg2, cmd.arg2_len), "=");
	CHECK_STR(parse("AUTH PLAIN a b", &cmd),
	    "-ERR Syntax error: AUTH [mechanism [initial-response]]");
	CHECK_REPLY(parse("AUTH ", &cmd), "-ERR Syntax error");
	CHECK_REPLY(parse("AUTH PLAIN ", &cmd), "-ERR Syntax error");

	CHECK(parse("APOP mrose c4c9334bac560ecc979e58001b3e22fb", &cmd) ==
	    NULL);
	CHECK_STR(arg_str(cmd.arg, cmd.arg_len), "mrose");
	CHECK_STR(arg_str(cmd.arg2, cmd.arg2_len),
	    "c4c9334bac560ecc979e58001b3e22fb");
	CHECK_STR(parse("APOP mrose", &cmd),
	    "-ERR Syntax error: APOP name digest");
	CHECK_REPLY(parse("APOP a b c", &cmd), "-ERR Syntax error");
}

static void
test_hostile(void)
{
	struct pop3_command cmd;
	char *big;
	size_t i;

	/* security-tests.md 25 */
	CHECK_STR(pop3_parse_command("USER al\0ice", 11, &cmd),
	    "-ERR Invalid character");
	CHECK_STR(pop3_parse_command("US\0ER alice", 11, &cmd),
	    "-ERR Invalid character");
	CHECK_STR(pop3_parse_command("\0", 1, &cmd), "-ERR Invalid character");
	CHECK_STR(pop3_parse_command("RETR 1\0", 7, &cmd),
	    "-ERR Invalid character");
	CHECK_STR(parse("USER a\tb", &cmd), "-ERR Invalid character");
	CHECK_STR(parse("USER ab\x7f", &cmd), "-ERR Invalid character");
	CHECK_STR(parse("QUIT\r", &cmd), "-ERR Invalid character");
	CHECK_STR(parse("NOOP\n", &cmd), "-ERR Invalid character");
	CHECK_STR(parse("XYZ \x1b[2J", &cmd), "-ERR Invalid character");
	CHECK_STR(parse("AUTH PLAIN \x01", &cmd), "-ERR Invalid character");

	/* RFC 2449 4: 255 octets with CRLF, so 253 without */
	big = malloc(64 * 1024 + 1);
	memcpy(big, "USER ", 5);
	for (i = 5; i < 64 * 1024; i++)
		big[i] = 'a';
	CHECK(pop3_parse_command(big, 253, &cmd) == NULL);
	CHECK(cmd.verb == POP3_VERB_USER && cmd.arg_len == 248);
	CHECK(cmd.arg == big + 5);
	CHECK_STR(pop3_parse_command(big, 254, &cmd), "-ERR Line too long");
	CHECK_STR(pop3_parse_command(big, 64 * 1024, &cmd),
	    "-ERR Line too long");
	CHECK(cmd.verb == POP3_VERB_UNKNOWN);
	memcpy(big, "PASS ", 5);
	CHECK(pop3_parse_command(big, 253, &cmd) == NULL);
	CHECK_STR(pop3_parse_command(big, 254, &cmd), "-ERR Line too long");
	free(big);
}

/* Every reply is one printable "-ERR ..." line. */
static void
test_all_replies_printable(void)
{
	static const char *const lines[] = { "RETR 0", "RETR", "TOP 1 x",
	    "FOO", "USER", "USER a\tb", "LIST 1 2", "AUTH a b c",
	    "APOP a", "STAT 1", "TOP 1 99999999999", "DELE 99999999999" };
	struct pop3_command cmd;
	const char *r;
	size_t i, j;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		r = parse(lines[i], &cmd);
		CHECK(r != NULL && strncmp(r, "-ERR ", 5) == 0);
		for (j = 0; r != NULL && r[j] != '\0'; j++)
			CHECK(r[j] >= ' ' && r[j] <= '~');
	}
}

/*
 * A reference for pop3_stuff, written the other way round: convert the
 * whole message, split it into CRLF lines, keep what TOP keeps, stuff
 * and terminate. Returns the length written to out.
 */
static size_t
ref_stuff(const char *in, size_t len, int64_t top, char *out)
{
	char *conv = malloc(2 * len + 1);
	size_t clen = 0, i, o = 0, start, end, nlines = 0, keep = SIZE_MAX;
	size_t hdr_end = SIZE_MAX;
	bool last_had_crlf = false;

	for (i = 0; i < len; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			conv[clen++] = '\r';
		conv[clen++] = in[i];
	}
	if (top >= 0) {
		/* find the first empty line */
		for (start = 0, nlines = 0; start < clen; nlines++) {
			end = start;
			while (end + 1 < clen &&
			    !(conv[end] == '\r' && conv[end + 1] == '\n'))
				end++;
			if (end + 1 >= clen)
				break;		/* the last line, no CRLF */
			if (end == start) {
				hdr_end = nlines;
				break;
			}
			start = end + 2;
		}
		if (hdr_end != SIZE_MAX)
			keep = hdr_end + 1 + (size_t)top;
	}
	for (start = 0, nlines = 0; start < clen && nlines < keep; nlines++) {
		bool crlf;

		end = start;
		while (end + 1 < clen &&
		    !(conv[end] == '\r' && conv[end + 1] == '\n'))
			end++;
		crlf = end + 1 < clen;
		if (!crlf)
			end = clen;
		if (conv[start] == '.')
			out[o++] = '.';
		memcpy(out + o, conv + start, end - start);
		o += end - start;
		if (crlf) {
			memcpy(out + o, "\r\n", 2);
			o += 2;
		}
		last_had_crlf = crlf;
		start = crlf ? end + 2 : end;
	}
	if (o > 0 && !last_had_crlf) {
		memcpy(out + o, "\r\n", 2);
		o += 2;
	}
	memcpy(out + o, ".\r\n", 3);
	free(conv);
	return o + 3;
}

/* pop3_stuff fed in the pieces cut at the given offsets (ascending). */
static size_t
run_stuff(const char *in, size_t len, int64_t top, const size_t *cuts,
    size_t ncuts, char *out)
{
	struct pop3_stuff st;
	size_t o = 0, prev = 0, i, n;

	pop3_stuff_init(&st, top);
	for (i = 0; i <= ncuts; i++) {
		size_t at = i < ncuts ? cuts[i] : len;

		n = pop3_stuff(&st, in + prev, at - prev, out + o);
		/* the documented bound for this piece */
		if (n > 2 * (at - prev) + 2)
			return SIZE_MAX;
		o += n;
		prev = at;
	}
	return o + pop3_stuff_end(&st, out + o);
}

static size_t
run_bytewise(const char *in, size_t len, int64_t top, char *out)
{
	struct pop3_stuff st;
	size_t o = 0, i;

	pop3_stuff_init(&st, top);
	for (i = 0; i < len; i++)
		o += pop3_stuff(&st, in + i, 1, out + o);
	o += pop3_stuff(&st, in, 0, out + o);	/* an empty read */
	return o + pop3_stuff_end(&st, out + o);
}

/* Checks every way of feeding msg against the reference. */
static void
check_stuff_splits(const char *msg, size_t len, int64_t top)
{
	size_t cap = 2 * len + 8, rlen, n, cut;
	char *ref = malloc(cap), *got = malloc(cap);
	bool ok = true;

	rlen = ref_stuff(msg, len, top, ref);
	n = run_stuff(msg, len, top, NULL, 0, got);
	ok &= n == rlen && memcmp(got, ref, rlen) == 0;
	n = run_bytewise(msg, len, top, got);
	ok &= n == rlen && memcmp(got, ref, rlen) == 0;
	for (cut = 0; cut <= len; cut++) {
		n = run_stuff(msg, len, top, &cut, 1, got);
		ok &= n == rlen && memcmp(got, ref, rlen) == 0;
	}
	if (!ok)
		fprintf(stderr, "  stuff mismatch: top %lld, message \"%s\"\n",
		    (long long)top, arg_str(msg, len < 500 ? len : 500));
	CHECK(ok);
	free(ref);
	free(got);
}

/* One shot, compared with a literal. */
static void
check_stuff(const char *msg, int64_t top, const char *want)
{
	char out[1024];
	size_t n = run_stuff(msg, strlen(msg), top, NULL, 0, out);

	CHECK(n == strlen(want) && memcmp(out, want, n) == 0);
	if (n != strlen(want) || memcmp(out, want, n) != 0)
		fprintf(stderr, "  for \"%s\" top %lld got \"%s\"\n", msg,
		    (long long)top, arg_str(out, n < 500 ? n : 500));
}

static void
test_stuff_golden(void)
{
	check_stuff("", -1, ".\r\n");
	check_stuff("", 0, ".\r\n");
	check_stuff("a\nb\n", -1, "a\r\nb\r\n.\r\n");
	check_stuff("a\r\nb\r\n", -1, "a\r\nb\r\n.\r\n");
	check_stuff("a\nb", -1, "a\r\nb\r\n.\r\n");
	check_stuff(".\r\n", -1, "..\r\n.\r\n");
	check_stuff(".", -1, "..\r\n.\r\n");
	check_stuff("a\n.\n..x\n", -1, "a\r\n..\r\n...x\r\n.\r\n");
	check_stuff("a.\n b.\n", -1, "a.\r\n b.\r\n.\r\n");
	check_stuff("a\r", -1, "a\r\r\n.\r\n");
	check_stuff("a\rb\n", -1, "a\rb\r\n.\r\n");
	check_stuff("a\r.b\n", -1, "a\r.b\r\n.\r\n");
	check_stuff("\r\n", -1, "\r\n.\r\n");
	check_stuff("\n", -1, "\r\n.\r\n");

	/* RFC 1939 7: headers, the blank line, then n body lines */
	check_stuff("H: 1\n\nb1\nb2\n", 0, "H: 1\r\n\r\n.\r\n");
	check_stuff("H: 1\n\nb1\nb2\n", 1, "H: 1\r\n\r\nb1\r\n.\r\n");
	check_stuff("H: 1\n\nb1\nb2\n", 2, "H: 1\r\n\r\nb1\r\nb2\r\n.\r\n");
	check_stuff("H: 1\n\nb1\nb2\n", 3, "H: 1\r\n\r\nb1\r\nb2\r\n.\r\n");
	check_stuff("H: 1\n\nb1\nb2", 9, "H: 1\r\n\r\nb1\r\nb2\r\n.\r\n");
	check_stuff("H: 1\r\n\r\n.x\r\n.\r\n", 5,
	    "H: 1\r\n\r\n..x\r\n..\r\n.\r\n");
	check_stuff("H: 1\nH: 2\n", 0, "H: 1\r\nH: 2\r\n.\r\n");
	check_stuff("H: 1\nH: 2", 0, "H: 1\r\nH: 2\r\n.\r\n");
	check_stuff("\nbody\n", 0, "\r\n.\r\n");
	check_stuff("\nbody\n", 1, "\r\nbody\r\n.\r\n");
	/* a header line of a lone CR is not the blank line */
	check_stuff("H\n\r\r\nb\n\nc\n", 0, "H\r\n\r\r\nb\r\n\r\n.\r\n");
	/* RETR is -1; any other negative count means the same */
	check_stuff("H\n\nb\n", -5, "H\r\n\r\nb\r\n.\r\n");
}

static void
test_stuff_done(void)
{
	struct pop3_stuff st;
	char out[64];
	size_t n;

	pop3_stuff_init(&st, 1);
	CHECK(!st.done);
	n = pop3_stuff(&st, "H\n\nb1\n", 6, out);
	CHECK(n == 9 && st.done);
	/* further input is swallowed: the caller may stop reading */
	CHECK(pop3_stuff(&st, "b2\n", 3, out) == 0);
	CHECK(pop3_stuff_end(&st, out) == 3 && memcmp(out, ".\r\n", 3) == 0);

	pop3_stuff_init(&st, -1);
	CHECK(pop3_stuff(&st, "x", 1, out) == 1);
	CHECK(pop3_stuff_end(&st, out) == 5 &&
	    memcmp(out, "\r\n.\r\n", 5) == 0);
}

static void
test_stuff_splits(void)
{
	static const char *const msgs[] = {
		"", "a", ".", "\n", "\r", "\r\n", "\n\n", "\r\r\n",
		"a\nb\n", "a\r\nb\r\n", "a\nb", "a\r\nb",
		".\n..\n.a\n", ".\r\n..\r\n.a\r\n", "a\n.", "a\r\n.",
		"a\r", "a\rb\n", "a\r.b\r\n.", "\r.\r\n",
		"Subject: x\nFrom: y\n\nline1\n.line2\n\n.\nlast",
		"Subject: x\r\nFrom: y\r\n\r\nline1\r\n.line2\r\n\r\n.\r\n",
		"Subject: x\nFrom: y\n", "Subject: x\nFrom: y",
		"H\r\n\r\n", "H\n\n", "\n.\n", ".\n\n.\n",
		"H\n\r\nb\r\n\nc", "H\r\n \r\nb\n\n",
	};
	static const int64_t tops[] = { -1, 0, 1, 2, 3, 100 };
	size_t i, j;

	for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
		for (j = 0; j < sizeof(tops) / sizeof(tops[0]); j++)
			check_stuff_splits(msgs[i], strlen(msgs[i]), tops[j]);
}

/* Random messages over the bytes that matter, every split. */
static void
test_stuff_random(void)
{
	static const char alphabet[] = ".\r\n\n a";
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	char msg[48];
	size_t len, k;
	int round;

	for (round = 0; round < 3000; round++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		len = (size_t)(x % sizeof(msg));
		for (k = 0; k < len; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			msg[k] = alphabet[x % (sizeof(alphabet) - 1)];
		}
		check_stuff_splits(msg, len, (int64_t)(x >> 40) % 5 - 1);
	}
}

/* The worst case for the output bound: dots at every line start. */
static void
test_stuff_worst_case(void)
{
	static const char *const msgs[] = { ".\n.\n.\n.\n", "\n\n\n\n",
	    ".", "\n" };
	struct pop3_stuff st;
	char out[2 * 8 + 2 + 5];	/* the documented bounds */
	size_t i, n, len;

	for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		len = strlen(msgs[i]);
		pop3_stuff_init(&st, -1);
		n = pop3_stuff(&st, msgs[i], len, out);
		CHECK(n <= 2 * len + 2);
		CHECK(pop3_stuff_end(&st, out + n) <= 5);
	}
}

int
main(void)
{
	UNIT_RUN(test_verbs);
	UNIT_RUN(test_no_arguments);
	UNIT_RUN(test_numbers);
	UNIT_RUN(test_text_arguments);
	UNIT_RUN(test_hostile);
	UNIT_RUN(test_all_replies_printable);
	UNIT_RUN(test_stuff_golden);
	UNIT_RUN(test_stuff_done);
	UNIT_RUN(test_stuff_splits);
	UNIT_RUN(test_stuff_random);
	UNIT_RUN(test_stuff_worst_case);
	return unit_finish();
}
