/*
 * Tests of src/auth/sasl.c: strict base64 (RFC 4648 test vectors of section
 * 10, every refusal, exhaustive final groups), the AUTH arguments (RFC 4954
 * 4), responses, and the PLAIN (RFC 4616) and LOGIN messages at their limits.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sasl.h"
#include "auth/sasl_exchange.h"
#include "unit.h"

#define BUF_MAX 4096

/* Bytes of a string literal without its terminating NUL. */
#define LIT(s) (const unsigned char *)(s), sizeof(s) - 1

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static const struct {
	const char *plain, *b64;
} rfc4648_vectors[] = {
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

static uint32_t rng_state = 2463534242u;

/* xorshift32: reproducible bytes for the round trips. */
static uint32_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static ssize_t
dec(const char *s, unsigned char *out)
{
	return sasl_base64_decode(s, strlen(s), out, BUF_MAX);
}

static bool
all_zero(const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != 0)
			return false;
	return true;
}

static void
test_base64_vectors(void)
{
	unsigned char out[BUF_MAX];
	char text[BUF_MAX];
	size_t i, n;

	for (i = 0; i < sizeof(rfc4648_vectors) / sizeof(rfc4648_vectors[0]);
	    i++) {
		n = strlen(rfc4648_vectors[i].plain);
		CHECK(sasl_base64_encode((const unsigned char *)
		    rfc4648_vectors[i].plain, n, text, sizeof(text)) ==
		    strlen(rfc4648_vectors[i].b64));
		CHECK_STR(text, rfc4648_vectors[i].b64);
		memset(out, 0xaa, sizeof(out));
		CHECK(dec(rfc4648_vectors[i].b64, out) == (ssize_t)n);
		CHECK(memcmp(out, rfc4648_vectors[i].plain, n) == 0);
	}
	/* All 64 characters in all positions, and back. */
	CHECK(dec("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789+/", out) == 48);
	CHECK(out[0] == 0x00 && out[1] == 0x10 && out[2] == 0x83);
	CHECK(out[45] == 0xf3 && out[46] == 0xdf && out[47] == 0xbf);
	CHECK(sasl_base64_encode(out, 48, text, sizeof(text)) == 64);
	CHECK_STR(text, b64_alphabet);
	CHECK(dec("////", out) == 3 && out[0] == 0xff && out[1] == 0xff &&
	    out[2] == 0xff);
	CHECK(dec("AAAA", out) == 3 && all_zero(out, 3));
	/* NULL with a zero length: nothing is read or written. */
	CHECK(sasl_base64_decode(NULL, 0, NULL, 0) == 0);
	CHECK(sasl_base64_encode(NULL, 0, text, 1) == 0);
	CHECK_STR(text, "");
}

static void
test_base64_refused(void)
{
	static const char *const bad[] = {
		"Z", "Zg", "Zg=", "Zm9vY", "Zm9vYg", "Zm9vYg=",
		/* bits after the padding (RFC 4648 3.5) */
		"Zh==", "Zm9=", "Zm9vYh==", "Zm9vYmF=", "////+/==", "///=",
		/* padding where it cannot be */
		"=", "==", "===", "====", "A===", "Zg=A", "Z=g=", "=Zg=",
		"Zg==Zg==", "Zm8=Zm8=", "Zg==AAAA", "Zm9v====", "Zm9v=",
		/* whitespace and line ends */
		" Zm9v", "Zm9v ", "Zm 9v", "Zm9v\r\n", "Zm9v\n", "\tZm9v",
		"Zm9v\r\nZm9v", "Zm\r\n9v",
		/* other alphabets and characters */
		"Zm-v", "Zm_v", "Zm.v", "Zm9v*", "****", "!!!!", "Zm9\"",
		"Zg%3D", "Zg~=",
	};
	unsigned char out[BUF_MAX];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (dec(bad[i], out) != -1)
			fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
		CHECK(dec(bad[i], out) == -1);
	}
	/* NUL bytes in the text, anywhere */
	CHECK(sasl_base64_decode("Zm9v\0\0\0\0", 8, out, sizeof(out)) == -1);
	CHECK(sasl_base64_decode("\0\0\0\0", 4, out, sizeof(out)) == -1);
	CHECK(sasl_base64_decode("Zm\0v", 4, out, sizeof(out)) == -1);
	CHECK(sasl_base64_decode("Zg=\0", 4, out, sizeof(out)) == -1);
	CHECK(sasl_base64_decode("Zg\0=", 4, out, sizeof(out)) == -1);
	/* 8-bit bytes, e.g. UTF-8 or Latin-1 */
	CHECK(dec("\xc3\xa9""AA", out) == -1);
	CHECK(dec("Zm9\xff", out) == -1);
	CHECK(dec("Zg\x80=", out) == -1);
	CHECK(dec("\xef\xbc\xa1""AAA", out) == -1);	/* full-width A */
}

/* Every byte in every position of a four-byte group, alone and after a
 * good group: accepted exactly when it is in the alphabet (or is padding
 * that leaves no bits over). */
