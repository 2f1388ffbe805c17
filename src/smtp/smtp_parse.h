/*
 * SMTP command-line parser (RFC 5321 4.1, with the ESMTP parameters of
 * RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8, RFC 3030 BDAT).
 * Pure functions over one command line (CRLF already removed); every
 * result is either a parsed command or a ready-to-send error reply.
 */
#ifndef TEGAMI_SMTP_PARSE_H
#define TEGAMI_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/smtp_address.h"

#define SMTP_COMMAND_LINE_MAX 512	/* RFC 5321 4.5.3.1.4, with CRLF */

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO, SMTP_VERB_EHLO, SMTP_VERB_MAIL, SMTP_VERB_RCPT,
	SMTP_VERB_DATA, SMTP_VERB_BDAT, SMTP_VERB_RSET, SMTP_VERB_NOOP,
	SMTP_VERB_QUIT, SMTP_VERB_HELP, SMTP_VERB_VRFY, SMTP_VERB_EXPN,
	SMTP_VERB_STARTTLS, SMTP_VERB_AUTH,
};

struct smtp_command {
	enum smtp_verb verb;
	/* Everything after the verb and the single space that follows it,
	 * pointing into the caller's line (not NUL-terminated), possibly
	 * empty. "MAIL FROM:<a@b>" gives verb MAIL, args "FROM:<a@b>". */
	const char *args;
	size_t args_len;
};

/*
 * Reply texts: every error below comes with a complete reply line without
 * CRLF, e.g. "501 5.5.4 Syntax error in parameters", static storage.
 */

/*
 * Splits a command line (len bytes, no CRLF) into verb and args. The verb is
 * matched case-insensitively and must be followed by a space or the end.
 * Returns NULL on success, or the error reply: a NUL byte anywhere
 * ("500 5.5.2 ..."), a byte >= 0x80 in the verb, an unknown verb
 * ("500 5.5.1 Command unrecognized"), a line that is too long.
 */
const char *smtp_parse_command(const char *line, size_t len,
    struct smtp_command *cmd_r);

enum smtp_body_type { SMTP_BODY_7BIT = 0, SMTP_BODY_8BITMIME };

struct smtp_mail_params {
	struct smtp_address from;
	bool has_size;
	uint64_t size;		/* SIZE=, declared size in octets */
	enum smtp_body_type body;
	bool smtputf8;
};

/*
 * Parses MAIL arguments: "FROM:<path>" then ESMTP parameters separated by
 * spaces (RFC 5321 4.1.2: keyword ["=" value]; keywords case-insensitive,
 * each at most once). Known: SIZE=digits (an overflow or a value that does
 * not fit uint64 gives "552 5.3.4 ..."), BODY=7BIT|8BITMIME, SMTPUTF8 (no
 * value). An unknown keyword gives "555 5.5.4 ...". A space between
 * "FROM:" and "<" is tolerated (common clients send it). utf8_allowed is
 * true when the session advertised SMTPUTF8 (the address may then be UTF-8
 * only if the SMTPUTF8 parameter is present in the same command).
 * Returns NULL and fills params_r, or the error reply.
 */
const char *smtp_parse_mail_args(const char *args, size_t len,
    bool utf8_allowed, struct smtp_mail_params *params_r);

struct smtp_rcpt_params {
	struct smtp_address to;
};

/*
 * Parses RCPT arguments: "TO:<path>" (null path refused) with no ESMTP
 * parameters known yet (any gives "555 5.5.4 ..."). utf8 is true when the
 * transaction's MAIL carried SMTPUTF8. Returns NULL or the error reply.
 */
const char *smtp_parse_rcpt_args(const char *args, size_t len, bool utf8,
    struct smtp_rcpt_params *params_r);

/*
 * Parses BDAT arguments: "chunk-size [LAST]" (RFC 3030 2): chunk-size is
 * 1*DIGIT that must fit uint64 ("552 5.3.4 ..." otherwise; "-1", empty or
 * trailing junk: "501 5.5.4 ..."). Returns NULL or the error reply.
 */
const char *smtp_parse_bdat_args(const char *args, size_t len,
    uint64_t *size_r, bool *last_r);

/*
 * Checks the EHLO/HELO argument: a domain or an address literal, printable
 * ASCII, no spaces after it other than ignored trailing text for HELO.
 * Copies the name (NUL-terminated) into out (outsize >= 256).
 * Returns NULL or "501 5.5.4 ..." / "501 5.5.2 ...".
 */
const char *smtp_parse_helo_args(const char *args, size_t len, char *out,
    size_t outsize);

/* Name of a verb in upper case, "UNKNOWN" for SMTP_VERB_UNKNOWN. */
const char *smtp_verb_name(enum smtp_verb verb);

#endif
