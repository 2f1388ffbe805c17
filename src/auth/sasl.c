/*
 * SASL messages for SMTP AUTH (RFC 4954 4): strict base64 (RFC 4648 4, 3.3,
 * 3.5), the AUTH arguments with RFC 4422 3.1 mechanism names, and the PLAIN
 * (RFC 4616 2) and LOGIN (draft-murchison-sasl-login) messages.
 */
#include <sys/types.h>

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "auth/sasl.h"

#define MECH_NAME_MAX 20	/* RFC 4422 3.1 */
/* A multiple of 3 whose encoding (4/3 of it) still fits EVP's int. */
#define ENCODE_CHUNK ((size_t)3 << 28)

static const char syntax_reply[] =
    "501 5.5.4 Syntax: AUTH mechanism [initial-response]";

/*
 * RFC 4648 4 alphabet value of c, or -1. Written by hand, as is the decoder
 * below, because OpenSSL's EVP_DecodeBlock skips whitespace, accepts bits
 * after the padding and pads its output with zeros: strictness is the point.
 */
static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

ssize_t
sasl_base64_decode(const char *in, size_t len, unsigned char *out,
    size_t outsize)
{
	const unsigned char	*s = (const unsigned char *)in;
	size_t			 pad = 0, n, i, o = 0;
	int			 v[4], k;
	bool			 last;

	if (len % 4 != 0)
		return -1;
	if (len == 0)
		return 0;
	/* Only the last group may hold '=', and only at its end. */
	if (s[len - 1] == '=') {
		pad++;
		if (s[len - 2] == '=')
			pad++;
	}
	/* Checked before writing, so a long line costs nothing. */
	n = len / 4 * 3 - pad;
	if (n > outsize || n > SSIZE_MAX)
		return -1;
	for (i = 0; i < len; i += 4) {
		last = i + 4 == len;
		for (k = 0; k < 4; k++) {
			if (last && k >= 4 - (int)pad)
				v[k] = 0;
			else if ((v[k] = b64_value(s[i + k])) < 0)
				return -1;
		}
		/* RFC 4648 3.5: the bits the padding leaves over are zero, so
		 * that no two texts decode to the same bytes. */
		if (last && pad == 2 && (v[1] & 0x0f) != 0)
			return -1;
		if (last && pad == 1 && (v[2] & 0x03) != 0)
			return -1;
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (!last || pad < 2)
			out[o++] = (unsigned char)((v[1] << 4 | v[2] >> 2) & 0xff);
		if (!last || pad < 1)
			out[o++] = (unsigned char)((v[2] << 6 | v[3]) & 0xff);
	}
	return (ssize_t)o;
}

size_t
sasl_base64_encode(const unsigned char *in, size_t len, char *out,
    size_t outsize)
{
	size_t	 groups = len / 3 + (len % 3 != 0), o = 0, n;

	if (groups > (SIZE_MAX - 1) / 4 || outsize < 4 * groups + 1)
		return (size_t)-1;
	/* EVP_EncodeBlock counts in int; whole groups per call keep the
	 * padding at the very end. */
	while (len > 0) {
		n = len < ENCODE_CHUNK ? len : ENCODE_CHUNK;
		o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, in,
		    (int)n);
		in += n;
		len -= n;
	}
	out[o] = '\0';
	return o;
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool
ascii_caseeq(const unsigned char *a, const unsigned char *b, size_t n)
{
	unsigned char	 x, y;
	size_t		 i;

	for (i = 0; i < n; i++) {
		x = a[i] >= 'a' && a[i] <= 'z' ? a[i] - 'a' + 'A' : a[i];
		y = b[i] >= 'a' && b[i] <= 'z' ? b[i] - 'a' + 'A' : b[i];
		if (x != y)
			return false;
	}
	return true;
}