static void
test_base64_every_byte(void)
{
	unsigned char out[16];
	char text[8];
	int c, pos, grp;
	bool in_alphabet;

	for (grp = 0; grp < 2; grp++)
		for (pos = 0; pos < 4; pos++)
			for (c = 0; c < 256; c++) {
				memcpy(text, "QUJDAAAA", 8);
				text[grp * 4 + pos] = (char)c;
				/* "QUJDAAA=" is the one place for '=':
				 * "QUJ=" leaves bits over */
				in_alphabet = (c != 0 &&
				    strchr(b64_alphabet, c) != NULL) ||
				    (c == '=' && grp == 1 && pos == 3);
				CHECK((sasl_base64_decode(text, 4 + grp * 4,
				    out, sizeof(out)) >= 0) == in_alphabet);
			}
}

/* Every "XY==" and "XYZ=": accepted exactly when the leftover bits are
 * zero, and each accepted text is the one encoding of its bytes. */
static void
test_base64_final_groups(void)
{
	unsigned char out[4];
	char text[5], again[8];
	int a, b, c, accepted2 = 0, accepted1 = 0;

	for (a = 0; a < 64; a++)
		for (b = 0; b < 64; b++) {
			snprintf(text, sizeof(text), "%c%c==",
			    b64_alphabet[a], b64_alphabet[b]);
			if (sasl_base64_decode(text, 4, out, sizeof(out)) ==
			    1) {
				accepted2++;
				CHECK((b & 0x0f) == 0);
				CHECK(sasl_base64_encode(out, 1, again,
				    sizeof(again)) == 4);
				CHECK_STR(again, text);
			} else
				CHECK((b & 0x0f) != 0);
			for (c = 0; c < 64; c++) {
				snprintf(text, sizeof(text), "%c%c%c=",
				    b64_alphabet[a], b64_alphabet[b],
				    b64_alphabet[c]);
				if (sasl_base64_decode(text, 4, out,
				    sizeof(out)) == 2) {
					accepted1++;
					CHECK((c & 0x03) == 0);
					CHECK(sasl_base64_encode(out, 2, again,
					    sizeof(again)) == 4);
					CHECK_STR(again, text);
				} else
					CHECK((c & 0x03) != 0);
			}
		}
	CHECK(accepted2 == 256);
	CHECK(accepted1 == 65536);
}

static void
test_base64_sizes(void)
{
	unsigned char out[BUF_MAX], in[8] = "foobar";
	char text[16];

	/* decode: exactly the decoded length fits, one less does not */
	CHECK(sasl_base64_decode("Zm9vYmFy", 8, out, 6) == 6);
	CHECK(sasl_base64_decode("Zm9vYmFy", 8, out, 5) == -1);
	CHECK(sasl_base64_decode("Zm9vYmE=", 8, out, 5) == 5);
	CHECK(sasl_base64_decode("Zm9vYmE=", 8, out, 4) == -1);
	CHECK(sasl_base64_decode("Zm9vYg==", 8, out, 4) == 4);
	CHECK(sasl_base64_decode("Zm9vYg==", 8, out, 3) == -1);
	CHECK(sasl_base64_decode("Zg==", 4, out, 1) == 1);
	CHECK(sasl_base64_decode("Zg==", 4, out, 0) == -1);
	CHECK(sasl_base64_decode("", 0, out, 0) == 0);
	/* encode: the padded length and the NUL, not a byte less */
	CHECK(sasl_base64_encode(in, 6, text, 9) == 8);
	CHECK_STR(text, "Zm9vYmFy");
	CHECK(sasl_base64_encode(in, 6, text, 8) == (size_t)-1);
	CHECK(sasl_base64_encode(in, 4, text, 9) == 8);
	CHECK_STR(text, "Zm9vYg==");
	CHECK(sasl_base64_encode(in, 4, text, 8) == (size_t)-1);
	CHECK(sasl_base64_encode(in, 5, text, 8) == (size_t)-1);
	CHECK(sasl_base64_encode(in, 0, text, 1) == 0);
	CHECK(sasl_base64_encode(in, 0, text, 0) == (size_t)-1);
	/* sizes whose encoding would overflow size_t: refused unread */
	CHECK(sasl_base64_encode(in, SIZE_MAX, text, SIZE_MAX) ==
	    (size_t)-1);
	CHECK(sasl_base64_encode(in, SIZE_MAX / 4 * 3 + 1, text, SIZE_MAX) ==
	    (size_t)-1);
}

