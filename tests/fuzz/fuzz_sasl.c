/*
 * libFuzzer target for src/auth/sasl.c: each input goes to every function,
 * as base64 text, as bytes to encode, as AUTH arguments and as a decoded
 * PLAIN or LOGIN message. Invariants (abort on violation): decoded output
 * is at most 3/4 of the text, decoding accepts only the one canonical
 * encoding of its bytes and agrees with OpenSSL on it, decode(encode(x)) is
 * x, and accepted PLAIN and LOGIN fields are the input's, within limits.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "auth/sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *
fuzz_alloc(size_t n)
{
	void *p;

	/* At least one byte, so that a zero-sized buffer is still a valid
	 * pointer and ASan reports any write to it. */
	if ((p = malloc(n == 0 ? 1 : n)) == NULL)
		abort();
	return p;
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

static bool
ascii_caseeq(const char *a, const char *b)
{
	unsigned char x, y;

	for (; *a != '\0' && *b != '\0'; a++, b++) {
		x = (unsigned char)*a;
		y = (unsigned char)*b;
		if (x >= 'a' && x <= 'z')
			x -= 'a' - 'A';
		if (y >= 'a' && y <= 'z')
			y -= 'a' - 'A';
		if (x != y)
			return false;
	}
	return *a == *b;
}

/*
 * An oracle for RFC 3629 written another way than sasl.c's: decode each
 * code point and refuse it by value (overlong for its length, surrogate,
 * above U+10FFFF), so that a slip in either shows as a disagreement.
 */