/* RFC 4422 3.1: 1 to 20 of A-Z 0-9 - _, here in either case. */
static bool
mech_name_valid(const char *s, size_t n)
{
	size_t	 i;
	char	 c;

	if (n == 0 || n > MECH_NAME_MAX)
		return false;
	for (i = 0; i < n; i++) {
		c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

const char *
sasl_parse_auth_args(const char *args, size_t len,
    enum sasl_mechanism *mech_r, const char **initial_r,
    size_t *initial_len_r)
{
	size_t		 off[2], wlen[2], nwords = 0, i = 0;

	*mech_r = SASL_MECH_UNKNOWN;
	*initial_r = NULL;
	*initial_len_r = 0;
	for (;;) {
		while (i < len && is_blank(args[i]))
			i++;
		if (i == len)
			break;
		if (nwords == 2)
			return "501 5.5.4 Too many arguments to AUTH";
		off[nwords] = i;
		while (i < len && !is_blank(args[i]))
			i++;
		wlen[nwords] = i - off[nwords];
		nwords++;
	}
	if (nwords == 0)
		return syntax_reply;
	if (!mech_name_valid(args + off[0], wlen[0]))
		return "501 5.5.4 Invalid mechanism name";
	if (wlen[0] == 5 && ascii_caseeq((const unsigned char *)args +
	    off[0], (const unsigned char *)"PLAIN", 5))
		*mech_r = SASL_MECH_PLAIN;
	else if (wlen[0] == 5 && ascii_caseeq((const unsigned char *)args +
	    off[0], (const unsigned char *)"LOGIN", 5))
		*mech_r = SASL_MECH_LOGIN;
	if (nwords == 2) {
		*initial_r = args + off[1];
		*initial_len_r = wlen[1];
	}
	return NULL;
}

const char *
sasl_mechanism_name(enum sasl_mechanism mech)
{
	switch (mech) {
	case SASL_MECH_PLAIN:
		return "PLAIN";
	case SASL_MECH_LOGIN:
		return "LOGIN";
	default:
		return NULL;
	}
}

ssize_t
sasl_decode_response(const char *line, size_t len, bool *cancel_r,
    unsigned char *out, size_t outsize)
{
	*cancel_r = false;
	if (len == 1 && line[0] == '*') {
		*cancel_r = true;
		return 0;
	}
	return sasl_base64_decode(line, len, out, outsize);
}

ssize_t
sasl_decode_initial_response(const char *resp, size_t len,
    unsigned char *out, size_t outsize)
{
	/* RFC 4954 4: an empty initial response is sent as "=", so an
	 * empty word cannot be one. */
	if (len == 1 && resp[0] == '=')
		return 0;
	if (len == 0)
		return -1;
	return sasl_base64_decode(resp, len, out, outsize);
}

/*
 * True when p[0..n) is well-formed UTF-8 (RFC 3629 4): no overlongs, no
 * surrogates, nothing above U+10FFFF, no truncated sequence.
 */
static bool
utf8_valid(const unsigned char *p, size_t n)
{
	unsigned char	 lo, hi;
	size_t		 i = 0, k, seq;

	while (i < n) {
		lo = 0x80;
		hi = 0xbf;
		if (p[i] < 0x80) {
			i++;
			continue;
		} else if (p[i] >= 0xc2 && p[i] <= 0xdf)
			seq = 2;
		else if (p[i] >= 0xe0 && p[i] <= 0xef) {
			seq = 3;
			if (p[i] == 0xe0)
				lo = 0xa0;	/* overlong */
			else if (p[i] == 0xed)
				hi = 0x9f;	/* surrogates */
		} else if (p[i] >= 0xf0 && p[i] <= 0xf4) {
			seq = 4;
			if (p[i] == 0xf0)
				lo = 0x90;	/* overlong */
			else if (p[i] == 0xf4)
				hi = 0x8f;	/* above U+10FFFF */
		} else
			return false;
		if (n - i < seq || p[i + 1] < lo || p[i + 1] > hi)
			return false;
		for (k = 2; k < seq; k++)
			if (p[i + k] < 0x80 || p[i + k] > 0xbf)
				return false;
		i += seq;
	}
	return true;
}

const char *
sasl_plain_parse(const unsigned char *msg, size_t len,
    struct sasl_plain *out)
{
	const unsigned char	*nul1, *nul2, *zid, *cid, *pw;
	size_t			 zlen, clen, plen;

	/* Nothing is copied into out before every check has passed, so on
	 * refusal it holds no part of the password. */
	explicit_bzero(out, sizeof(*out));
	if (len == 0 || (nul1 = memchr(msg, '\0', len)) == NULL)
		return "PLAIN message without two NULs";
	zid = msg;
	zlen = (size_t)(nul1 - msg);
	cid = nul1 + 1;
	if ((nul2 = memchr(cid, '\0', len - zlen - 1)) == NULL)
		return "PLAIN message without two NULs";
	clen = (size_t)(nul2 - cid);
	pw = nul2 + 1;
	plen = len - zlen - clen - 2;
	if (memchr(pw, '\0', plen) != NULL)
		return "PLAIN message with more than two NULs";
	if (clen == 0)
		return "PLAIN empty authcid";
	if (plen == 0)
		return "PLAIN empty password";
	if (zlen > SASL_NAME_MAX)
		return "PLAIN authzid too long";
	if (clen > SASL_NAME_MAX)
		return "PLAIN authcid too long";
	if (plen > ACCOUNTS_PASSWORD_MAX)
		return "PLAIN password too long";
	if (!utf8_valid(zid, zlen))
		return "PLAIN authzid not UTF-8";
	if (!utf8_valid(cid, clen))
		return "PLAIN authcid not UTF-8";
	if (!utf8_valid(pw, plen))
		return "PLAIN password not UTF-8";
	if (zlen != 0 && (zlen != clen || !ascii_caseeq(zid, cid, clen)))
		return "PLAIN authzid differs from authcid";
	memcpy(out->authzid, zid, zlen);
	memcpy(out->authcid, cid, clen);
	memcpy(out->passwd, pw, plen);
	return NULL;
}

const char *
sasl_login_field(const unsigned char *msg, size_t len, char *out,
    size_t max)
{
	/* The field may be the password: leave nothing of it on refusal. */
	explicit_bzero(out, max + 1);
	if (len == 0)
		return "LOGIN empty field";
	if (len > max)
		return "LOGIN field too long";
	if (memchr(msg, '\0', len) != NULL)
		return "LOGIN field with NUL";
	if (!utf8_valid(msg, len))
		return "LOGIN field not UTF-8";
	memcpy(out, msg, len);
	out[len] = '\0';
	return NULL;
}