static void
test_base64_round_trips(void)
{
	unsigned char in[BUF_MAX], out[BUF_MAX];
	char text[2 * BUF_MAX];
	size_t len, i, tlen;
	int trial;

	/* every 1- and 2-byte input */
	for (i = 0; i < 65536 + 256; i++) {
		len = i < 256 ? 1 : 2;
		in[0] = (unsigned char)i;
		in[1] = (unsigned char)(i >> 8);
		tlen = sasl_base64_encode(in, len, text, sizeof(text));
		CHECK(tlen == 4);
		CHECK(sasl_base64_decode(text, tlen, out, sizeof(out)) ==
		    (ssize_t)len);
		CHECK(memcmp(in, out, len) == 0);
	}
	/* random inputs of every length up to 700 */
	for (trial = 0; trial < 3; trial++)
		for (len = 0; len <= 700; len++) {
			for (i = 0; i < len; i++)
				in[i] = (unsigned char)rng();
			tlen = sasl_base64_encode(in, len, text,
			    sizeof(text));
			CHECK(tlen == (len + 2) / 3 * 4);
			CHECK(strlen(text) == tlen);
			CHECK(sasl_base64_decode(text, tlen, out, len) ==
			    (ssize_t)len);
			CHECK(memcmp(in, out, len) == 0);
			/* one output byte short */
			if (len > 0)
				CHECK(sasl_base64_decode(text, tlen, out,
				    len - 1) == -1);
		}
}