static bool
oracle_utf8(const unsigned char *p, size_t n)
{
	static const uint32_t min_for_len[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t i = 0, k, seq;
	uint32_t cp;

	while (i < n) {
		if (p[i] < 0x80)
			seq = 1;
		else if ((p[i] & 0xe0) == 0xc0)
			seq = 2;
		else if ((p[i] & 0xf0) == 0xe0)
			seq = 3;
		else if ((p[i] & 0xf8) == 0xf0)
			seq = 4;
		else
			return false;
		/* the lead byte's payload: 7, 5, 4 or 3 bits */
		cp = p[i] & (0xffu >> (seq == 1 ? 1 : seq + 1));
		if (seq > n - i)
			return false;
		for (k = 1; k < seq; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if ((seq > 1 && cp < min_for_len[seq]) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		i += seq;
	}
	return true;
}

/* A PLAIN parse: its fields, NULs put back, are exactly msg. */
static void
check_plain(const unsigned char *msg, size_t len)
{
	struct sasl_plain *p;
	size_t zl, cl, pl;

	p = fuzz_alloc(sizeof(*p));
	memset(p, 'X', sizeof(*p));
	if (sasl_plain_parse(msg, len, p) != NULL) {
		if (!all_zero(p, sizeof(*p)))
			abort();
		free(p);
		return;
	}
	zl = strnlen(p->authzid, sizeof(p->authzid));
	cl = strnlen(p->authcid, sizeof(p->authcid));
	pl = strnlen(p->passwd, sizeof(p->passwd));
	if (zl > SASL_NAME_MAX || cl == 0 || cl > SASL_NAME_MAX || pl == 0 ||
	    pl > ACCOUNTS_PASSWORD_MAX)
		abort();
	if (zl + cl + pl + 2 != len || memcmp(msg, p->authzid, zl) != 0 ||
	    msg[zl] != '\0' || memcmp(msg + zl + 1, p->authcid, cl) != 0 ||
	    msg[zl + 1 + cl] != '\0' ||
	    memcmp(msg + zl + cl + 2, p->passwd, pl) != 0)
		abort();
	if (zl != 0 && !ascii_caseeq(p->authzid, p->authcid))
		abort();
	if (!oracle_utf8(msg, len))
		abort();
	explicit_bzero(p, sizeof(*p));
	free(p);
}

static void
check_login(const unsigned char *msg, size_t len, size_t max)
{
	char *out;

	out = fuzz_alloc(max + 1);
	memset(out, 'X', max + 1);
	if (sasl_login_field(msg, len, out, max) != NULL) {
		if (!all_zero(out, max + 1))
			abort();
		/* Refused only for a reason the header gives. */
		if (len > 0 && len <= max && memchr(msg, '\0', len) == NULL &&
		    oracle_utf8(msg, len))
			abort();
	} else if (len == 0 || len > max || strnlen(out, max + 1) != len ||
	    memcmp(out, msg, len) != 0 || !oracle_utf8(msg, len))
		abort();
	free(out);
}

/* The input as base64 text. */
static void
fuzz_decode(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	unsigned char *out, *evp;
	char *again;
	ssize_t r;
	int er;

	out = fuzz_alloc(size);
	r = sasl_base64_decode(text, size, out, size);
	if (r < -1 || (r >= 0 && (size_t)r > size / 4 * 3))
		abort();
	if (r >= 0) {
		/* Strict: only the canonical encoding decodes. */
		again = fuzz_alloc(size + 1);
		if (sasl_base64_encode(out, (size_t)r, again, size + 1) !=
		    size || memcmp(again, text, size) != 0)
			abort();
		free(again);
		/* Whatever we accept, OpenSSL's lenient decoder reads the
		 * same (it returns whole groups, padding as zeros). */
		if (size > 0 && size <= 4096) {
			evp = fuzz_alloc(size / 4 * 3);
			er = EVP_DecodeBlock(evp, data, (int)size);
			if (er != (int)(size / 4 * 3) ||
			    memcmp(evp, out, (size_t)r) != 0)
				abort();
			free(evp);
		}
		/* Exactly the decoded length fits; one byte less does not. */
		if (sasl_base64_decode(text, size, out, (size_t)r) != r)
			abort();
		if (r > 0 && sasl_base64_decode(text, size, out,
		    (size_t)r - 1) != -1)
			abort();
		check_plain(out, (size_t)r);
		check_login(out, (size_t)r, SASL_NAME_MAX);
	}
	free(out);
}

/* The input as bytes to encode: decode(encode(x)) == x. */
static void
fuzz_encode(const uint8_t *data, size_t size)
{
	size_t need = (size + 2) / 3 * 4, n;
	unsigned char *back;
	char *text;

	text = fuzz_alloc(need + 1);
	if (sasl_base64_encode(data, size, text, need) != (size_t)-1)
		abort();
	n = sasl_base64_encode(data, size, text, need + 1);
	if (n != need || strlen(text) != need)
		abort();
	back = fuzz_alloc(size);
	if (sasl_base64_decode(text, n, back, size) != (ssize_t)size ||
	    memcmp(back, data, size) != 0)
		abort();
	free(back);
	free(text);
}

/* The input as an AUTH command's arguments, then its initial response
 * through the mechanism named. */
static void
fuzz_auth(const uint8_t *data, size_t size)
{
	const char *args = (const char *)data, *init, *reply;
	enum sasl_mechanism mech;
	unsigned char *out;
	size_t ilen, i;
	ssize_t r;

	reply = sasl_parse_auth_args(args, size, &mech, &init, &ilen);
	if (reply != NULL) {
		if (strncmp(reply, "501 5.5.4 ", 10) != 0 ||
		    mech != SASL_MECH_UNKNOWN || init != NULL || ilen != 0)
			abort();
		return;
	}
	if (mech != SASL_MECH_UNKNOWN && sasl_mechanism_name(mech) == NULL)
		abort();
	if (init == NULL) {
		if (ilen != 0)
			abort();
		return;
	}
	if (ilen == 0 || init < args || init + ilen > args + size)
		abort();
	for (i = 0; i < ilen; i++)
		if (init[i] == ' ' || init[i] == '\t')
			abort();
	out = fuzz_alloc(SASL_RESPONSE_MAX);
	r = sasl_decode_initial_response(init, ilen, out, SASL_RESPONSE_MAX);
	if (r < -1 || (r >= 0 && (size_t)r > ilen / 4 * 3))
		abort();
	if (r >= 0 && mech == SASL_MECH_PLAIN)
		check_plain(out, (size_t)r);
	if (r >= 0 && mech == SASL_MECH_LOGIN)
		check_login(out, (size_t)r, SASL_NAME_MAX);
	free(out);
}

/* The input as a response line to a 334 challenge. */
static void
fuzz_response(const uint8_t *data, size_t size)
{
	unsigned char *out;
	bool cancel = true;
	ssize_t r;

	out = fuzz_alloc(size);
	r = sasl_decode_response((const char *)data, size, &cancel, out, size);
	if (cancel != (size == 1 && data[0] == '*'))
		abort();
	if (r < -1 || (r >= 0 && (size_t)r > size / 4 * 3))
		abort();
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_decode(data, size);
	fuzz_encode(data, size);
	fuzz_auth(data, size);
	fuzz_response(data, size);
	/* The input as a decoded PLAIN or LOGIN message. */
	check_plain(data, size);
	check_login(data, size, SASL_NAME_MAX);
	check_login(data, size, ACCOUNTS_PASSWORD_MAX);
	return 0;
}
