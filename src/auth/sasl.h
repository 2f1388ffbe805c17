/*
 * SASL for SMTP AUTH (RFC 4954) and later POP3/IMAP: the strict base64 of
 * RFC 4648 section 4 that every SASL exchange is wrapped in, the AUTH
 * command's arguments, and the PLAIN (RFC 4616) and LOGIN mechanisms'
 * messages. Pure functions: no I/O, no allocation.
 */
#ifndef TEGAMI_SASL_H
#define TEGAMI_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "auth/accounts.h"

/* RFC 4616 2: authzid and authcid are at most 255 octets each. */
#define SASL_NAME_MAX 255
/* The largest decoded client response we take: PLAIN's three fields. */
#define SASL_RESPONSE_MAX (2 * SASL_NAME_MAX + ACCOUNTS_PASSWORD_MAX + 2)
/* Its base64 form, plus the line's CR LF; also bounds the AUTH line. */
#define SASL_LINE_MAX (((SASL_RESPONSE_MAX + 2) / 3) * 4 + 2)

enum sasl_mechanism {
	SASL_MECH_UNKNOWN = 0,
	SASL_MECH_PLAIN,
	SASL_MECH_LOGIN,
};

/*
 * Strict base64 (RFC 4648 4): only A-Z a-z 0-9 + /, '=' padding to a
 * multiple of 4, no whitespace, no characters after the padding, and the
 * unused bits of the last group zero (so that every input has one
 * meaning). The empty string decodes to nothing. Returns the decoded
 * length, or -1 when the input is not such base64 or would not fit in
 * outsize bytes. out may be written even on failure.
 */
ssize_t sasl_base64_decode(const char *in, size_t len, unsigned char *out,
    size_t outsize);

/*
 * Encodes len bytes with padding and a terminating NUL. Returns the length
 * without the NUL, or (size_t)-1 when outsize is smaller than
 * 4 * ((len + 2) / 3) + 1.
 */
size_t sasl_base64_encode(const unsigned char *in, size_t len, char *out,
    size_t outsize);

/*
 * The arguments of "AUTH mechanism [initial-response]" (RFC 4954 4):
 * the mechanism name (case-insensitive) and, if given, the initial
 * response exactly as sent (still base64; "=" means an empty response).
 * Returns NULL with *mech_r, and *initial_r / *initial_len_r (NULL / 0
 * when absent), pointing into args; or the SMTP reply for a syntax error
 * ("501 5.5.4 ..."). An unknown mechanism is not a syntax error: it is
 * reported as SASL_MECH_UNKNOWN with NULL returned.
 * args is what follows "AUTH" without the CR LF; words are separated by
 * any run of spaces and tabs, which may also lead and trail. Syntax errors:
 * no word, more than two words, a mechanism name that is not 1 to 20 of
 * A-Z a-z 0-9 - _ (RFC 4422 3.1). On a syntax error the outputs are
 * SASL_MECH_UNKNOWN, NULL and 0. The initial response is not checked
 * here: pass it to sasl_decode_initial_response.
 */
const char *sasl_parse_auth_args(const char *args, size_t len,
    enum sasl_mechanism *mech_r, const char **initial_r,
    size_t *initial_len_r);

/* "PLAIN", "LOGIN"; NULL for SASL_MECH_UNKNOWN or any other value. */
const char *sasl_mechanism_name(enum sasl_mechanism mech);

/*
 * A client's response line to a 334 challenge (RFC 4954 4): "*" alone
 * cancels the exchange (*cancel_r true, returns 0); otherwise the line is
 * base64 and is decoded into out. Returns the decoded length, or -1 when
 * the line is not valid base64 or decodes to more than outsize bytes.
 * An empty response is the empty line (len 0, returns 0); "=" is not base64
 * and is refused here, because RFC 4954 4 uses it only in the AUTH command.
 */
ssize_t sasl_decode_response(const char *line, size_t len, bool *cancel_r,
    unsigned char *out, size_t outsize);

/*
 * The initial response of "AUTH mechanism initial-response" as returned by
 * sasl_parse_auth_args (RFC 4954 4): "=" alone is the empty response
 * (returns 0); otherwise strict base64 as above. Returns -1 for anything
 * else, including an empty string (on the wire an empty initial response
 * is "=") and "*" (cancelling answers a 334 challenge, which has not been
 * sent yet).
 */
ssize_t sasl_decode_initial_response(const char *resp, size_t len,
    unsigned char *out, size_t outsize);

struct sasl_plain {
	char authzid[SASL_NAME_MAX + 1];	/* "" when absent */
	char authcid[SASL_NAME_MAX + 1];	/* the user name given */
	char passwd[ACCOUNTS_PASSWORD_MAX + 1];
};

/*
 * Splits a decoded PLAIN message, "[authzid] NUL authcid NUL passwd"
 * (RFC 4616 2), into NUL-terminated fields. Refused (returns a short
 * reason for the log, and leaves *out zeroed): not exactly two NULs, an
 * empty authcid or passwd, a field over its limit, a field that is not
 * valid UTF-8 (RFC 3629), or an authzid that differs from the authcid
 * (compared ignoring ASCII case; tegami does not let one user act as
 * another). Returns NULL on success.
 */
const char *sasl_plain_parse(const unsigned char *msg, size_t len,
    struct sasl_plain *out);

/*
 * LOGIN (draft-murchison-sasl-login): the server's two challenges, base64
 * of "Username:" and "Password:", and the check of one decoded answer: not
 * empty, no NUL, valid UTF-8, at most max bytes. Copies it NUL-terminated
 * into out (max + 1 bytes) and returns NULL, or returns a reason and
 * leaves out's max + 1 bytes zeroed (the answer may be the password).
 */
#define SASL_LOGIN_USERNAME_CHALLENGE "VXNlcm5hbWU6"
#define SASL_LOGIN_PASSWORD_CHALLENGE "UGFzc3dvcmQ6"
const char *sasl_login_field(const unsigned char *msg, size_t len,
    char *out, size_t max);

#endif