static void
test_auth_args(void)
{
	enum sasl_mechanism mech;
	const char *init, *r;
	size_t ilen;
	char args[64];

#define PARSE(s) sasl_parse_auth_args((s), sizeof(s) - 1, &mech, &init, &ilen)
	CHECK(PARSE("PLAIN") == NULL);
	CHECK(mech == SASL_MECH_PLAIN && init == NULL && ilen == 0);
	CHECK(PARSE("LOGIN") == NULL);
	CHECK(mech == SASL_MECH_LOGIN && init == NULL && ilen == 0);
	CHECK(PARSE("plain dGVzdA==") == NULL);
	CHECK(mech == SASL_MECH_PLAIN && ilen == 8 &&
	    memcmp(init, "dGVzdA==", 8) == 0);
	CHECK(PARSE("LoGiN dGVzdA==") == NULL);
	CHECK(mech == SASL_MECH_LOGIN && ilen == 8);
	CHECK(PARSE("PLAIN =") == NULL);
	CHECK(mech == SASL_MECH_PLAIN && ilen == 1 && init[0] == '=');
	/* extra spaces and tabs anywhere between, before and after */
	strcpy(args, " \t PLAIN \t\t dGVzdA== \t ");
	CHECK(sasl_parse_auth_args(args, strlen(args), &mech, &init,
	    &ilen) == NULL);
	CHECK(mech == SASL_MECH_PLAIN && init == args + 12 && ilen == 8);
	CHECK(PARSE("PLAIN   ") == NULL);
	CHECK(mech == SASL_MECH_PLAIN && init == NULL && ilen == 0);
	/* unknown mechanisms: well-formed names, no error */
	CHECK(PARSE("CRAM-MD5") == NULL);
	CHECK(mech == SASL_MECH_UNKNOWN && init == NULL);
	CHECK(PARSE("SCRAM-SHA-256 biwsbj11c2VyLHI9") == NULL);
	CHECK(mech == SASL_MECH_UNKNOWN && ilen == 16);
	CHECK(PARSE("FOO") == NULL && mech == SASL_MECH_UNKNOWN);
	CHECK(PARSE("PLAINX") == NULL && mech == SASL_MECH_UNKNOWN);
	CHECK(PARSE("PLAI") == NULL && mech == SASL_MECH_UNKNOWN);
	CHECK(PARSE("X_Y-9") == NULL && mech == SASL_MECH_UNKNOWN);
	CHECK(PARSE("ABCDEFGHIJKLMNOPQRST") == NULL);	/* 20 */
	CHECK(mech == SASL_MECH_UNKNOWN);
	/* syntax errors leave the outputs empty */
	mech = SASL_MECH_PLAIN;
	CHECK_STR(PARSE(""),
	    "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
	CHECK(mech == SASL_MECH_UNKNOWN && init == NULL && ilen == 0);
	CHECK_STR(sasl_parse_auth_args(NULL, 0, &mech, &init, &ilen),
	    "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
	CHECK_STR(PARSE(" \t "),
	    "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
	r = PARSE("PLAIN dGVzdA== x");
	CHECK_REPLY(r, "501 5.5.4 ");
	CHECK(mech == SASL_MECH_UNKNOWN && init == NULL && ilen == 0);
	CHECK_REPLY(PARSE("PLAIN a b c d"), "501 5.5.4 ");
	CHECK_REPLY(PARSE("ABCDEFGHIJKLMNOPQRSTU"), "501 5.5.4 ");	/* 21 */
	CHECK_REPLY(PARSE("PL@IN"), "501 5.5.4 ");
	CHECK_REPLY(PARSE("PLAIN:"), "501 5.5.4 ");
	CHECK_REPLY(PARSE("PLA.N x"), "501 5.5.4 ");
	CHECK_REPLY(PARSE("PLAIN\0 dGVzdA=="), "501 5.5.4 ");
	CHECK_REPLY(PARSE("\0"), "501 5.5.4 ");
	CHECK_REPLY(PARSE("PLAIN\r"), "501 5.5.4 ");
	CHECK_REPLY(PARSE("PLAIN\r\nMAIL"), "501 5.5.4 ");
	CHECK_REPLY(PARSE("PL\xc3\x81IN"), "501 5.5.4 ");
	CHECK_REPLY(PARSE("=\tx"), "501 5.5.4 ");
	/* only the given length is read */
	CHECK(sasl_parse_auth_args("PLAIN dGVzdA== junk", 5, &mech, &init,
	    &ilen) == NULL);
	CHECK(mech == SASL_MECH_PLAIN && init == NULL);
#undef PARSE
}

static void
test_mechanism_name(void)
{
	CHECK_STR(sasl_mechanism_name(SASL_MECH_PLAIN), "PLAIN");
	CHECK_STR(sasl_mechanism_name(SASL_MECH_LOGIN), "LOGIN");
	CHECK(sasl_mechanism_name(SASL_MECH_UNKNOWN) == NULL);
	CHECK(sasl_mechanism_name((enum sasl_mechanism)99) == NULL);
}

static void
test_responses(void)
{
	unsigned char out[BUF_MAX];
	bool cancel;

#define RESP(s) sasl_decode_response((s), sizeof(s) - 1, &cancel, out, \
	sizeof(out))
#define INIT(s) sasl_decode_initial_response((s), sizeof(s) - 1, out, \
	sizeof(out))
	CHECK(RESP("*") == 0 && cancel);
	CHECK(RESP("dGVzdA==") == 4 && !cancel && memcmp(out, "test", 4) == 0);
	CHECK(RESP("") == 0 && !cancel);	/* the empty response */
	CHECK(RESP("=") == -1 && !cancel);	/* only in AUTH (RFC 4954 4) */
	CHECK(RESP("**") == -1 && !cancel);
	CHECK(RESP("* ") == -1 && !cancel);
	CHECK(RESP(" *") == -1 && !cancel);
	CHECK(RESP("*\r\n") == -1 && !cancel);
	CHECK(RESP("*\0") == -1 && !cancel);
	CHECK(RESP("!!!!") == -1 && !cancel);
	CHECK(RESP("dGVzdA== ") == -1 && !cancel);
	CHECK(RESP("dGVzdA==\0") == -1 && !cancel);
	cancel = true;
	CHECK(RESP("AAAA") == 3 && !cancel);	/* cleared on every call */
	/* too big for the buffer */
	CHECK(sasl_decode_response("dGVzdA==", 8, &cancel, out, 3) == -1);
	CHECK(sasl_decode_response("dGVzdA==", 8, &cancel, out, 4) == 4);

	CHECK(INIT("=") == 0);
	CHECK(INIT("dGVzdA==") == 4 && memcmp(out, "test", 4) == 0);
	CHECK(INIT("") == -1);
	CHECK(INIT("*") == -1);
	CHECK(INIT("==") == -1);
	CHECK(INIT("=\0") == -1);
	CHECK(INIT("====") == -1);
	CHECK(INIT("= ") == -1);
	CHECK(INIT("Zg=") == -1);
	CHECK(INIT("AGFsaWNlAHNlY3JldA=") == -1);
	CHECK(sasl_decode_initial_response("dGVzdA==", 8, out, 3) == -1);
	CHECK(sasl_decode_initial_response("=", 1, NULL, 0) == 0);
#undef RESP
#undef INIT
}

/* A PLAIN message of the given field lengths, filled with c. */
static size_t
plain_msg(unsigned char *buf, size_t zlen, size_t clen, size_t plen,
    char c)
{
	memset(buf, c, zlen);
	buf[zlen] = '\0';
	memset(buf + zlen + 1, c, clen);
	buf[zlen + 1 + clen] = '\0';
	memset(buf + zlen + clen + 2, 'p', plen);
	return zlen + clen + plen + 2;
}

static const char *
plain(const unsigned char *msg, size_t len, struct sasl_plain *p)
{
	const char *r;

	memset(p, 'X', sizeof(*p));	/* stale data the parse must clear */
	r = sasl_plain_parse(msg, len, p);
	if (r != NULL && !all_zero(p, sizeof(*p))) {
		fprintf(stderr, "refused PLAIN left data: %s\n", r);
		return "(not zeroed)";
	}
	return r;
}

static void
test_plain(void)
{
	struct sasl_plain p;

	CHECK(plain(LIT("\0alice\0secret"), &p) == NULL);
	CHECK_STR(p.authzid, "");
	CHECK_STR(p.authcid, "alice");
	CHECK_STR(p.passwd, "secret");
	CHECK(plain(LIT("alice@example.org\0alice@example.org\0pw"), &p) ==
	    NULL);
	CHECK_STR(p.authzid, "alice@example.org");
	CHECK_STR(p.authcid, "alice@example.org");
	CHECK_STR(p.passwd, "pw");
	/* authzid equal ignoring ASCII case */
	CHECK(plain(LIT("ALICE@Example.ORG\0alice@example.org\0pw"), &p) ==
	    NULL);
	CHECK_STR(p.authzid, "ALICE@Example.ORG");
	CHECK_STR(p.authcid, "alice@example.org");
	/* passwords keep spaces, controls and any valid UTF-8 */
	CHECK(plain(LIT("\0a\0 p w\t\r\n\x7f"), &p) == NULL);
	CHECK_STR(p.passwd, " p w\t\r\n\x7f");
	CHECK(plain(LIT("\0j\xc3\xbcrgen\0\xe2\x82\xac\xf0\x9f\x94\x91"
	    "\xf4\x8f\xbf\xbf\xef\xbf\xbf"), &p) == NULL);
	CHECK_STR(p.authcid, "j\xc3\xbcrgen");
	CHECK_STR(p.passwd, "\xe2\x82\xac\xf0\x9f\x94\x91\xf4\x8f\xbf\xbf"
	    "\xef\xbf\xbf");
	CHECK(plain(LIT("\0a\0\xed\x9f\xbf\xee\x80\x80\xc2\x80"), &p) == NULL);
	/* a password whose last character the length cuts */
	CHECK(plain((const unsigned char *)"\0a\0p\xc3\xa9", 5, &p) != NULL);
	CHECK(plain((const unsigned char *)"\0a\0p\xf0\x9f\x94\x91", 7, &p) !=
	    NULL);
	CHECK(plain((const unsigned char *)"\0a\0p\xf0\x9f\x94\x91", 8, &p) ==
	    NULL);

	/* the number of NULs */
	CHECK(plain(LIT(""), &p) != NULL);
	CHECK(plain(NULL, 0, &p) != NULL);
	CHECK(plain(LIT("alice"), &p) != NULL);
	CHECK(plain(LIT("\0alice"), &p) != NULL);
	CHECK(plain(LIT("alice\0secret"), &p) != NULL);
	CHECK(plain(LIT("\0"), &p) != NULL);
	CHECK(plain(LIT("\0\0\0"), &p) != NULL);
	CHECK(plain(LIT("\0alice\0secret\0"), &p) != NULL);
	CHECK(plain(LIT("\0alice\0sec\0ret"), &p) != NULL);
	CHECK(plain(LIT("a\0b\0c\0d"), &p) != NULL);
	/* empty fields */
	CHECK(plain(LIT("\0\0secret"), &p) != NULL);
	CHECK(plain(LIT("alice\0\0secret"), &p) != NULL);
	CHECK(plain(LIT("\0alice\0"), &p) != NULL);
	CHECK(plain(LIT("\0\0"), &p) != NULL);
	/* impersonation (security-tests 22) */
	CHECK(plain(LIT("bob\0alice\0pw"), &p) != NULL);
	CHECK(plain(LIT("alice\0bob\0pw"), &p) != NULL);
	CHECK(plain(LIT("alice@example.org\0alice\0pw"), &p) != NULL);
	CHECK(plain(LIT("alice\0alice@example.org\0pw"), &p) != NULL);
	CHECK(plain(LIT("alicf\0alice\0pw"), &p) != NULL);
	/* only ASCII letters fold: Ä is not ä */
	CHECK(plain(LIT("\xc3\x84\0\xc3\xa4\0pw"), &p) != NULL);
	/* '@' and '`', '[' and '{' differ by the case bit but are no letters */
	CHECK(plain(LIT("@\0`\0pw"), &p) != NULL);
	CHECK(plain(LIT("[\0{\0pw"), &p) != NULL);
}

static void
test_plain_limits(void)
{
	struct sasl_plain p;
	unsigned char msg[BUF_MAX];
	size_t n;

	n = plain_msg(msg, 0, SASL_NAME_MAX, ACCOUNTS_PASSWORD_MAX, 'a');
	CHECK(plain(msg, n, &p) == NULL);
	CHECK(strlen(p.authcid) == SASL_NAME_MAX);
	CHECK(strlen(p.passwd) == ACCOUNTS_PASSWORD_MAX);
	n = plain_msg(msg, SASL_NAME_MAX, SASL_NAME_MAX,
	    ACCOUNTS_PASSWORD_MAX, 'a');
	CHECK(n == SASL_RESPONSE_MAX);
	CHECK(plain(msg, n, &p) == NULL);
	CHECK(strlen(p.authzid) == SASL_NAME_MAX);
	CHECK(strlen(p.authcid) == SASL_NAME_MAX);
	CHECK(strlen(p.passwd) == ACCOUNTS_PASSWORD_MAX);
	n = plain_msg(msg, 0, SASL_NAME_MAX + 1, 1, 'a');
	CHECK(plain(msg, n, &p) != NULL);
	n = plain_msg(msg, SASL_NAME_MAX + 1, SASL_NAME_MAX + 1, 1, 'a');
	CHECK(plain(msg, n, &p) != NULL);
	n = plain_msg(msg, SASL_NAME_MAX + 1, SASL_NAME_MAX, 1, 'a');
	CHECK_STR(plain(msg, n, &p), "PLAIN authzid too long");
	n = plain_msg(msg, 0, 1, ACCOUNTS_PASSWORD_MAX + 1, 'a');
	CHECK(plain(msg, n, &p) != NULL);
	n = plain_msg(msg, 0, 1, 3000, 'a');
	CHECK(plain(msg, n, &p) != NULL);
	/* the same at the limit in multi-byte characters: 85 x 3 bytes */
	n = 0;
	msg[n++] = '\0';
	for (; n < 1 + 255; n += 3)
		memcpy(msg + n, "\xe2\x82\xac", 3);
	msg[n++] = '\0';
	msg[n++] = 'p';
	CHECK(plain(msg, n, &p) == NULL);
	CHECK(strlen(p.authcid) == 255);
}

static void
test_plain_utf8(void)
{
	static const char *const bad[] = {
		"\x80", "\xbf", "a\x80", "\xc0\x80", "\xc0\xaf", "\xc1\xbf",
		"\xe0\x80\xaf", "\xe0\x9f\xbf", "\xf0\x80\x80\xaf",
		"\xf0\x8f\xbf\xbf",		/* overlongs */
		"\xed\xa0\x80", "\xed\xbf\xbf", "\xed\xb0\x80",	/* surrogates */
		"\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xf7\xbf\xbf\xbf",
		"\xf8\x88\x80\x80\x80", "\xfc\x84\x80\x80\x80\x80",
		"\xfe", "\xff",			/* above U+10FFFF, never used */
		"\xc3", "\xe2\x82", "\xf0\x9f\x94", "x\xc3",
		"\xe2\x82x", "\xf0\x9f\x94x",	/* truncated */
		"\xc3\xc3\xa9", "\xe2\x28\xa1", "\xf0\x9f\xc0\x91",
	};
	struct sasl_plain p;
	unsigned char msg[64];
	const char *r;
	size_t i, n, blen, field;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		blen = strlen(bad[i]);
		for (field = 0; field < 3; field++) {
			/*
			 * "zBAD\0z\0p", "\0zBAD\0p", "\0z\0pBAD": the
			 * reason tells that UTF-8 was the refusal, as a bad
			 * authzid would also differ from the authcid.
			 */
			n = 0;
			if (field == 0) {
				msg[n++] = 'z';
				memcpy(msg + n, bad[i], blen);
				n += blen;
			}
			msg[n++] = '\0';
			msg[n++] = 'z';
			if (field == 1) {
				memcpy(msg + n, bad[i], blen);
				n += blen;
			}
			msg[n++] = '\0';
			msg[n++] = 'p';
			if (field == 2) {
				memcpy(msg + n, bad[i], blen);
				n += blen;
			}
			r = plain(msg, n, &p);
			if (r == NULL || strstr(r, "UTF-8") == NULL)
				fprintf(stderr, "bad UTF-8 %zu in field %zu: "
				    "%s\n", i, field, r ? r : "accepted");
			CHECK(r != NULL && strstr(r, "UTF-8") != NULL);
		}
	}
}

/* Refused, with all of out's max + 1 bytes cleared. */
static bool
login_refused(const unsigned char *msg, size_t len, size_t max)
{
	char out[BUF_MAX];

	memset(out, 'X', sizeof(out));
	return sasl_login_field(msg, len, out, max) != NULL &&
	    all_zero(out, max + 1) && out[max + 1] == 'X';
}

static void
test_login(void)
{
	unsigned char buf[BUF_MAX];
	char out[SASL_NAME_MAX + 1];
	char big[ACCOUNTS_PASSWORD_MAX + 1];
	bool zeroed;

	CHECK(sasl_base64_decode(SASL_LOGIN_USERNAME_CHALLENGE,
	    strlen(SASL_LOGIN_USERNAME_CHALLENGE), buf, sizeof(buf)) == 9);
	CHECK(memcmp(buf, "Username:", 9) == 0);
	CHECK(sasl_base64_decode(SASL_LOGIN_PASSWORD_CHALLENGE,
	    strlen(SASL_LOGIN_PASSWORD_CHALLENGE), buf, sizeof(buf)) == 9);
	CHECK(memcmp(buf, "Password:", 9) == 0);

	CHECK(sasl_login_field(LIT("alice@example.org"), out,
	    SASL_NAME_MAX) == NULL);
	CHECK_STR(out, "alice@example.org");
	CHECK(sasl_login_field(LIT("p\xc3\xa4ss w\xf0\x9f\x94\x91"), out,
	    SASL_NAME_MAX) == NULL);
	CHECK_STR(out, "p\xc3\xa4ss w\xf0\x9f\x94\x91");

	CHECK(login_refused(LIT(""), SASL_NAME_MAX));
	CHECK(login_refused(NULL, 0, SASL_NAME_MAX));
	CHECK(login_refused(LIT("\0"), SASL_NAME_MAX));
	CHECK(login_refused(LIT("al\0ice"), SASL_NAME_MAX));
	CHECK(login_refused(LIT("alice\0"), SASL_NAME_MAX));
	CHECK(login_refused(LIT("\0alice\0secret"), SASL_NAME_MAX));
	CHECK(login_refused(LIT("\xc0\xaf"), SASL_NAME_MAX));
	CHECK(login_refused(LIT("\xed\xa0\x80"), SASL_NAME_MAX));
	CHECK(login_refused(LIT("\xf4\x90\x80\x80"), SASL_NAME_MAX));
	CHECK(login_refused(LIT("pass\xc3"), SASL_NAME_MAX));
	CHECK(login_refused(LIT("\xff"), SASL_NAME_MAX));
	CHECK(login_refused(LIT("abcd"), 3));
	/* sequences cut short by the length, not by the bytes after it */
	CHECK(login_refused((const unsigned char *)"\xc3\xa9", 1, 8));
	CHECK(login_refused((const unsigned char *)"a\xe2\x82\xac", 3, 8));
	CHECK(login_refused((const unsigned char *)"\xf0\x9f\x94\x91", 3, 8));
	CHECK(login_refused((const unsigned char *)"\xf0\x9f\x94\x91", 1, 8));

	/* exactly max, and one more */
	memset(buf, 'a', sizeof(buf));
	CHECK(sasl_login_field(buf, SASL_NAME_MAX, out, SASL_NAME_MAX) ==
	    NULL);
	CHECK(strlen(out) == SASL_NAME_MAX);
	CHECK(sasl_login_field(buf, SASL_NAME_MAX + 1, out, SASL_NAME_MAX) !=
	    NULL);
	CHECK(all_zero(out, sizeof(out)));
	CHECK(sasl_login_field(buf, ACCOUNTS_PASSWORD_MAX, big,
	    ACCOUNTS_PASSWORD_MAX) == NULL);
	CHECK(strlen(big) == ACCOUNTS_PASSWORD_MAX);
	/* a refusal clears a password left in the buffer */
	CHECK(sasl_login_field(buf, ACCOUNTS_PASSWORD_MAX + 1, big,
	    ACCOUNTS_PASSWORD_MAX) != NULL);
	zeroed = all_zero(big, sizeof(big));
	CHECK(zeroed);
	CHECK(sasl_login_field(LIT("x"), out, 1) == NULL);
	CHECK_STR(out, "x");
}

/* The whole SMTP path: AUTH arguments, initial response, PLAIN; and the
 * longest response the header allows, through the line limit. */
static void
test_exchanges(void)
{
	enum sasl_mechanism mech;
	const char *init, *line;
	size_t ilen, n, tlen;
	unsigned char msg[SASL_RESPONSE_MAX + 8], out[SASL_RESPONSE_MAX];
	char text[SASL_LINE_MAX + 16];
	struct sasl_plain p;
	bool cancel;
	ssize_t r;

	line = "PLAIN AGFsaWNlAHNlY3JldA==";
	CHECK(sasl_parse_auth_args(line, strlen(line), &mech, &init, &ilen) ==
	    NULL);
	CHECK(mech == SASL_MECH_PLAIN);
	r = sasl_decode_initial_response(init, ilen, out, sizeof(out));
	CHECK(r == 13);
	CHECK(r > 0 && sasl_plain_parse(out, (size_t)r, &p) == NULL);
	CHECK_STR(p.authcid, "alice");
	CHECK_STR(p.passwd, "secret");
	explicit_bzero(&p, sizeof(p));

	/* security-tests 22: b64("\0alice"), b64("bob\0alice\0pw"), "!!!!" */
	r = sasl_decode_response("AGFsaWNl", 8, &cancel, out, sizeof(out));
	CHECK(r == 6 && sasl_plain_parse(out, 6, &p) != NULL);
	r = sasl_decode_response("Ym9iAGFsaWNlAHB3", 16, &cancel, out,
	    sizeof(out));
	CHECK(r == 12 && sasl_plain_parse(out, 12, &p) != NULL);
	CHECK(sasl_decode_initial_response("!!!!", 4, out, sizeof(out)) ==
	    -1);

	/* SASL_RESPONSE_MAX: the longest PLAIN, within SASL_LINE_MAX */
	n = plain_msg(msg, SASL_NAME_MAX, SASL_NAME_MAX,
	    ACCOUNTS_PASSWORD_MAX, 'b');
	CHECK(n == SASL_RESPONSE_MAX);
	tlen = sasl_base64_encode(msg, n, text, sizeof(text));
	CHECK(tlen + 2 <= SASL_LINE_MAX);
	r = sasl_decode_response(text, tlen, &cancel, out, sizeof(out));
	CHECK(r == SASL_RESPONSE_MAX && memcmp(out, msg, n) == 0);
	CHECK(sasl_plain_parse(out, (size_t)r, &p) == NULL);
	explicit_bzero(&p, sizeof(p));
	/* one byte more does not fit the buffer */
	msg[n] = 'p';
	tlen = sasl_base64_encode(msg, n + 1, text, sizeof(text));
	CHECK(sasl_decode_response(text, tlen, &cancel, out, sizeof(out)) ==
	    -1);
	CHECK(sasl_decode_initial_response(text, tlen, out, sizeof(out)) ==
	    -1);
}

/* 12 kB of base64 (security-tests 22) and NUL-laden text: refused
 * without reading past the given length. */
/* sasl_exchange: the steps SMTP and POP3 AUTH share. */
static void
test_exchange_steps(void)
{
	static const unsigned char plain[] = "\0alice@x.test\0pw 1";
	struct sasl_exchange x;
	char password[ACCOUNTS_PASSWORD_MAX + 1];
	const char *challenge, *why;

	memset(&x, 0, sizeof(x));
	CHECK_STR(sasl_exchange_start(&x, SASL_MECH_PLAIN), "");
	CHECK(sasl_exchange_step(&x, plain, sizeof(plain) - 1, &challenge,
	    password, &why) == SASL_EXCHANGE_CHECK);
	CHECK_STR(x.user, "alice@x.test");
	CHECK_STR(password, "pw 1");
	CHECK(x.step == SASL_EXCHANGE_IDLE);

	/* A bad PLAIN message: refused with a reason, nothing left. */
	sasl_exchange_start(&x, SASL_MECH_PLAIN);
	CHECK(sasl_exchange_step(&x, (const unsigned char *)"nonul", 5,
	    &challenge, password, &why) == SASL_EXCHANGE_REFUSED);
	CHECK(why != NULL && password[0] == '\0' && x.user[0] == '\0');

	/* LOGIN: name, the password challenge, then the password. */
	CHECK_STR(sasl_exchange_start(&x, SASL_MECH_LOGIN),
	    SASL_LOGIN_USERNAME_CHALLENGE);
	CHECK(sasl_exchange_step(&x, (const unsigned char *)"bob@x.test", 10,
	    &challenge, password, &why) == SASL_EXCHANGE_CHALLENGE);
	CHECK_STR(challenge, SASL_LOGIN_PASSWORD_CHALLENGE);
	CHECK(sasl_exchange_step(&x, (const unsigned char *)"secret", 6,
	    &challenge, password, &why) == SASL_EXCHANGE_CHECK);
	CHECK_STR(x.user, "bob@x.test");
	CHECK_STR(password, "secret");

	/* An empty LOGIN name or password is refused. */
	sasl_exchange_start(&x, SASL_MECH_LOGIN);
	CHECK(sasl_exchange_step(&x, (const unsigned char *)"", 0, &challenge,
	    password, &why) == SASL_EXCHANGE_REFUSED);
	sasl_exchange_start(&x, SASL_MECH_LOGIN);
	sasl_exchange_step(&x, (const unsigned char *)"bob", 3, &challenge,
	    password, &why);
	CHECK(sasl_exchange_step(&x, (const unsigned char *)"", 0, &challenge,
	    password, &why) == SASL_EXCHANGE_REFUSED);

	/* A response with no exchange in progress. */
	sasl_exchange_reset(&x);
	CHECK(sasl_exchange_step(&x, plain, sizeof(plain) - 1, &challenge,
	    password, &why) == SASL_EXCHANGE_REFUSED);
}

static void
test_hostile(void)
{
	unsigned char out[SASL_RESPONSE_MAX], *dst;
	char *big;
	bool cancel;
	size_t i;

	if ((big = malloc(12288)) == NULL)
		abort();
	for (i = 0; i < 12288; i++)
		big[i] = b64_alphabet[i % 64];
	CHECK(sasl_decode_response(big, 12288, &cancel, out, sizeof(out)) ==
	    -1);
	CHECK(sasl_decode_initial_response(big, 12288, out, sizeof(out)) ==
	    -1);
	/* the same text fits once the buffer does */
	if ((dst = malloc(9216)) == NULL)
		abort();
	CHECK(sasl_base64_decode(big, 12288, dst, 9216) == 9216);
	CHECK(sasl_base64_decode(big, 12288, dst, 9215) == -1);
	free(dst);
	memset(big, 0, 12288);
	if ((dst = malloc(12288)) == NULL)
		abort();
	CHECK(sasl_decode_response(big, 12288, &cancel, dst, 12288) == -1);
	free(dst);
	CHECK(sasl_decode_response(big, 4, &cancel, out, sizeof(out)) == -1);
	memset(big, 0x80, 12288);
	CHECK(sasl_decode_response(big, 8, &cancel, out, sizeof(out)) == -1);
	free(big);
}

int
main(void)
{
	UNIT_RUN(test_base64_vectors);
	UNIT_RUN(test_base64_refused);
	UNIT_RUN(test_base64_every_byte);
	UNIT_RUN(test_base64_final_groups);
	UNIT_RUN(test_base64_sizes);
	UNIT_RUN(test_base64_round_trips);
	UNIT_RUN(test_auth_args);
	UNIT_RUN(test_mechanism_name);
	UNIT_RUN(test_responses);
	UNIT_RUN(test_plain);
	UNIT_RUN(test_plain_limits);
	UNIT_RUN(test_plain_utf8);
	UNIT_RUN(test_login);
	UNIT_RUN(test_exchanges);
	UNIT_RUN(test_exchange_steps);
	UNIT_RUN(test_hostile);
	return unit_finish();
}
